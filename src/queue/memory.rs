//! In-process queue with the same contract as Redis: the demo, the local CLI and unit tests.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use chrono::Utc;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{DEDUP_TTL, Delivery, Enqueued, LeaseNotHeld, QueueSettings, RECENT_JOBS, WindowCount, check_finished};
use crate::job::{Job, JobId, JobRecord, JobState, JobUpdate};
use crate::request::ids::ThreadKey;

/// The in-memory queue. Clones share one queue. Time is `tokio::time`, so tests can pause it.
#[derive(Clone)]
pub struct MemoryQueue {
    settings: QueueSettings,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Woken when a job becomes claimable or a retry is scheduled, so waiting claims look again.
    changed: Notify,
}

#[derive(Default)]
struct State {
    records: HashMap<JobId, JobRecord>,
    /// Idempotency keys and when they were first seen.
    dedup: HashMap<String, (JobId, Instant)>,
    /// New (and requeued) jobs in enqueue order, not yet claimed.
    waiting: VecDeque<JobId>,
    /// Retries by the time they become claimable; the sequence number keeps equal times apart.
    delayed: BTreeMap<(Instant, u64), JobId>,
    leases: HashMap<JobId, Lease>,
    /// Every job by enqueue order, for `list`; bounded to `RECENT_JOBS`.
    recent: BTreeMap<u64, JobId>,
    /// Dead-lettered jobs by the order they died in.
    dead: BTreeMap<u64, JobId>,
    /// Source of enqueue order, delay tie-breaks and receipts.
    sequence: u64,
    /// Named locks and when they expire.
    locks: HashMap<String, Instant>,
    /// `count_in_window` counters: the count and when its window ends.
    counters: HashMap<String, (u64, Instant)>,
    /// Task jobs of each thread in enqueue order; ended ones are dropped when seen.
    threads: HashMap<ThreadKey, Vec<JobId>>,
    /// The newest task job of each thread.
    last_in_thread: HashMap<ThreadKey, JobId>,
}

/// Above this many counters, ended windows are forgotten before a new one is counted.
const COUNTERS_KEPT: usize = 4096;

struct Lease {
    worker: String,
    receipt: String,
    expires: Instant,
}

impl State {
    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn record_mut(&mut self, id: &JobId) -> Result<&mut JobRecord> {
        self.records.get_mut(id).ok_or_else(|| anyhow!("job {id} has no record"))
    }

    /// Releases the lease of `delivery`, failing if another delivery holds the job now.
    fn release(&mut self, delivery: &Delivery) -> Result<()> {
        let id = &delivery.record.job.id;
        match self.leases.get(id) {
            Some(lease) if lease.receipt == delivery.receipt => {
                self.leases.remove(id);
                Ok(())
            }
            _ => Err(LeaseNotHeld { job: id.clone(), worker: delivery.worker.clone() }.into()),
        }
    }

    /// The next claimable job: a lapsed lease, then a due retry, then a new job.
    fn take_next(&mut self, now: Instant) -> Option<JobId> {
        let lapsed =
            self.leases.iter().filter(|(_, lease)| lease.expires <= now).min_by_key(|(_, lease)| lease.expires);
        if let Some((id, _)) = lapsed {
            let id = id.clone();
            self.leases.remove(&id);
            return Some(id);
        }
        if let Some(entry) = self.delayed.first_entry()
            && entry.key().0 <= now
        {
            return Some(entry.remove());
        }
        self.waiting.pop_front()
    }

    /// When a lease lapses or a retry comes due, whichever is first.
    fn next_timer(&self) -> Option<Instant> {
        let lease = self.leases.values().map(|lease| lease.expires).min();
        let retry = self.delayed.keys().next().map(|(due, _)| *due);
        lease.into_iter().chain(retry).min()
    }

    fn make_claimable(&mut self, id: JobId) {
        self.waiting.push_back(id);
    }

    /// Forgets the oldest jobs beyond `RECENT_JOBS`, unless they are still in the queue.
    fn trim_recent(&mut self) {
        while self.recent.len() > RECENT_JOBS {
            let Some((_, id)) = self.recent.pop_first() else { break };
            let settled = self.records.get(&id).is_none_or(|r| r.state.is_terminal() && !r.state.is_dead());
            if settled {
                self.records.remove(&id);
            }
        }
    }

    fn outstanding(&self) -> usize {
        self.waiting.len() + self.delayed.len() + self.leases.len()
    }
}

impl MemoryQueue {
    pub fn new(settings: QueueSettings) -> Self {
        Self { settings, shared: Arc::new(Shared { state: Mutex::new(State::default()), changed: Notify::new() }) }
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    fn state(&self) -> Result<MutexGuard<'_, State>> {
        // A poisoned lock means a panic while the queue was half-updated; refuse to go on.
        self.shared.state.lock().map_err(|_| anyhow!("the memory queue's lock is poisoned"))
    }

    pub async fn enqueue(&self, job: Job, dedup_key: &str) -> Result<Enqueued> {
        let now = Instant::now();
        let mut state = self.state()?;
        state.dedup.retain(|_, (_, seen)| now.duration_since(*seen) < DEDUP_TTL);
        if let Some((job_id, _)) = state.dedup.get(dedup_key) {
            return Ok(Enqueued::Duplicate { job_id: job_id.clone() });
        }
        let id = job.id.clone();
        state.dedup.insert(dedup_key.to_owned(), (id.clone(), now));
        if let Some(thread) = job.thread() {
            state.threads.entry(thread.clone()).or_default().push(id.clone());
            state.last_in_thread.insert(thread, id.clone());
        }
        state.records.insert(id.clone(), JobRecord::new(job));
        let sequence = state.next_sequence();
        state.recent.insert(sequence, id.clone());
        state.trim_recent();
        state.make_claimable(id);
        let position = state.waiting.len();
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(Enqueued::Accepted { position })
    }

    pub async fn claim(&self, worker: &str, wait: Duration) -> Result<Option<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so an enqueue between the look and the wait is not missed.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            let now = Instant::now();
            let wake_at = {
                let mut state = self.state()?;
                if let Some(id) = state.take_next(now) {
                    return self.lease(&mut state, id, worker, now).map(Some);
                }
                state.next_timer().map_or(deadline, |timer| timer.min(deadline))
            };
            if now >= deadline {
                return Ok(None);
            }
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    fn lease(&self, state: &mut State, id: JobId, worker: &str, now: Instant) -> Result<Delivery> {
        let receipt = state.next_sequence().to_string();
        let record = state.record_mut(&id)?;
        record.deliveries += 1;
        let claimed_from = std::mem::replace(&mut record.state, JobState::Running);
        record.updated_at = Utc::now();
        let record = record.clone();
        let expires = now + self.settings.lease;
        state.leases.insert(id, Lease { worker: worker.to_owned(), receipt: receipt.clone(), expires });
        Ok(Delivery { attempt: record.deliveries, record, claimed_from, worker: worker.to_owned(), receipt })
    }

    pub async fn renew(&self, delivery: &Delivery) -> Result<bool> {
        let mut state = self.state()?;
        // A lapsed lease nobody has reclaimed yet is still this worker's, as in Redis.
        match state.leases.get_mut(&delivery.record.job.id) {
            Some(lease) if lease.receipt == delivery.receipt && lease.worker == delivery.worker => {
                lease.expires = Instant::now() + self.settings.lease;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub async fn finish(&self, delivery: &Delivery, finished: JobState) -> Result<()> {
        check_finished(&finished)?;
        let mut state = self.state()?;
        state.release(delivery).context("finishing a job")?;
        let record = state.record_mut(&delivery.record.job.id)?;
        record.state = finished;
        record.updated_at = Utc::now();
        Ok(())
    }

    pub async fn retry_later(&self, delivery: &Delivery, delay: Duration, reason: &str) -> Result<()> {
        self.put_back(delivery, delay, JobState::Queued { retry_reason: Some(reason.to_owned()) }).await
    }

    pub async fn defer(&self, delivery: &Delivery, delay: Duration, behind: &JobId) -> Result<()> {
        self.put_back(delivery, delay, JobState::Waiting { behind: behind.clone() }).await
    }

    async fn put_back(&self, delivery: &Delivery, delay: Duration, back: JobState) -> Result<()> {
        let mut state = self.state()?;
        state.release(delivery).context("putting a job back for a retry")?;
        let id = delivery.record.job.id.clone();
        let record = state.record_mut(&id)?;
        if matches!(back, JobState::Waiting { .. }) {
            // Waiting for an earlier job is not a delivery.
            record.deliveries = record.deliveries.saturating_sub(1);
        }
        record.state = back;
        record.updated_at = Utc::now();
        let sequence = state.next_sequence();
        state.delayed.insert((Instant::now() + delay, sequence), id);
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(())
    }

    pub async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        let mut state = self.state()?;
        state.release(delivery).context("dead-lettering a job")?;
        let id = delivery.record.job.id.clone();
        let record = state.record_mut(&id)?;
        record.state = JobState::Dead { reason: reason.to_owned() };
        record.updated_at = Utc::now();
        let sequence = state.next_sequence();
        state.dead.insert(sequence, id);
        Ok(())
    }

    pub async fn update(&self, id: &JobId, update: JobUpdate) -> Result<()> {
        let mut state = self.state()?;
        let record = state.record_mut(id).context("updating a job")?;
        update.apply(record, Utc::now());
        Ok(())
    }

    pub async fn get(&self, id: &JobId) -> Result<Option<JobRecord>> {
        Ok(self.state()?.records.get(id).cloned())
    }

    pub async fn list(&self, limit: usize) -> Result<Vec<JobRecord>> {
        let state = self.state()?;
        Ok(state.recent.values().rev().filter_map(|id| state.records.get(id).cloned()).take(limit).collect())
    }

    pub async fn position(&self, id: &JobId) -> Result<Option<usize>> {
        Ok(self.state()?.waiting.iter().position(|waiting| waiting == id).map(|index| index + 1))
    }

    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<bool> {
        let mut state = self.state()?;
        let now = Instant::now();
        if state.locks.get(name).is_some_and(|expires| *expires > now) {
            return Ok(false);
        }
        state.locks.insert(name.to_owned(), now + ttl);
        Ok(true)
    }

    pub async fn unlock(&self, name: &str) -> Result<()> {
        self.state()?.locks.remove(name);
        Ok(())
    }

    pub async fn count_in_window(&self, key: &str, window: Duration) -> Result<WindowCount> {
        let now = Instant::now();
        let mut state = self.state()?;
        if state.counters.len() >= COUNTERS_KEPT && !state.counters.contains_key(key) {
            state.counters.retain(|_, (_, ends)| *ends > now);
        }
        let counter = state.counters.entry(key.to_owned()).or_insert((0, now + window));
        if counter.1 <= now {
            *counter = (0, now + window);
        }
        counter.0 += 1;
        Ok(WindowCount { count: counter.0, resets_in: counter.1.duration_since(now) })
    }

    pub async fn outstanding(&self) -> Result<usize> {
        Ok(self.state()?.outstanding())
    }

    pub async fn open_in_thread(&self, thread: &ThreadKey) -> Result<Vec<JobRecord>> {
        let mut state = self.state()?;
        let state = &mut *state;
        let Some(ids) = state.threads.get_mut(thread) else { return Ok(Vec::new()) };
        let records = &state.records;
        ids.retain(|id| records.get(id).is_some_and(|r| !r.state.is_terminal()));
        let open = ids.iter().filter_map(|id| records.get(id).cloned()).collect();
        if ids.is_empty() {
            state.threads.remove(thread);
        }
        Ok(open)
    }

    pub async fn last_in_thread(&self, thread: &ThreadKey) -> Result<Option<JobRecord>> {
        let state = self.state()?;
        Ok(state.last_in_thread.get(thread).and_then(|id| state.records.get(id)).cloned())
    }

    pub async fn dead(&self) -> Result<Vec<JobRecord>> {
        let state = self.state()?;
        Ok(state.dead.values().rev().filter_map(|id| state.records.get(id).cloned()).collect())
    }

    pub async fn requeue_dead(&self, id: &JobId) -> Result<bool> {
        let mut state = self.state()?;
        let Some(record) = state.records.get_mut(id).filter(|record| record.state.is_dead()) else {
            return Ok(false);
        };
        record.state = JobState::NEW;
        record.deliveries = 0;
        record.updated_at = Utc::now();
        state.dead.retain(|_, dead| dead != id);
        state.make_claimable(id.clone());
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ReplyTarget, Source, Task};
    use crate::request::ids::{CommentId, IssueNumber};

    const LEASE: Duration = Duration::from_secs(30);

    fn queue() -> MemoryQueue {
        MemoryQueue::new(QueueSettings { lease: LEASE, max_deliveries: 3 })
    }

    fn job() -> Job {
        Job {
            id: JobId::generate(),
            repo: "acme/calculator".parse().expect("a valid repository name"),
            source: Source::Api,
            requested_by: "octocat".into(),
            created_at: Utc::now(),
            installation_id: None,
            task: Task { instruction: "fix it".into(), title: "Bug".into(), body: String::new(), url: String::new() },
            reply: ReplyTarget::GithubIssue { issue: IssueNumber(1), comment_id: Some(CommentId(2)) },
            kind: Default::default(),
            follow_up: None,
            attempts: None,
            continues: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_lapses_exactly_at_its_length_and_goes_to_the_waiting_worker() {
        let queue = queue();
        queue.enqueue(job(), "key").await.unwrap();
        let first = queue.claim("worker-a", Duration::ZERO).await.unwrap().unwrap();

        let claimed_at = Instant::now();
        let second = queue.claim("worker-b", LEASE * 2).await.unwrap().expect("the lapsed job was not reclaimed");
        assert_eq!(claimed_at.elapsed(), LEASE, "the waiting claim did not wake when the lease lapsed");
        assert_eq!(second.attempt, 2);
        assert!(!queue.renew(&first).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewed_lease_lasts_a_full_lease_from_the_renewal() {
        let queue = queue();
        queue.enqueue(job(), "key").await.unwrap();
        let delivery = queue.claim("worker-a", Duration::ZERO).await.unwrap().unwrap();
        tokio::time::advance(LEASE - Duration::from_secs(1)).await;
        assert!(queue.renew(&delivery).await.unwrap());

        let renewed_at = Instant::now();
        let other = queue.claim("worker-b", LEASE * 2).await.unwrap().expect("the job was never reclaimed");
        assert_eq!(renewed_at.elapsed(), LEASE);
        assert_eq!(other.attempt, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_claim_wakes_when_a_retry_comes_due() {
        let queue = queue();
        queue.enqueue(job(), "key").await.unwrap();
        let delivery = queue.claim("worker-a", Duration::ZERO).await.unwrap().unwrap();
        let delay = Duration::from_secs(90);
        queue.retry_later(&delivery, delay, "busy").await.unwrap();

        let retried_at = Instant::now();
        let again = queue.claim("worker-a", delay * 2).await.unwrap().expect("the retry never came back");
        assert_eq!(retried_at.elapsed(), delay);
        assert_eq!(again.attempt, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dedup_key_is_forgotten_after_its_time_to_live() {
        let queue = queue();
        queue.enqueue(job(), "key").await.unwrap();
        assert!(matches!(queue.enqueue(job(), "key").await.unwrap(), Enqueued::Duplicate { .. }));
        tokio::time::advance(DEDUP_TTL).await;
        assert!(matches!(queue.enqueue(job(), "key").await.unwrap(), Enqueued::Accepted { position: 2 }));
    }
}
