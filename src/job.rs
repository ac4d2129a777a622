//! The queued unit of work: the job (what was asked, where the answer goes), its record in the
//! queue, and its state as one enum. Its identifiers (a job's id, a repository's name) live with
//! the request's in `request::ids`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::request::Reply;
// The job's own identifiers live with the request's; every module names them through here.
use crate::request::ids::{CommentId, IssueNumber, MessageTs, ReviewId, SlackChannel, SlackTeam, ThreadKey};
pub use crate::request::ids::{InvalidId, JobId, RepoName};

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    GithubIssueComment,
    GithubPullRequestComment,
    GithubReviewComment,
    /// An issue assigned to errand, or given errand's label.
    GithubIssue,
    Slack,
    Api,
}

/// Where a job's acknowledgement, progress and result are posted (publishing resolves it into a
/// live conversation once per job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyTarget {
    /// A comment on a GitHub issue (or a pull request's conversation).
    GithubIssue {
        /// The issue or pull request.
        issue: IssueNumber,
        /// The comment that asked (gets the 👀 reaction); `None` when the issue itself asked (it
        /// was assigned to errand or labelled).
        comment_id: Option<CommentId>,
    },
    /// A pull request review: errand answers in the review threads that asked.
    GithubReview {
        pull: IssueNumber,
        /// The review; every comment of it that mentions errand is addressed by the one job.
        review_id: Option<ReviewId>,
        /// The review comment that asked, if a comment (not the review's own text) did.
        comment_id: Option<CommentId>,
        /// The first comment of that comment's thread: replies go there (GitHub takes no replies
        /// to replies).
        thread_id: Option<CommentId>,
    },
    /// A Slack thread: errand replies in it, edits its reply as the job moves, and reacts on the
    /// message that asked.
    Slack {
        /// The workspace the request came from.
        team: SlackTeam,
        channel: SlackChannel,
        /// The message that asked (gets 👀, then ✅ or ❌); `None` for a slash command, which
        /// has no message: errand then starts a thread of its own.
        ts: Option<MessageTs>,
        /// The thread errand answers in; `None` until errand has started one for a slash command.
        thread_ts: Option<MessageTs>,
        /// The GitHub issue the message linked, if any: the pull request closes it.
        issue: Option<IssueNumber>,
    },
}

impl ReplyTarget {
    /// The comment that asked, if a GitHub comment did.
    pub fn asking_comment(&self) -> Option<CommentId> {
        match *self {
            Self::GithubIssue { comment_id, .. } | Self::GithubReview { comment_id, .. } => comment_id,
            Self::Slack { .. } => None,
        }
    }

    /// The issue or pull request the request was made on (or linked, from Slack).
    pub fn issue(&self) -> Option<IssueNumber> {
        match *self {
            Self::GithubIssue { issue, .. } => Some(issue),
            Self::GithubReview { pull, .. } => Some(pull),
            Self::Slack { issue, .. } => issue,
        }
    }

    /// The conversation a request belongs to: an issue or pull request of `repo`, or a Slack
    /// thread; `None` for a slash command, which has no thread until errand starts one.
    pub fn conversation(&self, repo: &RepoName) -> Option<ThreadKey> {
        match self {
            Self::GithubIssue { issue, .. } => Some(ThreadKey::github(repo, *issue)),
            Self::GithubReview { pull, .. } => Some(ThreadKey::github(repo, *pull)),
            Self::Slack { channel, thread_ts, .. } => {
                thread_ts.as_ref().map(|thread_ts| ThreadKey::slack(channel, thread_ts))
            }
        }
    }
}

/// What the requester asked for, with the context the agent gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The text after the mention; may be empty, in which case the issue itself is the task.
    pub instruction: String,
    /// The issue's (or pull request's) title.
    pub title: String,
    /// The issue's body, as written.
    pub body: String,
    /// A link to the comment that asked.
    pub url: String,
}

/// The pull request a follow-up works on: its head branch gets the new commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub pull: IssueNumber,
}

/// What a job does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Run the agent on the task.
    #[default]
    Task,
    /// Only answer in the thread (help, a malformed command, status): no agent, no permission
    /// needed. `mention` is the name the person used, to address the answer.
    Reply { reply: Reply, mention: String },
    /// Put another attempt of a best-of-N job in its pull request (`use attempt N`).
    UseAttempt { attempt: u32 },
}

/// The queued unit: one request, as accepted by the ingress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub repo: RepoName,
    pub source: Source,
    /// The login (or Slack user id) of the person who asked.
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    /// The GitHub App installation that delivered the request, when there is one.
    pub installation_id: Option<u64>,
    pub task: Task,
    pub reply: ReplyTarget,
    #[serde(default)]
    pub kind: JobKind,
    /// Set when the request was made on a pull request: the work goes onto its branch instead of
    /// a new one.
    #[serde(default)]
    pub follow_up: Option<FollowUp>,
    /// How many independent attempts the requester asked for (`--attempts N`); `None` means the
    /// repository's default. The worker caps it at the repository's and its own maximum.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// The earlier task of the same Slack thread, when there was one: a later mention in the
    /// thread continues its work (its pull request gets the new commit).
    #[serde(default)]
    pub continues: Option<JobId>,
}

impl Job {
    /// The conversation the job belongs to (an issue or a pull request): tasks of one thread run
    /// one at a time, in order, and `stop`, `status` and `retry` act on them. Replies have none.
    pub fn thread(&self) -> Option<ThreadKey> {
        match self.kind {
            JobKind::Task | JobKind::UseAttempt { .. } => {
                Some(self.reply.conversation(&self.repo).unwrap_or_else(|| ThreadKey::job(&self.id)))
            }
            JobKind::Reply { .. } => None,
        }
    }
}

/// A job's place in its life, as the job API's `status` reports it: the stable projection of
/// [`JobState`] that people's scripts compare against, so its values never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Where a job is in its life, with what each state needs: the one source of truth for the
/// queue, the worker and the job API. Serialized with its name under `state` and its fields
/// beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker. When it is queued for a retry, `retry_reason` says why the last
    /// delivery did not end it; a new or requeued job has none.
    Queued {
        #[serde(default)]
        retry_reason: Option<String>,
    },
    /// Deferred behind `behind`, an earlier job of its thread that has not ended: tasks of one
    /// thread run in order. Waiting is not a delivery.
    Waiting {
        behind: JobId,
    },
    /// A worker holds the job's lease.
    Running,
    Succeeded,
    /// Ended without the work done; `reason` is in words for the requester.
    Failed {
        reason: String,
    },
    /// Stopped by the person who asked it to stop (`@agent stop`).
    Cancelled {
        #[serde(rename = "cancelled_by")]
        by: String,
    },
    /// Given up after too many deliveries, the last failure in `reason`: in the dead letter until
    /// an operator requeues it.
    Dead {
        reason: String,
    },
}

impl JobState {
    /// A job nobody has tried yet.
    pub const NEW: Self = Self::Queued { retry_reason: None };

    /// The stable status the job API reports: a waiting job is queued, a dead one failed.
    pub fn status(&self) -> JobStatus {
        match self {
            Self::Queued { .. } | Self::Waiting { .. } => JobStatus::Queued,
            Self::Running => JobStatus::Running,
            Self::Succeeded => JobStatus::Succeeded,
            Self::Failed { .. } | Self::Dead { .. } => JobStatus::Failed,
            Self::Cancelled { .. } => JobStatus::Cancelled,
        }
    }

    /// Whether no worker will run the job again (a dead job only if an operator requeues it).
    pub fn is_terminal(&self) -> bool {
        self.status().is_terminal()
    }

    pub fn is_dead(&self) -> bool {
        matches!(self, Self::Dead { .. })
    }

    /// Why the job failed (dead or not), in words for the requester.
    pub fn failure(&self) -> Option<&str> {
        match self {
            Self::Failed { reason } | Self::Dead { reason } => Some(reason),
            _ => None,
        }
    }

    /// The state with every text in it passed through `redact`: what the queue records, the job
    /// API shows.
    pub fn redacted(self, redact: impl Fn(&str) -> String) -> Self {
        match self {
            Self::Queued { retry_reason } => Self::Queued { retry_reason: retry_reason.map(|r| redact(&r)) },
            Self::Failed { reason } => Self::Failed { reason: redact(&reason) },
            Self::Cancelled { by } => Self::Cancelled { by: redact(&by) },
            Self::Dead { reason } => Self::Dead { reason: redact(&reason) },
            Self::Waiting { .. } | Self::Running | Self::Succeeded => self,
        }
    }
}

/// How a record's state is written: the state, and beside it the stable `status` and whether the
/// job is `dead`, both computed from it for the job API's readers (and ignored when read back).
mod state_view {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{JobState, JobStatus};

    #[derive(Serialize)]
    struct View<'a> {
        status: JobStatus,
        dead: bool,
        #[serde(flatten)]
        state: &'a JobState,
    }

    pub fn serialize<S: Serializer>(state: &JobState, s: S) -> Result<S::Ok, S::Error> {
        View { status: state.status(), dead: state.is_dead(), state }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<JobState, D::Error> {
        JobState::deserialize(d)
    }
}

/// A pull request errand opened for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    pub number: u64,
    pub url: String,
}

/// A job with everything the queue knows about it: the record the job API serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    #[serde(flatten)]
    pub job: Job,
    #[serde(flatten, with = "state_view")]
    pub state: JobState,
    /// How many times a worker has claimed the job.
    pub deliveries: u32,
    pub updated_at: DateTime<Utc>,
    /// The tracking comment errand edits as the job moves.
    #[serde(default)]
    pub tracking_comment_id: Option<u64>,
    #[serde(default)]
    pub pull_request: Option<PullRequestRef>,
    /// Who asked the job to stop (`@agent stop`); a worker ends it as cancelled.
    #[serde(default)]
    pub cancel_requested_by: Option<String>,
    /// errand's reply in the Slack thread (the `ts` it edits as the job moves).
    #[serde(default)]
    pub slack_reply_ts: Option<String>,
    /// The thread errand started in Slack for a slash command.
    #[serde(default)]
    pub slack_thread_ts: Option<String>,
}

impl JobRecord {
    pub fn new(job: Job) -> Self {
        Self {
            updated_at: job.created_at,
            job,
            state: JobState::NEW,
            deliveries: 0,
            tracking_comment_id: None,
            pull_request: None,
            cancel_requested_by: None,
            slack_reply_ts: None,
            slack_thread_ts: None,
        }
    }
}

/// A change to a job's record; fields left `None` stay as they are. The state is not among them:
/// only the queue moves a job from one state to another, as a delivery is claimed and settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobUpdate {
    pub tracking_comment_id: Option<u64>,
    pub pull_request: Option<PullRequestRef>,
    pub cancel_requested_by: Option<String>,
    pub slack_reply_ts: Option<String>,
    pub slack_thread_ts: Option<String>,
}

impl JobUpdate {
    /// Applies the update to a record, stamping `updated_at`.
    pub fn apply(self, record: &mut JobRecord, now: DateTime<Utc>) {
        if let Some(id) = self.tracking_comment_id {
            record.tracking_comment_id = Some(id);
        }
        if let Some(pr) = self.pull_request {
            record.pull_request = Some(pr);
        }
        if let Some(by) = self.cancel_requested_by {
            record.cancel_requested_by = Some(by);
        }
        if let Some(ts) = self.slack_reply_ts {
            record.slack_reply_ts = Some(ts);
        }
        if let Some(ts) = self.slack_thread_ts {
            record.slack_thread_ts = Some(ts);
        }
        record.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ids::{CommentId, IssueNumber};

    #[test]
    fn repo_names_parse_owner_and_name() {
        let repo: RepoName = "acme/web-app.rs".parse().unwrap();
        assert_eq!((repo.owner(), repo.name()), ("acme", "web-app.rs"));
        assert!("acme".parse::<RepoName>().is_err());
        assert!("acme/../x".parse::<RepoName>().is_err());
        assert!("a/b/c".parse::<RepoName>().is_err());
    }

    fn record(state: JobState) -> JobRecord {
        let job = Job {
            id: "0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4".parse().unwrap(),
            repo: "acme/calculator".parse().unwrap(),
            source: Source::GithubIssueComment,
            requested_by: "octocat".into(),
            created_at: "2025-01-02T03:04:05Z".parse().unwrap(),
            installation_id: Some(42),
            task: Task { instruction: "fix it".into(), title: "Bug".into(), body: String::new(), url: String::new() },
            reply: ReplyTarget::GithubIssue { issue: IssueNumber(7), comment_id: Some(CommentId(1)) },
            kind: JobKind::Task,
            follow_up: None,
            attempts: None,
            continues: None,
        };
        JobRecord { state, deliveries: 3, ..JobRecord::new(job) }
    }

    #[test]
    fn every_state_shows_as_one_of_the_stable_statuses() {
        let behind: JobId = "0193a1b2c3d4e5f6a7b8c9d0e1f2a3b0".parse().unwrap();
        let projections = [
            (JobState::NEW, JobStatus::Queued),
            (JobState::Queued { retry_reason: Some("GitHub answered 502".into()) }, JobStatus::Queued),
            (JobState::Waiting { behind }, JobStatus::Queued),
            (JobState::Running, JobStatus::Running),
            (JobState::Succeeded, JobStatus::Succeeded),
            (JobState::Failed { reason: "tests failed".into() }, JobStatus::Failed),
            (JobState::Cancelled { by: "octocat".into() }, JobStatus::Cancelled),
            (JobState::Dead { reason: "gave up".into() }, JobStatus::Failed),
        ];
        for (state, status) in &projections {
            assert_eq!(state.status(), *status, "{state:?}");
            assert_eq!(state.is_terminal(), status.is_terminal(), "{state:?}");
        }
        // The values people's scripts compare against.
        let names: Vec<serde_json::Value> =
            projections.iter().map(|(state, _)| serde_json::to_value(state.status()).unwrap()).collect();
        let stable = ["queued", "queued", "queued", "running", "succeeded", "failed", "cancelled", "failed"];
        assert_eq!(names, stable.map(serde_json::Value::from));
    }

    #[test]
    fn the_api_shows_a_waiting_job_as_queued_with_the_job_it_waits_for() {
        let waiting = record(JobState::Waiting { behind: "0193a1b2c3d4e5f6a7b8c9d0e1f2a3b0".parse().unwrap() });
        let json = serde_json::to_value(&waiting).unwrap();
        assert_eq!(json["status"], "queued");
        assert_eq!(json["state"], "waiting");
        assert_eq!(json["behind"], "0193a1b2c3d4e5f6a7b8c9d0e1f2a3b0");
        assert_eq!(json["dead"], false);
        assert_eq!(json["id"], "0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4");
        assert_eq!(json["deliveries"], 3);
        assert!(json.get("reason").is_none(), "{json}");
        // What the job API's readers (and the tests' world) decode it back into.
        assert_eq!(serde_json::from_value::<JobRecord>(json).unwrap(), waiting);
    }

    #[test]
    fn the_api_shows_a_dead_job_as_failed_and_dead_with_its_reason() {
        let dead = record(JobState::Dead { reason: "GitHub kept failing".into() });
        let json = serde_json::to_value(&dead).unwrap();
        assert_eq!(json["status"], "failed");
        assert_eq!(json["state"], "dead");
        assert_eq!(json["reason"], "GitHub kept failing");
        assert_eq!(json["dead"], true);
        assert!(json.get("behind").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<JobRecord>(json).unwrap(), dead);

        let failed = serde_json::to_value(record(JobState::Failed { reason: "tests failed".into() })).unwrap();
        assert_eq!(
            (&failed["status"], &failed["state"], &failed["dead"]),
            (&"failed".into(), &"failed".into(), &false.into())
        );
    }

    #[test]
    fn the_state_alone_is_stored_without_the_computed_fields() {
        let state = JobState::Cancelled { by: "octocat".into() };
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            serde_json::json!({"state": "cancelled", "cancelled_by": "octocat"})
        );
    }

    #[test]
    fn job_ids_sort_by_creation() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert!(a < b);
        assert_eq!(a.as_str().parse::<JobId>().unwrap(), a);
    }
}
