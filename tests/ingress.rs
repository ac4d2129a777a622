//! The ingress over real HTTP: the real router on a loopback port with a memory queue, driven
//! with signed (and forged) GitHub webhooks, and the job API read back with its token.

#[path = "support/signing.rs"]
mod signing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use errand::config::Mentions;
use errand::ingress::{self, IngressSettings, RateLimits};
use errand::job::{JobId, JobStatus};
use errand::queue::{MemoryQueue, Queue, QueueSettings};
use secrecy::SecretString;
use serde_json::{Value, json};
use signing::{Answer, Webhook, github_signature, post_signed_webhook};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "ingress-test-webhook-secret";
const API_TOKEN: &str = "ingress-test-api-token";

/// A running ingress and what a test needs to talk to it.
struct Ingress {
    url: String,
    queue: Queue,
    acks: mpsc::Receiver<JobId>,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

fn settings() -> IngressSettings {
    IngressSettings {
        webhook_secrets: vec![SecretString::from(SECRET)],
        mentions: Mentions::default(),
        bot_login: Some("errand-bot".into()),
        api_token: Some(SecretString::from(API_TOKEN)),
        ..IngressSettings::default()
    }
}

impl Ingress {
    async fn start() -> Ingress {
        Self::start_with(settings()).await
    }

    /// Serves the real router the way `main` does: a listener and a shutdown signal.
    async fn start_with(settings: IngressSettings) -> Ingress {
        let queue =
            Queue::Memory(MemoryQueue::new(QueueSettings { lease: Duration::from_secs(30), max_deliveries: 3 }));
        let (ack_sender, acks) = mpsc::channel(16);
        let router = ingress::router(settings, queue.clone(), Some(ack_sender));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(ingress::serve(listener, router, async move { stop.cancelled().await }));
        Ingress { url, queue, acks, http: reqwest::Client::new(), shutdown, server }
    }

    async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> Answer {
        post_signed_webhook(&self.http, &self.url, event, delivery, body, SECRET).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the ingress answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("a body");
        Answer { status, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// The jobs the job API lists.
    async fn jobs(&self) -> Vec<Value> {
        let answer = self.get("/api/jobs", Some(API_TOKEN)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.json);
        answer.json["jobs"].as_array().expect("a list of jobs").clone()
    }
}

fn webhooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github/webhooks")
}

fn fixture(name: &str) -> Value {
    let bytes = std::fs::read(webhooks_dir().join(name)).expect("the fixture exists");
    serde_json::from_slice(&bytes).expect("the fixture is JSON")
}

/// GitHub's example `issue_comment` delivery (a person, Codertocat, on issue #1 of
/// Codertocat/Hello-World) with its comment text replaced.
fn issue_comment(body: &str) -> Vec<u8> {
    let mut payload = fixture("issue_comment.created.1.json");
    payload["comment"]["body"] = json!(body);
    serde_json::to_vec(&payload).expect("JSON")
}

#[tokio::test]
async fn every_webhook_example_is_answered_without_a_server_error() {
    let ingress = Ingress::start().await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(webhooks_dir())
        .expect("the webhook examples")
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 60, "expected the full set of examples, found {}", files.len());
    for (n, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let event = name.split('.').next().unwrap();
        let body = std::fs::read(path).unwrap();
        let answer = ingress.deliver(event, &format!("example-{n}"), &body).await;
        assert!((200..500).contains(&answer.status), "{name}: {} {:?}", answer.status, answer.json);
        // They are real payloads: each one must be read, not refused.
        assert!((200..300).contains(&answer.status), "{name} was refused: {} {:?}", answer.status, answer.json);
    }
    // None of the examples mentions @agent, so none starts a job.
    assert!(ingress.jobs().await.is_empty());
}

#[tokio::test]
async fn a_mention_in_an_issue_comment_queues_exactly_one_job() {
    let mut ingress = Ingress::start().await;
    let answer =
        ingress.deliver("issue_comment", "delivery-1", &issue_comment("@agent fix the typo in the README")).await;
    assert_eq!(answer.status, 202, "{:?}", answer.json);
    assert_eq!(answer.json["position"], 1);
    let job_id = answer.json["job_id"].as_str().expect("a job id").to_owned();

    let jobs = ingress.jobs().await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["id"], job_id.as_str());
    assert_eq!(job["status"], "queued");
    // The state in detail beside the stable status: a new job has no retry reason and is not dead.
    assert_eq!((&job["state"], &job["retry_reason"], &job["dead"]), (&json!("queued"), &Value::Null, &json!(false)));
    assert_eq!(job["repo"], "Codertocat/Hello-World");
    assert_eq!(job["source"], "github_issue_comment");
    assert_eq!(job["requested_by"], "Codertocat");
    assert!(job["created_at"].as_str().is_some_and(|t| t.starts_with("20")), "{job}");
    assert_eq!(job["task"]["instruction"], "fix the typo in the README");
    assert_eq!(job["task"]["title"], "Spelling error in the README file");
    assert_eq!(job["reply"], json!({"kind": "github_issue", "issue": 1, "comment_id": 492700400u64}));

    let one = ingress.get(&format!("/api/jobs/{job_id}"), Some(API_TOKEN)).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["id"], job_id.as_str());

    let record = ingress.queue.get(&job_id.parse().unwrap()).await.unwrap().expect("the job is in the queue");
    assert_eq!(record.state.status(), JobStatus::Queued);
    assert_eq!(ingress.acks.try_recv().expect("the worker was told"), record.job.id);
}

#[tokio::test]
async fn redelivering_the_same_delivery_adds_no_second_job() {
    let ingress = Ingress::start().await;
    let body = issue_comment("@agent fix it");
    let first = ingress.deliver("issue_comment", "delivery-same", &body).await;
    assert_eq!(first.status, 202);
    let again = ingress.deliver("issue_comment", "delivery-same", &body).await;
    assert_eq!(again.status, 200, "{:?}", again.json);
    assert_eq!(again.json["duplicate_of"], first.json["job_id"]);
    assert_eq!(ingress.jobs().await.len(), 1);
}

#[tokio::test]
async fn a_comment_on_a_pull_request_queues_a_pull_request_job() {
    let ingress = Ingress::start().await;
    let mut payload = fixture("issue_comment.created.1.json");
    payload["comment"]["body"] = json!("@agent rebase this");
    payload["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
    let answer = ingress.deliver("issue_comment", "delivery-pr", &serde_json::to_vec(&payload).unwrap()).await;
    assert_eq!(answer.status, 202, "{:?}", answer.json);
    assert_eq!(ingress.jobs().await[0]["source"], "github_pull_request_comment");
}

#[tokio::test]
async fn a_bots_comment_starts_no_job() {
    let ingress = Ingress::start().await;
    // A real App delivery: the author is `gagbo-test-app[bot]`, of type Bot.
    let mut payload = fixture("issue_comment.created.octocrab.json");
    payload["comment"]["body"] = json!("@agent fix the build");
    let answer = ingress.deliver("issue_comment", "delivery-bot", &serde_json::to_vec(&payload).unwrap()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    assert!(answer.json["ignored"].as_str().is_some_and(|r| r.contains("bot")), "{:?}", answer.json);

    let mut own = fixture("issue_comment.created.1.json");
    own["comment"]["body"] = json!("@agent fix the build");
    own["comment"]["user"]["login"] = json!("errand-bot");
    let answer = ingress.deliver("issue_comment", "delivery-own", &serde_json::to_vec(&own).unwrap()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    assert!(ingress.jobs().await.is_empty());
}

#[tokio::test]
async fn a_mention_inside_a_code_block_or_quote_starts_no_job() {
    let ingress = Ingress::start().await;
    let bodies = ["Try this:\n```\n@agent fix the typo\n```", "> @agent fix the typo\n\nI agree.", "Say `@agent fix`."];
    for (n, body) in bodies.iter().enumerate() {
        let answer = ingress.deliver("issue_comment", &format!("delivery-code-{n}"), &issue_comment(body)).await;
        assert_eq!(answer.status, 200, "{body}: {:?}", answer.json);
        assert!(answer.json["ignored"].is_string(), "{body}: {:?}", answer.json);
    }
    assert!(ingress.jobs().await.is_empty());
}

#[tokio::test]
async fn a_malformed_command_queues_a_reply_that_says_how_to_get_help() {
    let ingress = Ingress::start().await;
    let answer = ingress.deliver("issue_comment", "delivery-bad", &issue_comment("@agent --model x fix it")).await;
    assert_eq!(answer.status, 202, "{:?}", answer.json);
    let jobs = ingress.queue.list(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let text = reply_text(&jobs[0].job);
    assert!(text.contains("--model") && text.ends_with("Write `@agent help` to see what I can do."), "{text}");
}

#[tokio::test]
async fn a_wrong_signature_is_refused_and_enqueues_nothing() {
    let ingress = Ingress::start().await;
    let body = issue_comment("@agent fix it");
    let forged = Webhook::signed("issue_comment", "delivery-forged", &body, "not-the-secret");
    let answer = forged.post(&ingress.http, &ingress.url).await;
    assert_eq!(answer.status, 401, "{:?}", answer.json);
    assert!(ingress.jobs().await.is_empty());
    assert!(ingress.queue.list(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_signature_is_refused() {
    let ingress = Ingress::start().await;
    let mut unsigned = Webhook::signed("issue_comment", "delivery-unsigned", &issue_comment("@agent fix it"), SECRET);
    unsigned.signature = None;
    assert_eq!(unsigned.post(&ingress.http, &ingress.url).await.status, 401);
    assert!(ingress.jobs().await.is_empty());
}

#[tokio::test]
async fn a_sha1_signature_alone_is_refused() {
    let ingress = Ingress::start().await;
    let mut legacy = Webhook::signed("ping", "delivery-sha1", br#"{"zen":"x"}"#, SECRET);
    // The legacy header's form with a digest of the right length; GitHub's SHA-1 is not accepted.
    legacy.signature = Some(format!("sha1={}", "7d38cdd689735b008b3c702edd92eea23791c5f6"));
    assert_eq!(legacy.post(&ingress.http, &ingress.url).await.status, 401);
    let mut relabelled = Webhook::signed("ping", "delivery-sha1", br#"{"zen":"x"}"#, SECRET);
    relabelled.signature = relabelled.signature.map(|s| s.replace("sha256=", "sha1="));
    assert_eq!(relabelled.post(&ingress.http, &ingress.url).await.status, 401);
}

#[tokio::test]
async fn a_valid_signature_over_a_changed_body_is_refused() {
    let ingress = Ingress::start().await;
    let mut tampered = Webhook::signed("issue_comment", "delivery-tampered", &issue_comment("@agent say hi"), SECRET);
    tampered.body = issue_comment("@agent delete everything");
    assert_eq!(tampered.post(&ingress.http, &ingress.url).await.status, 401);
    assert!(ingress.jobs().await.is_empty());
}

#[tokio::test]
async fn a_signature_that_is_not_hex_is_refused() {
    let ingress = Ingress::start().await;
    let mut garbled = Webhook::signed("ping", "delivery-hex", b"{}", SECRET);
    garbled.signature = Some("sha256=not-hex".into());
    assert_eq!(garbled.post(&ingress.http, &ingress.url).await.status, 401);
}

#[tokio::test]
async fn both_secrets_verify_during_a_rotation() {
    let settings = IngressSettings { webhook_secrets: ingress::parse_secrets("old-secret, new-secret"), ..settings() };
    let ingress = Ingress::start_with(settings).await;
    let ping = br#"{"zen":"Rotate often.","hook_id":1}"#;
    for (n, secret) in ["old-secret", "new-secret"].iter().enumerate() {
        let answer = post_signed_webhook(&ingress.http, &ingress.url, "ping", &format!("rot-{n}"), ping, secret).await;
        assert_eq!(answer.status, 200, "{secret}: {:?}", answer.json);
    }
    let answer = post_signed_webhook(&ingress.http, &ingress.url, "ping", "rot-x", ping, SECRET).await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn no_configured_secret_refuses_every_webhook() {
    let ingress = Ingress::start_with(IngressSettings { webhook_secrets: Vec::new(), ..settings() }).await;
    let empty_key = Webhook::signed("ping", "delivery-empty", b"{}", "");
    assert_eq!(empty_key.post(&ingress.http, &ingress.url).await.status, 401);
}

#[tokio::test]
async fn an_oversize_body_is_refused_with_413_and_the_server_keeps_serving() {
    let ingress = Ingress::start_with(IngressSettings { max_body_bytes: 16 * 1024, ..settings() }).await;
    let mut payload = fixture("issue_comment.created.1.json");
    payload["comment"]["body"] = json!(format!("@agent fix {}", "x".repeat(64 * 1024)));
    let body = serde_json::to_vec(&payload).unwrap();
    let answer = ingress.deliver("issue_comment", "delivery-big", &body).await;
    assert_eq!(answer.status, 413, "{:?}", answer.json);

    // A fresh client, so the check does not depend on the refused connection being reused.
    let http = reqwest::Client::new();
    let ping = post_signed_webhook(&http, &ingress.url, "ping", "delivery-after", br#"{"zen":"x"}"#, SECRET).await;
    assert_eq!(ping.status, 200);
    let small = ingress.deliver("issue_comment", "delivery-small", &issue_comment("@agent fix")).await;
    assert_eq!(small.status, 202, "{:?}", small.json);
    assert_eq!(ingress.jobs().await.len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_bad_request() {
    let ingress = Ingress::start().await;
    for event in ["issue_comment", "ping", "push"] {
        let answer = ingress.deliver(event, "delivery-garbage", b"payload=%7B%7D").await;
        assert_eq!(answer.status, 400, "{event}: {:?}", answer.json);
    }
}

#[tokio::test]
async fn an_issue_comment_without_its_comment_is_a_bad_request() {
    let ingress = Ingress::start().await;
    let mut payload = fixture("issue_comment.created.1.json");
    payload.as_object_mut().unwrap().remove("comment");
    let answer = ingress.deliver("issue_comment", "delivery-nocomment", &serde_json::to_vec(&payload).unwrap()).await;
    assert_eq!(answer.status, 400, "{:?}", answer.json);
    assert!(answer.json["error"].as_str().is_some_and(|e| e.contains("comment")), "{:?}", answer.json);
}

#[tokio::test]
async fn a_webhook_without_an_event_header_is_a_bad_request() {
    let ingress = Ingress::start().await;
    let mut nameless = Webhook::signed("ping", "delivery-noevent", b"{}", SECRET);
    nameless.event = None;
    assert_eq!(nameless.post(&ingress.http, &ingress.url).await.status, 400);
}

#[tokio::test]
async fn a_request_without_a_delivery_id_is_a_bad_request() {
    let ingress = Ingress::start().await;
    let mut anonymous = Webhook::signed("issue_comment", "unused", &issue_comment("@agent fix"), SECRET);
    anonymous.delivery = None;
    assert_eq!(anonymous.post(&ingress.http, &ingress.url).await.status, 400);
    assert!(ingress.jobs().await.is_empty());
}

#[tokio::test]
async fn a_ping_is_answered_with_its_zen() {
    let ingress = Ingress::start().await;
    let body = std::fs::read(webhooks_dir().join("ping.with-app_id.json")).unwrap();
    let answer = ingress.deliver("ping", "delivery-ping", &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["ok"], true);
    assert!(answer.json["zen"].is_string(), "{:?}", answer.json);
}

#[tokio::test]
async fn the_job_api_is_absent_without_a_token() {
    let ingress = Ingress::start_with(IngressSettings { api_token: None, ..settings() }).await;
    assert_eq!(ingress.get("/api/jobs", None).await.status, 404);
    assert_eq!(ingress.get("/api/jobs", Some("anything")).await.status, 404);
    assert_eq!(ingress.get(&format!("/api/jobs/{}", JobId::generate()), Some("anything")).await.status, 404);
}

#[tokio::test]
async fn the_job_api_refuses_a_missing_or_wrong_token() {
    let ingress = Ingress::start().await;
    assert_eq!(ingress.get("/api/jobs", None).await.status, 401);
    assert_eq!(ingress.get("/api/jobs", Some("wrong-token")).await.status, 401);
    assert_eq!(ingress.get("/api/jobs", Some(&format!("{API_TOKEN}x"))).await.status, 401);
    assert_eq!(ingress.get(&format!("/api/jobs/{}", JobId::generate()), Some("wrong-token")).await.status, 401);
}

#[tokio::test]
async fn the_job_api_answers_404_for_an_unknown_job() {
    let ingress = Ingress::start().await;
    assert_eq!(ingress.get(&format!("/api/jobs/{}", JobId::generate()), Some(API_TOKEN)).await.status, 404);
    assert_eq!(ingress.get("/api/jobs/not%20an%20id", Some(API_TOKEN)).await.status, 404);
}

#[tokio::test]
async fn the_job_api_lists_newest_first_within_the_limit() {
    let ingress = Ingress::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let answer =
            ingress.deliver("issue_comment", &format!("delivery-list-{n}"), &issue_comment("@agent fix")).await;
        ids.push(answer.json["job_id"].as_str().expect("a job").to_owned());
    }
    let listed: Vec<String> = ingress.jobs().await.iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect();
    ids.reverse();
    assert_eq!(listed, ids);
    let limited = ingress.get("/api/jobs?limit=2", Some(API_TOKEN)).await;
    assert_eq!(limited.json["jobs"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn health_is_ok_and_the_server_stops_on_shutdown() {
    let ingress = Ingress::start().await;
    let response = ingress.http.get(format!("{}/healthz", ingress.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");

    ingress.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), ingress.server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}

#[tokio::test]
async fn json_nested_ten_thousand_levels_deep_is_a_bad_request() {
    let ingress = Ingress::start().await;
    for event in ["issue_comment", "ping", "push"] {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let answer = ingress.deliver(event, "delivery-deep", deep.as_bytes()).await;
        assert_eq!(answer.status, 400, "{event}: {:?}", answer.json);
    }
    assert_eq!(ingress.get("/healthz", None).await.status, 200);
}

#[tokio::test]
async fn a_requester_over_the_rate_limit_is_told_once_then_refused() {
    let limits = RateLimits { per_requester: Some(2), per_repository: Some(100), window: Duration::from_secs(60) };
    let ingress = Ingress::start_with(IngressSettings { rate_limits: limits, ..settings() }).await;
    for n in 0..2 {
        let answer = ingress.deliver("issue_comment", &format!("limit-{n}"), &issue_comment("@agent fix")).await;
        assert_eq!(answer.status, 202, "{:?}", answer.json);
    }
    // The third request is not dropped: a reply job tells the requester when to try again.
    let told = ingress.deliver("issue_comment", "limit-2", &issue_comment("@agent fix")).await;
    assert_eq!(told.status, 202, "{:?}", told.json);
    let record = ingress.queue.get(&told.json["job_id"].as_str().unwrap().parse().unwrap()).await.unwrap().unwrap();
    let text = reply_text(&record.job);
    assert!(text.contains("limit of 2 requests per minute") && text.contains("try again in"), "{text}");
    // Further requests in the window: 429 with Retry-After, and no second reply.
    let refused = ingress.deliver("issue_comment", "limit-3", &issue_comment("@agent fix")).await;
    assert_eq!(refused.status, 429, "{:?}", refused.json);
    assert!(refused.json["retry_after_seconds"].as_u64().is_some_and(|s| (1..=60).contains(&s)), "{:?}", refused.json);
    assert_eq!(ingress.queue.list(10).await.unwrap().len(), 3);
    // Someone else on the same repository is not limited by them.
    let mut other = fixture("issue_comment.created.1.json");
    other["comment"]["body"] = json!("@agent fix");
    other["comment"]["user"]["login"] = json!("hubot");
    let answer = ingress.deliver("issue_comment", "limit-other", &serde_json::to_vec(&other).unwrap()).await;
    assert_eq!(answer.status, 202, "{:?}", answer.json);
}

#[tokio::test]
async fn a_repository_over_its_rate_limit_tells_the_requester() {
    let limits = RateLimits { per_requester: None, per_repository: Some(1), window: Duration::from_secs(60) };
    let ingress = Ingress::start_with(IngressSettings { rate_limits: limits, ..settings() }).await;
    assert_eq!(ingress.deliver("issue_comment", "repo-0", &issue_comment("@agent fix")).await.status, 202);
    let told = ingress.deliver("issue_comment", "repo-1", &issue_comment("@agent fix")).await;
    assert_eq!(told.status, 202, "{:?}", told.json);
    let jobs = ingress.queue.list(10).await.unwrap();
    let text = reply_text(&jobs[0].job);
    assert!(text.contains("this repository has reached the limit of 1 request per minute"), "{text}");
}

#[test]
fn the_test_signer_agrees_with_githubs_documented_vector() {
    assert_eq!(
        github_signature("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

/// What a reply job says, in the words errand posts.
fn reply_text(job: &errand::job::Job) -> String {
    let errand::job::JobKind::Reply { reply, mention } = &job.kind else { panic!("a reply job: {:?}", job.kind) };
    let renderer = errand::publish::Renderer {
        mention: "@agent".into(),
        public_url: None,
        redactor: errand::secrets::Redactor::default(),
    };
    renderer.reply_text(job, reply, mention)
}
