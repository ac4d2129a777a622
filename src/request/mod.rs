//! The request: who asked errand for what, where and about what, parsed once at the edge into
//! our own types, and planned into the job that answers it. The edges (GitHub webhooks, Slack
//! events and commands) build a [`Trigger`] with the constructor of their source; [`plan`] turns
//! it into the one job to enqueue.
//!
//! - [`command`]: the pure parser of what a comment asks (`@agent fix this`), and the commands
//!   `help` lists.
//! - [`ids`]: issue numbers, comment and review ids, Slack channels and messages, thread keys.
//! - [`Trigger`]: a request, one constructor per source.
//! - [`plan`]: a trigger into a job; `stop`, `status` and `retry` act on the thread's jobs here.
//! - [`Reply`]: what a reply job says, as data.

pub mod command;
pub mod ids;
mod plan;
mod reply;
mod trigger;

pub use self::plan::plan;
pub use self::reply::{JobBrief, RateLimitScope, Reply};
pub use self::trigger::{GithubSubject, ReviewComment, SlackMessage, SlackPlace, SlackTarget, Trigger};
