//! The job queue: at-least-once delivery with renewable leases, reclaim of jobs whose worker died,
//! delayed retries, a bounded number of deliveries and a dead letter. Redis in production, memory
//! for the one-process demo and unit tests; both pass the same contract tests.

mod memory;
mod redis;

use std::time::Duration;

use anyhow::{Result, bail};

pub use self::memory::MemoryQueue;
pub use self::redis::RedisQueue;
use crate::job::{Job, JobId, JobRecord, JobState, JobUpdate};
use crate::request::ids::ThreadKey;

/// How long an idempotency key is remembered. GitHub redelivers by hand only, within days.
pub const DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How many jobs `list` can reach; older finished jobs are forgotten.
pub const RECENT_JOBS: usize = 10_000;

/// Queue behaviour shared by both implementations.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// How long a claimed job stays a worker's without renewal.
    pub lease: Duration,
    /// Deliveries after which a job is dead-lettered instead of run again.
    pub max_deliveries: u32,
}

/// What `enqueue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job, at this 1-based position among the queued jobs.
    Accepted { position: usize },
    /// The idempotency key was seen before; no job was added.
    Duplicate { job_id: JobId },
}

/// What `count_in_window` saw: how many times the key was counted in its current window, and
/// how long until that window ends and the count starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub count: u64,
    pub resets_in: Duration,
}

/// Why a delivery could not be settled (finished, retried, deferred, dead-lettered): another
/// delivery holds the job now. Unlike a queue that cannot be reached, asking again cannot help.
#[derive(Debug, thiserror::Error)]
#[error("job {job}: {worker} no longer holds the lease")]
pub struct LeaseNotHeld {
    pub job: JobId,
    pub worker: String,
}

/// A claimed job: the worker holds its lease until it finishes, retries, hands back or loses it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The job's record as of the claim (state `running`, `deliveries` already counted).
    pub record: JobRecord,
    /// The state the claim took the job out of: `queued` with why the last delivery was retried,
    /// `waiting` behind the job it waited for, or `running` when the last delivery's lease lapsed.
    pub claimed_from: JobState,
    /// Which delivery this is, from 1. Above `max_deliveries` the worker dead-letters the job.
    pub attempt: u32,
    /// Who holds the lease.
    pub worker: String,
    /// Implementation detail of the queue that issued the delivery (e.g. a stream entry id).
    pub(crate) receipt: String,
}

/// The queue errand runs on.
#[derive(Clone)]
pub enum Queue {
    Memory(MemoryQueue),
    Redis(RedisQueue),
}

macro_rules! dispatch {
    ($self:ident, $q:ident => $call:expr) => {
        match $self {
            Queue::Memory($q) => $call,
            Queue::Redis($q) => $call,
        }
    };
}

impl Queue {
    pub fn settings(&self) -> &QueueSettings {
        dispatch!(self, q => q.settings())
    }

    /// Adds a job unless `dedup_key` (e.g. `github:<delivery id>`) was seen before; atomic.
    pub async fn enqueue(&self, job: Job, dedup_key: &str) -> Result<Enqueued> {
        dispatch!(self, q => q.enqueue(job, dedup_key).await)
    }

    /// Claims the next job for `worker`: first a job whose lease ran out, then a due delayed
    /// retry, then a new one; waits up to `wait` for one to arrive.
    pub async fn claim(&self, worker: &str, wait: Duration) -> Result<Option<Delivery>> {
        dispatch!(self, q => q.claim(worker, wait).await)
    }

    /// Extends the lease; `false` means the lease was lost (another worker holds the job now).
    pub async fn renew(&self, delivery: &Delivery) -> Result<bool> {
        dispatch!(self, q => q.renew(delivery).await)
    }

    /// Ends the job in a terminal state other than dead and releases it for good.
    pub async fn finish(&self, delivery: &Delivery, state: JobState) -> Result<()> {
        dispatch!(self, q => q.finish(delivery, state).await)
    }

    /// Releases the job to be claimed again after `delay` (state `queued`, with the reason).
    pub async fn retry_later(&self, delivery: &Delivery, delay: Duration, reason: &str) -> Result<()> {
        dispatch!(self, q => q.retry_later(delivery, delay, reason).await)
    }

    /// Puts the job back without counting this delivery: it waits behind `behind`, an earlier job
    /// of its thread, rather than failed (state `waiting`).
    pub async fn defer(&self, delivery: &Delivery, delay: Duration, behind: &JobId) -> Result<()> {
        dispatch!(self, q => q.defer(delivery, delay, behind).await)
    }

    /// Moves the job to the dead letter (state `dead`).
    pub async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        dispatch!(self, q => q.dead_letter(delivery, reason).await)
    }

    /// Changes fields of a job's record (tracking comment, pull request, a stop request).
    pub async fn update(&self, id: &JobId, update: JobUpdate) -> Result<()> {
        dispatch!(self, q => q.update(id, update).await)
    }

    pub async fn get(&self, id: &JobId) -> Result<Option<JobRecord>> {
        dispatch!(self, q => q.get(id).await)
    }

    /// Recent jobs of every status, newest first.
    pub async fn list(&self, limit: usize) -> Result<Vec<JobRecord>> {
        dispatch!(self, q => q.list(limit).await)
    }

    /// The 1-based position of a queued job among the queued jobs; `None` once claimed.
    pub async fn position(&self, id: &JobId) -> Result<Option<usize>> {
        dispatch!(self, q => q.position(id).await)
    }

    /// Takes the lock `name` unless someone holds it; it expires after `ttl` so a crashed holder
    /// cannot block others for long.
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<bool> {
        dispatch!(self, q => q.try_lock(name, ttl).await)
    }

    pub async fn unlock(&self, name: &str) -> Result<()> {
        dispatch!(self, q => q.unlock(name).await)
    }

    /// Counts one more event under `key` in a fixed window of length `window` that starts at the
    /// key's first count; atomic, so replicas sharing the queue share the count (rate limits).
    pub async fn count_in_window(&self, key: &str, window: Duration) -> Result<WindowCount> {
        dispatch!(self, q => q.count_in_window(key, window).await)
    }

    /// How many jobs are waiting or leased (not terminal, not dead); zero means drained.
    pub async fn outstanding(&self) -> Result<usize> {
        dispatch!(self, q => q.outstanding().await)
    }

    /// The task jobs of a thread (see [`Job::thread`]) that have not ended, oldest first.
    pub async fn open_in_thread(&self, thread: &ThreadKey) -> Result<Vec<JobRecord>> {
        dispatch!(self, q => q.open_in_thread(thread).await)
    }

    /// The newest task job of a thread, ended or not (what `retry` runs again).
    pub async fn last_in_thread(&self, thread: &ThreadKey) -> Result<Option<JobRecord>> {
        dispatch!(self, q => q.last_in_thread(thread).await)
    }

    /// Dead-lettered jobs, newest first.
    pub async fn dead(&self) -> Result<Vec<JobRecord>> {
        dispatch!(self, q => q.dead().await)
    }

    /// Puts a dead job back in the queue with a fresh delivery count; `false` if it is not dead.
    pub async fn requeue_dead(&self, id: &JobId) -> Result<bool> {
        dispatch!(self, q => q.requeue_dead(id).await)
    }
}

/// Refuses to `finish` a job in a state a finished job cannot be in: one a worker would claim
/// again, or dead, which only `dead_letter` records (it also lists the job as dead).
fn check_finished(state: &JobState) -> Result<()> {
    if !state.is_terminal() || state.is_dead() {
        bail!("a job cannot be finished as {state:?}");
    }
    Ok(())
}
