//! Benchmark harness for errand's queue and rollout start, calling errand's public library API.
//!
//! - `queue REDIS_URL NAMESPACE N CLAIMERS`: starts CLAIMERS claim→finish loops, enqueues N no-op
//!   jobs one after the other, waits until every job is finished; prints one JSON line.
//! - `rollout ORIGIN_URL DATA_DIR IMAGE MODE` (MODE `warm` or `cold`): from "job claimed" to the
//!   agent's first output, as the worker's `Rollout::prepare_workspace` and its first step do it:
//!   `MirrorCache::sync`, `CheckoutPool::take` (errand's own git directory beside a work tree; a
//!   warm take sweeps every `.git` out of the tree and refreshes it from errand's git), errand's
//!   directory and the task file, the sandbox's own `.git` (`errand::rollout::write_sandbox_git`), the
//!   hand-over of the work tree and errand's directory to the sandbox uid (`hand_to_sandbox`;
//!   it changes owners only as root), `Sandbox::run_step` with the mirror's objects mounted
//!   read-only. Prints one JSON line.
//! - `rollout-mem ORIGIN_URL DATA_DIR IMAGE K`: K warm rollouts at once, sampling this process's
//!   VmRSS; prints one JSON line.
//! - `rollout-env ORIGIN_URL DATA_DIR IMAGE MODE` (MODE `warm` or `cold`): the whole
//!   `Rollout::run` of a repository with `[setup]`, from "job claimed" to the agent's first
//!   output. Cold: no mirror, no checkout, no environment image (setup runs and is committed);
//!   warm: a run before this one, in the same process, left all three. Prints one JSON line.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use errand::config::RepoConfig;
use errand::forge::git::{CommitAuthor, Git, MirrorCache};
use errand::job::{Job, JobId, JobKind, JobState, ReplyTarget, RepoName, Source, Task};
use errand::queue::{QueueSettings, RedisQueue};
use errand::request::ids::{CommentId, IssueNumber};
use errand::rollout::{CheckoutPool, EnvironmentState, Plan, Rollout, RolloutSettings, hand_to_sandbox};
use errand::sandbox::{Limits, NetworkAccess, Sandbox, StepSpec};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().with_context(|| format!("missing argument {i}: see the source"));
    match args.first().map(String::as_str) {
        Some("queue") => queue(&arg(1)?, &arg(2)?, arg(3)?.parse()?, arg(4)?.parse()?).await,
        Some("rollout") => {
            let r = Rig::new(&arg(1)?, &arg(2)?, &arg(3)?).await?;
            let mode = arg(4)?;
            if mode == "cold" {
                let _ = std::fs::remove_dir_all(r.data_dir.join("mirrors"));
            } else {
                // A worker that already ran a job on this repository: mirror and checkout warm.
                r.prime().await?;
            }
            let m = r.start(&mode, "echo agent-up; adjtimex | grep tv_").await?;
            println!("{m}");
            Ok(())
        }
        Some("rollout-mem") => rollout_mem(&arg(1)?, &arg(2)?, &arg(3)?, arg(4)?.parse()?).await,
        Some("rollout-env") => rollout_env(&arg(1)?, &arg(2)?, &arg(3)?, &arg(4)?).await,
        _ => bail!("usage: harness queue|rollout|rollout-mem ..."),
    }
}

fn noop_job(n: usize) -> Result<Job> {
    Ok(Job {
        id: JobId::generate(),
        repo: RepoName::new("bench", "noop")?,
        source: Source::Api,
        requested_by: "bench".into(),
        created_at: chrono::Utc::now(),
        installation_id: None,
        task: Task {
            instruction: format!("no-op {n}"),
            title: "no-op".into(),
            body: String::new(),
            url: String::new(),
        },
        reply: ReplyTarget::GithubIssue { issue: IssueNumber(1), comment_id: Some(CommentId(n as u64)) },
        kind: JobKind::Task,
        follow_up: None,
        attempts: None,
        continues: None,
    })
}

async fn queue(url: &str, namespace: &str, n: usize, claimers: usize) -> Result<()> {
    let settings = QueueSettings { lease: Duration::from_secs(60), max_deliveries: 3 };
    let queue = RedisQueue::connect_with_prefix(url, settings, namespace).await?;
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..claimers {
        let (queue, done, stop) = (queue.clone(), done.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let name = format!("bench-{w}");
            while !stop.load(Ordering::Relaxed) {
                if let Some(delivery) = queue.claim(&name, Duration::from_millis(100)).await? {
                    queue.finish(&delivery, JobState::Succeeded).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    // Let every claimer reach its blocking read, as long-running workers would be.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for i in 0..n {
        queue.enqueue(noop_job(i)?, &format!("bench:{namespace}:{i}")).await?;
    }
    let enqueued = started.elapsed();
    while done.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await??;
    }
    let outstanding = queue.outstanding().await?;
    println!(
        "{}",
        json!({
            "n": n, "claimers": claimers, "enqueue_s": enqueued.as_secs_f64(), "total_s": total.as_secs_f64(),
            "jobs_per_s": n as f64 / total.as_secs_f64(), "finished": done.load(Ordering::Relaxed),
            "outstanding": outstanding,
        })
    );
    Ok(())
}

struct Rig {
    origin: String,
    data_dir: PathBuf,
    image: String,
    sandbox: Sandbox,
    mirrors: MirrorCache,
    checkouts: CheckoutPool,
    uid: u32,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

impl Rig {
    async fn new(origin: &str, data_dir: &str, image: &str) -> Result<Self> {
        let data_dir = PathBuf::from(data_dir);
        std::fs::create_dir_all(&data_dir)?;
        let git = Git::new(CommitAuthor { name: "errand".into(), email: "errand@localhost".into() });
        let me = own_uid();
        Ok(Self {
            origin: origin.to_owned(),
            mirrors: MirrorCache::new(data_dir.join("mirrors"), git),
            checkouts: CheckoutPool::new(data_dir.join("checkouts")),
            data_dir,
            image: image.to_owned(),
            sandbox: Sandbox::connect().await?,
            // As the worker does: its own uid, or 10001 when it runs as root.
            uid: if me == 0 { 10001 } else { me },
        })
    }

    /// Leaves a checkout in the pool, as a job before this one would have: with the sandbox's own
    /// `.git` still in its tree, which the next `take` sweeps out.
    async fn prime(&self) -> Result<()> {
        let repo = RepoName::new("bench", "big")?;
        let (mirror, _) = self.mirrors.sync(&repo, &self.origin, None).await?;
        let (checkout, base, _) = self.checkouts.take(self.mirrors.git(), &repo, &mirror, "main").await?;
        errand::rollout::write_sandbox_git(checkout.dirs(), "main", &base).await?;
        drop(checkout);
        Ok(())
    }

    /// One rollout start, from "job claimed" to the agent's first output (its own clock stamp).
    async fn start(&self, mode: &str, script: &str) -> Result<serde_json::Value> {
        let job = noop_job(0)?;
        let t0 = Instant::now();
        let wall0 = unix_now();
        let (mirror, state) = self.mirrors.sync(&RepoName::new("bench", "big")?, &self.origin, None).await?;
        let synced = t0.elapsed();
        // The worker's Workspace::create: a checkout from the pool, errand's directory per job.
        let root = self.data_dir.join("work").join(job.id.as_str());
        let errand_dir = root.join("errand");
        tokio::fs::create_dir_all(&errand_dir).await?;
        let (checkout, base, checkout_state) =
            self.checkouts.take(self.mirrors.git(), &RepoName::new("bench", "big")?, &mirror, "main").await?;
        let repo = checkout.dirs().work_tree.clone();
        tokio::fs::write(errand_dir.join("task.md"), format!("# Task\n\n{}\n", job.task.instruction)).await?;
        let cloned = t0.elapsed();
        errand::rollout::write_sandbox_git(checkout.dirs(), "main", &base).await?;
        let sandbox_git = t0.elapsed();
        hand_to_sandbox(&repo, &errand_dir, self.uid).await?;
        let chowned = t0.elapsed();
        let spec = StepSpec {
            job: job.id.clone(),
            step: "agent".into(),
            image: self.image.clone(),
            script: script.into(),
            workspace: repo.clone(),
            errand_dir: errand_dir.clone(),
            // The sandbox's `.git` borrows them (read-only at /errand-objects).
            objects: Some(mirror.join("objects")),
            env: vec![
                ("ERRAND_TASK".into(), job.task.instruction.clone()),
                ("ERRAND_TASK_FILE".into(), "/errand/task.md".into()),
                ("ERRAND_SUMMARY_FILE".into(), "/errand/summary.md".into()),
                ("ERRAND_JOB_ID".into(), job.id.to_string()),
                ("ERRAND_REPO".into(), job.repo.to_string()),
                ("HOME".into(), "/tmp".into()),
            ],
            user: format!("{0}:{0}", self.uid),
            network: NetworkAccess::None,
            limits: Limits { memory_bytes: 4096 << 20, nano_cpus: 2_000_000_000, pids: 512, disk_bytes: 10240 << 20 },
            timeout: Duration::from_secs(120),
        };
        let output = self.sandbox.run_step(&spec, &CancellationToken::new()).await?;
        let returned = t0.elapsed();
        let stamp = parse_adjtimex(&output.output_tail);
        let _ = tokio::fs::remove_dir_all(&root).await;
        // Back to the pool, its `.git` and all, as a worker's `Workspace` is dropped.
        drop(checkout);
        if output.exit_code != 0 || !output.output_tail.contains("agent-up") {
            bail!("the agent step failed: exit {} output {:?}", output.exit_code, output.output_tail);
        }
        Ok(json!({
            "mode": mode,
            "mirror": format!("{state:?}"),
            "checkout": format!("{checkout_state:?}"),
            "first_output_s": stamp.map(|s| s - wall0),
            "step_returned_s": returned.as_secs_f64(),
            "sync_s": synced.as_secs_f64(),
            // The checkout, errand's directory, the task file and the sandbox's `.git` (the part
            // that is the sandbox's `.git` alone is `sandbox_git_s`).
            "workspace_s": (sandbox_git - synced).as_secs_f64(),
            "sandbox_git_s": (sandbox_git - cloned).as_secs_f64(),
            "chown_s": (chowned - sandbox_git).as_secs_f64(),
            "step_s": (returned - chowned).as_secs_f64(),
        }))
    }
}

/// `adjtimex` prints `time.tv_sec: S` and `time.tv_usec: U` (busybox has no `date +%N`).
fn parse_adjtimex(output: &str) -> Option<f64> {
    let field =
        |name: &str| output.lines().find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().parse::<f64>().ok()))?;
    Some(field("time.tv_sec:")? + field("time.tv_usec:")? / 1e6)
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

async fn rollout_mem(origin: &str, data_dir: &str, image: &str, k: usize) -> Result<()> {
    let rig = Arc::new(Rig::new(origin, data_dir, image).await?);
    // Warm the mirror first, and let the process settle.
    rig.start("warm", "true; echo agent-up").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = vm_rss_kib();
    let peak = Arc::new(AtomicUsize::new(idle as usize));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(vm_rss_kib() as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut runs = Vec::new();
    for _ in 0..k {
        let rig = rig.clone();
        runs.push(tokio::spawn(async move { rig.start("warm", "echo agent-up; sleep 2").await }));
    }
    for r in runs {
        r.await??;
    }
    stop.store(true, Ordering::Relaxed);
    sampler.await?;
    let peak = peak.load(Ordering::Relaxed) as u64;
    println!(
        "{}",
        json!({"k": k, "idle_kib": idle, "peak_kib": peak, "per_rollout_kib": (peak.saturating_sub(idle)) / k.max(1) as u64})
    );
    Ok(())
}

/// What the repository's setup does in the environment benchmark: installs 2,000 files (20 MB)
/// into `$HOME`, a stand-in for fetching dependencies (there is no network here).
const ENV_SETUP: &str = r#"mkdir -p "$HOME/deps" && cd "$HOME/deps" && i=0; while [ $i -lt 2000 ]; do head -c 10240 /dev/urandom > dep-$i; i=$((i+1)); done"#;
/// The agent: proves the installed files are there, then prints its clock stamp.
const ENV_AGENT: &str = r#"test -f "$HOME/deps/dep-1999" && echo agent-up; adjtimex | grep tv_"#;

/// One `Rollout::run` of a repository with setup, cold or warm; see the module's documentation.
async fn rollout_env(origin: &str, data_dir: &str, image: &str, mode: &str) -> Result<()> {
    let data_dir = PathBuf::from(data_dir).join("env");
    let repo = RepoName::new("bench", "big-env")?;
    let toml = format!(
        "image = \"{image}\"\nbaseline_checks = false\n\n[setup]\ncommands = ['''{ENV_SETUP}''']\n\n[agent]\ncommand = '''{ENV_AGENT}'''\n"
    );
    let config = RepoConfig::parse(&toml).map_err(|e| anyhow::anyhow!("the benchmark's .errand.toml: {e}"))?;
    if mode == "cold" {
        let _ = std::fs::remove_dir_all(data_dir.join("mirrors"));
        remove_environments(&repo)?;
    }
    std::fs::create_dir_all(&data_dir)?;
    let me = own_uid();
    let settings = RolloutSettings {
        data_dir: data_dir.clone(),
        default_image: image.to_owned(),
        default_agent_command: None,
        agent_env: Vec::new(),
        custom_agent_env: Vec::new(),
        sandbox_uid: if me == 0 { 10001 } else { me },
        limits: Limits { memory_bytes: 4096 << 20, nano_cpus: 2_000_000_000, pids: 512, disk_bytes: 10240 << 20 },
        default_timeout: Duration::from_secs(600),
        max_timeout: Duration::from_secs(600),
        env_cache_ttl: Duration::from_secs(12 * 3600),
    };
    let git = Git::new(CommitAuthor { name: "errand".into(), email: "errand@localhost".into() });
    let rollout = Rollout::new(Sandbox::connect().await?, MirrorCache::new(data_dir.join("mirrors"), git), settings);
    if mode != "cold" {
        // A worker that already ran a job on this repository: mirror, checkout and environment warm.
        run_with_setup(&rollout, &config, &repo, origin).await?;
    }
    let (wall0, returned, outcome) = run_with_setup(&rollout, &config, &repo, origin).await?;
    let agent = outcome.agent.as_ref().context("the agent did not run (setup failed?)")?;
    if agent.exit_code != 0 || !agent.output_tail.contains("agent-up") {
        bail!(
            "the agent step failed: exit {} output {:?}; setup {:?}",
            agent.exit_code,
            agent.output_tail,
            outcome.setup
        );
    }
    let environment = match &outcome.environment {
        EnvironmentState::None => "none",
        EnvironmentState::Built { .. } => "built",
        EnvironmentState::Cached { .. } => "cached",
    };
    let setup_s: f64 = outcome.setup.iter().map(|s| s.report.duration.as_secs_f64()).sum();
    println!(
        "{}",
        json!({
            "mode": mode,
            "mirror": format!("{:?}", outcome.mirror),
            "environment": environment,
            "setup_s": setup_s,
            "first_output_s": parse_adjtimex(&agent.output_tail).map(|s| s - wall0),
            "step_returned_s": returned.as_secs_f64(),
        })
    );
    Ok(())
}

/// One attempt of a no-op job on `repo`: (wall clock at the start, time until it returned, outcome).
async fn run_with_setup(
    rollout: &Rollout,
    config: &RepoConfig,
    repo: &RepoName,
    origin: &str,
) -> Result<(f64, Duration, errand::rollout::Outcome)> {
    let mut job = noop_job(0)?;
    job.repo = repo.clone();
    let plan =
        Plan { job: &job, config, clone_url: origin, base_branch: "main", context: "", attempt: None, git_token: None };
    let wall0 = unix_now();
    let t0 = Instant::now();
    let outcome = rollout.run(&plan, &CancellationToken::new()).await?;
    Ok((wall0, t0.elapsed(), outcome))
}

/// Removes every environment image built for `repo` (as `docker image rm --force` would).
fn remove_environments(repo: &RepoName) -> Result<()> {
    let filter = format!("label=errand.env.repo={repo}");
    let out = std::process::Command::new("docker").args(["images", "--quiet", "--filter", &filter]).output()?;
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
    if !ids.is_empty() {
        let status = std::process::Command::new("docker")
            .args(["image", "rm", "--force"])
            .args(&ids)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("could not remove the environment images of {repo}");
        }
    }
    Ok(())
}
