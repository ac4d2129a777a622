//! A hostile agent against the whole path: the agent (anyone who writes an issue can steer it)
//! runs any code in its container and leaves anything in `/workspace` and `/errand`. Each test is
//! an agent script that tries one attack class on the worker, and a check on the world afterwards
//! that it failed: a marker file on the host that must never appear, canary secrets that must
//! never reach the fake GitHub or a pushed commit, a worker that must not hang.
//!
//! The worker here runs in the test process, as the host user; the markers are files on the host
//! that only a command run by the worker could create (the sandbox sees none of the host's files).

mod support;

use std::path::Path;
use std::time::Duration;

use errand::job::JobStatus;
use support::world::{self, FIXING_AGENT, REPO, World, errand_toml};

/// How long a job of a hostile agent may take before the worker counts as held.
const JOB_BOUND: Duration = Duration::from_secs(180);

/// The names in `dir`: any of them is a command that ran on the worker.
fn markers_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the marker directory")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs the worker until the queue is empty, within [`JOB_BOUND`].
async fn drain_within_bound(world: &World) -> usize {
    tokio::time::timeout(JOB_BOUND, world.drain()).await.expect("the worker is not held by what the agent left")
}

/// Every body errand sent to the fake GitHub, as text.
fn everything_posted(world: &World) -> String {
    world.github.requests().into_iter().filter_map(|r| r.body.map(|b| b.to_string())).collect::<Vec<_>>().join("\n")
}

/// A git directory on the host whose configuration runs a command: what a `.git` file the agent
/// writes can point at.
fn host_repository_with_fsmonitor(dir: &Path, marker: &Path) -> std::path::PathBuf {
    let repo = dir.join("host-repo.git");
    let made = std::process::Command::new("git")
        .args(["init", "--quiet", "--bare"])
        .arg(&repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git runs");
    assert!(made.success());
    let config = format!(
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = \"touch {m}.gitfile-fsmonitor\"\n\thooksPath = {hooks}\n",
        m = marker.display(),
        hooks = dir.join("host-hooks").display()
    );
    std::fs::write(repo.join("config"), config).expect("the host repository's config");
    repo
}

/// An agent that takes over the `.git` at the top of the work tree and fills it with
/// configuration that runs commands (fsmonitor, pager, ssh, filter and diff drivers, hooks),
/// points every file at those drivers, plants a nested repository and a `.git` file pointing at a
/// host repository, and then fixes the bug, so that errand's git has work to do on all of it.
fn agent_planting_git_config(marker: &Path, host_repo: &Path) -> String {
    let m = marker.display();
    format!(
        r#"set -e
if ! touch .git/config 2>/dev/null; then mv .git .git-taken; mkdir .git; cp -r .git-taken/. .git/; fi
cat >> .git/config <<'EOF'
[core]
	fsmonitor = "touch {m}.fsmonitor"
	pager = "touch {m}.pager"
	sshCommand = "touch {m}.ssh"
	editor = "touch {m}.editor"
	hooksPath = .git/evil-hooks
[filter "evil"]
	clean = "touch {m}.clean"
	smudge = "touch {m}.smudge"
	process = "touch {m}.process"
	required = true
[diff "evil"]
	textconv = "touch {m}.textconv"
	command = "touch {m}.diff"
[credential]
	helper = "!touch {m}.credential"
[gc]
	auto = 1
EOF
mkdir -p .git/hooks .git/evil-hooks
for hook in pre-commit prepare-commit-msg commit-msg post-commit pre-push post-checkout post-merge reference-transaction post-index-change pre-auto-gc fsmonitor-watchman; do
  printf '#!/bin/sh\ntouch %s.hook-%s\n' '{m}' "$hook" > .git/hooks/$hook
  cp .git/hooks/$hook .git/evil-hooks/$hook
  chmod +x .git/hooks/$hook .git/evil-hooks/$hook
done
printf '* filter=evil diff=evil\n' > .gitattributes
mkdir -p vendor/lib/.git/objects vendor/lib/.git/refs/heads
printf 'ref: refs/heads/main\n' > vendor/lib/.git/HEAD
cp .git/config vendor/lib/.git/config
echo vendored > vendor/lib/file.txt
mkdir -p sub
printf 'gitdir: {host}\n' > sub/.git
echo sub > sub/file.txt
sed -i 's/\$1 - \$2/$1 + $2/' calc.sh
printf 'Make add() add\n\nFixed, and left some git configuration behind.\n' > "$ERRAND_SUMMARY_FILE"
"#,
        host = host_repo.display()
    )
}

/// An agent that replaces the top `.git` with a `.git` file pointing at a host repository whose
/// configuration runs a command, then fixes the bug.
fn agent_with_a_git_file(host_repo: &Path) -> String {
    format!(
        r#"mv .git .git-replaced && printf 'gitdir: {host}\n' > .git && sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && printf 'Make add() add\n' > "$ERRAND_SUMMARY_FILE""#,
        host = host_repo.display()
    )
}

/// An agent that reports what it found in the work tree it was given.
const AGENT_LOOKING_AROUND: &str = r#"{ ls -A; echo '--- .git/config'; cat .git/config; echo '--- .git/hooks'; ls -A .git/hooks 2>&1; } > found.txt; printf 'What I found\n' > "$ERRAND_SUMMARY_FILE""#;

#[tokio::test]
async fn git_configuration_hooks_and_planted_repositories_never_run_anything_on_the_worker() {
    let markers = tempfile::tempdir().expect("a marker directory");
    let marker = markers.path().join("ran");
    let hosts = tempfile::tempdir().expect("a directory for the host repository");
    let host_repo = host_repository_with_fsmonitor(hosts.path(), &marker);
    // One job per request, in order, on one reused tree: the first plants, the second replaces
    // the top `.git` with a file, the third looks at what it was given.
    let agent = format!(
        r#"case "$ERRAND_TASK" in *plant*) {plant};; *gitfile*) {gitfile};; *) {look};; esac"#,
        plant = agent_planting_git_config(&marker, &host_repo),
        gitfile = agent_with_a_git_file(&host_repo),
        look = AGENT_LOOKING_AROUND,
    );
    let world = World::start(&errand_toml(&agent, "2m")).await;

    world.comment(1, "octocat", "@agent plant", "delivery-plant").await;
    world.comment(1, "octocat", "@agent gitfile", "delivery-gitfile").await;
    world.comment(1, "octocat", "@agent look", "delivery-look").await;
    // At most twice the jobs asked for, so that a worker the attack derails (git failing, the job
    // retried) still gets to the check that matters: whether anything ran on the worker.
    let mut ran = 0;
    while world.queue.outstanding().await.expect("the queue answers") > 0 && ran < 6 {
        let claimed = tokio::time::timeout(JOB_BOUND, world.worker.run_next_job(Duration::from_secs(5))).await;
        ran += usize::from(claimed.expect("the worker is not held").expect("the worker runs").is_some());
    }

    assert_eq!(markers_in(markers.path()), Vec::<String>::new(), "a command the agent configured ran on the worker");
    assert_eq!(ran, 3, "each request ran once");
    let jobs = world.jobs().await;
    assert!(jobs.iter().all(|j| j.state.status() == JobStatus::Succeeded), "{jobs:#?}");
    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 3, "{pulls:#?}");

    let planted = pulls.iter().find(|p| p.body.contains("left some git configuration")).expect("the planting job's PR");
    let paths = world.github.paths_at(REPO, &planted.head);
    assert!(
        paths.contains(&"vendor/lib/file.txt".to_owned()) && paths.contains(&"sub/file.txt".to_owned()),
        "{paths:?}"
    );
    assert!(paths.iter().all(|p| !p.contains(".git/")), "no git metadata is pushed as content: {paths:?}");
    assert!(
        planted.body.contains("`vendor/lib/.git` (a git repository inside the work tree) was removed"),
        "{}",
        planted.body
    );
    assert!(planted.body.contains("`sub/.git`"), "{}", planted.body);
    assert_eq!(
        world.github.file_at(REPO, &planted.head, "calc.sh").as_deref(),
        Some("add() { echo $(( $1 + $2 )); }\n")
    );

    let looked = pulls.iter().find(|p| p.title == "What I found").expect("the last job's PR");
    let found = world.github.file_at(REPO, &looked.head, "found.txt").expect("what the agent found");
    for left in ["vendor", "sub", ".gitattributes", "fsmonitor", "evil", "gitdir:"] {
        assert!(!found.contains(left), "`{left}` carried over to the next job's tree:\n{found}");
    }
    assert!(found.contains("--- .git/config\n[core]"), "the next job gets a fresh .git of its own:\n{found}");
}

#[tokio::test]
async fn a_summary_linked_to_a_worker_file_is_ignored_and_the_file_is_never_posted() {
    let host = tempfile::tempdir().expect("a temp dir");
    let key = host.path().join("app.pem");
    let canary = "MIIEowCanaryKeyLineThatMustNeverBePostedAnywhere0000000000000001";
    std::fs::write(&key, format!("-----BEGIN RSA PRIVATE KEY-----\n{canary}\n-----END RSA PRIVATE KEY-----\n"))
        .expect("the key file");
    let agent =
        format!(r#"sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && ln -sf {key} "$ERRAND_SUMMARY_FILE""#, key = key.display());
    let world = World::start(&errand_toml(&agent, "2m")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    drain_within_bound(&world).await;

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "the fix is still delivered: {:#?}", world.github.comments(REPO, 1));
    let pull = &pulls[0];
    assert_eq!(pull.title, "Fix: add() returns the wrong sum", "the link's target is not the title");
    assert!(pull.body.contains("the summary (`$ERRAND_SUMMARY_FILE`) was a symbolic link; ignored."), "{}", pull.body);
    let posted = everything_posted(&world);
    assert!(!posted.contains(canary) && !posted.contains("BEGIN RSA"), "the key file reached GitHub");
    let message = world.github.commit_message(REPO, &pull.head).expect("the pushed commit");
    assert!(!message.contains(canary) && !message.contains("BEGIN"), "{message}");
}

#[tokio::test]
async fn a_summary_linked_to_the_workers_environment_is_ignored() {
    let path = std::env::var("PATH").expect("the test process has a PATH");
    let world = World::start(&errand_toml(r#"ln -sf /proc/self/environ "$ERRAND_SUMMARY_FILE""#, "2m")).await;

    world.comment(1, "octocat", "@agent what is in your environment?", "delivery-1").await;
    drain_within_bound(&world).await;

    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("💬 **Answer**"), "{}", tracking.body);
    assert!(tracking.body.contains("was a symbolic link; ignored."), "{}", tracking.body);
    assert!(!everything_posted(&world).contains(&format!("PATH={path}")), "the worker's environment reached GitHub");
}

#[tokio::test]
async fn a_fifo_in_place_of_the_summary_does_not_hold_the_worker() {
    let agent = r#"sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && mkfifo "$ERRAND_SUMMARY_FILE" && mkfifo fifo-in-the-tree"#;
    let world = World::start(&errand_toml(agent, "2m")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    assert_eq!(drain_within_bound(&world).await, 1);

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "{:#?}", world.github.comments(REPO, 1));
    assert!(pulls[0].body.contains("was a FIFO, not a regular file; ignored."), "{}", pulls[0].body);
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Succeeded);
}

#[tokio::test]
async fn a_secret_in_the_title_is_redacted_and_a_change_holding_one_is_never_pushed() {
    let agent = format!(
        r#"case "$ERRAND_TASK" in
  *title*) sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && printf 'Fix add with {secret}\n\nBody {secret}\n' > "$ERRAND_SUMMARY_FILE";;
  *) sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && mkdir -p config && printf 'token = "{token}"\n' > config/deploy.toml && echo "printed {token}" && printf 'Add the deploy config\n' > "$ERRAND_SUMMARY_FILE";;
esac"#,
        secret = world::WEBHOOK_SECRET,
        token = world::GITHUB_TOKEN,
    );
    let world = World::start(&errand_toml(&agent, "2m")).await;

    world.comment(1, "octocat", "@agent title", "delivery-title").await;
    world.comment(1, "octocat", "@agent commit it", "delivery-commit").await;
    assert_eq!(drain_within_bound(&world).await, 2);

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "only the change without a secret is a pull request: {pulls:#?}");
    assert_eq!(pulls[0].title, "Fix add with [redacted]");
    let message = world.github.commit_message(REPO, &pulls[0].head).expect("the pushed commit");
    assert!(message.starts_with("Fix add with [redacted]"), "{message}");

    let jobs = world.jobs().await;
    let refused = jobs.iter().find(|j| j.job.task.instruction.contains("commit it")).expect("the second job");
    assert_eq!(refused.state.status(), JobStatus::Failed, "{refused:#?}");
    let tracking = world.github.comments(REPO, 1);
    let told = tracking.iter().find(|c| c.body.contains("holds a secret")).expect("the requester is told");
    assert!(told.body.contains("in `config/deploy.toml`; nothing was pushed"), "{}", told.body);
    let branches = world.github.branches(REPO);
    assert!(!branches.iter().any(|b| b.ends_with(refused.job.id.short())), "the change was pushed: {branches:?}");
    let posted = everything_posted(&world);
    for secret in [world::WEBHOOK_SECRET, world::GITHUB_TOKEN] {
        assert!(!posted.contains(secret), "{secret} reached GitHub");
    }
}

#[tokio::test]
async fn a_repositorys_agent_command_gets_only_the_model_keys_the_operator_lists() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env_file = dir.path().join("agent.env");
    std::fs::write(
        &env_file,
        "OPENAI_API_KEY=sk-proj-canaryOpenaiKey0000000000000001\nANTHROPIC_API_KEY=sk-ant-canaryAnthropicKey00000000001\nDEPLOY_TOKEN=canary-deploy-token-0001\n",
    )
    .expect("the agent env file");
    let agent = r#"for v in OPENAI_API_KEY ANTHROPIC_API_KEY DEPLOY_TOKEN; do eval "x=\${$v:-}"; [ -n "$x" ] && echo "$v is set"; done > seen.txt; printf 'Report\n' > "$ERRAND_SUMMARY_FILE""#;
    let world = World::start_with_agent_env_for_commands(&errand_toml(agent, "2m"), env_file, &["DEPLOY_TOKEN"]).await;

    world.comment(1, "octocat", "@agent report", "delivery-1").await;
    drain_within_bound(&world).await;

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "{:#?}", world.github.comments(REPO, 1));
    let seen = world.github.file_at(REPO, &pulls[0].head, "seen.txt").expect("the agent's report");
    assert_eq!(seen, "DEPLOY_TOKEN is set\n", "a repository's command got keys the operator did not list");
}

#[tokio::test]
async fn the_fixing_agent_still_works_after_the_hardening() {
    // The spine, with the sandbox's own .git: the agent can use it, errand pushes the tree.
    let agent = format!("test -f .git/HEAD && test -f .git/index && {FIXING_AGENT}");
    let world = World::start(&errand_toml(&agent, "2m")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    drain_within_bound(&world).await;

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "{:#?}", world.github.comments(REPO, 1));
    assert_eq!(world.github.paths_at(REPO, &pulls[0].head), [".errand.toml", "calc.sh", "test.sh"]);
}
