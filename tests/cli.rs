//! The `errand` binary as people run it: its refusal to start without a queue or with a malformed
//! setting, its `--help`, and `errand serve --queue memory` answering every GitHub webhook example
//! without a 5xx.

#[path = "support/signing.rs"]
#[allow(dead_code, reason = "this test uses only the signature helper")]
mod signing;
#[path = "support/wait.rs"]
mod wait;

use errand::request::ids::{CommentId, IssueNumber};
use std::process::{Command, Stdio};
use std::time::Duration;

use wait::wait_until;

const ERRAND: &str = env!("CARGO_BIN_EXE_errand");
const SECRET: &str = "cli-webhook-secret";
const TOKEN: &str = "cli-api-token";

/// `errand` with none of the caller's `ERRAND_*` settings.
fn errand() -> Command {
    let mut cmd = Command::new(ERRAND);
    for (key, _) in std::env::vars() {
        if key.starts_with("ERRAND_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn every_subcommand_refuses_to_start_without_a_queue_and_says_how_to_fix_it() {
    for sub in ["serve", "worker", "all"] {
        let out = errand().arg(sub).output().expect("errand runs");
        assert!(!out.status.success(), "{sub} started without a queue");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("ERRAND_REDIS_URL") && stderr.contains("--queue memory"), "{sub}: {stderr}");
    }
}

#[test]
fn help_documents_each_setting_without_showing_secrets() {
    let out = errand()
        .args(["all", "--help"])
        .env("ERRAND_GITHUB_TOKEN", "ghp_mustNotAppearInHelpOutput000000000000")
        .output()
        .expect("errand runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in
        ["--listen", "--queue", "--redis-url", "--lease", "--max-deliveries", "--concurrency", "ERRAND_MENTIONS"]
    {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    assert!(!help.contains("ghp_mustNotAppearInHelpOutput"), "{help}");
}

#[test]
fn a_malformed_setting_stops_the_process_and_names_its_variable() {
    for (sub, variable, value) in [
        ("worker", "ERRAND_EGRESS_ALLOW_NETS", "10.20.0.0/16,10.1.0.0/33"),
        ("serve", "ERRAND_SLACK_DEFAULT_REPOS", "C0DEV=acme/webapp,C0OPS"),
        ("all", "ERRAND_SLACK_ALLOWED_CHANNELS", "#general"),
    ] {
        let out = errand().args([sub, "--queue", "memory"]).env(variable, value).output().expect("errand runs");
        assert!(!out.status.success(), "{sub} started with {variable}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(variable), "{sub} {variable}: {stderr}");
    }
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `errand serve --queue memory` on a free loopback port with `env`, once it answers `/healthz`;
/// returns the server (killed when dropped) and its base URL.
async fn serve(env: &[(&str, &str)]) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = errand();
    command.args(["serve", "--queue", "memory", "--listen", &format!("127.0.0.1:{port}")]);
    for (key, value) in env {
        command.env(key, value);
    }
    let server = Server(command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("errand serve starts"));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_until("errand serve listens", Duration::from_secs(30), async || {
        http.get(format!("{base}/healthz")).send().await.is_ok().then_some(())
    })
    .await;
    (server, base)
}

#[tokio::test]
async fn serve_on_the_memory_queue_answers_every_webhook_example_and_queues_one_job_per_mention() {
    let (_server, base) =
        serve(&[("ERRAND_GITHUB_WEBHOOK_SECRET", &format!("old-secret,{SECRET}")), ("ERRAND_API_TOKEN", TOKEN)]).await;
    let http = reqwest::Client::new();
    let post = |event: String, delivery: String, body: Vec<u8>, secret: &'static str| {
        let http = http.clone();
        let url = format!("{base}/github/webhook");
        async move {
            http.post(url)
                .header("X-GitHub-Event", event)
                .header("X-GitHub-Delivery", delivery)
                .header("X-Hub-Signature-256", signing::github_signature(secret, &body))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("errand serve answers")
                .status()
                .as_u16()
        }
    };

    let mut answered = 0;
    for entry in std::fs::read_dir("tests/data/github/webhooks").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let event = name.split('.').next().unwrap().to_owned();
        let status = post(event, format!("fixture-{name}"), std::fs::read(&path).unwrap(), SECRET).await;
        assert!((200..500).contains(&status), "{name} got {status}");
        answered += 1;
    }
    assert_eq!(answered, 66, "every example was posted");

    let forged = post("issue_comment".into(), "forged".into(), br#"{"action":"created"}"#.to_vec(), "wrong").await;
    assert_eq!(forged, 401);

    let jobs_before = job_count(&http, &base).await;
    let mention = std::fs::read_to_string("tests/data/github/webhooks/issue_comment.created.with-organization.json")
        .unwrap()
        .replace("\"body\": \"", "\"body\": \"@agent fix this ");
    assert_eq!(post("issue_comment".into(), "mention-1".into(), mention.clone().into_bytes(), SECRET).await, 202);
    assert_eq!(post("issue_comment".into(), "mention-1".into(), mention.into_bytes(), SECRET).await, 200);
    assert_eq!(job_count(&http, &base).await, jobs_before + 1, "one job for the mention, none for the repeat");

    let no_token = http.get(format!("{base}/api/jobs")).send().await.unwrap().status().as_u16();
    assert_eq!(no_token, 401);
}

async fn job_count(http: &reqwest::Client, base: &str) -> usize {
    let jobs: serde_json::Value =
        http.get(format!("{base}/api/jobs")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    jobs["jobs"].as_array().expect("a job list").len()
}

#[path = "support/redis.rs"]
#[allow(dead_code, reason = "this test uses only an owned Redis")]
mod redis_support;

#[tokio::test]
async fn an_operator_lists_dead_jobs_and_requeues_one() {
    use errand::job::{Job, JobId, JobStatus, ReplyTarget, Source, Task};
    use errand::queue::{Queue, QueueSettings, RedisQueue};

    let redis = redis_support::TestRedis::start_owned();
    let settings = QueueSettings { lease: Duration::from_secs(30), max_deliveries: 1 };
    let queue = Queue::Redis(RedisQueue::connect(redis.url(), settings).await.expect("the test Redis"));
    let job = Job {
        id: JobId::generate(),
        repo: "acme/calculator".parse().unwrap(),
        source: Source::GithubIssueComment,
        requested_by: "octocat".into(),
        created_at: chrono::Utc::now(),
        installation_id: None,
        task: Task { instruction: "fix this".into(), title: "t".into(), body: String::new(), url: String::new() },
        reply: ReplyTarget::GithubIssue { issue: IssueNumber(7), comment_id: Some(CommentId(1)) },
        kind: Default::default(),
        follow_up: None,
        attempts: None,
        continues: None,
    };
    let id = job.id.clone();
    queue.enqueue(job, "cli-dead-1").await.unwrap();
    let delivery = queue.claim("w", Duration::from_secs(1)).await.unwrap().expect("the job");
    queue.dead_letter(&delivery, "GitHub kept failing").await.unwrap();

    let jobs = |args: &[&str]| errand().arg("jobs").args(args).env("ERRAND_REDIS_URL", redis.url()).output().unwrap();
    let dead = jobs(&["dead"]);
    let listed = String::from_utf8_lossy(&dead.stdout);
    assert!(dead.status.success(), "{}", String::from_utf8_lossy(&dead.stderr));
    assert!(listed.contains(id.as_str()) && listed.contains("error: GitHub kept failing"), "{listed}");

    let requeued = jobs(&["requeue", id.as_str()]);
    assert!(requeued.status.success(), "{}", String::from_utf8_lossy(&requeued.stderr));
    assert_eq!(queue.get(&id).await.unwrap().expect("the record").state.status(), JobStatus::Queued);
    assert!(queue.dead().await.unwrap().is_empty());
    assert_eq!(queue.claim("w2", Duration::from_secs(1)).await.unwrap().map(|d| d.attempt), Some(1));

    let again = jobs(&["requeue", id.as_str()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not in the dead letter"));
}

#[tokio::test]
async fn serve_with_slack_configured_answers_slacks_url_check_and_queues_one_job_per_mention() {
    const SLACK_SECRET: &str = "cli-slack-signing-secret";
    let (_server, base) = serve(&[
        ("ERRAND_GITHUB_WEBHOOK_SECRET", SECRET),
        ("ERRAND_API_TOKEN", TOKEN),
        ("ERRAND_SLACK_SIGNING_SECRET", SLACK_SECRET),
        ("ERRAND_SLACK_BOT_TOKEN", "xoxb-cli-test"),
        ("ERRAND_SLACK_API_URL", "http://127.0.0.1:9/api"),
        ("ERRAND_SLACK_ALLOWED_CHANNELS", "C123ABC456"),
        ("ERRAND_SLACK_DEFAULT_REPOS", "C123ABC456=acme/webapp"),
    ])
    .await;
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, retry: Option<&'static str>| {
        let http = http.clone();
        let url = format!("{base}/slack/events");
        async move {
            let timestamp = chrono::Utc::now().timestamp().to_string();
            let secret = secrecy::SecretString::from(SLACK_SECRET);
            let signature = errand::chat::signature::slack_signature(&secret, &timestamp, &body);
            let mut request = http
                .post(url)
                .header("X-Slack-Request-Timestamp", timestamp)
                .header("X-Slack-Signature", signature)
                .body(body);
            if let Some(retry) = retry {
                request = request.header("X-Slack-Retry-Num", retry);
            }
            let answer = request.send().await.expect("errand serve answers");
            (answer.status().as_u16(), answer.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let check = std::fs::read("tests/data/slack/url_verification.json").unwrap();
    let (status, answer) = post(check, None).await;
    assert_eq!(status, 200);
    assert!(answer["challenge"].as_str().is_some_and(|c| !c.is_empty()), "{answer}");

    let mention = std::fs::read_to_string("tests/data/slack/event_callback.app_mention.json")
        .unwrap()
        .replace("is it everything a river should be?", "fix the flaky login test");
    let before = job_count(&http, &base).await;
    assert_eq!(post(mention.clone().into_bytes(), None).await.0, 200);
    assert_eq!(post(mention.into_bytes(), Some("1")).await.0, 200);
    assert_eq!(job_count(&http, &base).await, before + 1, "one job for the mention, none for Slack's retry");
}

#[tokio::test]
async fn empty_slack_settings_leave_slack_off() {
    let (_server, base) = serve(&[
        ("ERRAND_GITHUB_WEBHOOK_SECRET", SECRET),
        // As compose passes variables that are not set.
        ("ERRAND_SLACK_SIGNING_SECRET", ""),
        ("ERRAND_SLACK_BOT_TOKEN", ""),
    ])
    .await;
    let http = reqwest::Client::new();
    let status = http.post(format!("{base}/slack/events")).body("{}").send().await.unwrap().status().as_u16();
    assert_eq!(status, 404, "Slack is not configured");
}
