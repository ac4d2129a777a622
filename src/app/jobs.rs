//! `errand jobs`: what an operator needs to see and repair in the queue.

use anyhow::{Context, Result, bail};

use super::{open_queue, shared_queue_only};
use crate::config::{JobsAction, JobsArgs};
use crate::job::{JobId, JobRecord, JobState};

pub(super) async fn run(args: &JobsArgs) -> Result<()> {
    shared_queue_only(args.queue.queue)?;
    let queue = open_queue(&args.queue).await?;
    match &args.action {
        JobsAction::List { limit } => print_jobs(&queue.list(*limit).await?, args.json),
        JobsAction::Dead => print_jobs(&queue.dead().await?, args.json),
        JobsAction::Requeue { id } => {
            let id: JobId = id.parse().context("reading the job id")?;
            if !queue.requeue_dead(&id).await? {
                bail!("job {id} is not in the dead letter (see `errand jobs dead`)");
            }
            println!("re-queued {id}");
            Ok(())
        }
    }
}

fn print_jobs(jobs: &[JobRecord], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "jobs": jobs }))?);
        return Ok(());
    }
    for r in jobs {
        let status = serde_json::to_value(r.state.status())?;
        let detail = match &r.state {
            JobState::Waiting { behind } => format!("  waiting for job {behind}"),
            JobState::Cancelled { by } => format!("  cancelled by @{by}"),
            JobState::Queued { retry_reason: Some(e) }
            | JobState::Failed { reason: e }
            | JobState::Dead { reason: e } => {
                format!("  error: {}", e.lines().next().unwrap_or_default())
            }
            JobState::Queued { retry_reason: None } | JobState::Running | JobState::Succeeded => String::new(),
        };
        println!(
            "{}  {:<9}  {}  {}  @{}  {}  deliveries={}{}",
            r.job.id,
            status.as_str().unwrap_or_default(),
            r.job.repo,
            r.job.reply.issue().map_or_else(|| "slack".to_owned(), |n| format!("#{n}")),
            r.job.requested_by,
            r.job.created_at.format("%Y-%m-%d %H:%M:%S"),
            r.deliveries,
            detail,
        );
    }
    if jobs.is_empty() {
        println!("no jobs");
    }
    Ok(())
}
