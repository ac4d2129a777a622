//! errand: delegate GitHub and Slack requests to coding agents in sandboxed containers, and
//! answer with pull requests that carry evidence.
//!
//! The modules in the order a request travels through them:
//!
//! - [`ingress`]: the HTTP server: verifies signatures, reads GitHub webhooks and Slack events
//!   into our own request, drops duplicates, enqueues, answers at once; also the job API.
//! - [`request`]: the request itself: [`request::Trigger`] (one constructor per source), the
//!   identifiers it is made of, the command parser, and planning a request into a job (`stop`,
//!   `status` and `retry` act on the thread's jobs there).
//! - [`job`]: the queued unit, its record and its state ([`job::JobState`]).
//! - [`queue`]: at-least-once job queue with leases, reclaim and dead letter (Redis and memory).
//! - [`worker`]: claims jobs and runs each as named steps: admit, place, configure, attempt,
//!   choose, deliver; then settles it in the queue.
//! - [`rollout`]: one attempt: a checkout from the mirror cache, the environment, the agent and the
//!   checks in the sandbox, the change and the evidence.
//! - [`agents`]: the real agent CLIs as presets (pinned command lines) and their event streams.
//! - [`sandbox`]: Docker containers with limits, no credentials, no network or only an egress
//!   allowlist, and the safe reading back of what they wrote.
//! - [`publish`]: the conversation a job answers in (GitHub or Slack, resolved once),
//!   delivery (branches, the pull request), and rendering of every sentence people read.
//! - [`forge`]: GitHub, whole: the REST client (octocrab) and git on the worker.
//! - [`chat`]: Slack, whole: events, signatures, repository resolution, the Web API client.
//! - [`config`]: process settings (flags and `ERRAND_*`) and repository settings (`.errand.toml`).
//! - [`secrets`]: every secret the process holds, and the one redactor everything passes.
//! - [`logging`]: the log, redacted.
//! - [`app`]: composition: a process assembled from its settings, and the one `start` that runs
//!   its halves for production and the tests.

pub mod agents;
pub mod app;
pub mod chat;
pub mod config;
pub mod forge;
pub mod ingress;
pub mod job;
pub mod logging;
pub mod publish;
pub mod queue;
pub mod request;
pub mod rollout;
pub mod sandbox;
pub mod secrets;
pub mod worker;
