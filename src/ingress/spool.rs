//! A bounded local spool, so that a queue outage loses no accepted webhook.
//!
//! GitHub does not redeliver a webhook by itself: answering 5xx loses the request. When the queue
//! cannot take a job, the ingress writes the job and its dedup key here and answers 202; a
//! background task replays the spool into the queue as soon as the queue answers again.
//!
//! - One file per job, `<unix ms, 13 digits>-<sequence, 10 digits>-<job id>.job`, so names sort
//!   oldest first. A file is written to `.tmp-<name>`, fsynced, renamed into place and the
//!   directory fsynced: after a crash a job is either whole in the spool or was never answered 202.
//! - Replay goes oldest first and deletes a file only after the queue answered `Accepted` or
//!   `Duplicate`. A crash between the two replays the job again and the dedup key (checked in the
//!   queue) drops it, so at worst the spool is replayed twice, never a job run twice.
//! - Bounded by a number of jobs and of bytes; when full the ingress answers 503.
//! - A file that cannot be read as a spooled job is renamed to `<name>.corrupt` (kept for a person
//!   to look at, no longer counted) so it cannot block the jobs behind it.
//! - One directory per `serve` process: the bound is counted in memory from a scan at start.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::job::{Job, JobId};
use crate::queue::{Enqueued, Queue};

/// Spooled jobs end with this; anything else in the directory is not a job.
const JOB_SUFFIX: &str = ".job";
/// Files being written start with this; leftovers of a crash are deleted at start.
const TMP_PREFIX: &str = ".tmp-";
/// Appended to a file that cannot be read back as a spooled job.
const CORRUPT_SUFFIX: &str = ".corrupt";
/// The first pause after the queue refused a replay; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between two replay attempts while the queue is down: how late the spool
/// notices that the queue is back.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How long the supervisor waits before restarting a replay task that panicked.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// What a spool file holds.
#[derive(Debug, Serialize, Deserialize)]
struct SpooledJob {
    dedup_key: String,
    job: Job,
}

/// Why a job could not be spooled; the ingress answers 503 either way.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({jobs} jobs, {bytes} bytes)")]
    Full { jobs: usize, bytes: u64 },
    #[error("writing to the spool failed: {0}")]
    Io(#[from] io::Error),
}

/// The spool directory and what is in it.
pub struct Spool {
    dir: PathBuf,
    max_jobs: usize,
    max_bytes: u64,
    index: Mutex<Index>,
    /// Woken when a job is spooled, so the replay task looks at once.
    added: Notify,
    sequence: AtomicU64,
}

/// The spooled files by name (oldest first) with their sizes, plus space reserved by writes in
/// progress, so that concurrent writes cannot pass the bound together.
#[derive(Default)]
struct Index {
    files: BTreeMap<String, u64>,
    bytes: u64,
    reserved_jobs: usize,
    reserved_bytes: u64,
}

impl Spool {
    /// Opens (creating) the spool in `dir`: deletes half-written files of a crash and counts the
    /// jobs left by a previous run, which the replay task will enqueue.
    pub fn open(dir: &Path, max_jobs: usize, max_bytes: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut index = Index::default();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                fs::remove_file(entry.path())?;
            } else if name.ends_with(JOB_SUFFIX) {
                let size = entry.metadata()?.len();
                index.bytes += size;
                index.files.insert(name, size);
            }
        }
        if !index.files.is_empty() {
            tracing::warn!(jobs = index.files.len(), dir = %dir.display(), "the spool holds jobs of an earlier run");
        }
        Ok(Self {
            dir: dir.to_owned(),
            max_jobs,
            max_bytes,
            index: Mutex::new(index),
            added: Notify::new(),
            sequence: AtomicU64::new(0),
        })
    }

    /// How many jobs wait in the spool (written and being written).
    pub fn len(&self) -> usize {
        let index = self.index();
        index.files.len() + index.reserved_jobs
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        // The index holds plain counters; a panic elsewhere leaves them usable.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `job` to the spool durably, or says why it cannot.
    pub async fn push(&self, job: &Job, dedup_key: &str) -> Result<(), SpoolError> {
        let bytes = serde_json::to_vec(&SpooledJob { dedup_key: dedup_key.to_owned(), job: job.clone() })
            .map_err(io::Error::other)?;
        let size = bytes.len() as u64;
        {
            let mut index = self.index();
            let jobs = index.files.len() + index.reserved_jobs;
            let used = index.bytes + index.reserved_bytes;
            if jobs >= self.max_jobs || used + size > self.max_bytes {
                return Err(SpoolError::Full { jobs, bytes: used });
            }
            index.reserved_jobs += 1;
            index.reserved_bytes += size;
        }
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis());
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!("{millis:013}-{sequence:010}-{}{JOB_SUFFIX}", job.id);
        let dir = self.dir.clone();
        let file = name.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &file, &bytes))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)));
        let mut index = self.index();
        index.reserved_jobs -= 1;
        index.reserved_bytes -= size;
        written?;
        index.files.insert(name, size);
        index.bytes += size;
        drop(index);
        self.added.notify_one();
        Ok(())
    }

    fn oldest(&self) -> Option<String> {
        self.index().files.keys().next().cloned()
    }

    fn forget(&self, name: &str) {
        let mut index = self.index();
        if let Some(size) = index.files.remove(name) {
            index.bytes -= size;
        }
    }

    /// Reads a spooled file; `None` when it is not a spooled job (it is set aside).
    async fn read(&self, name: &str) -> Option<SpooledJob> {
        let path = self.dir.join(name);
        let read = tokio::task::spawn_blocking(move || fs::read(path))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)));
        let problem = match read {
            Ok(bytes) => match serde_json::from_slice::<SpooledJob>(&bytes) {
                Ok(spooled) => return Some(spooled),
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        };
        let aside = self.dir.join(format!("{name}{CORRUPT_SUFFIX}"));
        let moved = fs::rename(self.dir.join(name), &aside);
        tracing::error!(file = name, %problem, moved = moved.is_ok(), "a spool file is not a job; set aside");
        self.forget(name);
        None
    }

    /// Deletes a replayed file. A file that cannot be deleted is forgotten all the same: replayed
    /// again after a restart, its dedup key makes it a duplicate.
    fn remove(&self, name: &str) {
        if let Err(error) = fs::remove_file(self.dir.join(name)) {
            tracing::error!(file = name, %error, "could not delete a replayed spool file");
        }
        self.forget(name);
    }
}

/// Writes `name` in `dir` so that it appears whole or not at all, and survives a crash.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dir.join(name))?;
        // The rename is durable only once the directory itself is.
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Starts the supervised replay task; it stops when the returned guard is dropped.
pub(super) fn start_replay(
    spool: Arc<Spool>,
    queue: Queue,
    acks: Option<mpsc::Sender<JobId>>,
    queue_timeout: Duration,
) -> DropGuard {
    let stop = CancellationToken::new();
    let guard = stop.clone().drop_guard();
    tokio::spawn(async move {
        loop {
            let run = tokio::spawn(replay(spool.clone(), queue.clone(), acks.clone(), queue_timeout, stop.clone()));
            match run.await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(%error, "the spool's replay task failed; restarting it");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(RESTART_DELAY) => {}
                    }
                }
            }
        }
    });
    guard
}

/// Enqueues spooled jobs, oldest first, until `stop`.
async fn replay(
    spool: Arc<Spool>,
    queue: Queue,
    acks: Option<mpsc::Sender<JobId>>,
    queue_timeout: Duration,
    stop: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    loop {
        let Some(name) = spool.oldest() else {
            // `notify_one` keeps a permit, so a job spooled just now is not missed.
            tokio::select! {
                () = stop.cancelled() => return,
                () = spool.added.notified() => continue,
            }
        };
        let Some(spooled) = spool.read(&name).await else { continue };
        let id = spooled.job.id.clone();
        let enqueued = tokio::select! {
            () = stop.cancelled() => return,
            enqueued = tokio::time::timeout(queue_timeout, queue.enqueue(spooled.job, &spooled.dedup_key)) => enqueued,
        };
        match enqueued {
            Ok(Ok(enqueued)) => {
                if failing {
                    tracing::info!(waiting = spool.len(), "the queue answers again; replaying the spool");
                    failing = false;
                }
                backoff = FIRST_BACKOFF;
                spool.remove(&name);
                replayed(id, enqueued, acks.as_ref());
            }
            failed => {
                let error = match failed {
                    Ok(Err(error)) => format!("{error:#}"),
                    _ => format!("no answer in {queue_timeout:?}"),
                };
                if !failing {
                    tracing::warn!(%error, waiting = spool.len(), "the queue is still unavailable; the spool waits");
                    failing = true;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Says what became of a replayed job, and asks for its acknowledgement when it is new.
fn replayed(id: JobId, enqueued: Enqueued, acks: Option<&mpsc::Sender<JobId>>) {
    match enqueued {
        Enqueued::Accepted { position } => {
            tracing::info!(job = %id, position, "spooled job queued");
            if let Some(acks) = acks {
                let _ = acks.try_send(id);
            }
        }
        Enqueued::Duplicate { job_id } => {
            tracing::info!(job = %id, duplicate_of = %job_id, "spooled job was a duplicate delivery");
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::job::{ReplyTarget, Source, Task};
    use crate::request::ids::{CommentId, IssueNumber};

    fn job() -> Job {
        Job {
            id: JobId::generate(),
            repo: "acme/app".parse().expect("a repository name"),
            source: Source::GithubIssueComment,
            requested_by: "octocat".into(),
            created_at: Utc::now(),
            installation_id: Some(1),
            task: Task { instruction: "fix".into(), title: "t".into(), body: String::new(), url: String::new() },
            reply: ReplyTarget::GithubIssue { issue: IssueNumber(1), comment_id: Some(CommentId(2)) },
            kind: Default::default(),
            follow_up: None,
            attempts: None,
            continues: None,
        }
    }

    #[tokio::test]
    async fn jobs_survive_a_reopen_oldest_first_and_half_written_files_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 10, 1 << 20).unwrap();
        let (first, second) = (job(), job());
        spool.push(&first, "github:a").await.unwrap();
        spool.push(&second, "github:b").await.unwrap();
        fs::write(dir.path().join(format!("{TMP_PREFIX}half{JOB_SUFFIX}")), b"{").unwrap();
        drop(spool);

        let spool = Spool::open(dir.path(), 10, 1 << 20).unwrap();
        assert_eq!(spool.len(), 2);
        let oldest = spool.oldest().unwrap();
        let read = spool.read(&oldest).await.unwrap();
        assert_eq!((read.job.id, read.dedup_key.as_str()), (first.id, "github:a"));
        spool.remove(&oldest);
        assert_eq!(spool.read(&spool.oldest().unwrap()).await.unwrap().job.id, second.id);
        assert!(!dir.path().join(format!("{TMP_PREFIX}half{JOB_SUFFIX}")).exists());
    }

    #[tokio::test]
    async fn a_full_spool_refuses_by_count_and_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 2, 1 << 20).unwrap();
        spool.push(&job(), "k1").await.unwrap();
        spool.push(&job(), "k2").await.unwrap();
        assert!(matches!(spool.push(&job(), "k3").await, Err(SpoolError::Full { jobs: 2, .. })));

        let small = tempfile::tempdir().unwrap();
        let spool = Spool::open(small.path(), 100, 100).unwrap();
        assert!(matches!(spool.push(&job(), "k").await, Err(SpoolError::Full { jobs: 0, .. })));
        assert!(spool.is_empty());
    }

    #[tokio::test]
    async fn a_corrupt_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(format!("0000000000000-0000000000-x{JOB_SUFFIX}")), b"not json").unwrap();
        let spool = Spool::open(dir.path(), 10, 1 << 20).unwrap();
        let name = spool.oldest().unwrap();
        assert!(spool.read(&name).await.is_none());
        assert!(spool.is_empty());
        assert!(dir.path().join(format!("{name}{CORRUPT_SUFFIX}")).exists());
    }
}
