//! The Slack side of a conversation: 👀 on the message that asked, one reply in its thread edited
//! in place as the job moves (for a slash command, in a thread errand starts with a message of
//! its own), and ✅, ❌ or 🛑 on the asking message when the job ends.

use super::PublishError;
use super::once::once;
use super::render::Renderer;
use super::render::slack::slack_marker;
use crate::chat::api::SlackApi;
use crate::chat::thread::thread_context;
use crate::job::{JobRecord, JobUpdate};
use crate::queue::Queue;
use crate::request::ids::{MessageTs, SlackChannel};

/// A job's Slack thread.
pub(super) struct SlackThread {
    api: SlackApi,
    channel: SlackChannel,
    /// The message that asked; `None` for a slash command.
    asked: Option<MessageTs>,
    /// The thread; `None` until errand starts one for a slash command.
    thread_ts: Option<MessageTs>,
}

impl SlackThread {
    pub(super) fn new(
        api: SlackApi,
        channel: SlackChannel,
        asked: Option<MessageTs>,
        thread_ts: Option<MessageTs>,
    ) -> Self {
        Self { api, channel, asked, thread_ts }
    }

    /// 👀 on the message that asked and errand's reply in the thread, once; returns the reply's `ts`.
    pub(super) async fn acknowledge(
        &self,
        queue: &Queue,
        renderer: &Renderer,
        record: &JobRecord,
        body: impl FnOnce(Option<usize>) -> String,
    ) -> Result<String, PublishError> {
        let known = |current: Option<&JobRecord>| {
            current.and_then(|r| r.slack_reply_ts.clone()).or_else(|| record.slack_reply_ts.clone())
        };
        once(queue, record, known, || async {
            let position = queue.position(&record.job.id).await.ok().flatten();
            self.reply_once(queue, renderer, record, &body(position)).await
        })
        .await
    }

    /// Edits errand's reply to `body`; a final state (`reaction`) also goes on what asked.
    pub(super) async fn show(
        &self,
        queue: &Queue,
        renderer: &Renderer,
        record: &JobRecord,
        ts: &str,
        body: &str,
        reaction: Option<&str>,
    ) -> Result<(), PublishError> {
        let thread_ts = self.thread(queue, renderer, record).await?;
        self.api.update(self.channel.as_str(), ts, body).await?;
        if let Some(reaction) = reaction {
            self.api.react(self.channel.as_str(), self.asking_message(&thread_ts).as_str(), reaction).await?;
        }
        Ok(())
    }

    /// Posts a reply that is the whole answer, once.
    pub(super) async fn reply(
        &self,
        queue: &Queue,
        renderer: &Renderer,
        record: &JobRecord,
        body: &str,
    ) -> Result<(), PublishError> {
        let known = |current: Option<&JobRecord>| current.and_then(|r| r.slack_reply_ts.clone());
        once(queue, record, known, || self.reply_once(queue, renderer, record, body)).await.map(drop)
    }

    /// The thread's earlier messages (who said what), as context for the agent.
    pub(super) async fn context(&self) -> Result<String, PublishError> {
        let (Some(thread_ts), Some(asked)) = (&self.thread_ts, &self.asked) else { return Ok(String::new()) };
        let messages = self.api.thread(self.channel.as_str(), thread_ts.as_str()).await?;
        let me = self.api.identity().await.ok();
        Ok(thread_context(&messages, Some(asked.as_str()), me))
    }

    /// Posts `body` as errand's reply in the job's thread (or edits the one an earlier try posted),
    /// reacting 👀 on the message that asked; records and returns the reply's `ts`.
    async fn reply_once(
        &self,
        queue: &Queue,
        renderer: &Renderer,
        record: &JobRecord,
        body: &str,
    ) -> Result<String, PublishError> {
        let thread_ts = self.thread(queue, renderer, record).await?;
        self.api.react(self.channel.as_str(), self.asking_message(&thread_ts).as_str(), "eyes").await?;
        let marker = slack_marker(&record.job.id);
        let ts = self.api.post_in_thread_once(self.channel.as_str(), thread_ts.as_str(), body, &marker).await?;
        let update = JobUpdate { slack_reply_ts: Some(ts.as_str().to_owned()), ..JobUpdate::default() };
        if let Err(e) = queue.update(&record.job.id, update).await {
            // The marker finds the reply again next time; nothing is lost.
            tracing::warn!(job = %record.job.id, error = %e, "could not record the Slack reply");
        }
        Ok(ts.into_string())
    }

    /// The thread a job answers in: where it was asked, or, for a slash command, the thread errand
    /// starts with a message of its own (once: its `ts` is recorded).
    async fn thread(&self, queue: &Queue, renderer: &Renderer, record: &JobRecord) -> Result<MessageTs, PublishError> {
        if let Some(thread_ts) = &self.thread_ts {
            return Ok(thread_ts.clone());
        }
        let current = queue.get(&record.job.id).await.ok().flatten();
        if let Some(started) = current.and_then(|r| r.slack_thread_ts).or(record.slack_thread_ts.clone()) {
            return Ok(MessageTs::new(started));
        }
        let started =
            self.api.post_in_channel(self.channel.as_str(), &renderer.slack_thread_start(&record.job)).await?;
        let update = JobUpdate { slack_thread_ts: Some(started.as_str().to_owned()), ..JobUpdate::default() };
        if let Err(e) = queue.update(&record.job.id, update).await {
            tracing::warn!(job = %record.job.id, error = %e, "could not record the Slack thread errand started");
        }
        Ok(MessageTs::new(started.into_string()))
    }

    /// The message errand reacts on: the one that asked, or the one that starts its own thread.
    fn asking_message(&self, thread_ts: &MessageTs) -> MessageTs {
        self.asked.clone().unwrap_or_else(|| thread_ts.clone())
    }
}
