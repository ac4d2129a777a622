//! The queue contract: one suite of tests, run against the memory queue and the Redis queue.

// Only the Redis helper: the rest of `support` is not needed here.
#[path = "support/redis.rs"]
mod test_redis;
#[path = "support/wait.rs"]
mod wait;

use errand::request::ids::{CommentId, IssueNumber, ThreadKey};
use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use errand::job::{Job, JobId, JobKind, JobState, JobStatus, JobUpdate, PullRequestRef, ReplyTarget, Source, Task};
use errand::queue::{Enqueued, MemoryQueue, Queue, QueueSettings, RedisQueue};
use test_redis::TestRedis;
use tokio::time::Instant;
use wait::wait_until;

/// Long enough that no lease lapses by accident during a test.
const LONG_LEASE: Duration = Duration::from_secs(60);
/// Short enough that a test can watch a lease lapse.
const SHORT_LEASE: Duration = Duration::from_millis(300);
/// How long a test waits for something that should happen soon.
const PATIENCE: Duration = Duration::from_secs(5);
/// How long a test waits to see that something does not happen.
const BRIEFLY: Duration = Duration::from_millis(200);

/// Where a contract test's queue lives.
enum Backend {
    Memory,
    Redis(TestRedis),
}

impl Backend {
    async fn queue(&self, lease: Duration) -> Queue {
        let settings = QueueSettings { lease, max_deliveries: 3 };
        match self {
            Self::Memory => Queue::Memory(MemoryQueue::new(settings)),
            Self::Redis(redis) => Queue::Redis(
                RedisQueue::connect_with_prefix(redis.url(), settings, redis.namespace())
                    .await
                    .expect("connecting to the test Redis"),
            ),
        }
    }
}

/// Runs each contract test once per backend.
macro_rules! contract_tests {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::within_time(super::$test(super::Backend::Memory)).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $test() {
                    let redis = super::TestRedis::start();
                    super::within_time(super::$test(super::Backend::Redis(redis))).await;
                }
            )*
        }
    };
}

contract_tests!(
    an_enqueued_job_is_claimed_and_finished,
    a_repeated_dedup_key_adds_no_second_job,
    positions_count_waiting_jobs_in_enqueue_order_until_claimed,
    jobs_are_claimed_in_the_order_they_were_enqueued,
    a_claim_waits_for_a_job_enqueued_while_it_waits,
    a_leased_job_is_not_claimable_by_another_worker,
    a_lapsed_lease_is_reclaimed_by_another_worker_and_the_first_worker_is_fenced_off,
    renewing_keeps_a_job_past_several_lease_lengths,
    a_retried_job_returns_after_its_delay_with_a_growing_delivery_count,
    claims_prefer_a_lapsed_lease_then_a_due_retry_then_a_new_job,
    deliveries_beyond_the_maximum_are_still_handed_out,
    a_dead_lettered_job_is_listed_as_dead_and_can_be_requeued,
    jobs_are_listed_newest_first,
    outstanding_counts_queued_delayed_and_leased_jobs,
    updates_merge_into_the_record_and_keep_large_ids_exact,
    a_thread_lists_its_open_tasks_oldest_first_and_remembers_the_last,
    a_deferred_job_comes_back_without_counting_a_delivery,
    a_stop_request_is_on_the_record_a_worker_claims,
);

async fn within_time(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(60), test).await.expect("the test took longer than a minute");
}

fn job(n: u64) -> Job {
    Job {
        id: JobId::generate(),
        repo: "acme/calculator".parse().expect("a valid repository name"),
        source: Source::GithubIssueComment,
        requested_by: "octocat".into(),
        created_at: Utc::now(),
        installation_id: Some(42),
        task: Task {
            instruction: format!("fix bug {n}"),
            title: format!("Bug {n}"),
            body: "It is broken.".into(),
            url: format!("https://github.com/acme/calculator/issues/{n}#issuecomment-{n}"),
        },
        reply: ReplyTarget::GithubIssue { issue: IssueNumber(n), comment_id: Some(CommentId(1000 + n)) },
        kind: Default::default(),
        follow_up: None,
        attempts: None,
        continues: None,
    }
}

/// Enqueues a job under a key of its own and returns its id.
async fn enqueue(queue: &Queue, n: u64) -> JobId {
    let job = job(n);
    let id = job.id.clone();
    let enqueued = queue.enqueue(job, &format!("test:{id}")).await.expect("enqueueing");
    assert!(matches!(enqueued, Enqueued::Accepted { .. }), "a fresh key was not accepted: {enqueued:?}");
    id
}

async fn claim_now(queue: &Queue, worker: &str) -> Option<errand::queue::Delivery> {
    queue.claim(worker, Duration::ZERO).await.expect("claiming")
}

async fn claim_soon(queue: &Queue, worker: &str) -> errand::queue::Delivery {
    queue.claim(worker, PATIENCE).await.expect("claiming").expect("no job to claim within the patience")
}

async fn an_enqueued_job_is_claimed_and_finished(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let id = enqueue(&queue, 1).await;
    assert_eq!(queue.get(&id).await.unwrap().unwrap().state, JobState::Queued { retry_reason: None });

    let delivery = claim_soon(&queue, "worker-a").await;
    assert_eq!(delivery.record.job.id, id);
    assert_eq!(delivery.attempt, 1);
    assert_eq!(delivery.worker, "worker-a");
    assert_eq!(delivery.record.state, JobState::Running);
    assert_eq!(delivery.claimed_from, JobState::Queued { retry_reason: None });
    assert_eq!(queue.get(&id).await.unwrap().unwrap().state, JobState::Running);
    assert_eq!(queue.outstanding().await.unwrap(), 1);

    // Only a state a finished job can be in ends a delivery; a dead job goes through the dead letter.
    for unfinished in [JobState::Running, JobState::Dead { reason: "gave up".into() }] {
        assert!(queue.finish(&delivery, unfinished.clone()).await.is_err(), "finished as {unfinished:?}");
    }
    assert_eq!(queue.get(&id).await.unwrap().unwrap().state, JobState::Running);
    assert!(queue.renew(&delivery).await.unwrap(), "a refused finish released the lease");

    queue.finish(&delivery, JobState::Succeeded).await.unwrap();
    let record = queue.get(&id).await.unwrap().unwrap();
    assert_eq!((record.state, record.deliveries), (JobState::Succeeded, 1));
    assert_eq!(queue.outstanding().await.unwrap(), 0);
    assert!(claim_now(&queue, "worker-a").await.is_none(), "a finished job was handed out again");
    assert!(queue.finish(&delivery, JobState::Succeeded).await.is_err(), "a job was finished twice");
}

async fn a_repeated_dedup_key_adds_no_second_job(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let first = job(1);
    let first_id = first.id.clone();
    assert_eq!(queue.enqueue(first, "github:delivery-1").await.unwrap(), Enqueued::Accepted { position: 1 });
    let again = queue.enqueue(job(1), "github:delivery-1").await.unwrap();
    assert_eq!(again, Enqueued::Duplicate { job_id: first_id.clone() });

    assert_eq!(queue.outstanding().await.unwrap(), 1);
    let listed: Vec<JobId> = queue.list(10).await.unwrap().into_iter().map(|r| r.job.id).collect();
    assert_eq!(listed, [first_id]);
}

async fn positions_count_waiting_jobs_in_enqueue_order_until_claimed(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let job = job(n);
        ids.push(job.id.clone());
        let enqueued = queue.enqueue(job, &format!("key-{n}")).await.unwrap();
        assert_eq!(enqueued, Enqueued::Accepted { position: n as usize });
    }
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(queue.position(id).await.unwrap(), Some(index + 1));
    }

    claim_soon(&queue, "worker-a").await;
    assert_eq!(queue.position(&ids[0]).await.unwrap(), None, "a claimed job still has a position");
    assert_eq!(queue.position(&ids[1]).await.unwrap(), Some(1));
    assert_eq!(queue.position(&ids[2]).await.unwrap(), Some(2));
    assert_eq!(queue.position(&JobId::generate()).await.unwrap(), None);
}

async fn jobs_are_claimed_in_the_order_they_were_enqueued(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let mut enqueued = Vec::new();
    for n in 1..=5 {
        enqueued.push(enqueue(&queue, n).await);
    }
    let mut claimed = Vec::new();
    for _ in 1..=5 {
        claimed.push(claim_soon(&queue, "worker-a").await.record.job.id);
    }
    assert_eq!(claimed, enqueued);
}

async fn a_claim_waits_for_a_job_enqueued_while_it_waits(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let started = Instant::now();
    let waiting = tokio::spawn({
        let queue = queue.clone();
        async move { queue.claim("worker-a", PATIENCE * 2).await }
    });
    let id = enqueue(&queue, 1).await;
    let delivery = waiting.await.unwrap().unwrap().expect("the waiting claim got nothing");
    assert_eq!(delivery.record.job.id, id);
    assert!(started.elapsed() < PATIENCE, "the claim did not wake when the job arrived");
}

async fn a_leased_job_is_not_claimable_by_another_worker(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    enqueue(&queue, 1).await;
    let delivery = claim_soon(&queue, "worker-a").await;
    assert!(queue.claim("worker-b", BRIEFLY).await.unwrap().is_none(), "a leased job was handed out twice");
    assert!(queue.renew(&delivery).await.unwrap());
    assert_eq!(queue.outstanding().await.unwrap(), 1);
}

async fn a_lapsed_lease_is_reclaimed_by_another_worker_and_the_first_worker_is_fenced_off(backend: Backend) {
    let queue = backend.queue(SHORT_LEASE).await;
    let id = enqueue(&queue, 1).await;
    let first = claim_soon(&queue, "worker-a").await;

    // Worker a goes silent; b's claim returns once the lease has lapsed.
    let second = claim_soon(&queue, "worker-b").await;
    assert_eq!(second.record.job.id, id);
    assert_eq!(second.attempt, 2);
    assert_eq!(second.worker, "worker-b");
    assert_eq!(second.claimed_from, JobState::Running, "the lapsed delivery's state");

    assert!(!queue.renew(&first).await.unwrap(), "the worker that lost the lease renewed it");
    assert!(queue.finish(&first, JobState::Succeeded).await.is_err(), "the old worker finished the job");
    assert!(queue.retry_later(&first, Duration::ZERO, "stale").await.is_err());
    assert!(queue.dead_letter(&first, "stale").await.is_err());
    assert!(queue.renew(&second).await.unwrap(), "the new holder could not renew");
    assert_eq!(queue.get(&id).await.unwrap().unwrap().state, JobState::Running);

    queue.finish(&second, JobState::Succeeded).await.unwrap();
    assert_eq!(queue.outstanding().await.unwrap(), 0);
}

async fn renewing_keeps_a_job_past_several_lease_lengths(backend: Backend) {
    let queue = backend.queue(SHORT_LEASE).await;
    enqueue(&queue, 1).await;
    let delivery = claim_soon(&queue, "worker-a").await;

    let renew_every_100ms = async {
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        loop {
            ticks.tick().await;
            assert!(queue.renew(&delivery).await.unwrap(), "a renewed lease was lost");
        }
    };
    let stolen = tokio::select! {
        claimed = queue.claim("worker-b", SHORT_LEASE * 5) => claimed.unwrap(),
        () = renew_every_100ms => unreachable!("the renewal loop never ends"),
    };
    assert!(stolen.is_none(), "another worker claimed a job whose lease was being renewed");
    assert!(queue.renew(&delivery).await.unwrap());
    queue.finish(&delivery, JobState::Succeeded).await.unwrap();
}

async fn a_retried_job_returns_after_its_delay_with_a_growing_delivery_count(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let id = enqueue(&queue, 1).await;
    let first = claim_soon(&queue, "worker-a").await;
    let delay = Duration::from_millis(300);
    let retried_at = Instant::now();
    queue.retry_later(&first, delay, "the mirror was busy").await.unwrap();

    let record = queue.get(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Queued { retry_reason: Some("the mirror was busy".into()) });
    assert_eq!(queue.outstanding().await.unwrap(), 1);
    assert_eq!(queue.position(&id).await.unwrap(), None, "a delayed retry has a place in the line");
    assert!(claim_now(&queue, "worker-b").await.is_none(), "a retry was handed out before its delay");

    let second = claim_soon(&queue, "worker-b").await;
    // Redis measures the delay by its own clock; allow for a little skew against ours.
    assert!(retried_at.elapsed() >= delay - Duration::from_millis(50), "a retry came back early");
    assert_eq!((second.record.job.id.clone(), second.attempt), (id.clone(), 2));
    assert_eq!(second.record.state, JobState::Running);
    assert_eq!(second.claimed_from, JobState::Queued { retry_reason: Some("the mirror was busy".into()) });
    queue.finish(&second, JobState::Succeeded).await.unwrap();
    assert_eq!(queue.get(&id).await.unwrap().unwrap().state, JobState::Succeeded, "a success kept the retry's error");
}

async fn claims_prefer_a_lapsed_lease_then_a_due_retry_then_a_new_job(backend: Backend) {
    let queue = backend.queue(SHORT_LEASE).await;
    let abandoned = enqueue(&queue, 1).await;
    let retried = enqueue(&queue, 2).await;
    claim_soon(&queue, "worker-a").await;
    let retry = claim_soon(&queue, "worker-a").await;
    // Only claiming could observe the lapse, and a claim would take the job, so let the lease run out.
    tokio::time::sleep(SHORT_LEASE * 2).await;
    queue.retry_later(&retry, Duration::ZERO, "try again").await.unwrap();
    let fresh = enqueue(&queue, 3).await;

    let mut order = Vec::new();
    for _ in 0..3 {
        let delivery = claim_soon(&queue, "worker-b").await;
        order.push(delivery.record.job.id.clone());
        queue.finish(&delivery, JobState::Succeeded).await.unwrap();
    }
    assert_eq!(order, [abandoned, retried, fresh]);
}

async fn deliveries_beyond_the_maximum_are_still_handed_out(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let max = queue.settings().max_deliveries;
    let id = enqueue(&queue, 1).await;
    for attempt in 1..=max + 1 {
        let delivery = claim_soon(&queue, "worker-a").await;
        assert_eq!((delivery.attempt, delivery.record.deliveries), (attempt, attempt));
        if attempt <= max {
            queue.retry_later(&delivery, Duration::ZERO, "flaky").await.unwrap();
        } else {
            queue.dead_letter(&delivery, "gave up after too many attempts").await.unwrap();
        }
    }
    assert_eq!(queue.dead().await.unwrap()[0].job.id, id);
}

async fn a_dead_lettered_job_is_listed_as_dead_and_can_be_requeued(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let id = enqueue(&queue, 1).await;
    assert!(!queue.requeue_dead(&id).await.unwrap(), "a live job was requeued as dead");
    let delivery = claim_soon(&queue, "worker-a").await;
    queue.dead_letter(&delivery, "the agent crashed every time").await.unwrap();

    let record = queue.get(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Dead { reason: "the agent crashed every time".into() });
    assert_eq!(record.state.status(), JobStatus::Failed);
    assert_eq!(queue.outstanding().await.unwrap(), 0);
    let dead: Vec<JobId> = queue.dead().await.unwrap().into_iter().map(|r| r.job.id).collect();
    assert_eq!(dead, std::slice::from_ref(&id));
    assert!(claim_now(&queue, "worker-a").await.is_none(), "a dead job was handed out");

    assert!(queue.requeue_dead(&id).await.unwrap());
    assert!(!queue.requeue_dead(&id).await.unwrap(), "a job was requeued twice");
    assert!(queue.dead().await.unwrap().is_empty());
    let record = queue.get(&id).await.unwrap().unwrap();
    assert_eq!((record.state, record.deliveries), (JobState::Queued { retry_reason: None }, 0));
    assert_eq!(queue.position(&id).await.unwrap(), Some(1));
    assert_eq!(queue.outstanding().await.unwrap(), 1);
    assert_eq!(claim_soon(&queue, "worker-a").await.attempt, 1);
}

async fn jobs_are_listed_newest_first(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(enqueue(&queue, n).await);
    }
    let delivery = claim_soon(&queue, "worker-a").await;
    queue.finish(&delivery, JobState::Failed { reason: "tests failed".into() }).await.unwrap();

    let listed: Vec<JobId> = queue.list(10).await.unwrap().into_iter().map(|r| r.job.id).collect();
    assert_eq!(listed, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    let newest_two: Vec<JobId> = queue.list(2).await.unwrap().into_iter().map(|r| r.job.id).collect();
    assert_eq!(newest_two, [ids[2].clone(), ids[1].clone()]);
    let finished = &queue.list(10).await.unwrap()[2];
    assert_eq!(finished.state, JobState::Failed { reason: "tests failed".into() });
    assert!(queue.list(0).await.unwrap().is_empty());
}

async fn outstanding_counts_queued_delayed_and_leased_jobs(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    assert_eq!(queue.outstanding().await.unwrap(), 0);
    for n in 1..=3 {
        enqueue(&queue, n).await;
    }
    assert_eq!(queue.outstanding().await.unwrap(), 3);

    let finished = claim_soon(&queue, "worker-a").await;
    queue.finish(&finished, JobState::Succeeded).await.unwrap();
    assert_eq!(queue.outstanding().await.unwrap(), 2);

    let delayed = claim_soon(&queue, "worker-a").await;
    queue.retry_later(&delayed, Duration::from_secs(3600), "later").await.unwrap();
    assert_eq!(queue.outstanding().await.unwrap(), 2, "a delayed retry is not counted");

    let leased = claim_soon(&queue, "worker-a").await;
    assert_eq!(queue.outstanding().await.unwrap(), 2, "a leased job is not counted");
    queue.finish(&leased, JobState::Cancelled { by: "octocat".into() }).await.unwrap();
    assert_eq!(queue.outstanding().await.unwrap(), 1);
}

async fn updates_merge_into_the_record_and_keep_large_ids_exact(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let id = enqueue(&queue, 1).await;
    // Above 2^53: survives only if nothing on the way stores it as a float.
    let comment_id = (1u64 << 62) + 1;
    queue.update(&id, JobUpdate { tracking_comment_id: Some(comment_id), ..JobUpdate::default() }).await.unwrap();
    let pull_request = PullRequestRef { number: 7, url: "https://github.com/acme/calculator/pull/7".into() };
    queue.update(&id, JobUpdate { pull_request: Some(pull_request.clone()), ..JobUpdate::default() }).await.unwrap();

    let delivery = claim_soon(&queue, "worker-a").await;
    assert_eq!(delivery.record.tracking_comment_id, Some(comment_id));
    let record = queue.get(&id).await.unwrap().unwrap();
    assert_eq!(record.tracking_comment_id, Some(comment_id));
    assert_eq!(record.pull_request, Some(pull_request));
    assert_eq!((record.state, record.deliveries), (JobState::Running, 1), "an update reset queue fields");
    assert_eq!(record.job.task.instruction, "fix bug 1");

    let missing = queue.update(&JobId::generate(), JobUpdate::default()).await;
    assert!(missing.is_err(), "updating a job that does not exist succeeded");
    assert!(queue.get(&JobId::generate()).await.unwrap().is_none());
}

async fn a_thread_lists_its_open_tasks_oldest_first_and_remembers_the_last(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let repo: errand::job::RepoName = "acme/calculator".parse().unwrap();
    let thread = &ThreadKey::github(&repo, IssueNumber(1));
    let first = enqueue(&queue, 1).await;
    let other_thread = enqueue(&queue, 2).await;
    let second = enqueue(&queue, 1).await;
    // A reply (help, status) belongs to no thread: it never waits and is never retried.
    let mut reply = job(1);
    reply.kind = JobKind::Reply { reply: errand::request::Reply::Help, mention: "@agent".into() };
    queue.enqueue(reply, "test:reply").await.unwrap();

    let ids = |records: Vec<errand::job::JobRecord>| records.into_iter().map(|r| r.job.id).collect::<Vec<_>>();
    assert_eq!(ids(queue.open_in_thread(thread).await.unwrap()), [first.clone(), second.clone()]);
    assert_eq!(queue.last_in_thread(thread).await.unwrap().map(|r| r.job.id), Some(second.clone()));

    let delivery = claim_soon(&queue, "worker-a").await;
    assert_eq!(delivery.record.job.id, first);
    queue.finish(&delivery, JobState::Succeeded).await.unwrap();
    assert_eq!(ids(queue.open_in_thread(thread).await.unwrap()), std::slice::from_ref(&second));
    assert_eq!(ids(queue.open_in_thread(&ThreadKey::github(&repo, IssueNumber(2))).await.unwrap()), [other_thread]);

    for _ in 0..3 {
        let delivery = claim_soon(&queue, "worker-a").await;
        queue.finish(&delivery, JobState::Cancelled { by: "octocat".into() }).await.unwrap();
    }
    assert!(queue.open_in_thread(thread).await.unwrap().is_empty());
    let last = queue.last_in_thread(thread).await.unwrap().expect("the thread's last job");
    assert_eq!((last.job.id, last.state), (second, JobState::Cancelled { by: "octocat".into() }));
    assert!(queue.last_in_thread(&ThreadKey::github(&repo, IssueNumber(9))).await.unwrap().is_none());
}

async fn a_deferred_job_comes_back_without_counting_a_delivery(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let id = enqueue(&queue, 1).await;
    let earlier = JobId::generate();
    for n in 0..5 {
        let delivery = claim_soon(&queue, "worker-a").await;
        assert_eq!(delivery.attempt, 1, "waiting counted as a delivery");
        // What tells a worker that it already said why the job waits.
        let claimed_from = if n == 0 {
            JobState::Queued { retry_reason: None }
        } else {
            JobState::Waiting { behind: earlier.clone() }
        };
        assert_eq!(delivery.claimed_from, claimed_from);
        queue.defer(&delivery, Duration::from_millis(50), &earlier).await.unwrap();
        let record = queue.get(&id).await.unwrap().unwrap();
        assert_eq!(record.state, JobState::Waiting { behind: earlier.clone() });
        assert_eq!(record.state.status(), JobStatus::Queued);
    }
    let delivery = claim_soon(&queue, "worker-a").await;
    queue.retry_later(&delivery, Duration::ZERO, "GitHub answered 502").await.unwrap();
    assert_eq!(claim_soon(&queue, "worker-a").await.attempt, 2, "a real retry is counted");
}

async fn a_stop_request_is_on_the_record_a_worker_claims(backend: Backend) {
    let queue = backend.queue(LONG_LEASE).await;
    let id = enqueue(&queue, 1).await;
    let stop = JobUpdate { cancel_requested_by: Some("octocat".into()), ..JobUpdate::default() };
    queue.update(&id, stop).await.unwrap();
    let delivery = claim_soon(&queue, "worker-a").await;
    assert_eq!(delivery.record.cancel_requested_by.as_deref(), Some("octocat"));
    assert_eq!(delivery.record.state, JobState::Running, "a stop request changed the state by itself");
}

/// Redis only: the queue's connections come back after Redis restarts (empty: it never saves).
#[tokio::test]
async fn the_redis_queue_reconnects_after_redis_restarts() {
    let mut redis = TestRedis::start_owned();
    let queue = RedisQueue::connect_with_prefix(
        redis.url(),
        QueueSettings { lease: LONG_LEASE, max_deliveries: 3 },
        redis.namespace(),
    )
    .await
    .unwrap();
    let queue = Queue::Redis(queue);
    enqueue(&queue, 1).await;

    redis.stop();
    assert!(queue.outstanding().await.is_err(), "a stopped Redis answered");
    redis.restart();

    let id = wait_until("the queue reconnects and takes a job", PATIENCE, async || {
        let job = job(2);
        let id = job.id.clone();
        match queue.enqueue(job, "after-restart").await {
            Ok(_) => Some(id),
            Err(error) => {
                eprintln!("retrying after the restart: {error:#}");
                None
            }
        }
    })
    .await;
    let delivery = claim_soon(&queue, "worker-a").await;
    assert_eq!(delivery.record.job.id, id);
    queue.finish(&delivery, JobState::Succeeded).await.unwrap();
}
