//! Settling a delivery in the queue: finished, deferred behind an earlier job of its thread,
//! retried later, dead-lettered, handed back by a stopping worker, or left alone when another
//! worker holds it now. Every end is logged with its reason.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Inner;
use super::failure::Failure;
use super::run::Ended;
use crate::queue::Delivery;

/// The longest wait between two deliveries of a job that keeps hitting passing failures.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How long a job waits before it looks again whether the earlier job of its thread has ended.
const THREAD_WAIT: Duration = Duration::from_secs(2);

/// Puts the job back for another delivery, after a delay that doubles with each one.
async fn retry_later(
    worker: &Inner,
    delivery: &Delivery,
    failure: &Failure,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let (queue, id) = (&worker.queue, &delivery.record.job.id);
    let delay =
        (worker.settings.retry_delay * 2u32.saturating_pow(delivery.attempt.saturating_sub(1))).min(MAX_RETRY_DELAY);
    let redact = |text: &str| worker.publisher.renderer.redactor.redact(text);
    let reason = match failure {
        Failure::Retry(error) => redact(&format!("{error:#}")),
        Failure::Stopped => "stopped before the end".to_owned(),
        Failure::Abort(reason) => redact(&format!("{reason:?}")),
    };
    tracing::warn!(job = %id, reason, ?delay, "job will be retried");
    // `retry_later` records the reason, and only while this delivery holds the lease: a separate
    // update would write into the record of a job another worker may hold.
    super::through_queue_outage(queue, id, "putting the job back for a retry", stop, || {
        queue.retry_later(delivery, delay, &reason)
    })
    .await
}

/// Why a delivery stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    /// Another worker reclaimed the job: leave it alone.
    LeaseLost,
    /// This worker is shutting down: hand the job back.
    ShuttingDown,
}

/// Records how the delivery ended in the queue. A Redis restart while it settles is waited out
/// (within a bound, and not past `stop`): a job that published its result but could not record it
/// would run again.
pub(super) async fn settle(
    worker: &Inner,
    delivery: &Delivery,
    ended: Result<Ended, Failure>,
    stopped: Option<Stopped>,
    stop: &CancellationToken,
) {
    let (queue, id) = (&worker.queue, &delivery.record.job.id);
    // What the queue records, the job API shows: it passes the same redaction as comments.
    let redact = |text: &str| worker.publisher.renderer.redactor.redact(text);
    let result = match (ended, stopped) {
        (_, Some(Stopped::LeaseLost)) => {
            tracing::info!(job = %id, "another worker holds the job now; leaving it");
            Ok(())
        }
        (Ok(Ended::Wait { behind }), _) => {
            super::through_queue_outage(queue, id, "deferring the job", stop, || {
                queue.defer(delivery, THREAD_WAIT, &behind)
            })
            .await
        }
        (Ok(Ended::Done { state }), _) => {
            let state = state.redacted(redact);
            tracing::info!(job = %id, status = ?state.status(), reason = state.failure(), "job ended");
            if delivery.attempt > queue.settings().max_deliveries {
                super::through_queue_outage(queue, id, "dead-lettering the job", stop, || {
                    queue.dead_letter(delivery, state.failure().unwrap_or("gave up"))
                })
                .await
            } else {
                super::through_queue_outage(queue, id, "recording the job's end", stop, || {
                    queue.finish(delivery, state.clone())
                })
                .await
            }
        }
        (Err(_), Some(Stopped::ShuttingDown)) => {
            tracing::info!(job = %id, "handing the job back");
            queue.retry_later(delivery, Duration::ZERO, "handed back by a stopping worker").await
        }
        (Err(failure), None) => retry_later(worker, delivery, &failure, stop).await,
    };
    if let Err(e) = result {
        // The lease runs out and another delivery settles the job.
        tracing::error!(job = %id, error = format!("{e:#}"), "could not settle the job in the queue");
    }
}
