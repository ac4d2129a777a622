//! The production queue on Redis Streams: new jobs on a stream read by a consumer group, leases,
//! retries and the dead letter in sorted sets, and every change of a job's state in one Lua script.
//!
//! Key layout, all under one hash tag so that every script stays on one cluster slot
//! (`P` = `errand:{<namespace>}`, namespace `q` unless a test picks its own):
//!
//! - `P:job:<id>`: the job's record, a hash of serde JSON values: `job` (the immutable [`Job`]),
//!   `state` (the [`JobState`]) and one field per other record field. Scripts set fields without
//!   decoding JSON, because Lua's cjson re-encodes numbers with 14 digits and would corrupt large
//!   GitHub ids; the Rust side passes every state a script writes as its JSON. Records written
//!   before the state was one field (`status`, `dead` and `error` fields) cannot be read: no
//!   deployed queue holds any.
//! - `P:dedup:<key>`: idempotency key → job id, expiring after [`DEDUP_TTL`].
//! - `P:jobs`: the stream of claimable jobs (`job=<id>`), consumer group `workers`; entries are
//!   acknowledged and deleted when their delivery ends. `P:entries`: job id → its pending entry.
//! - `P:waiting`: zset of jobs not yet claimed, by enqueue order (for `position`).
//! - `P:leases`: zset job id → lease expiry in ms by Redis's clock; `P:holders`: job id → the
//!   receipt of the delivery that holds the lease (the fencing token).
//! - `P:delayed`: zset job id → when its retry comes due (Redis's clock).
//! - `P:count:<key>`: a `count_in_window` counter, expiring when its window ends.
//! - `P:outstanding`: set of jobs queued, delayed or leased. `P:recent`: zset of the last
//!   [`RECENT_JOBS`] jobs by enqueue order. `P:dead`: zset of dead jobs. `P:sequence`: a counter
//!   for orders and receipts.
//! - `P:thread:<thread>`: list of the task jobs of a thread (an issue or a pull request) in
//!   enqueue order; ended jobs are removed when a reader sees them. `P:thread-last:<thread>`: the
//!   newest task job of the thread, expiring after [`DEDUP_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Client, Script};
use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use serde::Serialize;
use tokio::time::Instant;

use super::{DEDUP_TTL, Delivery, Enqueued, LeaseNotHeld, QueueSettings, RECENT_JOBS, WindowCount, check_finished};
use crate::job::{Job, JobId, JobRecord, JobState, JobUpdate};
use crate::request::ids::ThreadKey;

/// The namespace of production keys.
const DEFAULT_NAMESPACE: &str = "q";
/// Ordinary commands fail after this long rather than hang; Lua scripts here are short.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between two attempts to reconnect after Redis went away (they start at
/// 100 ms and double): a restarted Redis is found again within about this long.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// The longest a claim blocks on the stream before it looks at leases and retries again. A retry
/// scheduled or a lease renewed while a claim blocks does not wake it, so this bounds the delay.
const MAX_BLOCK: Duration = Duration::from_millis(250);
/// How much longer than its own `BLOCK` a blocking read may take before its connection is
/// presumed dead (blocking connections have no response timeout of their own).
const BLOCK_GRACE: Duration = Duration::from_secs(5);

/// `count_in_window`: INCR, and a window (PEXPIRE) for a counter that has none, in one step so a
/// counter can never be left without an expiry. KEYS: the counter; ARGV: the window in ms.
const COUNT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// The queue on Redis. Clones share connections.
#[derive(Clone)]
pub struct RedisQueue {
    settings: QueueSettings,
    client: Client,
    /// Reconnects by itself after Redis restarts.
    commands: ConnectionManager,
    /// Idle connections for blocking reads: a blocked connection serves nobody else, so each
    /// waiting claim takes its own. A connection that fails is dropped, not returned.
    blocking: Arc<Mutex<Vec<MultiplexedConnection>>>,
    keys: Arc<Keys>,
    scripts: Arc<Scripts>,
}

struct Keys {
    lock_prefix: String,
    count_prefix: String,
    thread_prefix: String,
    thread_last_prefix: String,
    job_prefix: String,
    dedup_prefix: String,
    stream: String,
    entries: String,
    waiting: String,
    leases: String,
    holders: String,
    delayed: String,
    outstanding: String,
    recent: String,
    dead: String,
    sequence: String,
}

impl Keys {
    fn new(namespace: &str) -> Self {
        let prefix = format!("errand:{{{namespace}}}");
        let key = |name: &str| format!("{prefix}:{name}");
        Self {
            lock_prefix: key("lock:"),
            count_prefix: key("count:"),
            thread_prefix: key("thread:"),
            thread_last_prefix: key("thread-last:"),
            job_prefix: key("job:"),
            dedup_prefix: key("dedup:"),
            stream: key("jobs"),
            entries: key("entries"),
            waiting: key("waiting"),
            leases: key("leases"),
            holders: key("holders"),
            delayed: key("delayed"),
            outstanding: key("outstanding"),
            recent: key("recent"),
            dead: key("dead"),
            sequence: key("sequence"),
        }
    }

    fn job(&self, id: &JobId) -> String {
        format!("{}{id}", self.job_prefix)
    }
}

struct Scripts {
    enqueue: Script,
    count: Script,
    claim: Script,
    renew: Script,
    release: Script,
    requeue_dead: Script,
    update: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            enqueue: Script::new(include_str!("redis/enqueue.lua")),
            count: Script::new(COUNT_SCRIPT),
            claim: Script::new(include_str!("redis/claim.lua")),
            renew: Script::new(include_str!("redis/renew.lua")),
            release: Script::new(include_str!("redis/release.lua")),
            requeue_dead: Script::new(include_str!("redis/requeue_dead.lua")),
            update: Script::new(include_str!("redis/update.lua")),
        }
    }
}

/// How a delivery ends, as `release.lua` takes it: the mode, the job's new state, and for a job
/// put back, when it is claimable again.
enum Release {
    Finish(JobState),
    Retry { delay: Duration, reason: String },
    Defer { delay: Duration, behind: JobId },
    Dead { reason: String },
}

impl Release {
    fn into_script_args(self) -> (&'static str, JobState, Duration) {
        match self {
            Self::Finish(state) => ("finish", state, Duration::ZERO),
            Self::Retry { delay, reason } => ("retry", JobState::Queued { retry_reason: Some(reason) }, delay),
            Self::Defer { delay, behind } => ("defer", JobState::Waiting { behind }, delay),
            Self::Dead { reason } => ("dead", JobState::Dead { reason }, Duration::ZERO),
        }
    }
}

/// What one claim attempt found.
enum Attempt {
    Claimed(Box<Delivery>),
    /// Nothing to claim; `wake_in` is when a lease lapses or a retry comes due, if ever;
    /// `last_id` is the stream's last entry id, to block on newer ones.
    Empty {
        wake_in: Option<Duration>,
        last_id: String,
    },
}

impl RedisQueue {
    /// Connects to the production namespace.
    pub async fn connect(url: &str, settings: QueueSettings) -> Result<Self> {
        Self::connect_with_prefix(url, settings, DEFAULT_NAMESPACE).await
    }

    /// Connects with keys under `errand:{<namespace>}:`, so that tests can share one Redis.
    pub async fn connect_with_prefix(url: &str, settings: QueueSettings, namespace: &str) -> Result<Self> {
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            bail!("queue namespace {namespace:?} must be non-empty and without braces");
        }
        let client = Client::open(url).context("parsing the Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_max_delay(RECONNECT_MAX_DELAY);
        let commands =
            client.get_connection_manager_with_config(config).await.context("connecting to Redis for commands")?;
        Ok(Self {
            settings,
            client,
            commands,
            blocking: Arc::new(Mutex::new(Vec::new())),
            keys: Arc::new(Keys::new(namespace)),
            scripts: Arc::new(Scripts::new()),
        })
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    pub async fn enqueue(&self, job: Job, dedup_key: &str) -> Result<Enqueued> {
        let keys = &self.keys;
        let id = job.id.clone();
        let thread = job.thread();
        let fields = record_fields(&JobRecord::new(job))?;
        let mut call = self.scripts.enqueue.prepare_invoke();
        // A job without a thread names the keys of the empty thread, and leaves them alone.
        let thread_name = thread.as_ref().map_or("", ThreadKey::as_str);
        call.key(format!("{}{dedup_key}", keys.dedup_prefix))
            .key(keys.job(&id))
            .key(&keys.stream)
            .key(&keys.waiting)
            .key(&keys.outstanding)
            .key(&keys.recent)
            .key(&keys.sequence)
            .key(&keys.entries)
            .key(&keys.dead)
            .key(format!("{}{thread_name}", keys.thread_prefix))
            .key(format!("{}{thread_name}", keys.thread_last_prefix))
            .arg(id.as_str())
            .arg(DEDUP_TTL.as_secs())
            .arg(RECENT_JOBS)
            .arg(&keys.job_prefix)
            .arg(if thread.is_some() { "1" } else { "0" });
        for (name, value) in &fields {
            call.arg(*name).arg(value);
        }
        let reply: (String, String) =
            call.invoke_async(&mut self.commands.clone()).await.with_context(|| format!("enqueueing job {id}"))?;
        match reply.0.as_str() {
            "accepted" => Ok(Enqueued::Accepted { position: reply.1.parse().context("reading the queue position")? }),
            "duplicate" => Ok(Enqueued::Duplicate { job_id: reply.1.parse().context("reading a duplicate's job id")? }),
            other => bail!("enqueue script answered {other:?}"),
        }
    }

    pub async fn claim(&self, worker: &str, wait: Duration) -> Result<Option<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            let (wake_in, last_id) = match self.try_claim(worker).await? {
                Attempt::Claimed(delivery) => return Ok(Some(*delivery)),
                Attempt::Empty { wake_in, last_id } => (wake_in, last_id),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(None);
            }
            let block = remaining.min(MAX_BLOCK).min(wake_in.unwrap_or(MAX_BLOCK));
            self.wait_for_entry_after(&last_id, block).await?;
        }
    }

    async fn try_claim(&self, worker: &str) -> Result<Attempt> {
        let keys = &self.keys;
        let reply: Vec<String> = self
            .scripts
            .claim
            .key(&keys.stream)
            .key(&keys.waiting)
            .key(&keys.delayed)
            .key(&keys.leases)
            .key(&keys.holders)
            .key(&keys.entries)
            .key(&keys.sequence)
            .key(&keys.outstanding)
            .arg(&keys.job_prefix)
            .arg(worker)
            .arg(millis(self.settings.lease))
            .arg(json(&Utc::now())?)
            .arg(json(&JobState::Running)?)
            .invoke_async(&mut self.commands.clone())
            .await
            .context("claiming a job")?;
        match reply.as_slice() {
            [kind, receipt, claimed_from, fields @ ..] if kind == "claimed" => {
                let fields = fields.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
                let record = record_from_fields(fields)?.context("a claimed job has no record")?;
                let claimed_from = serde_json::from_str(claimed_from).context("decoding a claimed job's state")?;
                Ok(Attempt::Claimed(Box::new(Delivery {
                    attempt: record.deliveries,
                    record,
                    claimed_from,
                    worker: worker.to_owned(),
                    receipt: receipt.clone(),
                })))
            }
            [kind, wake_in, last_id] if kind == "empty" => {
                let wake_in: i64 = wake_in.parse().context("reading when to look again")?;
                let wake_in = u64::try_from(wake_in).ok().map(Duration::from_millis);
                Ok(Attempt::Empty { wake_in, last_id: last_id.clone() })
            }
            _ => bail!("claim script answered {reply:?}"),
        }
    }

    /// Blocks until the stream gets an entry newer than `last_id`, or `block` passes.
    async fn wait_for_entry_after(&self, last_id: &str, block: Duration) -> Result<()> {
        let idle = self.blocking.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT));
                self.client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .context("connecting to Redis for blocking reads")?
            }
        };
        let mut read = ::redis::cmd("XREAD");
        read.arg("BLOCK").arg(millis(block).max(1)).arg("STREAMS").arg(&self.keys.stream).arg(last_id);
        let read = read.query_async::<::redis::Value>(&mut connection);
        match tokio::time::timeout(block + BLOCK_GRACE, read).await {
            Ok(Ok(_)) => {
                self.blocking.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
                Ok(())
            }
            Ok(Err(error)) => Err(error).context("waiting for a new job"),
            Err(_) => bail!("Redis did not answer a blocking read for new jobs in time"),
        }
    }

    pub async fn renew(&self, delivery: &Delivery) -> Result<bool> {
        let keys = &self.keys;
        let renewed: i64 = self
            .scripts
            .renew
            .key(&keys.leases)
            .key(&keys.holders)
            .key(&keys.stream)
            .key(&keys.entries)
            .arg(delivery.record.job.id.as_str())
            .arg(&delivery.receipt)
            .arg(millis(self.settings.lease))
            .arg(&delivery.worker)
            .invoke_async(&mut self.commands.clone())
            .await
            .with_context(|| format!("renewing the lease on job {}", delivery.record.job.id))?;
        Ok(renewed == 1)
    }

    pub async fn finish(&self, delivery: &Delivery, state: JobState) -> Result<()> {
        check_finished(&state)?;
        self.release(delivery, Release::Finish(state)).await.context("finishing a job")
    }

    pub async fn retry_later(&self, delivery: &Delivery, delay: Duration, reason: &str) -> Result<()> {
        let reason = reason.to_owned();
        self.release(delivery, Release::Retry { delay, reason }).await.context("putting a job back for a retry")
    }

    pub async fn defer(&self, delivery: &Delivery, delay: Duration, behind: &JobId) -> Result<()> {
        let behind = behind.clone();
        self.release(delivery, Release::Defer { delay, behind }).await.context("putting a waiting job back")
    }

    pub async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<()> {
        let reason = reason.to_owned();
        self.release(delivery, Release::Dead { reason }).await.context("dead-lettering a job")
    }

    async fn release(&self, delivery: &Delivery, how: Release) -> Result<()> {
        let keys = &self.keys;
        let id = &delivery.record.job.id;
        let (mode, state, delay) = how.into_script_args();
        let released: i64 = self
            .scripts
            .release
            .key(keys.job(id))
            .key(&keys.stream)
            .key(&keys.leases)
            .key(&keys.holders)
            .key(&keys.entries)
            .key(&keys.outstanding)
            .key(&keys.delayed)
            .key(&keys.dead)
            .key(&keys.sequence)
            .arg(id.as_str())
            .arg(&delivery.receipt)
            .arg(mode)
            .arg(json(&state)?)
            .arg(json(&Utc::now())?)
            .arg(millis(delay))
            .invoke_async(&mut self.commands.clone())
            .await
            .with_context(|| format!("releasing job {id}"))?;
        if released != 1 {
            return Err(LeaseNotHeld { job: id.clone(), worker: delivery.worker.clone() }.into());
        }
        Ok(())
    }

    pub async fn update(&self, id: &JobId, update: JobUpdate) -> Result<()> {
        let mut record = self.get(id).await?.with_context(|| format!("updating job {id}: no such job"))?;
        // Only the fields the update names are written, so that a concurrent claim's state or
        // delivery count is not overwritten with what this read saw.
        let touched = [
            ("tracking_comment_id", update.tracking_comment_id.is_some()),
            ("pull_request", update.pull_request.is_some()),
            ("cancel_requested_by", update.cancel_requested_by.is_some()),
            ("slack_reply_ts", update.slack_reply_ts.is_some()),
            ("slack_thread_ts", update.slack_thread_ts.is_some()),
            ("updated_at", true),
        ];
        update.apply(&mut record, Utc::now());
        let fields = record_fields(&record)?;
        let mut call = self.scripts.update.key(self.keys.job(id));
        for (name, value) in &fields {
            if touched.contains(&(*name, true)) {
                call.arg(*name).arg(value);
            }
        }
        let updated: i64 =
            call.invoke_async(&mut self.commands.clone()).await.with_context(|| format!("updating job {id}"))?;
        if updated != 1 {
            bail!("updating job {id}: no such job");
        }
        Ok(())
    }

    pub async fn get(&self, id: &JobId) -> Result<Option<JobRecord>> {
        let fields: HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(self.keys.job(id))
            .query_async(&mut self.commands.clone())
            .await
            .with_context(|| format!("reading job {id}"))?;
        record_from_fields(fields).with_context(|| format!("decoding job {id}"))
    }

    pub async fn list(&self, limit: usize) -> Result<Vec<JobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ::redis::cmd("ZREVRANGE")
            .arg(&self.keys.recent)
            .arg(0)
            .arg(limit - 1)
            .query_async(&mut self.commands.clone())
            .await
            .context("listing recent jobs")?;
        self.records(ids).await.context("reading recent jobs")
    }

    /// The records of `ids` that still exist, in the same order.
    async fn records(&self, ids: Vec<String>) -> Result<Vec<JobRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(format!("{}{id}", self.keys.job_prefix));
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(&mut self.commands.clone()).await?;
        let mut records = Vec::with_capacity(all.len());
        for (id, fields) in ids.iter().zip(all) {
            records.extend(record_from_fields(fields).with_context(|| format!("decoding job {id}"))?);
        }
        Ok(records)
    }

    pub async fn position(&self, id: &JobId) -> Result<Option<usize>> {
        let rank: Option<usize> = ::redis::cmd("ZRANK")
            .arg(&self.keys.waiting)
            .arg(id.as_str())
            .query_async(&mut self.commands.clone())
            .await
            .with_context(|| format!("reading the queue position of job {id}"))?;
        Ok(rank.map(|rank| rank + 1))
    }

    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<bool> {
        let set: Option<String> = ::redis::cmd("SET")
            .arg(format!("{}{name}", self.keys.lock_prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.commands.clone())
            .await
            .context("taking a lock")?;
        Ok(set.is_some())
    }

    pub async fn unlock(&self, name: &str) -> Result<()> {
        ::redis::cmd("DEL")
            .arg(format!("{}{name}", self.keys.lock_prefix))
            .query_async::<()>(&mut self.commands.clone())
            .await
            .context("releasing a lock")
    }

    pub async fn count_in_window(&self, key: &str, window: Duration) -> Result<WindowCount> {
        let (count, ttl): (u64, i64) = self
            .scripts
            .count
            .key(format!("{}{key}", self.keys.count_prefix))
            .arg(millis(window).max(1))
            .invoke_async(&mut self.commands.clone())
            .await
            .context("counting in a window")?;
        Ok(WindowCount { count, resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)) })
    }

    pub async fn outstanding(&self) -> Result<usize> {
        ::redis::cmd("SCARD")
            .arg(&self.keys.outstanding)
            .query_async(&mut self.commands.clone())
            .await
            .context("counting outstanding jobs")
    }

    pub async fn open_in_thread(&self, thread: &ThreadKey) -> Result<Vec<JobRecord>> {
        let key = format!("{}{thread}", self.keys.thread_prefix);
        let ids: Vec<String> =
            ::redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query_async(&mut self.commands.clone()).await?;
        let records = self.records(ids.clone()).await.context("reading a thread's jobs")?;
        let open: Vec<JobRecord> = records.into_iter().filter(|r| !r.state.is_terminal()).collect();
        // Ended (or forgotten) jobs leave the list; removing by value is safe against concurrent pushes.
        let ended: Vec<&String> =
            ids.iter().filter(|id| !open.iter().any(|r| r.job.id.as_str() == id.as_str())).collect();
        if !ended.is_empty() {
            let mut pipe = ::redis::pipe();
            for id in ended {
                pipe.cmd("LREM").arg(&key).arg(0).arg(id).ignore();
            }
            pipe.query_async::<()>(&mut self.commands.clone()).await.context("tidying a thread's jobs")?;
        }
        Ok(open)
    }

    pub async fn last_in_thread(&self, thread: &ThreadKey) -> Result<Option<JobRecord>> {
        let id: Option<String> = ::redis::cmd("GET")
            .arg(format!("{}{thread}", self.keys.thread_last_prefix))
            .query_async(&mut self.commands.clone())
            .await
            .context("reading a thread's last job")?;
        match id {
            Some(id) => self.get(&id.parse().map_err(|e| anyhow!("{e}"))?).await,
            None => Ok(None),
        }
    }

    pub async fn dead(&self) -> Result<Vec<JobRecord>> {
        let ids: Vec<String> = ::redis::cmd("ZREVRANGE")
            .arg(&self.keys.dead)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.commands.clone())
            .await
            .context("listing dead jobs")?;
        self.records(ids).await.context("reading dead jobs")
    }

    pub async fn requeue_dead(&self, id: &JobId) -> Result<bool> {
        let keys = &self.keys;
        let requeued: i64 = self
            .scripts
            .requeue_dead
            .key(keys.job(id))
            .key(&keys.stream)
            .key(&keys.waiting)
            .key(&keys.outstanding)
            .key(&keys.dead)
            .key(&keys.sequence)
            .key(&keys.entries)
            .arg(id.as_str())
            .arg(json(&Utc::now())?)
            .arg(json(&JobState::NEW)?)
            .invoke_async(&mut self.commands.clone())
            .await
            .with_context(|| format!("requeueing dead job {id}"))?;
        Ok(requeued == 1)
    }
}

/// The record as hash fields, each a serde JSON value; `job` holds the immutable part, `state` the
/// [`JobState`] alone (the record's JSON has it flat, with `status` and `dead` computed beside it).
fn record_fields(record: &JobRecord) -> Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("job", json(&record.job)?),
        ("state", json(&record.state)?),
        ("deliveries", json(&record.deliveries)?),
        ("updated_at", json(&record.updated_at)?),
        ("tracking_comment_id", json(&record.tracking_comment_id)?),
        ("pull_request", json(&record.pull_request)?),
        ("cancel_requested_by", json(&record.cancel_requested_by)?),
        ("slack_reply_ts", json(&record.slack_reply_ts)?),
        ("slack_thread_ts", json(&record.slack_thread_ts)?),
    ])
}

/// The inverse of [`record_fields`]; `None` for a job that does not exist (no fields).
fn record_from_fields(mut fields: HashMap<String, String>) -> Result<Option<JobRecord>> {
    let Some(job) = fields.remove("job") else {
        return Ok(None);
    };
    let serde_json::Value::Object(mut object) = serde_json::from_str(&job).context("decoding the job")? else {
        bail!("the stored job is not a JSON object");
    };
    for (name, value) in fields {
        let value = serde_json::from_str(&value).with_context(|| format!("decoding the record's {name}"))?;
        match (name.as_str(), value) {
            // The record's JSON has the state's name and fields flat.
            ("state", serde_json::Value::Object(state)) => object.extend(state),
            (_, value) => {
                object.insert(name, value);
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(object)).map(Some).context("decoding the record")
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| anyhow!("encoding a record field: {error}"))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
