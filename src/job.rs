//! The queued unit of work and the identifiers it is made of, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::request::Reply;
use crate::request::ids::{CommentId, IssueNumber, MessageTs, ReviewId, SlackChannel, SlackTeam, ThreadKey};

/// A job's id: a time-ordered UUID (v7) in its simple form, kept through reclaims and retries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A new id; ids sort by creation time.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters after the timestamp prefix, unique enough for branch names.
    pub fn short(&self) -> &str {
        let len = self.0.len();
        &self.0[len.saturating_sub(8)..]
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for JobId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId("job id"))
        }
    }
}

/// An identifier that failed to parse; names what kind of identifier it was.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid {0}")]
pub struct InvalidId(pub &'static str);

/// A GitHub repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    pub fn new(owner: &str, name: &str) -> Result<Self, InvalidId> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if valid(owner) && valid(name) {
            Ok(Self { owner: owner.to_owned(), name: name.to_owned() })
        } else {
            Err(InvalidId("repository name"))
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl FromStr for RepoName {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (owner, name) = s.split_once('/').ok_or(InvalidId("repository name"))?;
        Self::new(owner, name)
    }
}

impl Serialize for RepoName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RepoName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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

/// A job's place in its life, as the job API reports it.
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
    pub status: JobStatus,
    /// How many times a worker has claimed the job.
    pub deliveries: u32,
    pub updated_at: DateTime<Utc>,
    /// True once the job has been dead-lettered (its status is then `failed`).
    #[serde(default)]
    pub dead: bool,
    /// Why the job failed, in words for the requester.
    #[serde(default)]
    pub error: Option<String>,
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
            status: JobStatus::Queued,
            deliveries: 0,
            dead: false,
            error: None,
            tracking_comment_id: None,
            pull_request: None,
            cancel_requested_by: None,
            slack_reply_ts: None,
            slack_thread_ts: None,
        }
    }
}

/// A change to a job's record; fields left `None` stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobUpdate {
    pub status: Option<JobStatus>,
    pub error: Option<String>,
    pub tracking_comment_id: Option<u64>,
    pub pull_request: Option<PullRequestRef>,
    pub cancel_requested_by: Option<String>,
    pub slack_reply_ts: Option<String>,
    pub slack_thread_ts: Option<String>,
}

impl JobUpdate {
    /// Applies the update to a record, stamping `updated_at`.
    pub fn apply(self, record: &mut JobRecord, now: DateTime<Utc>) {
        if let Some(status) = self.status {
            record.status = status;
        }
        if let Some(error) = self.error {
            record.error = Some(error);
        }
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

    #[test]
    fn repo_names_parse_owner_and_name() {
        let repo: RepoName = "acme/web-app.rs".parse().unwrap();
        assert_eq!((repo.owner(), repo.name()), ("acme", "web-app.rs"));
        assert!("acme".parse::<RepoName>().is_err());
        assert!("acme/../x".parse::<RepoName>().is_err());
        assert!("a/b/c".parse::<RepoName>().is_err());
    }

    #[test]
    fn job_ids_sort_by_creation() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert!(a < b);
        assert_eq!(a.as_str().parse::<JobId>().unwrap(), a);
    }
}
