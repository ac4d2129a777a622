//! The sandbox against the real Docker engine and the busybox test image: what a step reports,
//! what it can reach (its workspace, nothing else), the limits it runs under, and that no
//! container outlives its step.
//!
//! Needs a running engine and `deploy/sandbox-test-image/build.sh`; fails (never skips) without.

#[path = "support/docker.rs"]
mod docker_support;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use docker_support::{TEST_IMAGE, containers_of_job, docker, sandbox_with_test_image};
use errand::job::JobId;
use errand::sandbox::{Limits, NetworkAccess, Sandbox, SandboxError, SetupSpec, StepOutput, StepSpec};
use tempfile::TempDir;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wait::wait_until;

/// The uid and gid steps run as: not root, and not in the image's /etc/passwd.
const SANDBOX_UID: u32 = 10001;
/// Generous bound for anything that should take "seconds" on a loaded CI machine.
const PROMPTLY: Duration = Duration::from_secs(20);

/// A step's host side: its workspace and errand directory, owned by the sandbox uid.
struct Dirs {
    workspace: TempDir,
    errand: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let dirs = Dirs { workspace: sandbox_dir(), errand: sandbox_dir() };
        std::fs::write(dirs.errand.path().join("task.md"), "Fix the calculator.\n").expect("writing the task file");
        dirs
    }

    fn workspace(&self) -> &Path {
        self.workspace.path()
    }
}

/// A temp dir the sandbox uid can write to: chowned when the tests run as root (as in CI),
/// world-writable otherwise.
fn sandbox_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    if std::os::unix::fs::chown(dir.path(), Some(SANDBOX_UID), Some(SANDBOX_UID)).is_err() {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod 777");
    }
    dir
}

fn limits() -> Limits {
    Limits { memory_bytes: 256 * 1024 * 1024, nano_cpus: 1_000_000_000, pids: 128, disk_bytes: 1 << 30 }
}

/// The disk bound of the disk tests: small, so that passing it costs the test machine little.
const SMALL_DISK: u64 = 64 * 1024 * 1024;

fn step(job: &JobId, dirs: &Dirs, script: &str) -> StepSpec {
    StepSpec {
        job: job.clone(),
        step: "check:test".into(),
        image: TEST_IMAGE.into(),
        script: script.into(),
        workspace: dirs.workspace.path().to_owned(),
        errand_dir: dirs.errand.path().to_owned(),
        objects: None,
        env: vec![
            ("ERRAND_TASK".into(), "Fix the calculator".into()),
            ("ERRAND_TASK_FILE".into(), "/errand/task.md".into()),
            ("ERRAND_SUMMARY_FILE".into(), "/errand/summary.md".into()),
            ("HOME".into(), "/tmp".into()),
        ],
        user: format!("{SANDBOX_UID}:{SANDBOX_UID}"),
        network: NetworkAccess::None,
        limits: limits(),
        timeout: Duration::from_secs(60),
    }
}

async fn run(sandbox: &Sandbox, spec: &StepSpec) -> StepOutput {
    sandbox.run_step(spec, &CancellationToken::new()).await.unwrap_or_else(|error| panic!("the step ran: {error}"))
}

/// Run steps remove their container before they return, so this checks at once.
async fn assert_no_container_left(docker: &Docker, job: &JobId) {
    let left = containers_of_job(docker, job).await;
    assert!(left.is_empty(), "containers of job {job} are left: {left:?}");
}

#[tokio::test]
async fn a_step_reports_its_exit_code_duration_and_output_tail() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let script = "echo to-stderr >&2; sleep 1; i=1; while [ $i -le 100 ]; do echo line $i; i=$((i+1)); done; exit 3";

    let output = run(&sandbox, &step(&job, &dirs, script)).await;

    assert_eq!(output.exit_code, 3);
    assert!(output.duration >= Duration::from_secs(1), "took {:?}", output.duration);
    assert!(output.duration < PROMPTLY, "took {:?}", output.duration);
    assert!(!output.timed_out && !output.cancelled && !output.oom_killed);
    let lines: Vec<&str> = output.output_tail.lines().collect();
    assert_eq!(lines.len(), 60, "the tail keeps the last 60 lines: {lines:?}");
    assert_eq!(lines.first(), Some(&"line 41"));
    assert_eq!(lines.last(), Some(&"line 100"));
    assert_no_container_left(&docker, &job).await;

    let both = run(&sandbox, &step(&job, &dirs, "echo out; echo err >&2")).await;
    assert_eq!(both.exit_code, 0);
    assert!(both.output_tail.contains("out\n") && both.output_tail.contains("err\n"), "{}", both.output_tail);
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_flood_of_output_comes_back_as_a_bounded_tail() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    // 20 MB in one line (the engine splits it into 16 KiB log entries), then a last word.
    let script = "head -c 20000000 /dev/zero | tr '\\0' x; echo; echo the end";

    let output = run(&sandbox, &step(&job, &dirs, script)).await;

    assert_eq!(output.exit_code, 0);
    assert!(output.output_tail.len() <= errand::sandbox::TAIL_BYTES, "{} bytes", output.output_tail.len());
    let tail = &output.output_tail;
    assert!(tail.starts_with("\u{2026}xxx") && tail.ends_with("xxx\nthe end\n"), "{tail}");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn writes_to_the_workspace_land_in_the_host_directory() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    std::fs::write(dirs.workspace().join("calc.sh"), "add() { echo $(( $1 - $2 )); }\n").expect("a workspace file");
    let script = "pwd > where.txt && sed -i 's/- \\$2/+ $2/' calc.sh && mkdir -p sub && cat \"$ERRAND_TASK_FILE\" > sub/task-copy.md && echo 'Make add add' > \"$ERRAND_SUMMARY_FILE\" && touch /tmp/scratch";

    let output = run(&sandbox, &step(&job, &dirs, script)).await;

    assert_eq!(output.exit_code, 0, "{}", output.output_tail);
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(read(&dirs.workspace().join("where.txt")), "/workspace\n");
    assert_eq!(read(&dirs.workspace().join("calc.sh")), "add() { echo $(( $1 + $2 )); }\n");
    assert_eq!(read(&dirs.workspace().join("sub/task-copy.md")), "Fix the calculator.\n");
    assert_eq!(read(&dirs.errand.path().join("summary.md")), "Make add add\n");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn the_step_runs_as_the_given_uid_without_capabilities_or_network() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let script = "echo uid=$(id -u) gid=$(id -g); grep -E '^(Cap|NoNewPrivs)' /proc/self/status; \
                  tail -n +3 /proc/net/dev | cut -d: -f1 | sed 's/^ */iface=/'; \
                  echo routes=$(tail -n +2 /proc/net/route | wc -l); \
                  for sock in /var/run/docker.sock /run/docker.sock; do [ -e $sock ] && echo docker-socket=$sock; done; true";

    let output = run(&sandbox, &step(&job, &dirs, script)).await;

    let tail = &output.output_tail;
    assert_eq!(output.exit_code, 0, "{tail}");
    assert!(tail.contains(&format!("uid={SANDBOX_UID} gid={SANDBOX_UID}\n")), "{tail}");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(tail.contains(&format!("{set}:\t0000000000000000\n")), "{set} is not empty: {tail}");
    }
    assert!(tail.contains("NoNewPrivs:\t1\n"), "{tail}");
    let interfaces: Vec<&str> = tail.lines().filter_map(|l| l.strip_prefix("iface=")).collect();
    assert_eq!(interfaces, ["lo"], "only the loopback interface exists");
    assert!(tail.contains("routes=0\n"), "no route leads anywhere: {tail}");
    assert!(!tail.contains("docker-socket="), "the Docker socket is out of reach: {tail}");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_step_that_asks_for_network_gets_an_interface_besides_loopback() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec { network: NetworkAccess::Open, ..step(&job, &dirs, "tail -n +3 /proc/net/dev | cut -d: -f1") };

    let output = run(&sandbox, &spec).await;

    let interfaces: Vec<&str> = output.output_tail.lines().map(str::trim).collect();
    assert!(interfaces.contains(&"lo") && interfaces.len() > 1, "{interfaces:?}");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn the_environment_holds_only_the_given_variables() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = step(&job, &dirs, "env");

    let output = run(&sandbox, &spec).await;

    assert_eq!(output.exit_code, 0, "{}", output.output_tail);
    let names: BTreeSet<&str> =
        output.output_tail.lines().filter_map(|line| line.split_once('=')).map(|(k, _)| k).collect();
    // PATH comes from the image, HOSTNAME from Docker; PWD and SHLVL are set by the shell.
    let mut allowed: BTreeSet<&str> = spec.env.iter().map(|(k, _)| k.as_str()).collect();
    allowed.extend(["PATH", "HOSTNAME", "PWD", "SHLVL"]);
    let unexpected: Vec<&&str> = names.difference(&allowed).collect();
    assert!(unexpected.is_empty(), "unexpected variables {unexpected:?} in:\n{}", output.output_tail);
    assert!(output.output_tail.contains("ERRAND_TASK=Fix the calculator\n"));
    assert!(output.output_tail.contains("HOME=/tmp\n"));
    // The test process's own environment (cargo sets CARGO_* for it) does not leak in.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok() && !names.contains("CARGO_MANIFEST_DIR"));
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_step_over_its_timeout_is_killed_and_reported_timed_out() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec { timeout: Duration::from_secs(2), ..step(&job, &dirs, "echo started; sleep 300; echo never") };

    let output = run(&sandbox, &spec).await;

    assert!(output.timed_out, "{output:?}");
    assert!(!output.cancelled && !output.oom_killed);
    assert_eq!(output.exit_code, 137, "killed by SIGKILL");
    assert!(output.duration >= Duration::from_secs(2) && output.duration < PROMPTLY, "took {:?}", output.duration);
    assert_eq!(output.output_tail, "started\n");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn cancellation_kills_a_running_step_within_seconds() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = step(&job, &dirs, "touch /workspace/started; sleep 300");
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let (sandbox, cancel) = (sandbox.clone(), cancel.clone());
        async move { sandbox.run_step(&spec, &cancel).await }
    });
    let started = dirs.workspace().join("started");
    wait_until("the step has started", PROMPTLY, async || started.exists().then_some(())).await;

    let cancelled_at = Instant::now();
    cancel.cancel();
    let output = tokio::time::timeout(PROMPTLY, running)
        .await
        .expect("the step returns within seconds of the cancellation")
        .expect("the step's task did not panic")
        .unwrap_or_else(|error| panic!("the step ran: {error}"));

    assert!(output.cancelled && !output.timed_out, "{output:?}");
    assert_eq!(output.exit_code, 137);
    assert!(cancelled_at.elapsed() < Duration::from_secs(10), "took {:?}", cancelled_at.elapsed());
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_dropped_step_still_removes_its_container() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = step(&job, &dirs, "touch /workspace/started; sleep 300");
    let started = dirs.workspace().join("started");
    let cancel = CancellationToken::new();
    let step = sandbox.run_step(&spec, &cancel);
    let started_and_running = async {
        wait_until("the step has started", PROMPTLY, async || started.exists().then_some(())).await;
        assert_eq!(containers_of_job(&docker, &job).await.len(), 1, "the step's container is there");
    };

    // The step's future is dropped mid-run, as when a job's task is aborted.
    tokio::select! {
        _ = step => panic!("the step ended on its own"),
        () = started_and_running => {}
    }

    wait_until("the dropped step's container is removed", PROMPTLY, async || {
        containers_of_job(&docker, &job).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_pids_limit_holds() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec {
        limits: Limits { pids: 32, ..limits() },
        ..step(&job, &dirs, "i=0; while [ $i -lt 100 ]; do sleep 300 & i=$((i+1)); done; echo spawned all $i")
    };

    let output = run(&sandbox, &spec).await;

    assert!(!output.timed_out, "the step ended on its own: {output:?}");
    assert_ne!(output.exit_code, 0, "{}", output.output_tail);
    assert!(output.output_tail.contains("can't fork"), "{}", output.output_tail);
    assert!(!output.output_tail.contains("spawned all"), "{}", output.output_tail);
    assert_no_container_left(&docker, &job).await;
}

/// The engine here (Docker 20.10, cgroup v1) enforces the memory limit: a step that needs more
/// is killed by the kernel's OOM killer and Docker records `OOMKilled`.
#[tokio::test]
async fn a_step_over_its_memory_limit_is_oom_killed() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec {
        limits: Limits { memory_bytes: 64 * 1024 * 1024, ..limits() },
        // 200 MB held in a shell variable, with no swap to escape to.
        ..step(&job, &dirs, "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}")
    };

    let output = run(&sandbox, &spec).await;

    assert!(output.oom_killed, "{output:?}");
    assert_eq!(output.exit_code, 137);
    assert!(!output.timed_out && !output.cancelled);
    assert!(!output.output_tail.contains("survived"), "{}", output.output_tail);
    assert_no_container_left(&docker, &job).await;
}

/// Writes 96 MB (past [`SMALL_DISK`]) to `path` inside the container, then waits to be killed.
fn write_past_the_bound_and_wait(path: &str) -> String {
    format!("dd if=/dev/zero of={path} bs=1M count=96 2>/dev/null && echo wrote; sleep 300; echo never")
}

/// A step killed for its disk bound: promptly (the bound is measured every two seconds), without
/// waiting for its timeout, and reported as such.
fn assert_killed_for_disk(output: &StepOutput) {
    assert_eq!(output.disk_exceeded, Some(SMALL_DISK), "{output:?}");
    assert!(!output.timed_out && !output.cancelled && !output.oom_killed, "{output:?}");
    assert_eq!(output.exit_code, 137, "killed by SIGKILL");
    assert!(output.duration < PROMPTLY, "took {:?}", output.duration);
    assert_eq!(output.output_tail, "wrote\n");
}

#[tokio::test]
async fn a_step_that_fills_its_workspace_past_the_disk_bound_is_killed_and_says_so() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec {
        limits: Limits { disk_bytes: SMALL_DISK, ..limits() },
        ..step(&job, &dirs, &write_past_the_bound_and_wait("/workspace/big"))
    };

    let output = run(&sandbox, &spec).await;

    assert_killed_for_disk(&output);
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_step_that_fills_its_containers_writable_layer_past_the_disk_bound_is_killed_and_says_so() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec {
        limits: Limits { disk_bytes: SMALL_DISK, ..limits() },
        ..step(&job, &dirs, &write_past_the_bound_and_wait("/var/tmp/big"))
    };

    let output = run(&sandbox, &spec).await;

    assert_killed_for_disk(&output);
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_step_that_writes_past_the_disk_bound_and_ends_at_once_is_still_reported() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec {
        limits: Limits { disk_bytes: SMALL_DISK, ..limits() },
        ..step(&job, &dirs, "dd if=/dev/zero of=/errand/big bs=1M count=96 2>/dev/null && echo wrote")
    };

    let output = run(&sandbox, &spec).await;

    assert_eq!(output.disk_exceeded, Some(SMALL_DISK), "{output:?}");
    assert_eq!(output.exit_code, 0, "it ended on its own: {output:?}");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn the_disk_bound_counts_what_a_step_adds_not_the_repository_it_starts_with() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    // A repository larger than the bound, as a real one may be.
    std::fs::write(dirs.workspace().join("assets.bin"), vec![7u8; 80 * 1024 * 1024]).expect("a large file");
    // The step runs for longer than one measuring interval, so it is measured while it runs and as it ends.
    let spec = StepSpec {
        limits: Limits { disk_bytes: SMALL_DISK, ..limits() },
        ..step(
            &job,
            &dirs,
            "dd if=/dev/zero of=/workspace/build.out bs=1M count=16 2>/dev/null && \
             dd if=/dev/zero of=/var/tmp/cache bs=1M count=16 2>/dev/null && sleep 3 && echo done",
        )
    };

    let output = run(&sandbox, &spec).await;

    assert_eq!(output.disk_exceeded, None, "{output:?}");
    assert_eq!(output.exit_code, 0, "{output:?}");
    assert_eq!(output.output_tail, "done\n");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn setup_that_fills_its_container_past_the_disk_bound_is_killed_and_commits_nothing() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let setup = SetupSpec {
        container: StepSpec { limits: Limits { disk_bytes: SMALL_DISK, ..limits() }, ..step(&job, &dirs, "") },
        commands: vec!["echo first".into(), write_past_the_bound_and_wait("/home/errand/big"), "echo never".into()],
        home: "/home/errand".into(),
        repository: "errand-env-disk-test".into(),
        tag: job.short().to_owned(),
        labels: Default::default(),
    };

    let output =
        sandbox.run_setup(&setup, &CancellationToken::new()).await.unwrap_or_else(|e| panic!("setup ran: {e}"));

    assert_eq!(output.image, None, "nothing is committed");
    assert_eq!(output.commands.len(), 2, "setup stops at the command that passed the bound: {output:?}");
    assert_eq!(output.commands[0].disk_exceeded, None);
    assert_killed_for_disk(&output.commands[1]);
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_missing_image_is_reported_as_image_missing() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec { image: "errand-no-such-image:never-built".into(), ..step(&job, &dirs, "true") };

    let error = sandbox.run_step(&spec, &CancellationToken::new()).await.expect_err("the image is missing");

    assert!(
        matches!(&error, SandboxError::ImageMissing { image } if image == "errand-no-such-image:never-built"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the sandbox image `errand-no-such-image:never-built` is not on this worker: build or pull it there"
    );
    assert!(!sandbox.image_exists("errand-no-such-image:never-built").await.expect("the engine answers"));
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn a_root_user_is_refused_before_any_container_starts() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, dirs) = (JobId::generate(), Dirs::new());
    let spec = StepSpec { user: "0:0".into(), ..step(&job, &dirs, "true") };

    let error = sandbox.run_step(&spec, &CancellationToken::new()).await.expect_err("root is refused");

    assert!(matches!(error, SandboxError::InvalidStep { .. }), "{error:?}");
    assert_no_container_left(&docker, &job).await;
}

#[tokio::test]
async fn remove_leftovers_removes_a_container_left_running() {
    let (sandbox, docker) = (sandbox_with_test_image().await, docker().await);
    let (job, other_job) = (JobId::generate(), JobId::generate());
    for owner in [&job, &other_job] {
        start_orphan(&docker, owner).await;
    }
    assert_eq!(containers_of_job(&docker, &job).await.len(), 1);

    assert_eq!(sandbox.remove_leftovers(Some(&job)).await.expect("removing leftovers"), 1);

    assert_no_container_left(&docker, &job).await;
    assert_eq!(containers_of_job(&docker, &other_job).await.len(), 1, "another job's container is left alone");
    sandbox.remove_leftovers(Some(&other_job)).await.expect("removing the other job's leftovers");
    assert_no_container_left(&docker, &other_job).await;
}

/// A running container labelled as errand's, as a crashed worker would leave it.
async fn start_orphan(docker: &Docker, job: &JobId) {
    let body = ContainerCreateBody {
        image: Some(TEST_IMAGE.into()),
        entrypoint: Some(vec!["sh".into(), "-c".into(), "sleep 300".into()]),
        user: Some(format!("{SANDBOX_UID}")),
        labels: Some(
            [("errand.managed", "1"), ("errand.job", job.as_str()), ("errand.step", "agent")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ),
        ..ContainerCreateBody::default()
    };
    let name = format!("errand-{job}-orphan");
    let created = docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
        .await
        .expect("creating an orphan container");
    docker.start_container(&created.id, None).await.expect("starting the orphan container");
}
