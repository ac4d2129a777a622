//! The conversation commands that act on the queue rather than run an agent: `stop`, `status`
//! and `retry`. Each reads or marks the jobs of the issue or pull request it was asked on and
//! yields the job to enqueue: a reply saying what happened, or (for `retry`) the task again.
//! Only queue calls happen here, so the webhook still answers within GitHub's deadline.

use std::fmt::Write as _;

use super::github::Trigger;
use crate::command::TaskOptions;
use crate::job::{Job, JobRecord, JobState, JobUpdate};
use crate::queue::Queue;

/// `@agent stop`: asks every open task of the thread to stop. Queued ones end as cancelled when
/// a worker reaches them; a running one is killed within seconds, and its tracking comment ends
/// as cancelled.
pub async fn stop(queue: &Queue, trigger: &Trigger) -> anyhow::Result<Job> {
    let open = queue.open_in_thread(&trigger.thread()).await?;
    if open.is_empty() {
        return Ok(trigger
            .reply_job(format!("there is nothing to stop: no job is queued or running on this {}.", noun(trigger))));
    }
    let mut text = String::from("stopping:\n");
    for record in &open {
        let update = JobUpdate { cancel_requested_by: Some(trigger.requested_by.clone()), ..JobUpdate::default() };
        queue.update(&record.job.id, update).await?;
        let _ = writeln!(text, "- job `{}` ({})", record.job.id, describe(record, None));
    }
    text.push_str("\nEach job's own comment says when it has stopped.");
    Ok(trigger.reply_job(text))
}

/// `@agent status`: the thread's open jobs with their state and queue position, or how the last
/// one ended.
pub async fn status(queue: &Queue, trigger: &Trigger) -> anyhow::Result<Job> {
    let open = queue.open_in_thread(&trigger.thread()).await?;
    if open.is_empty() {
        let text = match queue.last_in_thread(&trigger.thread()).await? {
            Some(last) => {
                format!("no job is running here. The last one, `{}`, {}.", last.job.id, describe(&last, None))
            }
            None => format!(
                "errand has no jobs on this {} yet. Ask with `{} <what to do>`.",
                noun(trigger),
                trigger.mention
            ),
        };
        return Ok(trigger.reply_job(text));
    }
    let mut text = String::from("jobs on this thread, oldest first:\n");
    for record in &open {
        let position = queue.position(&record.job.id).await?;
        let _ = writeln!(
            text,
            "- job `{}`, asked by @{}: {}",
            record.job.id,
            record.job.requested_by,
            describe(record, position)
        );
    }
    Ok(trigger.reply_job(text))
}

/// `@agent retry`: runs the thread's last task again as a new job (in the same place, with the
/// same instruction), unless it has not ended yet.
pub async fn retry(queue: &Queue, trigger: &Trigger) -> anyhow::Result<Job> {
    let Some(last) = queue.last_in_thread(&trigger.thread()).await? else {
        return Ok(trigger.reply_job(format!(
            "there is no earlier job on this {} to retry. Ask with `{} <what to do>`.",
            noun(trigger),
            trigger.mention
        )));
    };
    if !last.state.is_terminal() {
        return Ok(trigger.reply_job(format!(
            "job `{}` has not ended yet ({}). Wait for it, or `{} stop` it first.",
            last.job.id,
            describe(&last, None),
            trigger.mention
        )));
    }
    let options = TaskOptions { attempts: last.job.attempts };
    Ok(Job { follow_up: last.job.follow_up, ..trigger.task_job(&last.job.task.instruction, &options) })
}

/// A job's state in words.
fn describe(record: &JobRecord, position: Option<usize>) -> String {
    let mut text = match (&record.state, position) {
        (JobState::Queued { .. }, Some(p)) => format!("queued, position {p}"),
        (JobState::Queued { retry_reason: Some(_) }, None) => "waiting to be retried".to_owned(),
        (JobState::Queued { retry_reason: None }, None) => "queued".to_owned(),
        (JobState::Waiting { behind }, _) => format!("waiting for job {behind}"),
        (JobState::Running, _) => format!("running, delivery {}", record.deliveries),
        (JobState::Succeeded, _) => "succeeded".to_owned(),
        (JobState::Failed { .. } | JobState::Dead { .. }, _) => "failed".to_owned(),
        (JobState::Cancelled { .. }, _) => "was cancelled".to_owned(),
    };
    if let Some(pull) = &record.pull_request {
        let _ = write!(text, " ({})", pull.url);
    }
    if let Some(reason) = record.state.failure() {
        let _ = write!(text, ": {}", reason.lines().next().unwrap_or_default());
    }
    if record.cancel_requested_by.is_some() && !record.state.is_terminal() {
        text.push_str(", stopping");
    }
    text
}

fn noun(trigger: &Trigger) -> &'static str {
    if trigger.on_pull_request { "pull request" } else { "issue" }
}
