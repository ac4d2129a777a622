//! A flood of signed webhooks against the real router over HTTP: 10,000 deliveries at 64
//! concurrent connections, about a tenth of them `@agent` mentions, each with its own delivery id,
//! plus redeliveries of some ids. Every mention must be exactly one job, none lost, and no answer a
//! server error. The rate is printed (run with `--nocapture`), not asserted.

#[path = "support/signing.rs"]
#[allow(dead_code, reason = "only the signature is used here")]
mod signing;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use errand::ingress::{self, IngressSettings, RateLimits};
use errand::queue::{MemoryQueue, Queue, QueueSettings, RECENT_JOBS};
use secrecy::SecretString;
use serde_json::{Value, json};
use signing::github_signature;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "flood-test-webhook-secret";
const DELIVERIES: usize = 10_000;
const CONNECTIONS: usize = 64;
/// Every this many deliveries one is a mention.
const MENTION_EVERY: usize = 10;
/// Every this many deliveries one repeats the delivery id of an earlier mention.
const REPEAT_EVERY: usize = 50;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_webhooks_makes_exactly_one_job_per_mention() {
    let queue = Queue::Memory(MemoryQueue::new(QueueSettings { lease: Duration::from_secs(30), max_deliveries: 3 }));
    let settings = IngressSettings {
        webhook_secrets: vec![SecretString::from(SECRET)],
        // Counted on every request (the flood goes through the counters) but never reached.
        rate_limits: RateLimits {
            per_requester: Some(1_000_000),
            per_repository: Some(1_000_000),
            ..RateLimits::default()
        },
        ..IngressSettings::default()
    };
    let router = ingress::router(settings, queue.clone(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}/github/webhook", listener.local_addr().expect("its address"));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = tokio::spawn(ingress::serve(listener, router, async move { stop.cancelled().await }));

    let prepared = Instant::now();
    let deliveries = Arc::new(deliveries());
    println!("flood: {DELIVERIES} deliveries prepared and signed in {:.2} s", prepared.elapsed().as_secs_f64());
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("an HTTP client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (deliveries, http, next, url) = (deliveries.clone(), http.clone(), next.clone(), url.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(delivery) = deliveries.get(n) else { return answers };
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
    let mut answers = Vec::with_capacity(DELIVERIES);
    for sender in senders {
        answers.extend(sender.await.expect("a sender finished"));
    }
    let elapsed = started.elapsed();
    println!(
        "flood: {DELIVERIES} signed webhooks at {CONNECTIONS} connections in {:.2} s: {:.0} webhooks/s",
        elapsed.as_secs_f64(),
        DELIVERIES as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(answers.len(), DELIVERIES);

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

    let jobs = queue.list(RECENT_JOBS).await.expect("the queue lists its jobs");
    let in_queue: BTreeSet<String> = jobs.iter().map(|record| record.job.id.to_string()).collect();
    let answered: BTreeSet<String> = named.values().flatten().cloned().collect();
    assert_eq!(jobs.len(), mention_ids.len(), "not exactly one job per mention");
    assert_eq!(in_queue, answered);
    assert_eq!(queue.outstanding().await.expect("outstanding"), mention_ids.len());
    println!("flood: {} mentions, {repeats} redeliveries, {} jobs", mention_ids.len(), jobs.len());

    shutdown.cancel();
    server.await.expect("the server task").expect("the server stopped cleanly");
}
