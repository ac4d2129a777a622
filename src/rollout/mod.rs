//! One attempt at a job: a workspace from the mirror cache, the environment (setup, or a cached
//! image of it), the baseline checks, the agent, the checks again, and the diff, all in sandbox
//! containers; what it yields is the evidence.

mod checkouts;
pub mod environment;
mod outcome;
pub mod ranking;
mod sandbox_git;
mod workspace;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::checkouts::{CheckoutPool, CheckoutState};
pub use self::environment::EnvironmentState;
use self::environment::{ENV_HOME, Prepared};
pub use self::outcome::{AgentEnd, CheckResult, Outcome, SandboxFile, SandboxNote, StepReport, skipped_for_time};
pub use self::sandbox_git::write as write_sandbox_git;
use self::workspace::Workspace;
pub use self::workspace::hand_to_sandbox;
use crate::agents;
use crate::config::{NetworkPolicy, RepoConfig, Resources};
use crate::forge::git::MirrorCache;
use crate::job::Job;
use crate::sandbox::{EgressLease, Limits, NetworkAccess, Sandbox, SandboxError, StepSpec};

/// Where the task and the summary live inside the sandbox (a bind mount beside /workspace, so
/// they never show up in the diff).
pub const TASK_FILE: &str = "/errand/task.md";
pub const SUMMARY_FILE: &str = "/errand/summary.md";
/// `$HOME` of the steps of a repository without setup: the container's size-limited tmpfs.
const SCRATCH_HOME: &str = "/tmp";

/// What every rollout on this worker shares.
#[derive(Debug, Clone)]
pub struct RolloutSettings {
    pub data_dir: PathBuf,
    pub default_image: String,
    pub default_agent_command: Option<String>,
    /// Variables for the agent step only (model API keys), from `ERRAND_AGENT_ENV_FILE` and the
    /// preset key variables set in the worker's environment; which of them a step gets depends
    /// on who chose its command (see `Rollout::agent_step`).
    pub agent_env: Vec<(String, SecretString)>,
    /// The names of `agent_env` a command named by a repository's `.errand.toml` gets
    /// (`ERRAND_CUSTOM_AGENT_ENV`); none unless the operator lists them.
    pub custom_agent_env: Vec<String>,
    /// The numeric uid (and gid) the sandbox runs as; never 0.
    pub sandbox_uid: u32,
    pub limits: Limits,
    pub default_timeout: Duration,
    /// The longest an attempt may run, whatever its repository asks for (`ERRAND_MAX_TIMEOUT`).
    pub max_timeout: Duration,
    /// How long an environment built by setup is reused (`ERRAND_ENV_CACHE_TTL`); zero keeps none.
    pub env_cache_ttl: Duration,
}

/// Everything one attempt needs, resolved by the worker.
pub struct Plan<'a> {
    pub job: &'a Job,
    pub config: &'a RepoConfig,
    pub clone_url: &'a str,
    /// The branch the work starts from: the default branch, or a pull request's head.
    pub base_branch: &'a str,
    /// More context for the agent's task file (Markdown; empty when there is none).
    pub context: &'a str,
    /// Which of several attempts at the job this is (from 1); `None` when the job has one.
    pub attempt: Option<u32>,
    /// Used by git on the worker only; never passed to the sandbox.
    pub git_token: Option<&'a SecretString>,
}

/// Why an attempt could not run at all (as opposed to an agent or a check failing, which is an
/// outcome).
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Bad configuration or environment the requester or operator must fix: reply and stop.
    #[error("{0:?}")]
    Abort(RolloutAbort),
    /// Probably passing (the forge or the engine hiccuped): try the job again later.
    #[error(transparent)]
    Transient(anyhow::Error),
}

/// What the requester or the operator must fix before an attempt can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutAbort {
    /// Neither the repository nor the worker names an agent.
    NoAgent,
    /// The sandbox image is not on this worker (nothing is ever pulled).
    ImageMissing { image: String },
    /// `network = "allowlist"`, and the worker cannot open the egress proxy.
    EgressUnavailable { detail: String },
    /// The sandbox refused a step.
    SandboxRefused { step: String, detail: String },
}

/// Runs attempts.
#[derive(Clone)]
pub struct Rollout {
    sandbox: Sandbox,
    mirrors: MirrorCache,
    checkouts: CheckoutPool,
    settings: RolloutSettings,
}

impl Rollout {
    pub fn new(sandbox: Sandbox, mirrors: MirrorCache, settings: RolloutSettings) -> Self {
        let checkouts = CheckoutPool::new(settings.data_dir.join("checkouts"));
        Self { sandbox, mirrors, checkouts, settings }
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn mirrors(&self) -> &MirrorCache {
        &self.mirrors
    }

    /// The time limit of an attempt of a repository configured by `config`: its `timeout` or the
    /// worker's default, never more than the worker's maximum.
    pub fn attempt_timeout(&self, config: &RepoConfig) -> Duration {
        attempt_timeout(config.timeout, &self.settings)
    }

    /// Runs one attempt. The workspace is removed when this returns, whatever happened.
    pub async fn run(&self, plan: &Plan<'_>, cancel: &CancellationToken) -> Result<Outcome, RolloutError> {
        let started = Instant::now();
        let timeout = self.attempt_timeout(plan.config);
        if let Some(asked) = plan.config.timeout.filter(|asked| *asked > timeout) {
            tracing::info!(job = %plan.job.id, asked = ?asked, allowed = ?timeout, "the repository's timeout is above ERRAND_MAX_TIMEOUT; the attempt gets the maximum");
        }
        let deadline = started + timeout;
        let image = plan.config.image.clone().unwrap_or_else(|| self.settings.default_image.clone());
        let agent = agent_step(&self.settings, plan.config)?;
        if !self.sandbox.image_exists(&image).await.map_err(RolloutError::Transient)? {
            return Err(RolloutError::Abort(RolloutAbort::ImageMissing { image }));
        }
        let (workspace, base_commit, mirror_state) = self.prepare_workspace(plan).await?;

        // One egress proxy for all steps of the attempt; it stops when `_egress` is dropped, as this returns.
        let (network, _egress) = self.network(plan).await?;
        let mut steps =
            Steps { rollout: self, plan, workspace: &workspace, image, home: SCRATCH_HOME, network, deadline, cancel };
        let (environment, setup) = match self.environment(&mut steps).await? {
            Ok(ready) => ready,
            Err(setup) => return Ok(Outcome::setup_failed(setup, base_commit, mirror_state, started.elapsed())),
        };
        let environment_state = environment.as_ref().map_or(EnvironmentState::None, |e| e.state.clone());
        let baseline = if plan.config.baseline_checks() { steps.checks("baseline").await? } else { Vec::new() };

        let report = steps.run_with("agent", &agent.command, &agent.env).await?;
        let agent_end = AgentEnd::of(&report);
        let mut notes = Vec::new();
        let (summary, transcript) = read_agent_files(&workspace, agent.preset, &mut notes).await;
        let checks = if agent_end == AgentEnd::Finished { steps.checks("check").await? } else { Vec::new() };

        let title = summary_title(summary.as_deref()).unwrap_or_else(|| format!("errand: {}", plan.job.task.title));
        let disk_full = matches!(agent_end, AgentEnd::DiskFull { .. });
        let change = self.take_change(&workspace, &base_commit, &title, disk_full, &mut notes).await?;
        if let Some(environment) = environment {
            environment.release().await;
        }
        // The commit lives in the workspace until it is pushed; the worker pushes it before the
        // workspace is dropped.
        Ok(Outcome {
            setup,
            baseline,
            agent: Some(report),
            agent_end,
            summary,
            checks,
            base_commit,
            commit: change.commit,
            diffstat: change.diffstat,
            files_with_secrets: change.files_with_secrets,
            notes,
            mirror: mirror_state,
            environment: environment_state,
            duration: started.elapsed(),
            detected_from: plan.config.detected_from.clone(),
            transcript,
            workspace: Some(workspace),
        })
    }

    /// With setup, every step starts from the repository's environment: built now, or a fresh one
    /// kept earlier (`steps` then start from its image, with its home). `Err` holds a setup that
    /// failed, which ends the attempt.
    async fn environment(
        &self,
        steps: &mut Steps<'_>,
    ) -> Result<Result<(Option<environment::Environment>, Vec<CheckResult>), Vec<CheckResult>>, RolloutError> {
        if steps.plan.config.setup.commands.is_empty() {
            return Ok(Ok((None, Vec::new())));
        }
        match environment::prepare(steps, self.settings.env_cache_ttl).await? {
            Prepared::Ready(mut ready) => {
                tracing::info!(job = %steps.plan.job.id, environment = ready.state.describe(), "environment ready");
                steps.image = ready.image.clone();
                steps.home = ENV_HOME;
                let setup = std::mem::take(&mut ready.setup);
                Ok(Ok((Some(ready), setup)))
            }
            Prepared::SetupFailed(setup) => Ok(Err(setup)),
        }
    }

    /// The attempt's workspace: a checkout of the base from the mirror (refreshed, if reused),
    /// the task file, the sandbox's own `.git`, all handed to the sandbox user.
    async fn prepare_workspace(
        &self,
        plan: &Plan<'_>,
    ) -> Result<(Workspace, String, crate::forge::git::MirrorState), RolloutError> {
        let (mirror, mirror_state) =
            self.mirrors.sync(&plan.job.repo, plan.clone_url, plan.git_token).await.map_err(RolloutError::Transient)?;
        let (checkout, base_commit, checkout_state) = self
            .checkouts
            .take(self.mirrors.git(), &plan.job.repo, &mirror, plan.base_branch)
            .await
            .map_err(RolloutError::Transient)?;
        tracing::info!(job = %plan.job.id, mirror = mirror_state.describe(), checkout = ?checkout_state, "workspace ready");
        let workspace = Workspace::create(
            &self.settings.data_dir,
            plan.job,
            plan.attempt,
            checkout,
            mirror.join("objects"),
            self.settings.sandbox_uid,
        )
        .await
        .map_err(RolloutError::Transient)?;
        workspace.write_task(plan.job, plan.context).await.map_err(RolloutError::Transient)?;
        sandbox_git::write(workspace.git_dirs(), plan.base_branch, &base_commit)
            .await
            .map_err(RolloutError::Transient)?;
        workspace.hand_to_sandbox().await.map_err(RolloutError::Transient)?;
        Ok((workspace, base_commit, mirror_state))
    }

    /// What the attempt's steps may reach, and the egress proxy that serves an allowlist.
    async fn network(&self, plan: &Plan<'_>) -> Result<(NetworkAccess, Option<EgressLease>), RolloutError> {
        Ok(match plan.config.network {
            NetworkPolicy::None => (NetworkAccess::None, None),
            NetworkPolicy::Open => (NetworkAccess::Open, None),
            NetworkPolicy::Allowlist => {
                // A worker that cannot open the proxy is misconfigured (see the README): say so
                // rather than retry.
                let lease =
                    self.sandbox.open_egress(&plan.job.id, &plan.config.allow_hosts).await.map_err(|e| {
                        RolloutError::Abort(RolloutAbort::EgressUnavailable { detail: format!("{e:#}") })
                    })?;
                (lease.access(), Some(lease))
            }
        })
    }

    /// The work tree's change as errand's own git sees it, committed: every `.git` the sandbox
    /// left is removed first (see [`checkouts::Checkout::remove_planted_git`]), and the commit is
    /// searched for the secrets this process holds (such a change is never pushed).
    async fn take_change(
        &self,
        workspace: &Workspace,
        base_commit: &str,
        title: &str,
        disk_full: bool,
        notes: &mut Vec<SandboxNote>,
    ) -> Result<Change, RolloutError> {
        let planted = workspace.checkout().remove_planted_git().await.map_err(RolloutError::Transient)?;
        notes.extend(planted.into_iter().map(|path| SandboxNote::RemovedGit { path }));
        if disk_full {
            // What a disk-filling agent left is never published, and committing it would copy it
            // into git's objects: as much again on the worker's disk.
            return Ok(Change::default());
        }
        let git = self.mirrors.git();
        let dirs = workspace.git_dirs();
        let commit = git.commit_all(dirs, title).await.map_err(RolloutError::Transient)?;
        if commit.is_none() {
            return Ok(Change::default());
        }
        let diffstat = git.diffstat(dirs, base_commit).await.map_err(RolloutError::Transient)?;
        let files_with_secrets = git.files_with_secrets(dirs, base_commit).await.map_err(RolloutError::Transient)?;
        if !files_with_secrets.is_empty() {
            tracing::warn!(files = ?files_with_secrets, "the agent's change holds a secret errand knows: it will not be pushed");
        }
        Ok(Change { commit, diffstat, files_with_secrets })
    }
}

/// The agent's command line and the variables it gets, or why none is configured.
///
/// The agent step alone gets model credentials (never the checks), and only those it needs:
/// a preset its own API-key variables; a command the repository's `.errand.toml` names only
/// the variables the operator listed for such commands (a repository cannot widen what the
/// operator gave); the operator's own default command everything in the agent environment.
fn agent_step(settings: &RolloutSettings, config: &RepoConfig) -> Result<AgentStep, RolloutError> {
    let agent = &config.agent;
    let preset = agent.preset;
    let pick = |names: &dyn Fn(&str) -> bool| -> Vec<(String, String)> {
        settings
            .agent_env
            .iter()
            .filter(|(name, _)| names(name))
            .map(|(name, value)| (name.clone(), value.expose_secret().to_owned()))
            .collect()
    };
    let (command, mut env) = match (&agent.command, preset, &settings.default_agent_command) {
        (Some(command), _, _) => (command.clone(), pick(&|name| settings.custom_agent_env.iter().any(|n| n == name))),
        (None, Some(preset), _) => {
            (preset.command_line(agent.model.as_deref()), pick(&|name| preset.api_key_vars().contains(&name)))
        }
        (None, None, Some(command)) => (command.clone(), pick(&|_| true)),
        (None, None, None) => return Err(RolloutError::Abort(RolloutAbort::NoAgent)),
    };
    if let (Some(model), Some(var)) = (agent.model.as_deref(), preset.and_then(|p| p.model_env())) {
        env.push((var.to_owned(), model.to_owned()));
    }
    Ok(AgentStep { command, env, preset })
}

/// The agent step of an attempt.
#[derive(Debug)]
struct AgentStep {
    command: String,
    env: Vec<(String, String)>,
    preset: Option<agents::Preset>,
}

/// What the agent changed, committed in the workspace.
#[derive(Default)]
struct Change {
    commit: Option<String>,
    diffstat: String,
    files_with_secrets: Vec<String>,
}

/// The agent's summary and (for a preset with an event stream) its transcript, read back as
/// hostile input: whatever is not a regular file is ignored and noted.
async fn read_agent_files(
    workspace: &Workspace,
    preset: Option<agents::Preset>,
    notes: &mut Vec<SandboxNote>,
) -> (Option<String>, Option<agents::AgentTranscript>) {
    let transcript = match preset.and_then(|p| p.event_format()) {
        Some(format) => agents::read_transcript(workspace.errand_dir(), format).await.unwrap_or_else(|why| {
            notes.push(SandboxNote::Ignored { file: SandboxFile::EventStream, why });
            None
        }),
        None => None,
    };
    let summary = workspace.read_summary().await.unwrap_or_else(|why| {
        notes.push(SandboxNote::Ignored { file: SandboxFile::Summary, why });
        None
    });
    let summary = match preset {
        Some(preset) => preset.summary(summary, transcript.as_ref()),
        None => summary,
    };
    (summary, transcript)
}

/// Runs the steps of one attempt against its deadline.
struct Steps<'a> {
    rollout: &'a Rollout,
    plan: &'a Plan<'a>,
    workspace: &'a Workspace,
    /// The image steps start from: the repository's, or its environment's id.
    image: String,
    home: &'static str,
    network: NetworkAccess,
    deadline: Instant,
    cancel: &'a CancellationToken,
}

impl Steps<'_> {
    async fn run(&self, step: &str, script: &str) -> Result<StepReport, RolloutError> {
        self.run_with(step, script, &[]).await
    }

    /// Runs every check of the repository, as steps `<stage>-<name>`.
    async fn checks(&self, stage: &str) -> Result<Vec<CheckResult>, RolloutError> {
        let mut results = Vec::new();
        for (name, command) in &self.plan.config.checks {
            results.push(CheckResult::from_report(name, command, self.run(&format!("{stage}-{name}"), command).await?));
        }
        Ok(results)
    }

    /// Runs a step with more environment variables than every step gets.
    async fn run_with(
        &self,
        step: &str,
        script: &str,
        extra_env: &[(String, String)],
    ) -> Result<StepReport, RolloutError> {
        // Attempts of one job run side by side: their containers are told apart by the step.
        let step = &self.step_name(step);
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(skipped_for_time());
        }
        let env = vec![
            ("ERRAND_TASK".into(), task_line(self.plan.job)),
            ("ERRAND_TASK_FILE".into(), TASK_FILE.into()),
            ("ERRAND_SUMMARY_FILE".into(), SUMMARY_FILE.into()),
            ("ERRAND_JOB_ID".into(), self.plan.job.id.to_string()),
            ("ERRAND_REPO".into(), self.plan.job.repo.to_string()),
            ("ERRAND_ATTEMPT".into(), self.plan.attempt.unwrap_or(1).to_string()),
            ("HOME".into(), self.home.into()),
        ]
        .into_iter()
        .chain(extra_env.iter().cloned())
        .collect();
        let spec = self.spec(step, script, env, self.network.clone(), remaining);
        match self.rollout.sandbox.run_step(&spec, self.cancel).await {
            Ok(output) => {
                tracing::info!(
                    job = %self.plan.job.id,
                    step,
                    exit_code = output.exit_code,
                    timed_out = output.timed_out,
                    took = ?output.duration,
                    "step finished"
                );
                Ok(output)
            }
            Err(SandboxError::ImageMissing { image }) => Err(RolloutError::Abort(RolloutAbort::ImageMissing { image })),
            Err(e) => {
                Err(RolloutError::Abort(RolloutAbort::SandboxRefused { step: step.clone(), detail: e.to_string() }))
            }
        }
    }

    /// A step's container: the attempt's image, workspace, user and limits, with `env` (its
    /// whole environment), `network` and `timeout`. `step` is already told apart by attempt.
    fn spec(
        &self,
        step: &str,
        script: &str,
        env: Vec<(String, String)>,
        network: NetworkAccess,
        timeout: Duration,
    ) -> StepSpec {
        let settings = &self.rollout.settings;
        StepSpec {
            job: self.plan.job.id.clone(),
            step: step.to_owned(),
            image: self.image.clone(),
            script: script.to_owned(),
            workspace: self.workspace.repo_dir().to_owned(),
            errand_dir: self.workspace.errand_dir().to_owned(),
            objects: Some(self.workspace.objects_dir().to_owned()),
            env,
            user: format!("{0}:{0}", settings.sandbox_uid),
            network,
            limits: lowered_limits(&self.plan.config.resources, &settings.limits),
            timeout,
        }
    }

    /// `step` told apart from the same step of the job's other attempts.
    fn step_name(&self, step: &str) -> String {
        match self.plan.attempt {
            Some(attempt) => format!("a{attempt}-{step}"),
            None => step.to_owned(),
        }
    }
}

/// The task in one line, for `$ERRAND_TASK`.
fn task_line(job: &Job) -> String {
    if job.task.instruction.trim().is_empty() {
        format!("Resolve the issue: {}", job.task.title)
    } else {
        job.task.instruction.clone()
    }
}

/// The first line of the agent's summary, used as commit and pull request title.
pub fn summary_title(summary: Option<&str>) -> Option<String> {
    let line = summary?.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line.trim_start_matches('#').trim();
    (!line.is_empty()).then(|| line.chars().take(120).collect())
}

/// The repository's timeout (`asked`) or the worker's default, capped by the worker's maximum: an
/// operator bounds how long one request can hold a worker, whatever the repository says.
fn attempt_timeout(asked: Option<Duration>, settings: &RolloutSettings) -> Duration {
    asked.unwrap_or(settings.default_timeout).min(settings.max_timeout)
}

/// The worker's limits, lowered (never raised) by what the repository asks for.
fn lowered_limits(asked: &Resources, worker: &Limits) -> Limits {
    let mut limits = worker.clone();
    if let Some(mb) = asked.memory_mb {
        limits.memory_bytes = limits.memory_bytes.min(mb.saturating_mul(1024 * 1024) as i64);
    }
    if let Some(cpus) = asked.cpus {
        limits.nano_cpus = limits.nano_cpus.min((cpus * 1e9) as i64);
    }
    if let Some(pids) = asked.pids {
        limits.pids = limits.pids.min(pids);
    }
    if let Some(mb) = asked.disk_mb {
        limits.disk_bytes = limits.disk_bytes.min(mb.saturating_mul(1024 * 1024));
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker_limits() -> Limits {
        Limits { memory_bytes: 4 << 30, nano_cpus: 2_000_000_000, pids: 512, disk_bytes: 10 << 30 }
    }

    #[test]
    fn a_repository_lowers_the_limits_but_never_raises_them() {
        let lowered = Resources { memory_mb: Some(64), cpus: Some(0.5), pids: Some(32), disk_mb: Some(64) };
        assert_eq!(
            lowered_limits(&lowered, &worker_limits()),
            Limits { memory_bytes: 64 << 20, nano_cpus: 500_000_000, pids: 32, disk_bytes: 64 << 20 }
        );
        let raised =
            Resources { memory_mb: Some(1 << 20), cpus: Some(64.0), pids: Some(1 << 20), disk_mb: Some(u64::MAX) };
        assert_eq!(lowered_limits(&raised, &worker_limits()), worker_limits());
        assert_eq!(lowered_limits(&Resources::default(), &worker_limits()), worker_limits());
    }

    fn settings_with_agent_env(default_agent_command: Option<&str>) -> RolloutSettings {
        let secret = |value: &str| SecretString::from(value.to_owned());
        RolloutSettings {
            data_dir: PathBuf::from("/var/lib/errand"),
            default_image: "debian:bookworm-slim".into(),
            default_agent_command: default_agent_command.map(str::to_owned),
            agent_env: vec![
                ("OPENAI_API_KEY".into(), secret("sk-openai")),
                ("ANTHROPIC_API_KEY".into(), secret("sk-anthropic")),
                ("DEPLOY_TOKEN".into(), secret("deploy")),
            ],
            custom_agent_env: vec!["DEPLOY_TOKEN".into()],
            sandbox_uid: 10001,
            limits: worker_limits(),
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(60),
            env_cache_ttl: Duration::ZERO,
        }
    }

    fn names(step: &AgentStep) -> Vec<&str> {
        step.env.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn a_preset_gets_its_own_keys_a_repositorys_command_only_what_the_operator_lists() {
        let settings = settings_with_agent_env(Some("operator-agent"));
        let claude = RepoConfig::parse("agent = \"claude\"\n").expect("valid");
        assert_eq!(names(&agent_step(&settings, &claude).expect("an agent")), ["ANTHROPIC_API_KEY"]);
        let codex = RepoConfig::parse("agent = \"codex\"\n").expect("valid");
        assert_eq!(names(&agent_step(&settings, &codex).expect("an agent")), ["OPENAI_API_KEY"]);
        let custom = RepoConfig::parse("[agent]\ncommand = \"env\"\n").expect("valid");
        assert_eq!(names(&agent_step(&settings, &custom).expect("an agent")), ["DEPLOY_TOKEN"]);
        let operators = agent_step(&settings, &RepoConfig::default()).expect("the operator's agent");
        assert_eq!(operators.command, "operator-agent");
        assert_eq!(names(&operators), ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEPLOY_TOKEN"]);
        let none = settings_with_agent_env(None);
        assert!(matches!(agent_step(&none, &RepoConfig::default()), Err(RolloutError::Abort(_))));
    }

    #[test]
    fn the_attempts_timeout_is_the_repositorys_or_the_default_under_the_workers_maximum() {
        let settings = RolloutSettings {
            data_dir: PathBuf::from("/var/lib/errand"),
            default_image: "debian:bookworm-slim".into(),
            default_agent_command: None,
            agent_env: Vec::new(),
            custom_agent_env: Vec::new(),
            sandbox_uid: 10001,
            limits: worker_limits(),
            default_timeout: Duration::from_secs(30 * 60),
            max_timeout: Duration::from_secs(2 * 3600),
            env_cache_ttl: Duration::ZERO,
        };
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(attempt_timeout(None, &settings), minutes(30));
        assert_eq!(attempt_timeout(Some(minutes(5)), &settings), minutes(5));
        assert_eq!(attempt_timeout(Some(minutes(90)), &settings), minutes(90), "above the default, under the maximum");
        assert_eq!(attempt_timeout(Some(minutes(24 * 60)), &settings), minutes(120));
        let low_maximum = RolloutSettings { max_timeout: minutes(10), ..settings };
        assert_eq!(attempt_timeout(None, &low_maximum), minutes(10), "the maximum caps the default too");
    }
}
