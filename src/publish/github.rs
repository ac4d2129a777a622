//! The GitHub side of a conversation: the 👀 reaction on what asked, the tracking comment (in the
//! issue's or pull request's conversation, or as a reply in the review thread that asked), edited
//! in place, and the short answers in the other threads a review's job addressed.

use super::once::once;
use super::render::{Progress, Pushed, Renderer, tracking_marker};
use crate::forge::github::Reactable;
use crate::forge::{ForgeError, RepoClient};
use crate::job::{JobRecord, JobUpdate};
use crate::queue::Queue;
use crate::request::ids::{CommentId, IssueNumber};

/// Where on GitHub a job answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// An issue's or pull request's conversation; `asked` is the comment that asked (none when
    /// the issue itself did: it was assigned or labelled).
    Conversation { number: IssueNumber, asked: Option<CommentId> },
    /// The review thread of the comment that asked.
    ReviewThread { pull: IssueNumber, asked: CommentId, thread: CommentId },
}

/// A job's GitHub thread.
pub(super) struct GithubThread {
    gh: RepoClient,
    place: Place,
}

impl GithubThread {
    /// An issue's or pull request's conversation; `asked` is the comment that asked.
    pub(super) fn in_conversation(gh: RepoClient, number: IssueNumber, asked: Option<CommentId>) -> Self {
        Self { gh, place: Place::Conversation { number, asked } }
    }

    /// The review thread of the comment that asked (`thread` is the thread's first comment).
    pub(super) fn in_review_thread(gh: RepoClient, pull: IssueNumber, asked: CommentId, thread: CommentId) -> Self {
        Self { gh, place: Place::ReviewThread { pull, asked, thread } }
    }

    /// 👀 and the tracking comment, once; returns the comment's id.
    pub(super) async fn acknowledge(
        &self,
        queue: &Queue,
        renderer: &Renderer,
        record: &JobRecord,
    ) -> Result<u64, ForgeError> {
        let known =
            |current: Option<&JobRecord>| current.and_then(|r| r.tracking_comment_id).or(record.tracking_comment_id);
        once(queue, record, known, || async {
            let position = queue.position(&record.job.id).await.ok().flatten();
            let body = renderer.tracking_comment(&record.job, &Progress::Queued { position });
            self.post_once(queue, record, &body).await
        })
        .await
    }

    /// Edits the tracking comment to `body`, making it first if needed.
    pub(super) async fn show(
        &self,
        queue: &Queue,
        renderer: &Renderer,
        record: &JobRecord,
        body: &str,
    ) -> Result<(), ForgeError> {
        let id = self.acknowledge(queue, renderer, record).await?;
        match self.place {
            Place::ReviewThread { .. } => self.gh.update_review_comment(id, body).await,
            Place::Conversation { .. } => self.gh.update_comment(id, body).await,
        }
    }

    /// Posts a reply that is the whole answer, once (its id is the tracking comment's).
    pub(super) async fn reply(&self, queue: &Queue, record: &JobRecord, body: &str) -> Result<(), ForgeError> {
        let known = |current: Option<&JobRecord>| current.and_then(|r| r.tracking_comment_id);
        once(queue, record, known, || self.post_once(queue, record, body)).await.map(drop)
    }

    /// The short answer in each other review thread a job addressed (the tracking reply lives in
    /// the first).
    pub(super) async fn answer_threads(
        &self,
        renderer: &Renderer,
        record: &JobRecord,
        threads: &[CommentId],
        pushed: &Pushed,
    ) -> Result<(), ForgeError> {
        let pull = match self.place {
            Place::ReviewThread { pull, .. } | Place::Conversation { number: pull, .. } => pull,
        };
        let marker = tracking_marker(&record.job.id);
        let body = format!("{}\n{marker}", renderer.thread_answer(pushed));
        for thread in threads {
            self.gh.reply_in_thread_once(pull.get(), thread.get(), &body, &marker).await?;
        }
        Ok(())
    }

    /// Reacts 👀 to what asked and posts `body` (which carries the job's marker) where the job
    /// answers; records the comment's id.
    async fn post_once(&self, queue: &Queue, record: &JobRecord, body: &str) -> Result<u64, ForgeError> {
        let marker = tracking_marker(&record.job.id);
        let id = match self.place {
            Place::Conversation { number, asked } => {
                let what = asked.map_or(Reactable::Issue(number.get()), |c| Reactable::IssueComment(c.get()));
                self.gh.react(what, "eyes").await?;
                self.gh.create_comment_once(number.get(), body, &marker).await?
            }
            Place::ReviewThread { pull, asked, thread } => {
                self.gh.react(Reactable::ReviewComment(asked.get()), "eyes").await?;
                self.gh.reply_in_thread_once(pull.get(), thread.get(), body, &marker).await?
            }
        };
        let update = JobUpdate { tracking_comment_id: Some(id), ..JobUpdate::default() };
        if let Err(e) = queue.update(&record.job.id, update).await {
            // The marker finds the comment again next time; nothing is lost.
            tracing::warn!(job = %record.job.id, error = %e, "could not record the tracking comment");
        }
        Ok(id)
    }
}
