//! Environments against the real Docker engine: a repository's setup runs once, in one container
//! committed to an image, and later rollouts start every step from that image without running
//! setup again, until a file it depends on changes or the image grows older than the worker's
//! `ERRAND_ENV_CACHE_TTL`. Each test drives `Rollout::run` on a repository of its own (a local
//! git repository, cloned over `file://`), so its images are its own, and removes them after.
//!
//! Needs a running engine and `deploy/sandbox-test-image/build.sh`; fails (never skips) without.

#[path = "support/docker.rs"]
mod docker_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListImagesOptionsBuilder;
use docker_support::{TEST_IMAGE, containers_of_job, docker, sandbox_with_test_image};
use errand::config::RepoConfig;
use errand::forge::git::{CommitAuthor, Git, MirrorCache};
use errand::job::{Job, JobId, RepoName};
use errand::publish::Renderer;
use errand::rollout::environment::{
    ENV_HOME, ENV_REPOSITORY, HOLD_REPOSITORY, LABEL_ENV, LABEL_ENV_CREATED, LABEL_ENV_KEY, LABEL_ENV_REPO,
};
use errand::rollout::{AgentEnd, CheckResult, EnvironmentState, Outcome, Plan, Rollout, RolloutSettings};
use errand::sandbox::Limits;
use errand::secrets::Redactor;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The uid and gid steps run as: not root, and not in the image's /etc/passwd.
const SANDBOX_UID: u32 = 10001;
const TWELVE_HOURS: Duration = Duration::from_secs(12 * 3600);

/// A setup that leaves a random token in `$HOME` (outside the workspace), so a later step can
/// tell which setup run its environment came from.
const MARKING_SETUP: &str =
    r#"head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$HOME/marker" && echo "setup ran as $(id -u) in $HOME""#;
/// An agent that reports the token it finds, and changes nothing.
const READING_AGENT: &str =
    r#"printf 'Environment check\n\nmarker=%s\n' "$(cat "$HOME/marker")" > "$ERRAND_SUMMARY_FILE""#;

/// A repository of the test's own: a git repository on disk, served over `file://`, with a name
/// no other test uses; the environment images built for it are removed when it is dropped.
struct Origin {
    dir: TempDir,
    name: RepoName,
}

impl Origin {
    fn new(files: &[(&str, &str)]) -> Origin {
        let dir = tempfile::tempdir().expect("a temp dir for the origin");
        let name = RepoName::new("acme", &format!("env-{}", JobId::generate().short())).expect("a repository name");
        let origin = Origin { dir, name };
        git(origin.dir.path(), &["init", "--quiet", "--initial-branch=main"]);
        origin.commit(files, "initial");
        origin
    }

    fn commit(&self, files: &[(&str, &str)], message: &str) {
        for (path, content) in files {
            let path = self.dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating a directory");
            std::fs::write(path, content).expect("writing a file");
        }
        git(self.dir.path(), &["add", "--all"]);
        git(self.dir.path(), &["commit", "--quiet", "--message", message]);
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        // Synchronous, so it also runs when a test fails: the images built for this repository.
        let filter = format!("label={LABEL_ENV_REPO}={}", self.name);
        if let Ok(out) = Command::new("docker").args(["images", "--quiet", "--filter", &filter]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(["rmi", "--force"]).args(&ids).output();
            }
        }
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// A worker's rollouts: its own data directory (mirrors, checkouts), the shared engine.
struct Worker {
    rollout: Rollout,
    _data: TempDir,
}

async fn start_worker(env_cache_ttl: Duration) -> Worker {
    let sandbox = sandbox_with_test_image().await;
    let data = tempfile::tempdir().expect("a temp dir for the worker");
    let git = Git::new(CommitAuthor { name: "errand".into(), email: "errand@example.com".into() });
    let settings = RolloutSettings {
        data_dir: data.path().to_owned(),
        default_image: TEST_IMAGE.into(),
        default_agent_command: None,
        agent_env: Vec::new(),
        custom_agent_env: Vec::new(),
        sandbox_uid: SANDBOX_UID,
        limits: Limits { memory_bytes: 256 * 1024 * 1024, nano_cpus: 1_000_000_000, pids: 128, disk_bytes: 1 << 30 },
        default_timeout: Duration::from_secs(120),
        max_timeout: Duration::from_secs(120),
        env_cache_ttl,
    };
    Worker { rollout: Rollout::new(sandbox, MirrorCache::new(data.path().join("mirrors"), git), settings), _data: data }
}

/// `.errand.toml` with this `[setup]` table body and agent.
fn errand_toml(setup: &str, agent: &str) -> RepoConfig {
    let text = format!("image = \"{TEST_IMAGE}\"\n\n[setup]\n{setup}\n\n[agent]\ncommand = '''{agent}'''\n");
    RepoConfig::parse(&text).unwrap_or_else(|e| panic!("the test's .errand.toml parses: {e}\n{text}"))
}

fn job(repo: &RepoName) -> Job {
    serde_json::from_value(serde_json::json!({
        "id": JobId::generate(),
        "repo": repo,
        "source": "api",
        "requested_by": "octocat",
        "created_at": chrono::Utc::now(),
        "installation_id": null,
        "task": { "instruction": "check the environment", "title": "environment", "body": "", "url": "" },
        "reply": { "kind": "github_issue", "issue": 1, "comment_id": null },
    }))
    .expect("a job")
}

/// Runs one attempt of a job on `origin` with `config`.
async fn rollout(worker: &Worker, origin: &Origin, config: &RepoConfig) -> Outcome {
    rollout_job(worker, origin, config, &job(&origin.name)).await
}

async fn rollout_job(worker: &Worker, origin: &Origin, config: &RepoConfig, job: &Job) -> Outcome {
    let clone_url = origin.url();
    let plan =
        Plan { job, config, clone_url: &clone_url, base_branch: "main", context: "", attempt: None, git_token: None };
    worker.rollout.run(&plan, &CancellationToken::new()).await.unwrap_or_else(|e| panic!("the rollout ran: {e}"))
}

/// The token the agent found in `$HOME/marker`.
fn marker(outcome: &Outcome) -> String {
    let summary = outcome.summary.as_deref().unwrap_or_else(|| panic!("the agent wrote a summary: {outcome:?}"));
    let token = summary.lines().find_map(|l| l.strip_prefix("marker=")).expect("a marker line").to_owned();
    assert_eq!(token.len(), 24, "the agent read the marker setup wrote: {summary}");
    token
}

fn key_of(outcome: &Outcome) -> String {
    match &outcome.environment {
        EnvironmentState::Built { key, .. } | EnvironmentState::Cached { key, .. } => key.clone(),
        EnvironmentState::None => panic!("the rollout had no environment: {outcome:?}"),
    }
}

/// The ids and names of every image (tagged or not) built for `key`.
async fn images_of_key(docker: &Docker, key: &str) -> Vec<(String, Vec<String>)> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_ENV_KEY}={key}")])]);
    docker
        .list_images(Some(ListImagesOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .expect("listing images")
        .into_iter()
        .map(|image| (image.id, image.repo_tags))
        .collect()
}

async fn image_id(docker: &Docker, name: &str) -> Option<String> {
    docker.inspect_image(name).await.ok().and_then(|image| image.id)
}

fn assert_setup_passed(outcome: &Outcome, runs: usize) {
    assert_eq!(outcome.setup.len(), runs, "{:?}", outcome.setup);
    for setup in &outcome.setup {
        assert!(setup.passed(), "setup passed: {setup:?}");
    }
    assert_eq!(outcome.agent_end, AgentEnd::Finished, "{:?}", outcome.agent);
}

#[tokio::test]
async fn setup_runs_once_and_later_rollouts_start_from_the_cached_environment() {
    let origin = Origin::new(&[("Cargo.lock", "version = 1\n"), ("README.md", "hello\n")]);
    let config = errand_toml(&format!("commands = ['''{MARKING_SETUP}''']"), READING_AGENT);
    let worker = start_worker(TWELVE_HOURS).await;
    let docker = docker().await;

    let first = rollout(&worker, &origin, &config).await;

    assert_setup_passed(&first, 1);
    assert!(
        first.setup[0].report.output_tail.contains(&format!("setup ran as {SANDBOX_UID} in {ENV_HOME}")),
        "setup ran as the sandbox user with its home in the image: {:?}",
        first.setup[0].report.output_tail
    );
    let key = key_of(&first);
    assert_eq!(first.environment, EnvironmentState::Built { key: key.clone(), kept: true });
    let built = marker(&first);
    let cached_image = image_id(&docker, &format!("{ENV_REPOSITORY}:{key}")).await.expect("the environment is kept");
    let labels = docker.inspect_image(&cached_image).await.expect("inspect").config.and_then(|c| c.labels);
    let labels = labels.expect("the environment image has labels");
    assert_eq!(labels.get(LABEL_ENV).map(String::as_str), Some("1"));
    assert_eq!(labels.get(LABEL_ENV_KEY), Some(&key));
    assert_eq!(labels.get(LABEL_ENV_REPO), Some(&origin.name.to_string()));
    assert!(labels.contains_key(LABEL_ENV_CREATED), "{labels:?}");
    assert_eq!(
        labels.get("errand.managed").map(String::as_str),
        Some(""),
        "containers run from it by hand are not errand's"
    );

    let second = rollout(&worker, &origin, &config).await;

    assert_setup_passed(&second, 0);
    assert!(
        matches!(&second.environment, EnvironmentState::Cached { key: k, .. } if *k == key),
        "{:?}",
        second.environment
    );
    assert_eq!(marker(&second), built, "the agent ran in the environment the first setup built");

    // Another worker on the same engine (its own mirror and checkouts) finds it too.
    let other_worker = start_worker(TWELVE_HOURS).await;
    let third = rollout(&other_worker, &origin, &config).await;
    assert_setup_passed(&third, 0);
    assert_eq!(marker(&third), built);

    // The pull request's Testing section says so.
    let renderer = Renderer { mention: "@agent".into(), public_url: None, redactor: Redactor::default() };
    let testing = renderer.testing_section(&with_a_check(second));
    assert!(testing.contains("reused from a setup run less than a minute ago"), "{testing}");
    assert!(testing.contains(&format!("`{ENV_REPOSITORY}:{key}`")), "{testing}");

    // One image, and no attempt's hold left on it.
    let images = images_of_key(&docker, &key).await;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].1, [format!("{ENV_REPOSITORY}:{key}")], "no hold left: {images:?}");
}

/// The Testing section shows the environment beside the checks: give the outcome one.
fn with_a_check(mut outcome: Outcome) -> Outcome {
    let report = outcome.agent.clone().expect("the agent ran");
    outcome.checks.push(CheckResult::from_report("test", "true", report));
    outcome
}

#[tokio::test]
async fn changing_a_file_setup_depends_on_builds_the_environment_again() {
    let origin = Origin::new(&[("Cargo.lock", "version = 1\n"), ("README.md", "hello\n")]);
    let config = errand_toml(&format!("commands = ['''{MARKING_SETUP}''']"), READING_AGENT);
    let worker = start_worker(TWELVE_HOURS).await;

    let first = rollout(&worker, &origin, &config).await;
    assert_setup_passed(&first, 1);

    // A file that is not a lock file changes nothing.
    origin.commit(&[("README.md", "hello again\n")], "docs");
    let unchanged = rollout(&worker, &origin, &config).await;
    assert_setup_passed(&unchanged, 0);
    assert_eq!(key_of(&unchanged), key_of(&first));

    origin.commit(&[("Cargo.lock", "version = 2\n")], "bump the dependencies");
    let rebuilt = rollout(&worker, &origin, &config).await;

    assert_setup_passed(&rebuilt, 1);
    assert!(matches!(rebuilt.environment, EnvironmentState::Built { kept: true, .. }), "{:?}", rebuilt.environment);
    assert_ne!(key_of(&rebuilt), key_of(&first), "a new lock file is a new environment");
    assert_ne!(marker(&rebuilt), marker(&first), "setup ran again");

    // `depends_on` names the files instead of the lock files.
    let explicit =
        errand_toml(&format!("commands = ['''{MARKING_SETUP}''']\ndepends_on = [\"tools/\"]"), READING_AGENT);
    let before = rollout(&worker, &origin, &explicit).await;
    assert_setup_passed(&before, 1);
    origin.commit(&[("Cargo.lock", "version = 3\n")], "not a dependency any more");
    assert_setup_passed(&rollout(&worker, &origin, &explicit).await, 0);
    origin.commit(&[("tools/install.sh", "echo tools\n")], "a tool");
    let after = rollout(&worker, &origin, &explicit).await;
    assert_setup_passed(&after, 1);
    assert_ne!(key_of(&after), key_of(&before));
}

#[tokio::test]
async fn an_environment_older_than_the_ttl_is_built_again_and_replaces_the_stale_one() {
    let origin = Origin::new(&[("Cargo.lock", "version = 1\n")]);
    let config = errand_toml(&format!("commands = ['''{MARKING_SETUP}''']"), READING_AGENT);
    let docker = docker().await;
    let first = rollout(&start_worker(TWELVE_HOURS).await, &origin, &config).await;
    let key = key_of(&first);
    let stale = image_id(&docker, &format!("{ENV_REPOSITORY}:{key}")).await.expect("kept");

    // A worker whose environments go stale after a millisecond: the one just built already is.
    let impatient = start_worker(Duration::from_millis(1)).await;
    let second = rollout(&impatient, &origin, &config).await;

    assert_setup_passed(&second, 1);
    assert_eq!(second.environment, EnvironmentState::Built { key: key.clone(), kept: true });
    assert_ne!(marker(&second), marker(&first));
    let fresh = image_id(&docker, &format!("{ENV_REPOSITORY}:{key}")).await.expect("kept");
    assert_ne!(fresh, stale, "the new image has the name");
    assert_eq!(image_id(&docker, &stale).await, None, "the stale image is gone");
    assert_eq!(images_of_key(&docker, &key).await.len(), 1);
}

#[tokio::test]
async fn with_the_cache_off_setup_runs_every_time_and_no_image_is_left() {
    let origin = Origin::new(&[("Cargo.lock", "version = 1\n")]);
    let config = errand_toml(&format!("commands = ['''{MARKING_SETUP}''']"), READING_AGENT);
    let worker = start_worker(Duration::ZERO).await;
    let docker = docker().await;

    let first = rollout(&worker, &origin, &config).await;
    let second = rollout(&worker, &origin, &config).await;

    for outcome in [&first, &second] {
        assert_setup_passed(outcome, 1);
        assert!(
            matches!(outcome.environment, EnvironmentState::Built { kept: false, .. }),
            "{:?}",
            outcome.environment
        );
    }
    assert_ne!(marker(&first), marker(&second), "setup ran for each");
    let key = key_of(&first);
    assert_eq!(image_id(&docker, &format!("{ENV_REPOSITORY}:{key}")).await, None);
    assert_eq!(images_of_key(&docker, &key).await, [], "each attempt's image went with it");
}

#[tokio::test]
async fn setup_has_the_network_only_when_it_asks_for_it() {
    let origin = Origin::new(&[("Cargo.lock", "version = 1\n")]);
    // The interfaces a step sees: only `lo` without a network, `eth0` too on the engine's bridge.
    let interfaces = "cat /proc/net/dev";
    let agent = format!("{interfaces}; echo done > \"$ERRAND_SUMMARY_FILE\"");
    let worker = start_worker(TWELVE_HOURS).await;

    let offline = rollout(&worker, &origin, &errand_toml(&format!("commands = [\"{interfaces}\"]"), &agent)).await;
    let online =
        rollout(&worker, &origin, &errand_toml(&format!("commands = [\"{interfaces}\"]\nnetwork = true"), &agent))
            .await;

    assert_setup_passed(&offline, 1);
    assert_setup_passed(&online, 1);
    let offline_setup = &offline.setup[0].report.output_tail;
    let online_setup = &online.setup[0].report.output_tail;
    assert!(offline_setup.contains("lo:") && !offline_setup.contains("eth0"), "{offline_setup}");
    assert!(online_setup.contains("eth0"), "setup with `network = true` is on the bridge: {online_setup}");
    assert_ne!(key_of(&offline), key_of(&online), "the network is part of what setup's result depends on");
    // The steps after setup keep the repository's policy (none).
    let agent_output = &online.agent.as_ref().expect("the agent ran").output_tail;
    assert!(agent_output.contains("lo:") && !agent_output.contains("eth0"), "{agent_output}");
}

#[tokio::test]
async fn setup_cannot_write_to_the_workspace_and_a_failed_setup_keeps_nothing() {
    let origin = Origin::new(&[("Cargo.lock", "version = 1\n")]);
    let config = errand_toml(
        "commands = [\"echo first > $HOME/first\", \"touch /workspace/node_modules\", \"echo never\"]",
        READING_AGENT,
    );
    let worker = start_worker(TWELVE_HOURS).await;
    let docker = docker().await;

    let job = job(&origin.name);
    let outcome = rollout_job(&worker, &origin, &config, &job).await;

    assert_eq!(outcome.agent_end, AgentEnd::NotRun);
    assert_eq!(outcome.setup.len(), 2, "setup stops at the failing command: {:?}", outcome.setup);
    assert!(outcome.setup[0].passed());
    let failed = &outcome.setup[1];
    assert!(!failed.passed());
    assert_eq!(failed.command, "touch /workspace/node_modules");
    assert!(failed.report.output_tail.contains("Read-only file system"), "{:?}", failed.report.output_tail);
    assert_eq!(outcome.environment, EnvironmentState::None);
    let filters = HashMap::from([("label", vec![format!("{LABEL_ENV_REPO}={}", origin.name)])]);
    let images = docker
        .list_images(Some(ListImagesOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .expect("images");
    assert!(images.is_empty(), "nothing is kept from a failed setup: {images:?}");
    assert_eq!(containers_of_job(&docker, &job.id).await, Vec::<String>::new(), "the setup container is gone");
}

#[tokio::test]
async fn two_workers_building_the_same_environment_at_once_both_succeed() {
    let origin = Origin::new(&[("Cargo.lock", "version = 1\n")]);
    let config = errand_toml(&format!("commands = ['''{MARKING_SETUP}''', \"sleep 1\"]"), READING_AGENT);
    let (a, b) = (start_worker(TWELVE_HOURS).await, start_worker(TWELVE_HOURS).await);
    let docker = docker().await;

    let (first, second) = tokio::join!(rollout(&a, &origin, &config), rollout(&b, &origin, &config));

    for outcome in [&first, &second] {
        assert_eq!(outcome.agent_end, AgentEnd::Finished, "{outcome:?}");
        assert!(outcome.setup.iter().all(|s| s.passed()), "{:?}", outcome.setup);
    }
    assert_eq!(key_of(&first), key_of(&second));
    assert!(
        [&first, &second].iter().any(|o| matches!(o.environment, EnvironmentState::Built { .. })),
        "at least one built it"
    );
    // The name went to one of them; the other image went with its attempt.
    let key = key_of(&first);
    let images = images_of_key(&docker, &key).await;
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].1, [format!("{ENV_REPOSITORY}:{key}")]);
    let held = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new()
                .filters(&HashMap::from([("reference", vec![format!("{HOLD_REPOSITORY}:{key}-*")])]))
                .build(),
        ))
        .await
        .expect("images");
    assert!(held.is_empty(), "no hold is left: {held:?}");
    let next = rollout(&a, &origin, &config).await;
    assert_setup_passed(&next, 0);
    assert!([marker(&first), marker(&second)].contains(&marker(&next)));
}
