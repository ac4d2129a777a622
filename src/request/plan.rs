//! Planning: a trigger and its command into the one job to enqueue. A task becomes a job that
//! runs the agent; everything else becomes a reply job (help, a malformed command). `stop`,
//! `status` and `retry` act on the thread's jobs here, through queue calls only, so that a
//! webhook is still answered within its deadline.

use std::time::Duration;

use super::command::{Command, TaskOptions};
use super::reply::{JobBrief, Reply};
use super::trigger::Trigger;
use crate::job::{Job, JobUpdate};
use crate::queue::Queue;

/// The job that answers `trigger`. The queue is asked (for `stop`, `status`, `retry`) for at most
/// `queue_timeout`; when it does not answer, the job is a reply saying so.
pub async fn plan(trigger: &Trigger, queue: &Queue, queue_timeout: Duration) -> Job {
    let command = match trigger.command() {
        Ok(command) => command,
        Err(error) => {
            tracing::info!(%error, repo = %trigger.repo, "malformed command");
            return trigger.reply_job(Reply::Malformed { error: error.clone() });
        }
    };
    let acted = match command {
        Command::Task { instruction, options } => return trigger.task_job(instruction, options),
        Command::Help => return trigger.reply_job(Reply::Help),
        Command::UseAttempt(attempt) if trigger.on_pull_request() => return trigger.use_attempt_job(*attempt),
        Command::UseAttempt(_) => return trigger.reply_job(Reply::UseAttemptOnPullRequest),
        Command::Stop => tokio::time::timeout(queue_timeout, stop(queue, trigger)).await,
        Command::Status => tokio::time::timeout(queue_timeout, status(queue, trigger)).await,
        Command::Retry => tokio::time::timeout(queue_timeout, retry(queue, trigger)).await,
    };
    match acted {
        Ok(Ok(job)) => job,
        failed => {
            let error = match failed {
                Ok(Err(error)) => format!("{error:#}"),
                _ => format!("no answer in {queue_timeout:?}"),
            };
            tracing::error!(%error, command = command.name(), "could not reach the queue");
            trigger.reply_job(Reply::QueueUnreachable { command: command.name().to_owned() })
        }
    }
}

/// `stop`: asks every open task of the thread to stop. Queued ones end as cancelled when a worker
/// reaches them; a running one is killed within seconds, and its tracking comment ends cancelled.
async fn stop(queue: &Queue, trigger: &Trigger) -> anyhow::Result<Job> {
    let open = match trigger.thread() {
        Some(thread) => queue.open_in_thread(&thread).await?,
        None => Vec::new(),
    };
    let mut jobs = Vec::with_capacity(open.len());
    for record in &open {
        let update = JobUpdate { cancel_requested_by: Some(trigger.requested_by.clone()), ..JobUpdate::default() };
        queue.update(&record.job.id, update).await?;
        jobs.push(JobBrief::of(record, None));
    }
    Ok(trigger.reply_job(Reply::Stopping { jobs }))
}

/// `status`: the thread's open jobs with their state and queue position, or how the last one ended.
async fn status(queue: &Queue, trigger: &Trigger) -> anyhow::Result<Job> {
    let Some(thread) = trigger.thread() else {
        return Ok(trigger.reply_job(Reply::Status { open: Vec::new(), last: None }));
    };
    let mut open = Vec::new();
    for record in queue.open_in_thread(&thread).await? {
        let position = queue.position(&record.job.id).await?;
        open.push(JobBrief::of(&record, position));
    }
    let last = match open.is_empty() {
        true => queue.last_in_thread(&thread).await?.map(|record| JobBrief::of(&record, None)),
        false => None,
    };
    Ok(trigger.reply_job(Reply::Status { open, last }))
}

/// `retry`: runs the thread's last task again as a new job (in the same place, with the same
/// instruction and attempts), unless it has not ended yet.
async fn retry(queue: &Queue, trigger: &Trigger) -> anyhow::Result<Job> {
    let last = match trigger.thread() {
        Some(thread) => queue.last_in_thread(&thread).await?,
        None => None,
    };
    let Some(last) = last else { return Ok(trigger.reply_job(Reply::NothingToRetry)) };
    if !last.state.is_terminal() {
        return Ok(trigger.reply_job(Reply::RetryWhenEnded { job: JobBrief::of(&last, None) }));
    }
    let options = TaskOptions { attempts: last.job.attempts };
    Ok(Job { follow_up: last.job.follow_up, ..trigger.task_job(&last.job.task.instruction, &options) })
}
