//! Publishing: everything errand says and delivers where a request came from.
//!
//! A job's [`Conversation`] is resolved once, from where it was asked: its GitHub thread (an
//! issue's or pull request's conversation, or a review thread) or its Slack thread. Through it
//! errand acknowledges at once (👀 and a tracking comment, or a reply in the thread), shows
//! progress by editing that one message, answers replies, and ends in a terminal state; nothing
//! outside the conversation asks which platform it is on. [`delivery`] puts a change where it
//! goes (attempt branches, the pull request's branch or a new one, the pull request itself).
//! [`render`] says it all in words: GitHub Markdown and Slack mrkdwn side by side.
//!
//! Every post is idempotent, so a job that runs again after a crash edits what it made instead
//! of making it twice.

pub mod delivery;
mod github;
mod once;
pub mod render;
mod slack;

use crate::chat::api::{SlackApi, SlackApiError};
use crate::forge::{ForgeError, Github};
use crate::job::{Job, JobRecord, JobUpdate, PullRequestRef, ReplyTarget};
use crate::queue::Queue;
use crate::request::Reply;
use crate::request::ids::CommentId;

use self::github::GithubThread;
use self::render::slack::final_reaction;
pub use self::render::{Progress, Pushed, Renderer, tracking_marker};
use self::slack::SlackThread;

/// Why something could not be posted.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Github(#[from] ForgeError),
    #[error("Slack: {0}")]
    Slack(#[from] SlackApiError),
    /// A Slack job reached a process without a Slack bot token.
    #[error("the job came from Slack, and this errand process has no ERRAND_SLACK_BOT_TOKEN")]
    NoSlack,
}

/// What every conversation of a process shares: the renderer, the queue (records and locks) and
/// the clients.
#[derive(Clone)]
pub struct Publisher {
    pub renderer: Renderer,
    queue: Queue,
    github: Github,
    slack: Option<SlackApi>,
}

impl Publisher {
    pub fn new(renderer: Renderer, queue: Queue, github: Github) -> Self {
        Self { renderer, queue, github, slack: None }
    }

    /// Also answers jobs that came from Slack, through `slack`.
    pub fn with_slack(self, slack: Option<SlackApi>) -> Self {
        Self { slack, ..self }
    }

    /// The conversation `job` answers in: the one place that looks at where it was asked.
    pub async fn conversation(&self, job: &Job) -> Result<Conversation<'_>, PublishError> {
        let gh = || self.github.for_repo(&job.repo, job.installation_id);
        let thread = match &job.reply {
            ReplyTarget::GithubIssue { issue, comment_id } => {
                Thread::Github(GithubThread::in_conversation(gh().await?, *issue, *comment_id))
            }
            ReplyTarget::GithubReview { pull, comment_id: Some(asked), thread_id, .. } => {
                let thread = thread_id.unwrap_or(*asked);
                Thread::Github(GithubThread::in_review_thread(gh().await?, *pull, *asked, thread))
            }
            // The review's own text asked: a review has no reactions; answer in the conversation.
            ReplyTarget::GithubReview { pull, comment_id: None, .. } => {
                Thread::Github(GithubThread::in_conversation(gh().await?, *pull, None))
            }
            ReplyTarget::Slack { channel, ts, thread_ts, .. } => {
                let api = self.slack.clone().ok_or(PublishError::NoSlack)?;
                Thread::Slack(SlackThread::new(api, channel.clone(), ts.clone(), thread_ts.clone()))
            }
        };
        Ok(Conversation { publisher: self, thread })
    }
}

/// Where one job answers, resolved once (see [`Publisher::conversation`]).
pub struct Conversation<'p> {
    publisher: &'p Publisher,
    thread: Thread,
}

enum Thread {
    Github(GithubThread),
    Slack(SlackThread),
}

impl Conversation<'_> {
    /// The words of this installation.
    pub fn renderer(&self) -> &Renderer {
        &self.publisher.renderer
    }

    /// Records the job's pull request in its record (the job API and `status` show it).
    pub async fn record_pull(&self, record: &JobRecord, pull: &PullRequestRef) {
        let update = JobUpdate { pull_request: Some(pull.clone()), ..JobUpdate::default() };
        if let Err(e) = self.publisher.queue.update(&record.job.id, update).await {
            tracing::warn!(job = %record.job.id, error = format!("{e:#}"), "could not record the pull request");
        }
    }

    /// Reacts 👀 to the request and makes sure the tracking comment (or Slack reply) exists,
    /// finding one an earlier try made.
    pub async fn acknowledge(&self, record: &JobRecord) -> Result<(), PublishError> {
        let Publisher { renderer, queue, .. } = self.publisher;
        match &self.thread {
            Thread::Github(thread) => thread.acknowledge(queue, renderer, record).await.map(drop)?,
            Thread::Slack(thread) => {
                let body = |position| renderer.slack_message(&record.job, &Progress::Queued { position });
                thread.acknowledge(queue, renderer, record, body).await.map(drop)?
            }
        }
        Ok(())
    }

    /// Edits the tracking comment (or Slack reply) to show `progress`, making it first if needed;
    /// in Slack a final state also reacts ✅, ❌ or 🛑 on what asked.
    pub async fn show(&self, record: &JobRecord, progress: &Progress) -> Result<(), PublishError> {
        let Publisher { renderer, queue, .. } = self.publisher;
        match &self.thread {
            Thread::Github(thread) => {
                thread.show(queue, renderer, record, &renderer.tracking_comment(&record.job, progress)).await?
            }
            Thread::Slack(thread) => {
                let queued = |position| renderer.slack_message(&record.job, &Progress::Queued { position });
                let ts = thread.acknowledge(queue, renderer, record, queued).await?;
                let body = renderer.slack_message(&record.job, progress);
                thread.show(queue, renderer, record, &ts, &body, final_reaction(progress)).await?
            }
        }
        Ok(())
    }

    /// Answers in the thread without running anything (help, status, a malformed command); once,
    /// even if the job runs again or the acknowledger and a worker both get to it.
    pub async fn reply(&self, record: &JobRecord, reply: &Reply, mention: &str) -> Result<(), PublishError> {
        let Publisher { renderer, queue, .. } = self.publisher;
        let text = renderer.reply_text(&record.job, reply, mention);
        match &self.thread {
            Thread::Github(thread) => thread.reply(queue, record, &renderer.github_reply(&record.job, &text)).await?,
            Thread::Slack(thread) => {
                thread.reply(queue, renderer, record, &renderer.slack_reply(&record.job, &text)).await?
            }
        }
        Ok(())
    }

    /// The short answer in each other review thread a job addressed; Slack has one thread.
    pub async fn answer_other_threads(
        &self,
        record: &JobRecord,
        threads: &[CommentId],
        pushed: &Pushed,
    ) -> Result<(), PublishError> {
        match &self.thread {
            Thread::Github(thread) => {
                thread.answer_threads(&self.publisher.renderer, record, threads, pushed).await?;
            }
            Thread::Slack(_) => {}
        }
        Ok(())
    }

    /// The requester's permission on the repository: on GitHub, what GitHub says (never the
    /// webhook's `author_association`); in Slack, the allowlist the ingress checked is who may
    /// ask, so a Slack requester counts as a writer.
    pub async fn permission(&self, gh: &crate::forge::RepoClient, requester: &str) -> Result<String, PublishError> {
        match &self.thread {
            Thread::Github(_) => Ok(gh.permission(requester).await?),
            Thread::Slack(_) => Ok("write".to_owned()),
        }
    }

    /// What the conversation said before the request, as context for the agent: a Slack thread's
    /// earlier messages (a review's comments come with the follow-up instead).
    pub async fn context(&self) -> Result<String, PublishError> {
        match &self.thread {
            Thread::Github(_) => Ok(String::new()),
            Thread::Slack(thread) => thread.context().await,
        }
    }
}
