//! A flood of signed webhooks against a real `errand serve` process on a Redis of the test's own,
//! over HTTP: 10,000 deliveries at 64 concurrent connections, about a tenth of them `@agent`
//! mentions, each with its own delivery id, plus redeliveries of some ids. Every mention must be
//! exactly one job, none lost, and no answer a server error.
//!
//! The process's memory is read from `/proc/<pid>/status` when it is idle, after 5,000 and after
//! 10,000 deliveries: its peak (`VmHWM`) must stay under a generous bound and must not keep
//! growing with the number of requests served. The rate and the memory figures are printed (run
//! with `--nocapture`); the rate is not asserted. This is the debug build `cargo test` makes, so
//! the figures are above a release build's (see `bench/` for those).

#[path = "support/redis.rs"]
#[allow(dead_code, reason = "only a server of the test's own is used here")]
mod redis;
#[path = "support/signing.rs"]
#[allow(dead_code, reason = "only the signature is used here")]
mod signing;
#[path = "support/wait.rs"]
mod wait;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use errand::queue::{QueueSettings, RECENT_JOBS, RedisQueue};
use redis::TestRedis;
use serde_json::{Value, json};
use signing::github_signature;
use wait::wait_until;

const SECRET: &str = "flood-test-webhook-secret";
const DELIVERIES: usize = 10_000;
const CONNECTIONS: usize = 64;
/// Every this many deliveries one is a mention.
const MENTION_EVERY: usize = 10;
/// Every this many deliveries one repeats the delivery id of an earlier mention.
const REPEAT_EVERY: usize = 50;

const ERRAND: &str = env!("CARGO_BIN_EXE_errand");
/// The most `serve`'s peak resident memory may reach, in kB: generous (a release build stays
/// under 20 MB under load, see `bench/RESULTS.md`), yet far below what a leak of the flood
/// would take.
const PEAK_BOUND_KB: u64 = 200 * 1024;
/// How much the peak may grow over the second 5,000 deliveries, in kB. Memory that grows with
/// the requests served would show here: keeping each request body (about 6 KB) would add 30 MB.
const SECOND_HALF_GROWTH_BOUND_KB: u64 = 15 * 1024;
/// How long `serve` may take to start answering, and to exit after SIGTERM.
const PROCESS_BOUND: Duration = Duration::from_secs(30);

/// One prepared request: its delivery id, body and signature, and whether it mentions errand.
struct Delivery {
    id: String,
    body: Vec<u8>,
    signature: String,
    mention: bool,
}

/// GitHub's example `issue_comment` delivery without the repository's API links (`*_url`, about
/// half of its 12 KB), so that signing and verifying 10,000 of them in a debug build stays quick.
fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github/webhooks/issue_comment.created.1.json");
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path).expect("the fixture")).expect("JSON");
    let repository = payload["repository"].as_object_mut().expect("a repository object");
    repository.retain(|name, _| !name.ends_with("_url"));
    payload
}

/// The example with its comment's text and id replaced.
fn issue_comment(fixture: &Value, text: &str, comment_id: usize) -> Vec<u8> {
    let mut payload = fixture.clone();
    payload["comment"]["body"] = json!(text);
    payload["comment"]["id"] = json!(comment_id);
    serde_json::to_vec(&payload).expect("JSON")
}

fn deliveries() -> Vec<Delivery> {
    let mut all = Vec::with_capacity(DELIVERIES);
    let mut mentions = Vec::new();
    let fixture = fixture();
    for n in 0..DELIVERIES {
        let delivery = if n % REPEAT_EVERY == REPEAT_EVERY - 1 && !mentions.is_empty() {
            // A redelivery: the same id and body as an earlier mention.
            let earlier: &Delivery = &all[mentions[n % mentions.len()]];
            Delivery {
                id: earlier.id.clone(),
                body: earlier.body.clone(),
                signature: earlier.signature.clone(),
                mention: true,
            }
        } else {
            let mention = n % MENTION_EVERY == 0;
            let text = if mention { format!("@agent fix bug {n}") } else { format!("I see bug {n} too") };
            let body = issue_comment(&fixture, &text, n);
            if mention {
                mentions.push(n);
            }
            Delivery { id: format!("flood-{n}"), signature: github_signature(SECRET, &body), body, mention }
        };
        all.push(delivery);
    }
    all
}

/// `errand serve` on a free loopback port; killed when dropped (its log printed if the test
/// failed).
struct Serve {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `serve` on `redis` with only the settings given here, rate limits far above the
    /// flood (so the flood still goes through the counters), and waits until it answers.
    async fn start(redis: &TestRedis, http: &reqwest::Client) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = tempfile::tempdir().expect("a temp dir for serve's log");
        let log = dir.path().join("serve.log");
        let file = std::fs::File::create(&log).expect("the log file");
        let mut cmd = Command::new(ERRAND);
        for (key, _) in std::env::vars() {
            if key.starts_with("ERRAND_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .arg("serve")
            .env("ERRAND_REDIS_URL", redis.url())
            .env("ERRAND_LISTEN", format!("127.0.0.1:{port}"))
            .env("ERRAND_GITHUB_WEBHOOK_SECRET", SECRET)
            .env("ERRAND_RATE_LIMIT_REQUESTER", "1000000")
            .env("ERRAND_RATE_LIMIT_REPOSITORY", "1000000")
            .env("ERRAND_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file again"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {ERRAND}: {e}"));
        let mut serve = Serve { child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir };
        wait_until("errand serve answers /healthz", PROCESS_BOUND, async || {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("errand serve exited before answering: {status}\n{}", serve.log_text());
            }
            let answer = http.get(format!("{}/healthz", serve.url)).send().await;
            answer.is_ok_and(|a| a.status().is_success()).then_some(())
        })
        .await;
        serve
    }

    /// Resident memory now and at its peak, from `/proc/<pid>/status`.
    fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("reading serve's /proc/<pid>/status (the flood test needs Linux)");
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {status}"));
            line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).unwrap_or_else(|| panic!("{line}"))
        };
        Memory { rss_kb: field("VmRSS:"), peak_kb: field("VmHWM:") }
    }

    /// Sends SIGTERM and waits for a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let status = wait_until("errand serve exits after SIGTERM", PROCESS_BOUND, async || {
            self.child.try_wait().expect("asking whether serve exited")
        })
        .await;
        assert!(status.success(), "errand serve exits 0 after SIGTERM, not {status}\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- last lines of errand serve ---\n{}", self.log_text());
        }
    }
}

/// Resident memory of a process, in kB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kb: u64,
    peak_kb: u64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} MB resident, {:.1} MB peak", self.rss_kb as f64 / 1024.0, self.peak_kb as f64 / 1024.0)
    }
}

/// Sends `range` of the deliveries at [`CONNECTIONS`] concurrent connections; returns each
/// answer as (index, status, JSON) and how long the batch took.
async fn send(
    http: &reqwest::Client,
    url: &str,
    deliveries: &Arc<Vec<Delivery>>,
    range: Range<usize>,
) -> (Vec<(usize, u16, Value)>, Duration) {
    let next = Arc::new(AtomicUsize::new(range.start));
    let started = Instant::now();
    let senders: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (deliveries, http, next, url, end) =
                (deliveries.clone(), http.clone(), next.clone(), url.to_owned(), range.end);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= end {
                        return answers;
                    }
                    let delivery = &deliveries[n];
                    let response = http
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .header("X-GitHub-Event", "issue_comment")
                        .header("X-GitHub-Delivery", &delivery.id)
                        .header("X-Hub-Signature-256", &delivery.signature)
                        .body(delivery.body.clone())
                        .send()
                        .await
                        .expect("the ingress answers");
                    let status = response.status().as_u16();
                    let json: Value = response.json().await.expect("a JSON answer");
                    answers.push((n, status, json));
                }
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(range.len());
    for sender in senders {
        answers.extend(sender.await.expect("a sender finished"));
    }
    (answers, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_webhooks_makes_exactly_one_job_per_mention_in_bounded_memory() {
    let redis = TestRedis::start_owned();
    let prepared = Instant::now();
    let deliveries = Arc::new(deliveries());
    println!("flood: {DELIVERIES} deliveries prepared and signed in {:.2} s", prepared.elapsed().as_secs_f64());
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("an HTTP client");
    let serve = Serve::start(&redis, &http).await;
    let url = format!("{}/github/webhook", serve.url);

    let idle = serve.memory();
    let half = DELIVERIES / 2;
    let (mut answers, first_took) = send(&http, &url, &deliveries, 0..half).await;
    let after_half = serve.memory();
    let (second, second_took) = send(&http, &url, &deliveries, half..DELIVERIES).await;
    answers.extend(second);
    let after_all = serve.memory();
    let took = first_took + second_took;
    println!(
        "flood: {DELIVERIES} signed webhooks at {CONNECTIONS} connections to errand serve (debug build, Redis queue) \
         in {:.2} s: {:.0} webhooks/s ({:.0}/s for the first {half}, {:.0}/s for the second)",
        took.as_secs_f64(),
        DELIVERIES as f64 / took.as_secs_f64(),
        half as f64 / first_took.as_secs_f64(),
        (DELIVERIES - half) as f64 / second_took.as_secs_f64()
    );
    println!(
        "flood: errand serve memory: idle {idle}; after {half} deliveries {after_half}; after {DELIVERIES} {after_all}"
    );
    assert_eq!(answers.len(), DELIVERIES);
    assert!(
        after_all.peak_kb < PEAK_BOUND_KB,
        "serve's peak resident memory {} kB is over the bound {PEAK_BOUND_KB} kB",
        after_all.peak_kb
    );
    let growth = after_all.peak_kb.saturating_sub(after_half.peak_kb);
    assert!(
        growth < SECOND_HALF_GROWTH_BOUND_KB,
        "serve's peak grew {growth} kB over the second {} deliveries ({after_half} -> {after_all}): memory grows with the requests served",
        DELIVERIES - half
    );

    // Per delivery id: which job ids its answers named, and how many answers were 202.
    let mut named: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut accepted: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, status, json) in &answers {
        let delivery = &deliveries[*n];
        assert!(*status < 500, "delivery {} got {status}: {json}", delivery.id);
        match (delivery.mention, status) {
            (true, 202) => {
                *accepted.entry(&delivery.id).or_default() += 1;
                named.entry(&delivery.id).or_default().insert(json["job_id"].as_str().expect("a job id").to_owned());
            }
            (true, 200) => {
                let original = json["duplicate_of"].as_str().unwrap_or_else(|| panic!("{}: {json}", delivery.id));
                named.entry(&delivery.id).or_default().insert(original.to_owned());
            }
            (false, 200) => assert!(json["ignored"].is_string(), "{}: {json}", delivery.id),
            _ => panic!("delivery {} (mention: {}) got {status}: {json}", delivery.id, delivery.mention),
        }
    }
    let mention_ids: BTreeSet<&str> = deliveries.iter().filter(|d| d.mention).map(|d| d.id.as_str()).collect();
    let repeats = deliveries.iter().filter(|d| d.mention).count() - mention_ids.len();
    assert!(mention_ids.len() >= DELIVERIES / MENTION_EVERY - DELIVERIES / REPEAT_EVERY && repeats > 100);
    assert!(accepted.values().all(|&n| n == 1), "a delivery id was accepted twice");
    assert_eq!(accepted.len(), mention_ids.len(), "a mention was never accepted");
    assert!(named.values().all(|ids| ids.len() == 1), "a redelivery named another job than the first");

    // The namespace `errand serve` uses: the binary cannot choose another.
    let settings = QueueSettings { lease: Duration::from_secs(30), max_deliveries: 3 };
    let queue = RedisQueue::connect(redis.url(), settings).await.expect("connecting to the test's Redis");
    let jobs = queue.list(RECENT_JOBS).await.expect("the queue lists its jobs");
    let in_queue: BTreeSet<String> = jobs.iter().map(|record| record.job.id.to_string()).collect();
    let answered: BTreeSet<String> = named.values().flatten().cloned().collect();
    assert_eq!(jobs.len(), mention_ids.len(), "not exactly one job per mention");
    assert_eq!(in_queue, answered);
    assert_eq!(queue.outstanding().await.expect("outstanding"), mention_ids.len());
    println!("flood: {} mentions, {repeats} redeliveries, {} jobs", mention_ids.len(), jobs.len());

    serve.stop().await;
}
