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

use std::process::Command;
use std::time::Duration;

use errand::job::JobStatus;
use support::installation::*;
use support::redis::TestRedis;
use support::wait::wait_until;
use support::world::{FIXING_AGENT, GITHUB_TOKEN, REPO, calculator_files};
use tokio::time::Instant;

/// The sandbox uid of the second worker, whose steps never block.
const SECOND_UID: u32 = 10002;
/// Prefix of a step that blocks in the first worker's sandbox (it is killed long before); the
/// uid is [`FIRST_UID`].
const BLOCK_IN_FIRST_WORKER: &str = "if [ \"$(id -u)\" = 10001 ]; then sleep 300; fi; ";
/// The check: blocks in the first worker only after the agent fixed `calc.sh`.
const CHECK_BLOCKING_AFTER_THE_AGENT: &str =
    "if [ \"$(id -u)\" = 10001 ] && grep -q '1 + ' calc.sh; then sleep 300; fi; sh test.sh";
const CHECK: &str = "sh test.sh";

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
    assert_eq!(record.state.status(), JobStatus::Queued, "the job is handed back: {record:?}");
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
    assert_eq!(record.state.status(), JobStatus::Queued, "the job is handed back: {record:?}");
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
    assert_eq!(install.record(&queued).await.state.status(), JobStatus::Queued, "both of the worker's slots are busy");

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
                    record.deliveries == 1 && record.state.status() != JobStatus::Queued,
                    "the first job was put back in the queue, its rollout thrown away, rather than published once Redis was back: {record:?}"
                );
                (record.state.status() == JobStatus::Succeeded).then(|| restarting.elapsed())
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
