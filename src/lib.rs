//! errand: delegate GitHub requests to coding agents in sandboxed containers, and answer with
//! pull requests that carry evidence.
//!
//! The modules follow the flow of a request:
//!
//! - [`ingress`]: the HTTP server. Verifies signatures, parses webhooks into our own triggers,
//!   drops duplicates, enqueues, answers; also serves the job API.
//! - [`command`]: the pure parser for what a comment asks (`@agent fix this`).
//! - [`queue`]: at-least-once job queue with leases, reclaim and dead letter (Redis and memory).
//! - [`worker`]: claims jobs, checks permission, reads the repository's configuration, runs
//!   the rollout and hands the outcome to the publisher.
//! - [`agents`]: the real agent CLIs as presets (pinned command lines) and their event streams.
//! - [`chat`]: Slack's edge and Web API client (not wired into `serve` yet).
//! - [`rollout`]: one attempt: workspace from the mirror cache, agent and checks in the sandbox,
//!   the diff and the evidence.
//! - [`sandbox`]: Docker containers with limits, no credentials, and no network or only an egress
//!   allowlist.
//! - [`forge`]: the GitHub API client (octocrab) and git.
//! - [`publish`]: what people read: reactions, the tracking comment, the pull request body.
//! - [`config`]: process settings (flags and `ERRAND_*`) and repository settings (`.errand.toml`).
//! - [`job`]: the queued unit and its identifiers.

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
