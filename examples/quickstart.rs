//! The quick start: errand's whole path on one machine, with no credentials and no registry.
//!
//! It starts a local GitHub stand-in (the same stateful fake the scenario tests use) holding a
//! small repository whose test fails, runs the real `errand all --queue memory` binary against
//! it, posts a signed `@agent fix this` webhook, waits for the job to end, and prints the pull
//! request and the comment thread. The agent is a short script in the repository's
//! `.errand.toml`; it runs in the local `errand-sandbox-test` image
//! (`deploy/sandbox-test-image/build.sh`).
//!
//! Run it with `deploy/quickstart.sh` (which builds the image and the binary first).

#[path = "../tests/support/fake_github/mod.rs"]
mod fake_github;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};

const REPO: &str = "acme/calculator";
const IMAGE: &str = "errand-sandbox-test:latest";
const SECRET: &str = "quickstart-webhook-secret";
const API_TOKEN: &str = "quickstart-api-token";

const ERRAND_TOML: &str = r#"image = "errand-sandbox-test:latest"
timeout = "5m"

# The example agent: a script that makes a known fix and writes its summary.
[agent]
command = '''
echo "reading $ERRAND_TASK_FILE"; cat "$ERRAND_TASK_FILE"
sed -i 's/\$1 - \$2/$1 + $2/' calc.sh
printf 'Make add() add its arguments\n\nadd() subtracted its second argument instead of adding it.\n' > "$ERRAND_SUMMARY_FILE"
'''

[checks]
test = "sh test.sh"
"#;

const CALC: &str = "add() { echo $(( $1 - $2 )); }\n";
const TEST: &str = ". ./calc.sh\ngot=$(add 2 3)\nif [ \"$got\" != 5 ]; then echo \"FAIL: add 2 3 = $got, want 5\"; exit 1; fi\necho \"ok: add 2 3 = 5\"\n";

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let errand = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("errand"))
        .context("locating the errand binary")?;
    if !errand.exists() {
        bail!("build the binary first: cargo build --bins --examples (deploy/quickstart.sh does)");
    }

    let github = fake_github::FakeGithub::start().await;
    github.add_repo(REPO, &[(".errand.toml", ERRAND_TOML), ("calc.sh", CALC), ("test.sh", TEST)]);
    github.set_permission(REPO, "octocat", "write");
    let issue =
        github.add_issue(REPO, "add() returns the wrong sum", "`add 2 3` prints -1; it should print 5.", "octocat");
    println!("== A GitHub stand-in at {} holds {REPO} with issue #{issue}", github.api_url());

    let data = tempfile::tempdir()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    drop(listener);
    let mut child = tokio::process::Command::new(&errand)
        .args(["all", "--queue", "memory", "--listen", &address.to_string()])
        .env("ERRAND_GITHUB_API_URL", github.api_url())
        .env("ERRAND_GITHUB_TOKEN", "quickstart-token-not-a-real-one")
        .env("ERRAND_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("ERRAND_API_TOKEN", API_TOKEN)
        .env("ERRAND_BOT_LOGIN", "errand-bot")
        .env("ERRAND_DATA_DIR", data.path())
        .env("ERRAND_DEFAULT_IMAGE", IMAGE)
        .env("ERRAND_LOG", "info,errand=info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting errand all")?;
    let log = child.stderr.take().context("errand's log")?;
    let log_task = tokio::spawn(async move {
        let mut lines = BufReader::new(log).lines();
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });

    let http = reqwest::Client::new();
    let base = format!("http://{address}");
    wait_until("errand listens", Duration::from_secs(30), || async {
        http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await?;

    let comment = github.add_issue_comment(REPO, issue, "octocat", "@agent fix this");
    let payload = serde_json::to_vec(&github.issue_comment_webhook(REPO, issue, comment))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes())?;
    mac.update(&payload);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let answer = http
        .post(format!("{base}/github/webhook"))
        .header("X-GitHub-Event", "issue_comment")
        .header("X-GitHub-Delivery", "quickstart-delivery-1")
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(payload)
        .send()
        .await?;
    println!("== Posted a signed `@agent fix this` webhook: HTTP {}", answer.status());
    println!("   {}", answer.text().await?);

    let ended = wait_until("the job ends", Duration::from_secs(300), || async {
        let jobs: serde_json::Value = match http.get(format!("{base}/api/jobs")).bearer_auth(API_TOKEN).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return false,
        };
        jobs["jobs"][0]["status"].as_str().is_some_and(|s| ["succeeded", "failed", "cancelled"].contains(&s))
    })
    .await;

    let _ = tokio::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().unwrap_or_default().to_string())
        .status()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    let log = log_task.await.unwrap_or_default();
    println!("\n== errand's job log (steps as they ran)");
    for line in
        log.iter().filter(|l| l.contains("step finished") || l.contains("rollout finished") || l.contains("ERROR"))
    {
        println!("   {line}");
    }
    ended?;

    let pulls = github.pull_requests(REPO);
    let Some(pull) = pulls.first() else {
        for c in github.comments(REPO, issue) {
            println!("\n-- @{}:\n{}", c.author, c.body);
        }
        bail!("no pull request came out");
    };
    println!("\n== Pull request #{}: {}  ({} → {})\n", pull.number, pull.title, pull.head, pull.base);
    println!("{}", pull.body);
    println!("\n== The issue's comment thread");
    for c in github.comments(REPO, issue) {
        println!("\n-- @{}:\n{}", c.author, c.body);
    }
    println!("\n== calc.sh on {}:\n{}", pull.head, github.file_at(REPO, &pull.head, "calc.sh").unwrap_or_default());
    if !pull.body.contains("| ✅ | test |") {
        bail!("the pull request's Testing section does not show the check passing");
    }
    println!("== Quick start finished: the check failed before the agent ran and passes on the pull request.");
    Ok(())
}

/// Polls `condition` until it holds or `limit` passes.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
