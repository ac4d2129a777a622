//! A Redis outage loses no accepted webhook: the real ingress over HTTP on a Redis queue, Redis
//! stopped and restarted under it, and the spool drained into the new Redis.
//!
//! Redis here never saves, so a restart comes back empty: the jobs queued before the stop are gone
//! with it (that is Redis's durability setting, not the ingress's). What the ingress promises, and
//! what these tests hold it to, is that every mention answered 2xx *during* the outage is a job
//! after it, exactly once, and that a full spool is answered 503.

#[path = "support/redis.rs"]
#[allow(dead_code, reason = "the shared Redis of `start` is not used here")]
mod redis;
#[path = "support/signing.rs"]
mod signing;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use errand::ingress::{self, IngressSettings, RateLimits};
use errand::queue::{Queue, QueueSettings, RedisQueue};
use redis::TestRedis;
use secrecy::SecretString;
use serde_json::{Value, json};
use signing::{Answer, post_signed_webhook};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wait::wait_until;

const SECRET: &str = "outage-test-webhook-secret";
const API_TOKEN: &str = "outage-test-api-token";
/// GitHub gives up on a delivery after 10 s; every answer must come well within that.
const GITHUB_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the spool may take to drain once Redis is back.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

struct Ingress {
    url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Ingress {
    async fn start(redis: &TestRedis, spool: &Path, spool_max_jobs: usize) -> Ingress {
        let queue = RedisQueue::connect_with_prefix(
            redis.url(),
            QueueSettings { lease: Duration::from_secs(30), max_deliveries: 3 },
            redis.namespace(),
        )
        .await
        .expect("connecting to the test Redis");
        let settings = IngressSettings {
            webhook_secrets: vec![SecretString::from(SECRET)],
            api_token: Some(SecretString::from(API_TOKEN)),
            spool_dir: Some(spool.to_owned()),
            spool_max_jobs,
            rate_limits: RateLimits::none(),
            ..IngressSettings::default()
        };
        let router = ingress::try_router(settings, Queue::Redis(queue), None).expect("the spool opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(ingress::serve(listener, router, async move { stop.cancelled().await }));
        Ingress { url, http: reqwest::Client::new(), shutdown, server }
    }

    /// Delivers a comment and checks that the answer came within GitHub's time-out.
    async fn comment(&self, delivery: &str, text: &str) -> Answer {
        let started = Instant::now();
        let answer =
            post_signed_webhook(&self.http, &self.url, "issue_comment", delivery, &issue_comment(text), SECRET).await;
        assert!(started.elapsed() < GITHUB_TIMEOUT, "{delivery} took {:?}", started.elapsed());
        answer
    }

    /// The job API's list, or `None` while it cannot answer (the queue is down).
    async fn jobs(&self) -> Option<Vec<Value>> {
        let response =
            self.http.get(format!("{}/api/jobs?limit=1000", self.url)).bearer_auth(API_TOKEN).send().await.ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json::<Value>().await.ok()?["jobs"].as_array().cloned()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    }
}

fn issue_comment(text: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github/webhooks/issue_comment.created.1.json");
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path).expect("the fixture")).expect("JSON");
    payload["comment"]["body"] = json!(text);
    serde_json::to_vec(&payload).expect("JSON")
}

fn spooled_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("the spool directory")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "job"))
        .collect()
}

fn job_id(answer: &Answer) -> String {
    answer.json["job_id"].as_str().unwrap_or_else(|| panic!("a job id in {:?}", answer.json)).to_owned()
}

/// Polls the job API until it lists `expected` jobs and the spool is empty, or the deadline.
async fn wait_for_drain(ingress: &Ingress, spool: &Path, expected: usize) -> Vec<Value> {
    wait_until(&format!("the spool is drained and the job API lists {expected} jobs"), DRAIN_DEADLINE, async || {
        let jobs = ingress.jobs().await?;
        (jobs.len() >= expected && spooled_files(spool).is_empty()).then_some(jobs)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_accepted_during_a_redis_outage_are_queued_once_when_it_returns() {
    let mut redis = TestRedis::start_owned();
    let spool = tempfile::tempdir().expect("a spool directory");
    let ingress = Ingress::start(&redis, spool.path(), 1000).await;

    for n in 0..3 {
        let answer = ingress.comment(&format!("before-{n}"), &format!("@agent before {n}")).await;
        assert_eq!(answer.status, 202, "{:?}", answer.json);
        assert!(answer.json.get("spooled").is_none(), "{:?}", answer.json);
    }
    assert_eq!(ingress.jobs().await.map(|jobs| jobs.len()), Some(3));

    redis.stop();
    let mut expected = BTreeSet::new();
    for n in 0..8 {
        let answer = ingress.comment(&format!("during-{n}"), &format!("@agent during {n}")).await;
        assert_eq!(answer.status, 202, "during-{n}: {:?}", answer.json);
        assert_eq!(answer.json["spooled"], true, "{:?}", answer.json);
        expected.insert(job_id(&answer));
    }
    // GitHub redelivered one of them by hand during the outage: spooled again, a duplicate later.
    let again = ingress.comment("during-3", "@agent during 3").await;
    assert_eq!((again.status, &again.json["spooled"]), (202, &json!(true)), "{:?}", again.json);
    assert!(!expected.contains(&job_id(&again)));
    // A comment without a mention is still just ignored.
    assert_eq!(ingress.comment("during-chat", "thanks!").await.status, 200);
    assert_eq!(spooled_files(spool.path()).len(), 9);

    redis.restart();
    let jobs = wait_for_drain(&ingress, spool.path(), expected.len()).await;
    let listed: Vec<String> = jobs.iter().map(|job| job["id"].as_str().expect("an id").to_owned()).collect();
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), unique.len(), "a job is listed twice: {listed:?}");
    assert_eq!(unique, expected, "the jobs after the outage are not exactly those accepted during it");
    let mut instructions: Vec<&str> = jobs.iter().map(|job| job["task"]["instruction"].as_str().unwrap()).collect();
    instructions.sort_unstable();
    assert_eq!(instructions, (0..8).map(|n| format!("during {n}")).collect::<Vec<_>>());
    // Replayed oldest first: the job API lists newest first.
    let mut oldest_first = listed.clone();
    oldest_first.reverse();
    assert_eq!(oldest_first, expected.iter().cloned().collect::<Vec<_>>(), "not replayed in order");

    // Once drained, webhooks go straight to the queue again.
    let after = ingress.comment("after-0", "@agent after").await;
    assert_eq!(after.status, 202, "{:?}", after.json);
    assert!(after.json.get("spooled").is_none(), "{:?}", after.json);
    assert_eq!(ingress.jobs().await.map(|jobs| jobs.len()), Some(9));
    ingress.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_answers_503_and_the_next_ingress_replays_what_an_earlier_one_spooled() {
    let mut redis = TestRedis::start_owned();
    let spool = tempfile::tempdir().expect("a spool directory");
    let first = Ingress::start(&redis, spool.path(), 2).await;

    redis.stop();
    let mut expected = BTreeSet::new();
    for n in 0..2 {
        let answer = first.comment(&format!("spooled-{n}"), &format!("@agent spooled {n}")).await;
        assert_eq!((answer.status, &answer.json["spooled"]), (202, &json!(true)), "{:?}", answer.json);
        expected.insert(job_id(&answer));
    }
    let refused = first.comment("spooled-full", "@agent one too many").await;
    assert_eq!(refused.status, 503, "{:?}", refused.json);
    assert!(refused.json["error"].as_str().is_some_and(|e| e.contains("spool is full")), "{:?}", refused.json);
    first.stop().await;
    assert_eq!(spooled_files(spool.path()).len(), 2);

    redis.restart();
    let second = Ingress::start(&redis, spool.path(), 2).await;
    let jobs = wait_for_drain(&second, spool.path(), 2).await;
    let listed: BTreeSet<String> = jobs.iter().map(|job| job["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!((jobs.len(), listed), (2, expected));
    second.stop().await;
}
