//! The worker: claims jobs up to its concurrency, keeps their leases alive, watches for `stop`,
//! and runs each delivery (`run`: admit, place, configure, attempt, choose, deliver), then
//! settles it in the queue (`settle`). Every job ends in exactly one terminal state the
//! requester can see.

mod failure;
mod review;
mod run;
mod settle;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::forge::Github;
use crate::job::JobId;
use crate::publish::Publisher;
use crate::queue::{Delivery, LeaseNotHeld, Queue};
use crate::rollout::Rollout;

/// How long one claim waits for a job before checking for shutdown again.
const CLAIM_WAIT: Duration = Duration::from_secs(2);

/// After the grace period, how long a cancelled job may take to wind down on its own (kill and
/// remove its container) before it is abandoned where it is and handed back: a GitHub or Docker
/// call that hangs must not hold a stopping worker for its HTTP timeouts and retries.
const WIND_DOWN: Duration = Duration::from_secs(5);

/// How often a running job looks whether someone asked it to stop (`@agent stop`).
const CANCEL_POLL: Duration = Duration::from_secs(1);

/// The first wait before asking a queue that cannot be reached again; it doubles up to
/// [`QUEUE_RETRY_MAX`]. Short, because a restarted Redis answers within a second or two.
const QUEUE_RETRY_FIRST: Duration = Duration::from_millis(200);
const QUEUE_RETRY_MAX: Duration = Duration::from_secs(2);

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Name of this worker in the queue (unique per process).
    pub name: String,
    pub concurrency: usize,
    /// How long shutdown waits for running jobs before cancelling and handing them back.
    pub shutdown_grace: Duration,
    /// First delay before a job that failed for a passing reason runs again; doubles each time.
    pub retry_delay: Duration,
    /// The most attempts one request runs (best-of-N).
    pub max_attempts: u32,
}

/// Claims and runs jobs.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Queue,
    github: Github,
    rollout: Rollout,
    publisher: Publisher,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(queue: Queue, github: Github, rollout: Rollout, publisher: Publisher, settings: WorkerSettings) -> Self {
        Self { inner: Arc::new(Inner { queue, github, rollout, publisher, settings }) }
    }

    /// The redactor everything this worker lets out passes (it knows the agents' variables too).
    pub fn redactor(&self) -> &crate::secrets::Redactor {
        &self.inner.publisher.renderer.redactor
    }

    /// Claims one job (waiting up to `wait`) and runs it to its end; `None` if none came.
    /// Tests drive the worker with this until the queue is drained.
    pub async fn run_next_job(&self, wait: Duration) -> Result<Option<JobId>> {
        let Some(delivery) = self.inner.queue.claim(&self.inner.settings.name, wait).await? else {
            return Ok(None);
        };
        let id = delivery.record.job.id.clone();
        self.run_delivery(delivery, CancellationToken::new()).await;
        Ok(Some(id))
    }

    /// Runs jobs until `shutdown` fires; then stops claiming, lets running jobs finish within the
    /// grace period, and cancels and hands back the rest.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let settings = &self.inner.settings;
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let hard_stop = CancellationToken::new();
        let mut running = JoinSet::new();
        tracing::info!(worker = %settings.name, concurrency = settings.concurrency, "worker started");
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => permit?,
            };
            let claimed = tokio::select! {
                _ = shutdown.cancelled() => break,
                claimed = self.inner.queue.claim(&settings.name, CLAIM_WAIT) => claimed,
            };
            match claimed {
                Ok(Some(delivery)) => {
                    let worker = self.clone();
                    let stop = hard_stop.child_token();
                    running.spawn(async move {
                        worker.run_delivery(delivery, stop).await;
                        drop(permit);
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "claiming a job failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            while let Some(done) = running.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a job task ended unexpectedly");
                }
            }
        }
        tracing::info!(jobs = running.len(), grace = ?settings.shutdown_grace, "worker stopping");
        if tokio::time::timeout(settings.shutdown_grace, drain(&mut running)).await.is_err() {
            tracing::warn!(jobs = running.len(), "grace period over: cancelling and handing jobs back");
            hard_stop.cancel();
            drain(&mut running).await;
        }
        Ok(())
    }

    /// Runs one delivery with its lease kept alive; `stop` hands it back when it fires, and
    /// `@agent stop` (seen by polling the job's record) cancels it.
    async fn run_delivery(&self, delivery: Delivery, stop: CancellationToken) {
        let lease_lost = CancellationToken::new();
        let keeper = tokio::spawn(keep_lease(self.inner.queue.clone(), delivery.clone(), lease_lost.clone()));
        let halted = CancellationToken::new();
        let cancel = CancellationToken::new();
        let cancelled_by = Arc::new(std::sync::Mutex::new(None::<String>));
        let watch = {
            let (halted, cancel, stop, lease_lost) = (halted.clone(), cancel.clone(), stop.clone(), lease_lost.clone());
            let (queue, id, cancelled_by) =
                (self.inner.queue.clone(), delivery.record.job.id.clone(), cancelled_by.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => halted.cancel(),
                    _ = lease_lost.cancelled() => halted.cancel(),
                    by = cancel_requested(&queue, &id) => {
                        tracing::info!(job = %id, by, "cancelling the job on request");
                        *cancelled_by.lock().unwrap_or_else(|e| e.into_inner()) = Some(by);
                    }
                }
                cancel.cancel();
            })
        };
        let job = run::JobRun {
            worker: &self.inner,
            delivery: &delivery,
            cancel: &cancel,
            halted: &halted,
            lease_lost: &lease_lost,
        };
        let abandon = async {
            stop.cancelled().await;
            tokio::time::sleep(WIND_DOWN).await;
        };
        let mut ended = tokio::select! {
            ended = job.run() => ended,
            () = abandon => {
                tracing::warn!(job = %delivery.record.job.id, wind_down = ?WIND_DOWN, "the job did not wind down: abandoning it");
                Err(failure::Failure::Stopped)
            }
        };
        watch.abort();
        let by = cancelled_by.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(by) = by.filter(|_| !halted.is_cancelled() && !matches!(ended, Ok(run::Ended::Done { .. }))) {
            // The rollout stopped (its containers killed and removed); say so where it was asked.
            ended = match self.inner.publisher.conversation(&delivery.record.job).await {
                Ok(conversation) => job.end_cancelled(&conversation, &by).await,
                Err(e) => Err(e.into()),
            };
        }
        keeper.abort();
        let why_stopped = if lease_lost.is_cancelled() {
            Some(settle::Stopped::LeaseLost)
        } else if stop.is_cancelled() {
            Some(settle::Stopped::ShuttingDown)
        } else {
            None
        };
        settle::settle(&self.inner, &delivery, ended, why_stopped, &stop).await;
    }
}

/// Resolves with who asked, once the job's record says someone asked it to stop.
async fn cancel_requested(queue: &Queue, id: &JobId) -> String {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        if let Ok(Some(record)) = queue.get(id).await
            && let Some(by) = record.cancel_requested_by
        {
            return by;
        }
    }
}

async fn drain(running: &mut JoinSet<()>) {
    while running.join_next().await.is_some() {}
}

/// Runs `call`, a queue call a delivery must not lose to a Redis restart (confirming its lease
/// before an effect people see, recording how it ended), again while the queue cannot be reached:
/// for up to one lease, and not after `halted` fires (shutdown, or the lease is known lost).
///
/// Waiting is safe because every such call is fenced by the delivery's receipt: while Redis is
/// away nobody can take the job, and if it comes back after the lease ran out and another worker
/// took the job, the call is refused rather than applied. The bound only keeps a worker from
/// waiting forever on a Redis that does not return; then the lease lapses and the job runs again
/// elsewhere. An answer that the lease is not held ([`LeaseNotHeld`]) is final.
async fn through_queue_outage<T, Fut>(
    queue: &Queue,
    job: &JobId,
    what: &str,
    halted: &CancellationToken,
    mut call: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + queue.settings().lease;
    let mut wait = QUEUE_RETRY_FIRST;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let final_answer = error.downcast_ref::<LeaseNotHeld>().is_some();
        if final_answer || halted.is_cancelled() || tokio::time::Instant::now() + wait >= deadline {
            return Err(error);
        }
        tracing::warn!(job = %job, what, error = format!("{error:#}"), ?wait, "the queue cannot be reached; asking again");
        tokio::select! {
            _ = halted.cancelled() => return Err(error),
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(QUEUE_RETRY_MAX);
    }
}

/// Renews the lease every third of its length; fires `lost` when another worker holds the job.
async fn keep_lease(queue: Queue, delivery: Delivery, lost: CancellationToken) {
    let every = queue.settings().lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match queue.renew(&delivery).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %delivery.record.job.id, "lease lost: another worker has this job");
                lost.cancel();
                return;
            }
            // Redis may be restarting: keep trying until the lease would have run out anyway.
            Err(e) => {
                tracing::warn!(job = %delivery.record.job.id, error = format!("{e:#}"), "renewing the lease failed")
            }
        }
    }
}
