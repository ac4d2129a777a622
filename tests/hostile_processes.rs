//! A hostile agent against real `errand worker` processes, for what only a process shows: a worker
//! that is not root (its sandboxes run as its own uid, so they own what it owns), a worker that
//! holds secrets of the HTTP side it never uses itself, and a worker's signals and `stop` after
//! the agent left FIFOs where errand reads.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use errand::job::JobStatus;
use sha2::{Digest as _, Sha256};
use support::installation::*;
use support::world::{FIXING_AGENT, REPO};

/// How long a process may take to exit after SIGTERM beyond its grace period.
const EXIT_BOUND: Duration = Duration::from_secs(15);

/// The uid of a worker that is not root; its sandboxes run as it too.
const WORKER_UID: u32 = 10001;

/// An agent that tries to rewrite every git object it can find (the sandbox's borrowed objects,
/// anything under a `.git` in the tree), to link them into the tree, and to plant a loose object,
/// then answers without a change.
const AGENT_OVERWRITING_OBJECTS: &str = r#"for d in /errand-objects /workspace/.git/objects; do
  find "$d" -type f 2>/dev/null | while read -r f; do
    chmod u+w "$f" "$(dirname "$f")" 2>/dev/null
    printf 'evil' > "$f" 2>/dev/null && echo "overwrote $f"
    ln -f "$f" "/workspace/linked-$(basename "$f")" 2>/dev/null && echo "linked $f"
  done
  mkdir -p "$d/ab" 2>/dev/null && printf 'evil' > "$d/ab/cdef0123" 2>/dev/null && echo "planted in $d"
done
printf 'Tried the objects\n' > "$ERRAND_SUMMARY_FILE""#;

/// Each file under `dir` with the SHA-256 of its contents, for comparing before and after.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.expect("walking the mirror"))
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let name = entry.path().strip_prefix(dir).expect("under the mirror").display().to_string();
            let digest = Sha256::digest(std::fs::read(entry.path()).expect("reading a mirror file"));
            (name, hex::encode(digest))
        })
        .collect()
}

#[tokio::test]
async fn a_worker_that_is_not_root_keeps_its_mirror_whatever_the_agent_writes() {
    let agent = format!(r#"case "$ERRAND_TASK" in *objects*) {AGENT_OVERWRITING_OBJECTS};; *) {FIXING_AGENT};; esac"#);
    let install = Installation::start(&repo_config(&agent, "sh test.sh")).await;
    install.github.serve_git_over_http(REPO);
    let _worker = install.worker_as_user("worker", WORKER_UID, Duration::from_secs(5), &[]);
    let mirror = install.dir.path().join("data-worker/mirrors/acme/calculator.git");

    let first = install.request("@agent fix this", "delivery-first").await;
    assert_eq!(install.ended(&first).await.state.status(), JobStatus::Succeeded);
    let objects_before = snapshot(&mirror.join("objects"));
    assert!(!objects_before.is_empty(), "the worker made its mirror at {}", mirror.display());
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&mirror).expect("the mirror"));
    assert_eq!(owner, WORKER_UID, "the mirror is the worker's own, so its sandboxes' uid owns it");

    let attack = install.request("@agent rewrite the objects", "delivery-attack").await;
    let attacked = install.ended(&attack).await;
    assert_eq!(attacked.state.status(), JobStatus::Succeeded, "{attacked:?}");
    // The mirror fetched the first job's branch meanwhile: files may be added, never changed.
    let objects_after = snapshot(&mirror.join("objects"));
    for (name, digest) in &objects_before {
        assert_eq!(objects_after.get(name), Some(digest), "the agent changed the mirror's {name}");
    }
    assert!(
        objects_after.keys().all(|name| !name.starts_with("ab/")),
        "the agent planted an object: {objects_after:?}"
    );

    let last = install.request("@agent fix this again", "delivery-last").await;
    let record = install.ended(&last).await;
    assert_eq!(record.state.status(), JobStatus::Succeeded, "{record:?}");
    let pull = record.pull_request.expect("the last job opened a pull request");
    let head = install.github.pull_requests(REPO).into_iter().find(|p| p.number == pull.number).expect("it").head;
    assert_eq!(install.github.paths_at(REPO, &head), [".errand.toml", "calc.sh", "test.sh"]);
    assert_eq!(install.github.file_at(REPO, &head, "calc.sh").as_deref(), Some("add() { echo $(( $1 + $2 )); }\n"));
    let fsck = std::process::Command::new("git")
        .args(["-c", "safe.directory=*", "--git-dir"])
        .arg(&mirror)
        .args(["fsck", "--full", "--no-dangling"])
        .output()
        .expect("git fsck runs");
    assert!(fsck.status.success(), "the mirror is intact: {}", String::from_utf8_lossy(&fsck.stderr));
}

#[tokio::test]
async fn a_worker_knows_the_webhook_secret_and_api_token_it_holds_and_lets_neither_out() {
    const SECRET: &str = "canary-webhook-secret-of-the-worker-0001";
    const API_TOKEN: &str = "canary-api-token-of-the-worker-0001";
    let agent = format!(
        r#"case "$ERRAND_TASK" in
  *print*) echo "the secret is {SECRET} and the token {API_TOKEN}"; exit 3;;
  *) sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && printf '{API_TOKEN}\n' > leak.txt && printf 'Leak {SECRET}\n' > "$ERRAND_SUMMARY_FILE";;
esac"#
    );
    let install = Installation::start(&repo_config(&agent, "sh test.sh")).await;
    let env = [("ERRAND_GITHUB_WEBHOOK_SECRET", SECRET), ("ERRAND_API_TOKEN", API_TOKEN)];
    let worker = install.worker_with("worker", FIRST_UID, Duration::from_secs(5), &env);

    let committed = install.request("@agent commit them", "delivery-commit").await;
    assert_eq!(install.ended(&committed).await.state.status(), JobStatus::Failed);
    let printed = install.request("@agent print them", "delivery-print").await;
    assert_eq!(install.ended(&printed).await.state.status(), JobStatus::Failed);

    let comments = install.tracking_comments();
    assert!(comments.iter().any(|c| c.contains("in `leak.txt`; nothing was pushed")), "{comments:#?}");
    assert!(comments.iter().any(|c| c.contains("the secret is [redacted] and the token [redacted]")), "{comments:#?}");
    assert!(install.github.branches(REPO).iter().all(|b| !b.starts_with("errand/")), "nothing was pushed");
    let posted: Vec<String> =
        install.github.requests().into_iter().filter_map(|r| r.body.map(|b| b.to_string())).collect();
    let log = worker.log();
    for canary in [SECRET, API_TOKEN] {
        assert!(posted.iter().all(|body| !body.contains(canary)), "{canary} reached GitHub");
        assert!(!log.contains(canary), "{canary} is in the worker's log");
    }
}

#[tokio::test]
async fn fifos_left_where_errand_reads_hold_neither_the_job_nor_stop_nor_sigterm() {
    let agent =
        r#"mkfifo "$ERRAND_SUMMARY_FILE" /errand/agent-events.jsonl; case "$ERRAND_TASK" in *wait*) sleep 300;; esac"#;
    let install = Installation::start(&repo_config(agent, "sh test.sh")).await;
    let grace = Duration::from_secs(5);
    let mut worker = install.worker("worker", FIRST_UID, grace);

    let answered = install.request("@agent fix this", "delivery-fifo").await;
    let record = install.ended(&answered).await;
    assert_eq!(record.state.status(), JobStatus::Succeeded, "{record:?}");
    let comments = install.tracking_comments();
    assert!(comments.iter().any(|c| c.contains("was a FIFO, not a regular file; ignored.")), "{comments:#?}");

    let waiting = install.request("@agent fix this and wait", "delivery-wait").await;
    install.running_container(&waiting, "agent").await;
    install.request("@agent stop", "delivery-stop").await;
    assert_eq!(install.ended(&waiting).await.state.status(), JobStatus::Cancelled);

    let status = worker.sigterm_and_wait(grace + EXIT_BOUND).await;
    assert!(status.success(), "the worker exits 0 after SIGTERM, not {status}\n{}", worker.log_tail());
}
