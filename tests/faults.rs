//! Fault tests for "nothing lost, nothing done twice", with real processes: workers are real
//! `errand worker` processes on a real Redis (one `redis-server` per test, since the binary
//! always uses the default key namespace), running real Docker sandboxes against the stateful
//! fake GitHub; jobs come in as signed webhooks through an in-process ingress on the same queue.
//!
//! A worker is killed (SIGKILL) at each stage of a rollout, and a second worker must reclaim the
//! job once the lease runs out, remove the dead worker's leftover container, and end the job with
//! exactly one pull request and one tracking comment in its terminal state. A worker frozen
//! (SIGSTOP) past its lease publishes nothing when it wakes after another finished the job. A
//! rollout much longer than the lease is not taken over by an idle worker. SIGTERM hands a running
//! job back within the grace period (plus a bounded wind-down), even while a GitHub request hangs,
//! and stops `serve` and `all` promptly. Redis, run durable as production must, is killed and
//! started again under a working worker and a spooling `serve`, and every job still ends once
//! after one delivery. Each call a job makes to GitHub (API and git over HTTP) is left unanswered
//! once, and errand gives it up after `ERRAND_GITHUB_TIMEOUT`, tries again and posts nothing twice.
//!
//! Stages are detected by observing the world (containers by their `errand.job`/`errand.step`
//! labels, requests held in flight by the fake GitHub), never by sleeping. A step blocks only in
//! the first worker: its sandbox runs as uid [`FIRST_UID`] and the scripts sleep when `id -u`
//! says so; the second worker runs its sandboxes as [`SECOND_UID`] and goes straight through.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use errand::ingress::{self, IngressSettings, RateLimits};
use errand::job::{JobId, JobRecord, JobStatus};
use errand::queue::{Queue, QueueSettings, RedisQueue};
use futures::StreamExt as _;
use secrecy::SecretString;
use support::docker::{TEST_IMAGE, docker, sandbox_with_test_image};
use support::fake_github::{FakeGithub, FakePull, TOKEN_BOT_LOGIN};
use support::redis::TestRedis;
use support::signing;
use support::world::{FIXING_AGENT, GITHUB_TOKEN, REPO, WEBHOOK_SECRET, calculator_files};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const ERRAND: &str = env!("CARGO_BIN_EXE_errand");

/// Short, so reclaiming a dead worker's job takes seconds.
const LEASE: Duration = Duration::from_secs(3);
/// The sandbox uid of the first worker: the blocking scripts sleep only as this user.
const FIRST_UID: u32 = 10001;
/// The sandbox uid of the second worker, whose steps never block.
const SECOND_UID: u32 = 10002;
/// Prefix of a step that blocks in the first worker's sandbox (it is killed long before); the
/// uid is [`FIRST_UID`].
const BLOCK_IN_FIRST_WORKER: &str = "if [ \"$(id -u)\" = 10001 ]; then sleep 300; fi; ";
/// The check: blocks in the first worker only after the agent fixed `calc.sh`.
const CHECK_BLOCKING_AFTER_THE_AGENT: &str =
    "if [ \"$(id -u)\" = 10001 ] && grep -q '1 + ' calc.sh; then sleep 300; fi; sh test.sh";
const CHECK: &str = "sh test.sh";

/// Bounds for waits on the world; generous, since builds and benchmarks share the CPU.
const STAGE_DEADLINE: Duration = Duration::from_secs(90);
const JOB_DEADLINE: Duration = Duration::from_secs(120);
/// How long a process may take to exit after SIGTERM beyond its grace period.
const EXIT_BOUND: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL at each stage of a rollout
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_during_the_baseline_check_leaves_a_job_that_another_worker_finishes_once() {
    let install = Installation::start(&repo_config(FIXING_AGENT, &format!("{BLOCK_IN_FIRST_WORKER}{CHECK}"))).await;
    let mut first = install.worker("first", FIRST_UID, Duration::from_secs(30));
    let job = install.request_fix().await;

    let leftover = install.running_container(&job, "baseline-test").await;
    first.sigkill();
    install.assert_running(&leftover, "the killed worker's baseline check").await;

    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_the_agent_runs_leaves_a_job_that_another_worker_finishes_once() {
    let install = Installation::start(&repo_config(&format!("{BLOCK_IN_FIRST_WORKER}{FIXING_AGENT}"), CHECK)).await;
    let mut first = install.worker("first", FIRST_UID, Duration::from_secs(30));
    let job = install.request_fix().await;

    let leftover = install.running_container(&job, "agent").await;
    first.sigkill();
    install.assert_running(&leftover, "the killed worker's agent").await;

    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_during_the_checks_leaves_a_job_that_another_worker_finishes_once() {
    let install = Installation::start(&repo_config(FIXING_AGENT, CHECK_BLOCKING_AFTER_THE_AGENT)).await;
    let mut first = install.worker("first", FIRST_UID, Duration::from_secs(30));
    let job = install.request_fix().await;

    let leftover = install.running_container(&job, "check-test").await;
    first.sigkill();
    install.assert_running(&leftover, "the killed worker's check").await;

    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_pushing_but_before_opening_the_pull_request_leaves_one_pull_request() {
    let install = Installation::start(&repo_config(FIXING_AGENT, CHECK)).await;
    let mut opening = install.github.hold_next("POST", &format!("/repos/{REPO}/pulls"), None);
    let mut first = install.worker("first", FIRST_UID, Duration::from_secs(30));
    let job = install.request_fix().await;

    opening.arrived(STAGE_DEADLINE).await;
    let branches = install.github.branches(REPO);
    assert!(
        branches.iter().any(|b| b.starts_with("errand/issue-1-")),
        "the branch is pushed before the pull request is opened; branches: {branches:?}"
    );
    first.sigkill();
    drop(opening);
    assert!(install.github.pull_requests(REPO).is_empty(), "the killed worker opened no pull request");

    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_opening_the_pull_request_but_before_the_final_comment_leaves_one_of_each() {
    let install = Installation::start(&repo_config(FIXING_AGENT, CHECK)).await;
    let mut final_edit =
        install.github.hold_next("PATCH", &format!("/repos/{REPO}/issues/comments/*"), Some("**Done**"));
    let mut first = install.worker("first", FIRST_UID, Duration::from_secs(30));
    let job = install.request_fix().await;

    final_edit.arrived(STAGE_DEADLINE).await;
    assert_eq!(install.github.pull_requests(REPO).len(), 1, "the pull request is open before the final comment");
    first.sigkill();
    drop(final_edit);
    let tracking = install.tracking_comments();
    assert!(
        tracking.len() == 1 && !tracking[0].contains("**Done**"),
        "the killed worker never showed the final state: {tracking:?}"
    );

    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frozen_past_its_lease_publishes_nothing_when_it_wakes_after_another_finished_the_job() {
    let install = Installation::start(&repo_config(&format!("{BLOCK_IN_FIRST_WORKER}{FIXING_AGENT}"), CHECK)).await;
    let mut first = install.worker("first", FIRST_UID, Duration::from_secs(60));
    let job = install.request_fix().await;

    let leftover = install.running_container(&job, "agent").await;
    first.signal("STOP");
    install.assert_running(&leftover, "the frozen worker's agent").await;
    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    let finished = install.tracking_comments();

    first.signal("CONT");
    wait_until("the woken worker notices it lost the job", STAGE_DEADLINE, async || {
        let log = first.log();
        (log.contains("lease lost") || log.contains("could not settle the job")).then_some(())
    })
    .await;
    let status = first.sigterm_and_wait(Duration::from_secs(60) + EXIT_BOUND).await;
    assert!(status.success(), "the woken worker exits 0 after SIGTERM, not {status}\n{}", first.log_tail());
    eprintln!("{}", first.log_tail());

    assert_eq!(install.tracking_comments(), finished, "the woken worker left the finished tracking comment alone");
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

// ---------------------------------------------------------------------------------------------
// 2. A rollout much longer than the lease
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_three_times_longer_than_the_lease_is_not_taken_over_by_an_idle_worker() {
    let agent_seconds = LEASE.as_secs() * 3 + 1;
    let agent = format!("echo run >> agent-runs.txt; sleep {agent_seconds}; {FIXING_AGENT}");
    let install = Installation::start(&repo_config(&agent, CHECK)).await;
    let since = unix_seconds();
    let one = install.worker("one", FIRST_UID, Duration::from_secs(30));
    let other = install.worker("other", FIRST_UID, Duration::from_secs(30));
    let job = install.request_fix().await;

    let agent_container = install.running_container(&job, "agent").await;
    let started = Instant::now();
    install.assert_done_exactly_once(&job, 1).await;
    assert!(
        started.elapsed() >= LEASE * 3,
        "the agent ran {:?}, not at least three leases ({:?}): the test proves nothing",
        started.elapsed(),
        LEASE * 3
    );
    let pull = &install.github.pull_requests(REPO)[0];
    assert_eq!(
        install.github.file_at(REPO, &pull.head, "agent-runs.txt").as_deref(),
        Some("run\n"),
        "the agent ran exactly once (container {agent_container})"
    );
    let created = install.containers_created(&job, since).await;
    assert_eq!(
        created.iter().filter(|step| *step == "agent").count(),
        1,
        "one agent container was ever created for the job; containers created, by step: {created:?}"
    );
    install.assert_alive(&one);
    install.assert_alive(&other);
}

// ---------------------------------------------------------------------------------------------
// 3. SIGTERM
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_a_running_job_back_within_the_grace_period_and_another_worker_finishes_it() {
    let grace = Duration::from_secs(1);
    let install = Installation::start(&repo_config(&format!("{BLOCK_IN_FIRST_WORKER}{FIXING_AGENT}"), CHECK)).await;
    let mut first = install.worker("first", FIRST_UID, grace);
    let job = install.request_fix().await;

    install.running_container(&job, "agent").await;
    let status = first.sigterm_and_wait(grace + EXIT_BOUND).await;
    assert!(status.success(), "the worker exits 0 after SIGTERM, not {status}\n{}", first.log_tail());
    let left = install.containers(&job, None).await;
    assert!(left.is_empty(), "the stopped worker removed its agent container before exiting: {left:?}");
    let record = install.record(&job).await;
    assert_eq!(record.status, JobStatus::Queued, "the job is handed back: {record:?}");
    assert!(install.github.pull_requests(REPO).is_empty(), "the stopped worker opened no pull request");

    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_github_request_hangs_still_exits_within_the_grace_period_and_hands_the_job_back() {
    let grace = Duration::from_secs(1);
    let install = Installation::start(&repo_config(FIXING_AGENT, CHECK)).await;
    let mut final_edit =
        install.github.hold_next("PATCH", &format!("/repos/{REPO}/issues/comments/*"), Some("**Done**"));
    let mut first = install.worker("first", FIRST_UID, grace);
    let job = install.request_fix().await;

    final_edit.arrived(STAGE_DEADLINE).await;
    let status = first.sigterm_and_wait(grace + EXIT_BOUND).await;
    assert!(status.success(), "the worker exits 0 after SIGTERM, not {status}\n{}", first.log_tail());
    let record = install.record(&job).await;
    assert_eq!(record.status, JobStatus::Queued, "the job is handed back: {record:?}");
    drop(final_edit);

    let second = install.worker("second", SECOND_UID, Duration::from_secs(30));
    install.assert_done_exactly_once(&job, 2).await;
    install.assert_alive(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_an_idle_errand_serve_promptly_with_exit_code_zero() {
    let install = Installation::start(&repo_config(FIXING_AGENT, CHECK)).await;
    let mut serve = install.http_process("serve", "serve", Duration::from_secs(30)).await;
    let status = serve.sigterm_and_wait(EXIT_BOUND).await;
    assert!(status.success(), "errand serve exits 0 after SIGTERM, not {status}\n{}", serve.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_an_idle_errand_all_promptly_with_exit_code_zero() {
    let grace = Duration::from_secs(2);
    let install = Installation::start(&repo_config(FIXING_AGENT, CHECK)).await;
    let mut all = install.http_process("all", "all", grace).await;
    let status = all.sigterm_and_wait(grace + EXIT_BOUND).await;
    assert!(status.success(), "errand all exits 0 after SIGTERM, not {status}\n{}", all.log_tail());
}

// ---------------------------------------------------------------------------------------------
// 4. Redis crashing and coming back while a worker runs
// ---------------------------------------------------------------------------------------------

/// An agent that waits until the test releases it ([`release_agent`]; bounded, in case the test
/// dies first), then fixes the bug.
const AGENT_WAITING_FOR_RELEASE: &str =
    "i=0; while [ ! -e /tmp/errand-release ] && [ $i -lt 1800 ]; do sleep 0.1; i=$((i+1)); done; ";

/// Redis as production must run it (an append-only file fsynced on every write) is killed with
/// SIGKILL and started again on the same port and data while a worker runs two jobs, a third
/// waits in the queue and a fourth arrives at `serve` (into its spool). One of the running
/// rollouts ends while Redis is down, so its publication waits for Redis. Every job ends exactly
/// once, after one delivery each: the worker carried on rather than lost or repeated anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_carries_on_through_a_redis_crash_and_restart_and_every_job_ends_exactly_once() {
    let mut install = Installation::start_on(
        &repo_config(&format!("{AGENT_WAITING_FOR_RELEASE}{FIXING_AGENT}"), CHECK),
        TestRedis::start_durable(),
    )
    .await;
    for n in 2..=4 {
        let issue = install.github.add_issue(REPO, &format!("add() is wrong ({n})"), "It subtracts.", "octocat");
        assert_eq!(issue, n);
    }
    let since = unix_seconds();
    let spool = install.dir.path().join("spool");
    let spool_dir = spool.to_str().expect("a UTF-8 path").to_owned();
    let serve_env = [("ERRAND_SPOOL_DIR", spool_dir.as_str()), ("ERRAND_GITHUB_TOKEN", GITHUB_TOKEN)];
    let (serve, serve_url) = install.http_process_with("serve", "serve", Duration::from_secs(30), &serve_env).await;
    // Two jobs at once, as by default; a lease long enough that the outage stays inside it.
    let worker_env = [("ERRAND_CONCURRENCY", "2"), ("ERRAND_LEASE", "20s")];
    let worker = install.worker_with("worker", FIRST_UID, Duration::from_secs(30), &worker_env);

    let (first, _) = install.request_fix_at(&serve_url, REPO, 1, "redis-1").await;
    let (second, _) = install.request_fix_at(&serve_url, REPO, 2, "redis-2").await;
    let first_agent = install.running_container(&first, "agent").await;
    let second_agent = install.running_container(&second, "agent").await;
    let (queued, _) = install.request_fix_at(&serve_url, REPO, 3, "redis-3").await;
    assert_eq!(install.record(&queued).await.status, JobStatus::Queued, "both of the worker's slots are busy");

    let crashed = Instant::now();
    install.redis.stop();
    let (spooled, answer) = install.request_fix_at(&serve_url, REPO, 4, "redis-4").await;
    assert_eq!(answer["spooled"], true, "with Redis down, serve spools the request: {answer}");
    // The first rollout ends while Redis is down: its publication must wait for Redis.
    release_agent(&first_agent);
    wait_until("the first job's rollout ends and asks Redis to confirm its lease", STAGE_DEADLINE, async || {
        let asked = worker.log().contains("the lease before publishing");
        (asked && install.containers(&first, None).await.is_empty()).then_some(())
    })
    .await;
    assert!(install.github.pull_requests(REPO).is_empty(), "nothing is published while the lease is unconfirmed");

    let restarting = Instant::now();
    install.redis.restart();
    let loaded = restarting.elapsed();
    let down = crashed.elapsed();
    let (first_done, spool_drained) = tokio::join!(
        async {
            wait_until("the first job is recorded done", JOB_DEADLINE, async || {
                let record = install.queue.get(&first).await.ok()?;
                let record = record.expect("the first job's record survived the crash (is Redis durable?)");
                assert!(
                    record.deliveries == 1 && record.status != JobStatus::Queued,
                    "the first job was put back in the queue, its rollout thrown away, rather than published once Redis was back: {record:?}"
                );
                (record.status == JobStatus::Succeeded).then(|| restarting.elapsed())
            })
            .await
        },
        async {
            wait_until("serve replays its spool into Redis", JOB_DEADLINE, async || {
                let left = std::fs::read_dir(&spool).map_or(0, |dir| {
                    dir.filter(|entry| entry.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "job")))
                        .count()
                });
                let queued = install.queue.get(&spooled).await.ok().flatten().is_some();
                (left == 0 && queued).then(|| restarting.elapsed())
            })
            .await
        }
    );

    release_agent(&second_agent);
    for job in [&queued, &spooled] {
        let agent = install.running_container(job, "agent").await;
        release_agent(&agent);
    }
    for (issue, job) in [(1, &first), (2, &second), (3, &queued), (4, &spooled)] {
        install.assert_done_exactly_once_on(REPO, issue, job, 1).await;
        let created = install.containers_created(job, since).await;
        let agents = created.iter().filter(|step| *step == "agent").count();
        assert_eq!(agents, 1, "job {job} (#{issue}) ran its agent once; containers created, by step: {created:?}");
    }
    assert_eq!(install.github.pull_requests(REPO).len(), 4, "one pull request per job, none more");
    install.assert_alive(&worker);
    install.assert_alive(&serve);
    println!(
        "redis restart: down {:.2} s (SIGKILL to PING answered, {:.2} s of it the restart loading the AOF); \
         after the restart, the held publication finished in {:.2} s and serve's spool was replayed in {:.2} s; \
         all 4 jobs done exactly once {:.2} s after the crash",
        down.as_secs_f64(),
        loaded.as_secs_f64(),
        first_done.as_secs_f64(),
        spool_drained.as_secs_f64(),
        crashed.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. GitHub timing out on each call a job makes
// ---------------------------------------------------------------------------------------------

/// errand's GitHub time-out (`ERRAND_GITHUB_TIMEOUT`) in the time-out test: short, so each
/// unanswered request costs little, and still far above what the fake takes to answer.
const GITHUB_TIMEOUT: Duration = Duration::from_secs(2);
/// How soon after an unanswered request errand must have given up on it and made its next
/// request: its time-out (git, which counts in whole seconds, notices a stalled push about two
/// seconds later), then a backoff of a quarter to half a second, with room for a busy machine.
const GAVE_UP_WITHIN: Duration = Duration::from_secs(2 + 5);

/// One call a job makes that GitHub leaves unanswered, in its own repository (`{repo}` in the
/// path; served over git's smart HTTP, so git's requests are among them), once.
struct Unanswered {
    call: &'static str,
    method: &'static str,
    path: &'static str,
    body_contains: Option<&'static str>,
    /// Whether GitHub carried the request out before going silent.
    after_effect: bool,
}

const UNANSWERED: [Unanswered; 12] = [
    Unanswered {
        call: "👀 on the request",
        method: "POST",
        path: "/repos/{repo}/issues/comments/*/reactions",
        body_contains: None,
        after_effect: true,
    },
    Unanswered {
        call: "tracking comment: look-up by marker",
        method: "GET",
        path: "/repos/{repo}/issues/1/comments",
        body_contains: None,
        after_effect: false,
    },
    Unanswered {
        call: "tracking comment: create",
        method: "POST",
        path: "/repos/{repo}/issues/1/comments",
        body_contains: None,
        after_effect: true,
    },
    Unanswered {
        call: "requester's permission",
        method: "GET",
        path: "/repos/{repo}/collaborators/octocat/permission",
        body_contains: None,
        after_effect: false,
    },
    Unanswered { call: "repository", method: "GET", path: "/repos/{repo}", body_contains: None, after_effect: false },
    Unanswered {
        call: ".errand.toml",
        method: "GET",
        path: "/repos/{repo}/contents/.errand.toml",
        body_contains: None,
        after_effect: false,
    },
    Unanswered {
        call: "git: clone into the mirror",
        method: "GET",
        path: "/{repo}.git/info/refs",
        body_contains: None,
        after_effect: false,
    },
    Unanswered {
        call: "tracking comment: progress edit",
        method: "PATCH",
        path: "/repos/{repo}/issues/comments/*",
        body_contains: Some("**Running**"),
        after_effect: true,
    },
    Unanswered {
        call: "git: push of the branch",
        method: "POST",
        path: "/{repo}.git/git-receive-pack",
        body_contains: None,
        after_effect: true,
    },
    Unanswered {
        call: "pull request: look-up by branch",
        method: "GET",
        path: "/repos/{repo}/pulls",
        body_contains: None,
        after_effect: false,
    },
    Unanswered {
        call: "pull request: create",
        method: "POST",
        path: "/repos/{repo}/pulls",
        body_contains: None,
        after_effect: true,
    },
    Unanswered {
        call: "tracking comment: final edit",
        method: "PATCH",
        path: "/repos/{repo}/issues/comments/*",
        body_contains: Some("**Done**"),
        after_effect: true,
    },
];

/// Each call a job makes to GitHub, in a repository of its own, is left unanswered once (after
/// carrying it out, for the calls that change something): errand gives the request up after
/// `ERRAND_GITHUB_TIMEOUT`, tries again within a bound, and the job still ends after one
/// delivery with one 👀, one tracking comment and one pull request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_call_left_unanswered_is_retried_within_a_bound_and_nothing_is_posted_twice() {
    let config = repo_config(FIXING_AGENT, CHECK);
    let install = Installation::start(&config).await;
    let timeout = format!("{}ms", GITHUB_TIMEOUT.as_millis());
    let worker_env = [("ERRAND_CONCURRENCY", "2"), ("ERRAND_GITHUB_TIMEOUT", timeout.as_str())];
    let worker = install.worker_with("worker", FIRST_UID, Duration::from_secs(30), &worker_env);
    let files = calculator_files(&config);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let add_repo = |repo: &str| {
        install.github.add_repo(repo, &files);
        install.github.serve_git_over_http(repo);
        install.github.set_permission(repo, "octocat", "write");
        install.github.add_issue(repo, "add() returns the wrong sum", "`add 2 3` prints -1.", "octocat");
    };

    // The hardest case for a create: its answer is lost after it took effect, and the look-ups
    // that follow fail as well (502 to each of their tries). errand must not post without
    // knowing: the delivery gives up, and the next one finds the comment.
    let unlisted = "acme/unanswered-then-unlisted";
    add_repo(unlisted);
    let comments_path = format!("/repos/{unlisted}/issues/1/comments");
    install.github.time_out_next("POST", &comments_path, None, 1, true);
    let (unlisted_job, _) = install.request_fix_at(&install.ingress_url, unlisted, 1, "unanswered-unlisted").await;
    wait_until("the tracking comment's POST is left unanswered", STAGE_DEADLINE, async || {
        let requests = install.github.requests();
        requests.iter().any(|r| r.method == "POST" && r.path == comments_path && r.status == 0).then_some(())
    })
    .await;
    install.github.fail_next("GET", &comments_path, 502, 5, false);

    let mut jobs = Vec::new();
    for (n, row) in UNANSWERED.iter().enumerate() {
        let repo = format!("acme/unanswered-{n}");
        add_repo(&repo);
        let path = row.path.replace("{repo}", &repo);
        install.github.time_out_next(row.method, &path, row.body_contains, 1, row.after_effect);
        let (job, _) = install.request_fix_at(&install.ingress_url, &repo, 1, &format!("unanswered-{n}")).await;
        jobs.push((row, repo, path, job));
    }

    let mut report = Vec::new();
    for (row, repo, path, job) in &jobs {
        let pull = install.assert_done_exactly_once_on(repo, 1, job, 1).await;
        let requests = install.github.requests();
        let (api, git) = (format!("/repos/{repo}"), format!("/{repo}.git/"));
        let of_repo: Vec<_> =
            requests.iter().filter(|r| r.path.starts_with(&api) || r.path.starts_with(&git)).collect();
        let unanswered: Vec<_> = of_repo.iter().filter(|r| r.status == 0).collect();
        assert_eq!(unanswered.len(), 1, "{}: one request went unanswered: {unanswered:#?}", row.call);
        let hung = unanswered[0];
        let (before, after) = path.split_once('*').unwrap_or((path, ""));
        assert!(
            hung.method == row.method && hung.path.starts_with(before) && hung.path.ends_with(after),
            "{}: the unanswered request was {} {}",
            row.call,
            hung.method,
            hung.path
        );
        let next = of_repo
            .iter()
            .filter(|r| r.at > hung.at)
            .map(|r| r.at.duration_since(hung.at))
            .min()
            .unwrap_or_else(|| panic!("{}: errand made no request after the unanswered one", row.call));
        assert!(
            next <= GAVE_UP_WITHIN,
            "{}: errand's next request came {next:?} after the unanswered one, not within {GAVE_UP_WITHIN:?}",
            row.call
        );
        let comment =
            install.github.comments(repo, 1).into_iter().find(|c| c.author == "octocat").expect("the request");
        let reactions = install.github.reactions(repo, comment.id);
        assert_eq!(reactions, ["eyes"], "{}: one 👀 on the request", row.call);
        let posts = |pattern: &str| of_repo.iter().filter(|r| r.method == "POST" && r.path.ends_with(pattern)).count();
        let pushes = posts("/git-receive-pack");
        assert_eq!(pushes, 1, "{}: one push carried out (a retry finds the branch already there)", row.call);
        let commits = install.github.branch_log(repo, &pull.head);
        assert_eq!(commits.len(), 2, "{}: the branch is one commit on main: {commits:?}", row.call);
        report.push(format!(
            "  {:<38} {} unanswered; errand tried again after {:.2} s; POSTs: {} comment, {} pull request, {} push",
            row.call,
            if row.after_effect { "after its effect, " } else { "before any effect," },
            next.as_secs_f64(),
            posts("/issues/1/comments"),
            posts("/pulls"),
            pushes,
        ));
    }
    install.assert_done_exactly_once_on(unlisted, 1, &unlisted_job, 2).await;
    let requests = install.github.requests();
    let to_comments: Vec<_> = requests.iter().filter(|r| r.path == comments_path).collect();
    let posts = to_comments.iter().filter(|r| r.method == "POST").count();
    let failed_lookups = to_comments.iter().filter(|r| r.method == "GET" && r.status == 502).count();
    assert_eq!(
        (posts, failed_lookups),
        (1, 5),
        "one POST (the unanswered one), five failed look-ups: {to_comments:#?}"
    );
    report.push(format!(
        "  {:<38} after its effect,  unanswered, then 5 look-ups failed: the delivery gave up; the next one found the comment; POSTs: {posts} comment",
        "tracking comment: create, look-up down"
    ));
    install.assert_alive(&worker);
    println!(
        "github time-outs (ERRAND_GITHUB_TIMEOUT={timeout}), one call per job left unanswered:\n{}",
        report.join("\n")
    );
}

/// Lets an agent started with [`AGENT_WAITING_FOR_RELEASE`] go on, by creating its release file
/// inside its container.
fn release_agent(container: &str) {
    let released = Command::new("docker")
        .args(["exec", container, "touch", "/tmp/errand-release"])
        .status()
        .expect("running docker exec");
    assert!(released.success(), "releasing the agent in {container}: docker exec failed");
}

// ---------------------------------------------------------------------------------------------
// The installation
// ---------------------------------------------------------------------------------------------

/// `.errand.toml` for the calculator with `agent` and one check named `test`.
fn repo_config(agent: &str, check: &str) -> String {
    format!(
        "image = \"{TEST_IMAGE}\"\ntimeout = \"5m\"\n\n[agent]\ncommand = '''{agent}'''\n\n[checks]\ntest = '''{check}'''\n"
    )
}

/// A Redis of the test's own, the fake GitHub with the calculator, an in-process ingress on the
/// Redis queue, and `errand` processes started on demand.
struct Installation {
    redis: TestRedis,
    github: FakeGithub,
    queue: Queue,
    ingress_url: String,
    http: reqwest::Client,
    docker: Docker,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
    /// Removes the job's containers if the test fails before a worker does.
    cleanup: std::sync::Mutex<Vec<JobId>>,
}

impl Installation {
    async fn start(errand_toml: &str) -> Installation {
        Self::start_on(errand_toml, TestRedis::start_owned()).await
    }

    /// The installation on a Redis the test chose (e.g. a durable one it crashes).
    async fn start_on(errand_toml: &str, redis: TestRedis) -> Installation {
        let _ = rustls::crypto::ring::default_provider().install_default();
        sandbox_with_test_image().await;
        let github = FakeGithub::start().await;
        let files = calculator_files(errand_toml);
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        github.add_repo(REPO, &files);
        github.set_permission(REPO, "octocat", "write");
        let issue = github.add_issue(REPO, "add() returns the wrong sum", "`add 2 3` prints -1.", "octocat");
        assert_eq!(issue, 1, "the calculator's first issue is #1");

        // The namespace errand's own processes use: the binary cannot choose another.
        let queue = Queue::Redis(
            RedisQueue::connect(redis.url(), QueueSettings { lease: LEASE, max_deliveries: 3 })
                .await
                .expect("connecting to the test's Redis"),
        );
        let settings = IngressSettings {
            webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET)],
            mentions: vec!["@agent".into()],
            bot_login: Some(TOKEN_BOT_LOGIN.into()),
            // One requester asks for many jobs in the time-out test.
            rate_limits: RateLimits::none(),
            ..IngressSettings::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let ingress_url = format!("http://{}", listener.local_addr().expect("its address"));
        let shutdown = CancellationToken::new();
        let router = ingress::router(Arc::new(settings), queue.clone(), None);
        let stop = shutdown.clone();
        tokio::spawn(async move { ingress::serve(listener, router, async move { stop.cancelled().await }).await });
        Installation {
            redis,
            github,
            queue,
            ingress_url,
            http: reqwest::Client::new(),
            docker: docker().await,
            dir: tempfile::tempdir().expect("a temp dir for the processes"),
            shutdown,
            cleanup: std::sync::Mutex::default(),
        }
    }

    /// `errand <sub>` with only the settings given here (none of the caller's `ERRAND_*`).
    fn errand(&self, sub: &str, name: &str, sandbox_uid: u32, grace: Duration) -> Command {
        let data = self.dir.path().join(format!("data-{name}"));
        std::fs::create_dir_all(&data).expect("the process's data dir");
        let mut cmd = Command::new(ERRAND);
        for (key, _) in std::env::vars() {
            if key.starts_with("ERRAND_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg(sub)
            .env("ERRAND_REDIS_URL", self.redis.url())
            .env("ERRAND_LEASE", format!("{}ms", LEASE.as_millis()))
            .env("ERRAND_MAX_DELIVERIES", "3")
            .env("ERRAND_GITHUB_API_URL", self.github.api_url())
            .env("ERRAND_GITHUB_TOKEN", GITHUB_TOKEN)
            .env("ERRAND_BOT_LOGIN", TOKEN_BOT_LOGIN)
            .env("ERRAND_DATA_DIR", &data)
            .env("ERRAND_DEFAULT_IMAGE", TEST_IMAGE)
            .env("ERRAND_SANDBOX_UID", sandbox_uid.to_string())
            .env("ERRAND_SANDBOX_MEMORY_MB", "256")
            .env("ERRAND_SANDBOX_CPUS", "1")
            .env("ERRAND_SANDBOX_PIDS", "128")
            .env("ERRAND_CONCURRENCY", "1")
            .env("ERRAND_RETRY_DELAY", "100ms")
            .env("ERRAND_SHUTDOWN_GRACE", format!("{}ms", grace.as_millis()))
            .env("ERRAND_GIT_AUTHOR_EMAIL", "errand@example.com")
            .env("ERRAND_LOG", "info");
        cmd
    }

    /// Starts an `errand worker` process.
    fn worker(&self, name: &str, sandbox_uid: u32, grace: Duration) -> Process {
        self.worker_with(name, sandbox_uid, grace, &[])
    }

    /// Starts an `errand worker` process with `env` on top of the installation's settings.
    fn worker_with(&self, name: &str, sandbox_uid: u32, grace: Duration, env: &[(&str, &str)]) -> Process {
        let mut cmd = self.errand("worker", name, sandbox_uid, grace);
        cmd.envs(env.iter().copied());
        Process::spawn(cmd, name, self.dir.path())
    }

    /// Starts `errand <sub>` (`serve` or `all`) on a free loopback port and waits until it
    /// answers `/healthz`.
    async fn http_process(&self, sub: &str, name: &str, grace: Duration) -> Process {
        self.http_process_with(sub, name, grace, &[]).await.0
    }

    /// [`Installation::http_process`] with `env` on top of the installation's settings; also
    /// returns the process's base URL.
    async fn http_process_with(
        &self,
        sub: &str,
        name: &str,
        grace: Duration,
        env: &[(&str, &str)],
    ) -> (Process, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut cmd = self.errand(sub, name, FIRST_UID, grace);
        cmd.env("ERRAND_LISTEN", format!("127.0.0.1:{port}")).env("ERRAND_GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET);
        if sub == "serve" {
            cmd.env_remove("ERRAND_GITHUB_TOKEN");
        }
        cmd.envs(env.iter().copied());
        let process = Process::spawn(cmd, name, self.dir.path());
        let url = format!("http://127.0.0.1:{port}/healthz");
        wait_until(&format!("errand {sub} answers {url}"), STAGE_DEADLINE, async || {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("errand {sub} exited before answering: {status}\n{}", process.log_tail());
            }
            let answer = self.http.get(&url).send().await.ok()?;
            answer.status().is_success().then_some(())
        })
        .await;
        (process, format!("http://127.0.0.1:{port}"))
    }

    /// Comments `@agent fix this` on issue #1 through a signed webhook; returns the job's id.
    async fn request_fix(&self) -> JobId {
        let (id, _) = self.request_fix_at(&self.ingress_url, REPO, 1, "fault-delivery-1").await;
        let jobs = self.queue.list(10).await.expect("listing jobs");
        assert_eq!(jobs.len(), 1, "one job is queued: {jobs:?}");
        assert_eq!(jobs[0].job.id, id, "the job the ingress named is queued");
        id
    }

    /// Comments `@agent fix this` on `issue` of `repo` through a signed webhook to the ingress at
    /// `ingress_url` (the in-process one or an `errand serve`); returns the job's id and the
    /// ingress's answer.
    async fn request_fix_at(
        &self,
        ingress_url: &str,
        repo: &str,
        issue: u64,
        delivery: &str,
    ) -> (JobId, serde_json::Value) {
        let comment = self.github.add_issue_comment(repo, issue, "octocat", "@agent fix this");
        let payload = serde_json::to_vec(&self.github.issue_comment_webhook(repo, issue, comment)).expect("JSON");
        let answer = self
            .http
            .post(format!("{ingress_url}/github/webhook"))
            .header("X-GitHub-Event", "issue_comment")
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", signing::github_signature(WEBHOOK_SECRET, &payload))
            .header("Content-Type", "application/json")
            .body(payload)
            .send()
            .await
            .expect("the ingress answers");
        let status = answer.status().as_u16();
        let json: serde_json::Value = answer.json().await.expect("a JSON answer");
        assert_eq!(status, 202, "the ingress accepts the request on {repo}#{issue}: {json}");
        let id: JobId = json["job_id"].as_str().and_then(|id| id.parse().ok()).expect("a job id in the answer");
        self.cleanup.lock().unwrap_or_else(|p| p.into_inner()).push(id.clone());
        (id, json)
    }

    async fn record(&self, job: &JobId) -> JobRecord {
        self.queue.get(job).await.expect("reading the job").expect("the job exists")
    }

    /// The job's containers (running or not), optionally only those of `step`: (id, running).
    async fn containers(&self, job: &JobId, step: Option<&str>) -> Vec<(String, bool)> {
        let mut labels = vec![format!("errand.job={job}")];
        labels.extend(step.map(|step| format!("errand.step={step}")));
        let filters = std::collections::HashMap::from([("label", labels)]);
        self.docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
            .await
            .expect("listing containers")
            .into_iter()
            .filter_map(|c| Some((c.id?, c.state == Some(ContainerSummaryStateEnum::RUNNING))))
            .collect()
    }

    /// The steps of the job's containers created since `since` (unix seconds), from the engine's
    /// event log, in order.
    async fn containers_created(&self, job: &JobId, since: u64) -> Vec<String> {
        let filters = std::collections::HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("event", vec!["create".to_owned()]),
            ("label", vec![format!("errand.job={job}")]),
        ]);
        let until = (unix_seconds() + 1).to_string();
        let options = EventsOptionsBuilder::new().since(&since.to_string()).until(&until).filters(&filters).build();
        let events: Vec<_> = self.docker.events(Some(options)).collect().await;
        events
            .into_iter()
            .map(|event| {
                let event = event.expect("reading the engine's events");
                let attributes = event.actor.and_then(|actor| actor.attributes).unwrap_or_default();
                attributes.get("errand.step").cloned().unwrap_or_default()
            })
            .collect()
    }

    /// Waits until the job's `step` runs in a container; returns the container's id.
    async fn running_container(&self, job: &JobId, step: &str) -> String {
        wait_until(&format!("the job's `{step}` container is running"), STAGE_DEADLINE, async || {
            self.containers(job, Some(step)).await.into_iter().find(|(_, running)| *running).map(|(id, _)| id)
        })
        .await
    }

    async fn assert_running(&self, container: &str, what: &str) {
        let state = self.docker.inspect_container(container, None).await.ok().and_then(|c| c.state);
        assert_eq!(
            state.and_then(|s| s.running),
            Some(true),
            "{what} ({container}) is still running before the second worker starts"
        );
    }

    async fn wait_until_no_containers(&self, job: &JobId, what: &str) {
        wait_until(what, Duration::from_secs(30), async || self.containers(job, None).await.is_empty().then_some(()))
            .await;
    }

    /// The bodies of the comments on issue #1 that errand wrote.
    fn tracking_comments(&self) -> Vec<String> {
        self.tracking_comments_on(REPO, 1)
    }

    /// The bodies of the comments on `issue` of `repo` that errand wrote.
    fn tracking_comments_on(&self, repo: &str, issue: u64) -> Vec<String> {
        self.github.comments(repo, issue).into_iter().filter(|c| c.author != "octocat").map(|c| c.body).collect()
    }

    /// The job ends `succeeded` after `deliveries` deliveries, with exactly one pull request
    /// carrying the fix, exactly one tracking comment showing ✅ Done, and none of its
    /// containers left.
    async fn assert_done_exactly_once(&self, job: &JobId, deliveries: u32) {
        let pulls = self.assert_done_exactly_once_on(REPO, 1, job, deliveries).await;
        assert_eq!(self.github.pull_requests(REPO).len(), 1, "exactly one pull request in the repository: {pulls:?}");
    }

    /// [`Installation::assert_done_exactly_once`] for the job asked for on `issue` of `repo`: its
    /// pull request is the only one from a branch of that issue, its tracking comment the only
    /// comment errand wrote there. Returns the pull request.
    async fn assert_done_exactly_once_on(&self, repo: &str, issue: u64, job: &JobId, deliveries: u32) -> FakePull {
        let record = wait_until("the job succeeds", JOB_DEADLINE, async || {
            let record = self.record(job).await;
            assert!(
                !(record.status.is_terminal() && record.status != JobStatus::Succeeded),
                "the job ended {:?}: {record:?}",
                record.status
            );
            (record.status == JobStatus::Succeeded).then_some(record)
        })
        .await;
        assert_eq!(record.deliveries, deliveries, "deliveries of the job: {record:?}");

        let branch = format!("errand/issue-{issue}-");
        let pulls: Vec<FakePull> =
            self.github.pull_requests(repo).into_iter().filter(|p| p.head.starts_with(&branch)).collect();
        assert_eq!(
            pulls.len(),
            1,
            "exactly one pull request from a branch {branch}* in {repo}: {pulls:?}; errand's comments: {:#?}",
            self.tracking_comments_on(repo, issue)
        );
        let pull = &pulls[0];
        assert!(pull.head.ends_with(job.short()), "the job's branch: {}", pull.head);
        assert_eq!(
            self.github.file_at(repo, &pull.head, "calc.sh").as_deref(),
            Some("add() { echo $(( $1 + $2 )); }\n"),
            "the pull request holds the fix"
        );
        assert_eq!(record.pull_request.as_ref().map(|p| p.number), Some(pull.number), "the job records its PR");

        let tracking = self.tracking_comments_on(repo, issue);
        assert_eq!(tracking.len(), 1, "exactly one tracking comment on #{issue}: {tracking:#?}");
        assert!(tracking[0].contains("✅ **Done**"), "the tracking comment is terminal: {}", tracking[0]);
        assert!(tracking[0].contains(&format!("/pull/{}", pull.number)), "it links the PR: {}", tracking[0]);

        self.wait_until_no_containers(job, "none of the job's containers remains").await;
        pull.clone()
    }

    fn assert_alive(&self, process: &Process) {
        let mut child = process.child.lock();
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "worker {} is still running\n{}",
            process.name,
            process.log_tail()
        );
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for job in self.cleanup.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            remove_containers_of(&job);
        }
    }
}

/// Force-removes the job's containers with the docker CLI (from `Drop`, without a runtime).
fn remove_containers_of(job: &JobId) {
    let listed = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=errand.job={job}")]).output();
    let Ok(listed) = listed else { return };
    let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout).split_whitespace().map(str::to_owned).collect();
    if !ids.is_empty() {
        let _ =
            Command::new("docker").args(["rm", "-f"]).args(&ids).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A running `errand` process; killed when dropped, and its log printed if the test failed.
struct Process {
    name: String,
    child: ChildCell,
    log: PathBuf,
}

/// The child behind a lock, so that `&Process` can ask whether it still runs.
struct ChildCell(std::sync::Mutex<Child>);

impl ChildCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        self.lock().try_wait()
    }
}

impl Process {
    fn spawn(mut cmd: Command, name: &str, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("the process's log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file again"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {ERRAND}: {e}"));
        Process { name: name.to_owned(), child: ChildCell(std::sync::Mutex::new(child)), log }
    }

    fn pid(&self) -> u32 {
        self.child.lock().id()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    fn sigkill(&mut self) {
        let mut child = self.child.lock();
        child.kill().expect("SIGKILL to the worker");
        child.wait().expect("reaping the killed worker");
    }

    /// Sends SIGTERM and waits for the exit; panics if the process outlives `within`.
    async fn sigterm_and_wait(&mut self, within: Duration) -> ExitStatus {
        self.signal("TERM");
        let sent_at = Instant::now();
        let name = self.name.clone();
        let status = wait_until(&format!("{name} exits after SIGTERM"), within, async || {
            self.child.try_wait().expect("asking whether the process exited")
        })
        .await;
        eprintln!("{name} exited {status} {:?} after SIGTERM", sent_at.elapsed());
        status
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) with `kill`.
    fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!("--- last lines of {} ({}) ---\n{tail}", self.name, self.log.display())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let mut child = self.child.lock();
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(child);
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock after 1970").as_secs()
}

/// Polls `probe` until it gives a value; panics with `what` after `within`.
async fn wait_until<T>(what: &str, within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
