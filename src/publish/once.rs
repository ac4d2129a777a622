//! Posting once: the ingress's acknowledger and a worker may reach the same job at the same time,
//! and a job may run again after a crash. A lock per job lets one party post while the other waits
//! for what it posted; what was posted is recorded in the job's record (and marked in the text, so
//! a record that lost the write still finds it).

use std::future::Future;
use std::time::Duration;

use crate::job::JobRecord;
use crate::queue::Queue;

/// How long one party may hold a job's acknowledgement lock (and the most another waits for it).
const ACK_LOCK_TTL: Duration = Duration::from_secs(30);
/// How often a waiting party looks whether the acknowledgement was posted.
const ACK_LOCK_POLL: Duration = Duration::from_millis(100);

/// Runs `post` under the job's acknowledgement lock unless `done` finds what it posts already
/// recorded; the party that waited returns what the other posted.
pub async fn once<T, E, F>(
    queue: &Queue,
    record: &JobRecord,
    done: impl Fn(Option<&JobRecord>) -> Option<T>,
    post: impl FnOnce() -> F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let id = &record.job.id;
    let lock = format!("ack:{id}");
    let deadline = tokio::time::Instant::now() + ACK_LOCK_TTL;
    loop {
        let current = queue.get(id).await.ok().flatten();
        if let Some(found) = done(current.as_ref()) {
            return Ok(found);
        }
        let locked = queue.try_lock(&lock, ACK_LOCK_TTL).await.unwrap_or(true);
        if locked || tokio::time::Instant::now() >= deadline {
            let posted = post().await;
            if locked {
                let _ = queue.unlock(&lock).await;
            }
            return posted;
        }
        tokio::time::sleep(ACK_LOCK_POLL).await;
    }
}
