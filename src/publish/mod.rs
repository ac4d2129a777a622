//! What errand posts where the request came from: the 👀 reaction and the tracking comment (or
//! the Slack thread reply) at once, progress edited in place, and a guaranteed terminal state
//! (in Slack also ✅ or ❌ on the message that asked). Every post is idempotent, so a job that
//! runs again after a crash edits what it made instead of making it twice.

pub mod render;
pub mod slack;

use std::time::Duration;

use crate::chat::api::{SlackApi, SlackApiError};
use crate::forge::github::Reactable;
use crate::forge::{ForgeError, RepoClient};
use crate::job::{JobRecord, JobUpdate, ReplyTarget};
use crate::queue::Queue;

pub use self::render::{Progress, Renderer, tracking_marker};
use self::slack::{final_reaction, slack_marker};
pub use crate::secrets::Redactor;

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
    /// A GitHub job reached a publisher call without a GitHub client (a bug).
    #[error("no GitHub client for a GitHub reply")]
    NoGithub,
}

/// How long one party may hold a job's acknowledgement lock (and the most another waits for it).
const ACK_LOCK_TTL: Duration = Duration::from_secs(30);
/// How often a waiting party looks whether the acknowledgement was posted.
const ACK_LOCK_POLL: Duration = Duration::from_millis(100);

/// Posts a job's acknowledgement and progress where it was asked: GitHub or Slack.
#[derive(Clone)]
pub struct Publisher {
    pub renderer: Renderer,
    queue: Queue,
    slack: Option<SlackApi>,
}

impl Publisher {
    pub fn new(renderer: Renderer, queue: Queue) -> Self {
        Self { renderer, queue, slack: None }
    }

    /// Also answers jobs that came from Slack, through `slack`.
    pub fn with_slack(self, slack: Option<SlackApi>) -> Self {
        Self { slack, ..self }
    }

    /// The Slack client, when this process has a bot token.
    pub fn slack(&self) -> Option<&SlackApi> {
        self.slack.as_ref()
    }

    /// Reacts 👀 to the request and makes sure the tracking comment (or Slack reply) exists,
    /// finding one an earlier try made. The ingress's acknowledger and the worker may both get
    /// here at once: a lock per job lets one of them post while the other waits for its result.
    /// `gh` is needed for GitHub jobs only.
    pub async fn acknowledge(&self, gh: Option<&RepoClient>, record: &JobRecord) -> Result<(), PublishError> {
        if record.job.reply.is_slack() {
            return self.acknowledge_in_slack(record).await.map(drop);
        }
        let gh = gh.ok_or(PublishError::NoGithub)?;
        Ok(self.acknowledge_on_github(gh, record).await.map(drop)?)
    }

    async fn acknowledge_on_github(&self, gh: &RepoClient, record: &JobRecord) -> Result<u64, ForgeError> {
        let known =
            |current: Option<&JobRecord>| current.and_then(|r| r.tracking_comment_id).or(record.tracking_comment_id);
        self.once(record, known, || self.post_acknowledgement(gh, record)).await
    }

    /// Runs `post` under the job's acknowledgement lock unless `done` finds what it posts already
    /// recorded; the party that waited returns what the other posted.
    async fn once<T, E, F>(
        &self,
        record: &JobRecord,
        done: impl Fn(Option<&JobRecord>) -> Option<T>,
        post: impl FnOnce() -> F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let id = &record.job.id;
        let lock = format!("ack:{id}");
        let deadline = tokio::time::Instant::now() + ACK_LOCK_TTL;
        loop {
            let current = self.queue.get(id).await.ok().flatten();
            if let Some(found) = done(current.as_ref()) {
                return Ok(found);
            }
            let locked = self.queue.try_lock(&lock, ACK_LOCK_TTL).await.unwrap_or(true);
            if locked || tokio::time::Instant::now() >= deadline {
                let posted = post().await;
                if locked {
                    let _ = self.queue.unlock(&lock).await;
                }
                return posted;
            }
            tokio::time::sleep(ACK_LOCK_POLL).await;
        }
    }

    async fn post_acknowledgement(&self, gh: &RepoClient, record: &JobRecord) -> Result<u64, ForgeError> {
        let position = self.queue.position(&record.job.id).await.ok().flatten();
        let body = self.renderer.tracking_comment(&record.job, &Progress::Queued { position });
        let id = self.post_once(gh, record, &body).await?;
        let update = JobUpdate { tracking_comment_id: Some(id), ..JobUpdate::default() };
        if let Err(e) = self.queue.update(&record.job.id, update).await {
            // The marker finds the comment again next time; nothing is lost.
            tracing::warn!(job = %record.job.id, error = %e, "could not record the tracking comment");
        }
        Ok(id)
    }

    /// Reacts 👀 to what asked and posts `body` (which carries the job's marker) where the job
    /// answers: the issue's conversation, or the review thread that asked.
    async fn post_once(&self, gh: &RepoClient, record: &JobRecord, body: &str) -> Result<u64, ForgeError> {
        let marker = tracking_marker(&record.job.id);
        match record.job.reply {
            ReplyTarget::GithubIssue { issue, comment_id } => {
                let asked = comment_id.map_or(Reactable::Issue(issue), Reactable::IssueComment);
                gh.react(asked, "eyes").await?;
                gh.create_comment_once(issue, body, &marker).await
            }
            ReplyTarget::GithubReview { pull, comment_id: Some(comment), thread_id, .. } => {
                gh.react(Reactable::ReviewComment(comment), "eyes").await?;
                gh.reply_in_thread_once(pull, thread_id.unwrap_or(comment), body, &marker).await
            }
            ReplyTarget::GithubReview { pull, comment_id: None, .. } => {
                // The review's own text asked: a review has no reactions; answer in the conversation.
                gh.create_comment_once(pull, body, &marker).await
            }
            ReplyTarget::Slack { .. } => Err(ForgeError::Fatal(anyhow::anyhow!("a Slack job has no GitHub comment"))),
        }
    }

    /// Answers in the thread without running anything (help, status, a malformed command); once,
    /// even if the job runs again or the acknowledger and a worker both get to it.
    pub async fn reply(&self, gh: Option<&RepoClient>, record: &JobRecord, text: &str) -> Result<(), PublishError> {
        if record.job.reply.is_slack() {
            let body = self.renderer.slack_reply(&record.job, text);
            let known = |current: Option<&JobRecord>| current.and_then(|r| r.slack_reply_ts.clone());
            return self.once(record, known, || self.slack_reply_once(record, &body)).await.map(drop);
        }
        let gh = gh.ok_or(PublishError::NoGithub)?;
        let known = |current: Option<&JobRecord>| current.and_then(|r| r.tracking_comment_id);
        let body = format!(
            "@{} {}\n{}",
            record.job.requested_by,
            self.renderer.redactor.redact(text),
            tracking_marker(&record.job.id)
        );
        let post = || async {
            let id = self.post_once(gh, record, &body).await?;
            let update = JobUpdate { tracking_comment_id: Some(id), ..JobUpdate::default() };
            if let Err(e) = self.queue.update(&record.job.id, update).await {
                tracing::warn!(job = %record.job.id, error = %e, "could not record the reply");
            }
            Ok::<_, ForgeError>(id)
        };
        Ok(self.once(record, known, post).await.map(drop)?)
    }

    /// Edits the tracking comment (or Slack reply) to show `progress`, creating it first if
    /// needed. `gh` is needed for GitHub jobs only.
    pub async fn show(
        &self,
        gh: Option<&RepoClient>,
        record: &JobRecord,
        progress: &Progress,
    ) -> Result<(), PublishError> {
        if record.job.reply.is_slack() {
            return self.show_in_slack(record, progress).await;
        }
        let gh = gh.ok_or(PublishError::NoGithub)?;
        let id = self.acknowledge_on_github(gh, record).await?;
        let body = self.renderer.tracking_comment(&record.job, progress);
        match record.job.reply {
            ReplyTarget::GithubReview { comment_id: Some(_), .. } => gh.update_review_comment(id, &body).await?,
            _ => gh.update_comment(id, &body).await?,
        }
        Ok(())
    }

    /// Posts `text` once in each of the other review threads a job addressed (the tracking reply
    /// lives in the first).
    pub async fn answer_threads(
        &self,
        gh: &RepoClient,
        record: &JobRecord,
        threads: &[u64],
        text: &str,
    ) -> Result<(), ForgeError> {
        let ReplyTarget::GithubReview { pull, .. } = record.job.reply else { return Ok(()) };
        let marker = tracking_marker(&record.job.id);
        let body = format!("{}\n{marker}", self.renderer.redactor.redact(text));
        for &thread in threads {
            gh.reply_in_thread_once(pull, thread, &body, &marker).await?;
        }
        Ok(())
    }

    /// The Slack thread a job answers in: where it was asked, or, for a slash command, the thread
    /// errand starts with a message of its own (once: its `ts` is recorded).
    async fn slack_thread(&self, api: &SlackApi, record: &JobRecord) -> Result<(String, String), PublishError> {
        let ReplyTarget::Slack { channel, thread_ts, .. } = &record.job.reply else {
            return Err(PublishError::NoSlack);
        };
        if let Some(thread_ts) = thread_ts {
            return Ok((channel.clone(), thread_ts.clone()));
        }
        let current = self.queue.get(&record.job.id).await.ok().flatten();
        if let Some(started) =
            current.as_ref().and_then(|r| r.slack_thread_ts.clone()).or(record.slack_thread_ts.clone())
        {
            return Ok((channel.clone(), started));
        }
        let started = api.post_in_channel(channel, &self.renderer.slack_thread_start(&record.job)).await?;
        let update = JobUpdate { slack_thread_ts: Some(started.as_str().to_owned()), ..JobUpdate::default() };
        if let Err(e) = self.queue.update(&record.job.id, update).await {
            tracing::warn!(job = %record.job.id, error = %e, "could not record the Slack thread errand started");
        }
        Ok((channel.clone(), started.into_string()))
    }

    /// The message errand reacts on: the one that asked, or the one that starts its own thread.
    fn asking_message(record: &JobRecord, thread_ts: &str) -> Option<(String, String)> {
        match &record.job.reply {
            ReplyTarget::Slack { channel, ts, .. } => {
                Some((channel.clone(), ts.clone().unwrap_or_else(|| thread_ts.to_owned())))
            }
            _ => None,
        }
    }

    /// 👀 on the message that asked and errand's reply in the thread, once; returns the reply's `ts`.
    async fn acknowledge_in_slack(&self, record: &JobRecord) -> Result<String, PublishError> {
        let known = |current: Option<&JobRecord>| {
            current.and_then(|r| r.slack_reply_ts.clone()).or_else(|| record.slack_reply_ts.clone())
        };
        let post = || async {
            let position = self.queue.position(&record.job.id).await.ok().flatten();
            let body = self.renderer.slack_message(&record.job, &Progress::Queued { position });
            self.slack_reply_once(record, &body).await
        };
        self.once(record, known, post).await
    }

    /// Posts `body` as errand's reply in the job's thread (or edits the one an earlier try posted),
    /// reacting 👀 on the message that asked; records and returns the reply's `ts`.
    async fn slack_reply_once(&self, record: &JobRecord, body: &str) -> Result<String, PublishError> {
        let api = self.slack.as_ref().ok_or(PublishError::NoSlack)?;
        let (channel, thread_ts) = self.slack_thread(api, record).await?;
        if let Some((channel, ts)) = Self::asking_message(record, &thread_ts) {
            api.react(&channel, &ts, "eyes").await?;
        }
        let ts = api.post_in_thread_once(&channel, &thread_ts, body, &slack_marker(&record.job.id)).await?;
        let update = JobUpdate { slack_reply_ts: Some(ts.as_str().to_owned()), ..JobUpdate::default() };
        if let Err(e) = self.queue.update(&record.job.id, update).await {
            // The marker finds the reply again next time; nothing is lost.
            tracing::warn!(job = %record.job.id, error = %e, "could not record the Slack reply");
        }
        Ok(ts.into_string())
    }

    /// Edits errand's reply in the thread; a final state also reacts ✅ or ❌ on what asked.
    async fn show_in_slack(&self, record: &JobRecord, progress: &Progress) -> Result<(), PublishError> {
        let api = self.slack.as_ref().ok_or(PublishError::NoSlack)?;
        let ts = self.acknowledge_in_slack(record).await?;
        let (channel, thread_ts) = self.slack_thread(api, record).await?;
        api.update(&channel, &ts, &self.renderer.slack_message(&record.job, progress)).await?;
        if let (Some(reaction), Some((channel, asked))) =
            (final_reaction(progress), Self::asking_message(record, &thread_ts))
        {
            api.react(&channel, &asked, reaction).await?;
        }
        Ok(())
    }
}
