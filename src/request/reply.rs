//! What a reply job says, as data: the answer to `help`, a malformed command, `stop`, `status`,
//! `retry`, a rate limit. Planning decides which; rendering says it in words, on GitHub or in
//! Slack.

use serde::{Deserialize, Serialize};

use super::command::ParseError;
use crate::job::{JobId, JobRecord, JobState, PullRequestRef};

/// A reply that is the whole answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// `help`: the commands.
    Help,
    /// The text after the mention is not a command errand understands.
    Malformed { error: ParseError },
    /// `use attempt N` outside a pull request.
    UseAttemptOnPullRequest,
    /// `stop`, `status` or `retry` could not reach the queue.
    QueueUnreachable { command: String },
    /// `stop`: the jobs asked to stop (none: nothing was running).
    Stopping { jobs: Vec<JobBrief> },
    /// `status`: the thread's open jobs, oldest first; when none, its last job, if any.
    Status { open: Vec<JobBrief>, last: Option<JobBrief> },
    /// `retry` on a thread without an earlier job.
    NothingToRetry,
    /// `retry` while the thread's last job has not ended.
    RetryWhenEnded { job: JobBrief },
    /// The requester or the repository reached a rate limit.
    RateLimited { scope: RateLimitScope, limit: u64, window_secs: u64, retry_after_secs: u64 },
}

/// Which rate limit a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitScope {
    Requester,
    Repository,
}

/// A job as `status` and `stop` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobBrief {
    pub id: JobId,
    pub requested_by: String,
    pub state: JobState,
    /// Its place in the queue, when it is queued.
    pub position: Option<usize>,
    pub deliveries: u32,
    pub pull: Option<PullRequestRef>,
    /// Someone asked it to stop and it has not ended yet.
    pub stopping: bool,
}

impl JobBrief {
    pub fn of(record: &JobRecord, position: Option<usize>) -> Self {
        Self {
            id: record.job.id.clone(),
            requested_by: record.job.requested_by.clone(),
            state: record.state.clone(),
            position,
            deliveries: record.deliveries,
            pull: record.pull_request.clone(),
            stopping: record.cancel_requested_by.is_some() && !record.state.is_terminal(),
        }
    }
}
