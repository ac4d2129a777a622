//! What errand posts where the request came from: the 👀 reaction and the tracking comment at
//! once, progress edited in place, and a guaranteed terminal state. Every post is idempotent, so a
//! job that runs again after a crash edits what it made instead of making it twice.

pub mod redact;
pub mod render;

use std::time::Duration;

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
        let id = &record.job.id;
        let lock = format!("ack:{id}");
        let deadline = tokio::time::Instant::now() + ACK_LOCK_TTL;
        loop {
            let current = self.queue.get(id).await.ok().flatten();
            if let Some(comment) = current.as_ref().and_then(|r| r.tracking_comment_id).or(record.tracking_comment_id) {
                return Ok(comment);
            }
            let locked = self.queue.try_lock(&lock, ACK_LOCK_TTL).await.unwrap_or(true);
            if locked || tokio::time::Instant::now() >= deadline {
                let posted = self.post_acknowledgement(gh, record).await;
                if locked {
                    let _ = self.queue.unlock(&lock).await;
                }
                return posted;
            }
            tokio::time::sleep(ACK_LOCK_POLL).await;
        }
    }

    async fn post_acknowledgement(&self, gh: &RepoClient, record: &JobRecord) -> Result<u64, ForgeError> {
        let ReplyTarget::GithubIssue { issue, comment_id } = record.job.reply;
        gh.react_eyes(comment_id).await?;
        let position = self.queue.position(&record.job.id).await.ok().flatten();
        let body = self.renderer.tracking_comment(&record.job, &Progress::Queued { position });
        let id = gh.create_comment_once(issue, &body, &tracking_marker(&record.job.id)).await?;
        let update = JobUpdate { tracking_comment_id: Some(id), ..JobUpdate::default() };
        if let Err(e) = self.queue.update(&record.job.id, update).await {
            // The marker finds the comment again next time; nothing is lost.
            tracing::warn!(job = %record.job.id, error = %e, "could not record the tracking comment");
        }
        Ok(id)
    }

    /// Answers in the thread without running anything (help, a malformed command); once, even if
    /// the job runs again.
    pub async fn reply(&self, gh: &RepoClient, record: &JobRecord, text: &str) -> Result<(), ForgeError> {
        let ReplyTarget::GithubIssue { issue, comment_id } = record.job.reply;
        gh.react_eyes(comment_id).await?;
        let marker = tracking_marker(&record.job.id);
        let body = format!("@{} {}\n{marker}", record.job.requested_by, self.renderer.redactor.redact(text));
        gh.create_comment_once(issue, &body, &marker).await.map(drop)
    }

    /// Edits the tracking comment to show `progress`, creating it first if needed.
    pub async fn show(&self, gh: &RepoClient, record: &JobRecord, progress: &Progress) -> Result<(), ForgeError> {
        let id = self.acknowledge(gh, record).await?;
        gh.update_comment(id, &self.renderer.tracking_comment(&record.job, progress)).await
    }
}
