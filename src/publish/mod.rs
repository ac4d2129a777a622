//! What errand posts where the request came from: the 👀 reaction and the tracking comment at
//! once, progress edited in place, and a guaranteed terminal state. Every post is idempotent, so a
//! job that runs again after a crash edits what it made instead of making it twice.

pub mod redact;
pub mod render;

use std::time::Duration;

use crate::forge::github::Reactable;
use crate::forge::{ForgeError, RepoClient};
use crate::job::{JobRecord, JobUpdate, ReplyTarget};
use crate::queue::Queue;

pub use self::redact::Redactor;
pub use self::render::{Progress, Renderer, tracking_marker};

/// How long one party may hold a job's acknowledgement lock (and the most another waits for it).
const ACK_LOCK_TTL: Duration = Duration::from_secs(30);
/// How often a waiting party looks whether the acknowledgement was posted.
const ACK_LOCK_POLL: Duration = Duration::from_millis(100);

/// Posts a job's acknowledgement and progress on GitHub.
#[derive(Clone)]
pub struct Publisher {
    pub renderer: Renderer,
    queue: Queue,
}

impl Publisher {
    pub fn new(renderer: Renderer, queue: Queue) -> Self {
        Self { renderer, queue }
    }

    /// Reacts 👀 to the request and makes sure the tracking comment exists (finding one an
    /// earlier try made); returns its id. The ingress's acknowledger and the worker may both get
    /// here at once: a lock per job lets one of them post while the other waits for its result.
    pub async fn acknowledge(&self, gh: &RepoClient, record: &JobRecord) -> Result<u64, ForgeError> {
        let known =
            |current: Option<&JobRecord>| current.and_then(|r| r.tracking_comment_id).or(record.tracking_comment_id);
        self.once(record, known, || self.post_acknowledgement(gh, record)).await
    }

    /// Runs `post` under the job's acknowledgement lock unless `done` finds what it posts already
    /// recorded; the party that waited returns what the other posted.
    async fn once<F>(
        &self,
        record: &JobRecord,
        done: impl Fn(Option<&JobRecord>) -> Option<u64>,
        post: impl FnOnce() -> F,
    ) -> Result<u64, ForgeError>
    where
        F: Future<Output = Result<u64, ForgeError>>,
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
        }
    }

    /// Answers in the thread without running anything (help, status, a malformed command); once,
    /// even if the job runs again or the acknowledger and a worker both get to it.
    pub async fn reply(&self, gh: &RepoClient, record: &JobRecord, text: &str) -> Result<(), ForgeError> {
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
            Ok(id)
        };
        self.once(record, known, post).await.map(drop)
    }

    /// Edits the tracking comment to show `progress`, creating it first if needed.
    pub async fn show(&self, gh: &RepoClient, record: &JobRecord, progress: &Progress) -> Result<(), ForgeError> {
        let id = self.acknowledge(gh, record).await?;
        let body = self.renderer.tracking_comment(&record.job, progress);
        match record.job.reply {
            ReplyTarget::GithubReview { comment_id: Some(_), .. } => gh.update_review_comment(id, &body).await,
            _ => gh.update_comment(id, &body).await,
        }
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
}
