//! Process settings (flags and `ERRAND_*` variables; `--help` is the reference) and repository
//! settings (`.errand.toml`, read from the default branch).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indexmap::IndexMap;
use secrecy::SecretString;
use serde::Deserialize;

use crate::agents::Preset;

/// errand: delegate GitHub requests to coding agents in sandboxed containers.
#[derive(Debug, Parser)]
#[command(name = "errand", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the HTTP ingress: webhooks in, jobs onto the queue, the job API.
    Serve(ServeArgs),
    /// Run a worker: claim jobs, run agents in sandboxes, publish pull requests.
    Worker(WorkerArgs),
    /// Run the ingress and a worker in one process (small installs, the demo).
    All(AllArgs),
    /// Look into the queue: recent jobs, dead-lettered jobs; re-queue a dead job.
    Jobs(JobsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub action: JobsAction,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Print JSON records instead of one line per job.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum JobsAction {
    /// Recent jobs of every status, newest first.
    List {
        /// How many jobs to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Dead-lettered jobs (failed after `--max-deliveries`), newest first.
    Dead,
    /// Put a dead job back in the queue with a fresh delivery count.
    Requeue {
        /// The job's id, as `errand jobs dead` shows it.
        id: String,
    },
}

/// Which queue implementation to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueKind {
    /// Redis at `--redis-url` (production).
    Redis,
    /// In-process memory: jobs are lost when the process stops. Only for demos and tests.
    Memory,
}

/// Where jobs are queued.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Redis URL of the job queue, e.g. redis://127.0.0.1:6379/0.
    #[arg(long, env = "ERRAND_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The queue implementation; `memory` must be asked for explicitly.
    #[arg(long, value_enum, default_value = "redis", env = "ERRAND_QUEUE")]
    pub queue: QueueKind,
    /// How long a claimed job stays a worker's without renewal; the worker renews every third of
    /// it, and a dead worker's job is reclaimed after it.
    #[arg(long, env = "ERRAND_LEASE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub lease: Duration,
    /// Deliveries before a job is dead-lettered and its requester told.
    #[arg(long, env = "ERRAND_MAX_DELIVERIES", default_value_t = 3)]
    pub max_deliveries: u32,
}

/// How errand talks to GitHub.
#[derive(Debug, Clone, Args)]
pub struct GithubArgs {
    /// GitHub API base URL (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, env = "ERRAND_GITHUB_API_URL", default_value = "https://api.github.com")]
    pub github_api_url: String,
    /// Plain-token mode: a token with contents, issues and pull-requests write access.
    #[arg(long, env = "ERRAND_GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<SecretString>,
    /// GitHub App mode: the App's id.
    #[arg(long, env = "ERRAND_GITHUB_APP_ID")]
    pub github_app_id: Option<u64>,
    /// GitHub App mode: the App's private key (PEM file).
    #[arg(long, env = "ERRAND_GITHUB_PRIVATE_KEY_FILE")]
    pub github_private_key_file: Option<PathBuf>,
    /// The bot's own login, whose comments never trigger jobs (besides every `Bot` account).
    #[arg(long, env = "ERRAND_BOT_LOGIN")]
    pub bot_login: Option<String>,
    /// Assigning an issue to this login starts a task with the issue as the instruction (off
    /// unless set; GitHub Apps cannot be assigned, so this is a machine user's login).
    #[arg(long, env = "ERRAND_TRIGGER_ASSIGNEE")]
    pub trigger_assignee: Option<String>,
    /// Adding this label to an issue starts a task with the issue as the instruction (off unless set).
    #[arg(long, env = "ERRAND_TRIGGER_LABEL")]
    pub trigger_label: Option<String>,
    /// Names that summon errand in a comment, comma-separated.
    #[arg(long, env = "ERRAND_MENTIONS", default_value = "@agent", value_delimiter = ',')]
    pub mentions: Vec<String>,
    /// Base URL of errand's own job pages (links in comments); default: none.
    #[arg(long, env = "ERRAND_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long one GitHub request (an API call, a git fetch or push) may wait for GitHub before
    /// errand gives that try up and retries it.
    #[arg(long, env = "ERRAND_GITHUB_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub github_timeout: Duration,
}

/// How errand talks to Slack. Slack is off until a signing secret, a bot token and an
/// allowlist (channels or users) are set.
#[derive(Debug, Clone, Args)]
pub struct SlackArgs {
    /// Slack signing secrets, comma-separated; any one verifies (rotation).
    #[arg(long, env = "ERRAND_SLACK_SIGNING_SECRET", hide_env_values = true, value_delimiter = ',')]
    pub slack_signing_secret: Vec<SecretString>,
    /// The bot token (`xoxb-...`) errand posts, edits, reacts and reads threads with.
    #[arg(long, env = "ERRAND_SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<SecretString>,
    /// Slack Web API base URL.
    #[arg(long, env = "ERRAND_SLACK_API_URL", default_value = crate::chat::api::DEFAULT_API_URL)]
    pub slack_api_url: String,
    /// Channel ids whose members may ask errand, comma-separated.
    #[arg(long, env = "ERRAND_SLACK_ALLOWED_CHANNELS", default_value = "")]
    pub slack_allowed_channels: String,
    /// User ids who may ask errand in any channel it is in, comma-separated.
    #[arg(long, env = "ERRAND_SLACK_ALLOWED_USERS", default_value = "")]
    pub slack_allowed_users: String,
    /// Workspace (team) ids requesters must belong to, comma-separated; empty: any workspace
    /// the app is installed in.
    #[arg(long, env = "ERRAND_SLACK_ALLOWED_TEAMS", default_value = "")]
    pub slack_allowed_teams: String,
    /// Each channel's default repository: `CHANNEL=owner/name,...`.
    #[arg(long, env = "ERRAND_SLACK_DEFAULT_REPOS", default_value = "")]
    pub slack_default_repos: String,
}

/// The secrets of errand's HTTP side. Every errand process reads them, a worker too: it must know
/// them to keep them out of everything it posts and pushes (compose and the chart give every
/// process the same environment).
#[derive(Debug, Clone, Args)]
pub struct ServiceSecrets {
    /// Webhook secrets, comma-separated; any one verifies (rotation).
    #[arg(long, env = "ERRAND_GITHUB_WEBHOOK_SECRET", hide_env_values = true, value_delimiter = ',')]
    pub github_webhook_secret: Vec<SecretString>,
    /// Bearer token of the job API; without it the API answers 404.
    #[arg(long, env = "ERRAND_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<SecretString>,
}

/// The HTTP ingress.
#[derive(Debug, Clone, Args)]
pub struct IngressArgs {
    /// Address of the HTTP server.
    #[arg(long, env = "ERRAND_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Where accepted webhooks wait while the queue (Redis) is unavailable, replayed when it is
    /// back; one directory per `serve` process. Without it, a queue outage is answered 503.
    #[arg(long, env = "ERRAND_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Jobs the spool holds at most; beyond, webhooks are answered 503.
    #[arg(long, env = "ERRAND_SPOOL_MAX_JOBS", default_value_t = 10_000)]
    pub spool_max_jobs: usize,
    /// Bytes the spool holds at most; beyond, webhooks are answered 503.
    #[arg(long, env = "ERRAND_SPOOL_MAX_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub spool_max_bytes: u64,
    /// New jobs one requester may start per minute (0: no limit); over it they are told when to
    /// try again.
    #[arg(long, env = "ERRAND_RATE_LIMIT_REQUESTER", default_value_t = 10)]
    pub rate_limit_requester: u64,
    /// New jobs one repository may get per minute (0: no limit).
    #[arg(long, env = "ERRAND_RATE_LIMIT_REPOSITORY", default_value_t = 60)]
    pub rate_limit_repository: u64,
}

/// The worker and its sandboxes.
#[derive(Debug, Clone, Args)]
pub struct WorkerOptions {
    /// Jobs run at once by this worker.
    #[arg(long, env = "ERRAND_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// Where mirrors and workspaces live.
    #[arg(long, env = "ERRAND_DATA_DIR", default_value = "/var/lib/errand")]
    pub data_dir: PathBuf,
    /// Sandbox image when a repository names none.
    #[arg(long, env = "ERRAND_DEFAULT_IMAGE", default_value = "debian:bookworm-slim")]
    pub default_image: String,
    /// Agent command when a repository names none (run with `sh -c` in /workspace).
    #[arg(long, env = "ERRAND_AGENT_COMMAND")]
    pub agent_command: Option<String>,
    /// Numeric uid the sandbox runs as (never 0); default: this process's uid, or 10001 as root.
    #[arg(long, env = "ERRAND_SANDBOX_UID")]
    pub sandbox_uid: Option<u32>,
    /// Memory limit of a sandbox, in MiB.
    #[arg(long, env = "ERRAND_SANDBOX_MEMORY_MB", default_value_t = 4096)]
    pub sandbox_memory_mb: u64,
    /// CPU limit of a sandbox, in cores.
    #[arg(long, env = "ERRAND_SANDBOX_CPUS", default_value_t = 2.0)]
    pub sandbox_cpus: f64,
    /// Process limit of a sandbox.
    #[arg(long, env = "ERRAND_SANDBOX_PIDS", default_value_t = 512)]
    pub sandbox_pids: i64,
    /// What one sandbox step may add to the disk, in MiB: its workspace, errand's directory and the
    /// container's writable layer together. A step that writes more is killed.
    #[arg(long, env = "ERRAND_SANDBOX_DISK_MB", default_value_t = 10240, value_parser = clap::value_parser!(u64).range(1..))]
    pub sandbox_disk_mb: u64,
    /// Time limit of an attempt when a repository sets none.
    #[arg(long, env = "ERRAND_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The longest an attempt may run, whatever a repository's `timeout` asks for.
    #[arg(long, env = "ERRAND_MAX_TIMEOUT", default_value = "2h", value_parser = humantime::parse_duration)]
    pub max_timeout: Duration,
    /// Name of errand's commits.
    #[arg(long, env = "ERRAND_GIT_AUTHOR_NAME", default_value = "errand")]
    pub git_author_name: String,
    /// Email of errand's commits.
    #[arg(long, env = "ERRAND_GIT_AUTHOR_EMAIL", default_value = "errand@users.noreply.github.com")]
    pub git_author_email: String,
    /// First delay before a job that failed for a passing reason (GitHub down) runs again;
    /// doubles with each delivery.
    #[arg(long, env = "ERRAND_RETRY_DELAY", default_value = "30s", value_parser = humantime::parse_duration)]
    pub retry_delay: Duration,
    /// How long a stopping worker waits for running jobs before handing them back.
    #[arg(long, env = "ERRAND_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// A file of `NAME=VALUE` lines given to the agent step only (model API keys); the presets' key
    /// variables set in errand's own environment are passed too.
    #[arg(long, env = "ERRAND_AGENT_ENV_FILE")]
    pub agent_env_file: Option<PathBuf>,
    /// Names of agent-environment variables (see `ERRAND_AGENT_ENV_FILE`) that an agent command
    /// named by a repository's `.errand.toml` gets, comma-separated; default none. A preset gets
    /// its own API-key variables, and `ERRAND_AGENT_COMMAND` (the operator's) gets them all.
    #[arg(long, env = "ERRAND_CUSTOM_AGENT_ENV", value_delimiter = ',')]
    pub custom_agent_env: Vec<String>,
    /// The most attempts one request may run in parallel (`@agent ... --attempts N`).
    #[arg(long, env = "ERRAND_MAX_ATTEMPTS", default_value_t = 4)]
    pub max_attempts: u32,
    /// How long an environment built by a repository's `setup` is reused before setup runs again
    /// (`0`: setup runs for every attempt and nothing is kept).
    #[arg(long, env = "ERRAND_ENV_CACHE_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub env_cache_ttl: Duration,
    /// Comma-separated CIDRs (`10.20.0.0/16,fd12::/16`) the egress proxy may connect to besides public
    /// addresses: loopback, link-local and private ranges are refused unless listed here. Repositories
    /// cannot widen this.
    #[arg(long, env = "ERRAND_EGRESS_ALLOW_NETS", value_delimiter = ',')]
    pub egress_allow_nets: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub secrets: ServiceSecrets,
    #[command(flatten)]
    pub ingress: IngressArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(flatten)]
    pub slack: SlackArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub secrets: ServiceSecrets,
    #[command(flatten)]
    pub worker: WorkerOptions,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(flatten)]
    pub slack: SlackArgs,
}

#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub secrets: ServiceSecrets,
    #[command(flatten)]
    pub ingress: IngressArgs,
    #[command(flatten)]
    pub worker: WorkerOptions,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(flatten)]
    pub slack: SlackArgs,
}

/// Prefix of errand's branches when a repository names none.
pub const DEFAULT_BRANCH_PREFIX: &str = "errand/";

/// Whether `prefix` makes branch names git and GitHub take, and nothing else: the names are
/// pushed and shown, so they are kept to plain characters.
fn is_branch_prefix(prefix: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/');
    !prefix.is_empty()
        && prefix.len() <= 40
        && prefix.bytes().all(allowed)
        && !prefix.starts_with(['/', '-', '.'])
        && !prefix.contains("..")
        && !prefix.contains("//")
        && !prefix.contains("/.")
}

/// The name of the repository settings file, read from the default branch.
pub const REPO_CONFIG_FILE: &str = ".errand.toml";

/// A repository's `.errand.toml`. Every field is optional; see the README for the defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// The sandbox image; default: the worker's `ERRAND_DEFAULT_IMAGE`.
    pub image: Option<String>,
    /// `setup = ["..."]`, or a `[setup]` table: commands run once per environment, before the
    /// checks and the agent; their result is kept as an image (see `rollout::environment`).
    #[serde(default, deserialize_with = "setup_field")]
    pub setup: SetupConfig,
    /// Time limit of the whole attempt, e.g. "30m".
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// `agent = "codex"` (a preset), or an `[agent]` table.
    #[serde(default, deserialize_with = "agent_field")]
    pub agent: AgentConfig,
    /// Checks run in order after the agent: name = command. Their results are the evidence.
    #[serde(default)]
    pub checks: IndexMap<String, String>,
    /// Also run the checks before the agent, so the evidence shows what changed. Default true.
    pub baseline_checks: Option<bool>,
    /// `"none"` (default), `"open"` or `"allowlist"`: whether the sandbox may reach the network.
    #[serde(default)]
    pub network: NetworkPolicy,
    /// With `network = "allowlist"`, the only hosts the sandbox reaches (through errand's egress proxy):
    /// `"api.openai.com"` (ports 443 and 80), `"host:port"`, `"*.example.com"`.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Prefix of errand's branches; default "errand/".
    pub branch_prefix: Option<String>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub attempts: AttemptsConfig,
    /// Set when there was no `.errand.toml`: the file the checks were detected from.
    #[serde(skip)]
    pub detected_from: Option<String>,
}

/// How many attempts a request runs (best-of-N).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsConfig {
    /// Attempts when the request names none; default 1.
    pub default: Option<u32>,
    /// The most a request may ask for; default (and never above) the worker's `ERRAND_MAX_ATTEMPTS`.
    pub max: Option<u32>,
}

impl RepoConfig {
    /// How many attempts to run for a request that asked for `asked`, under the repository's and
    /// the worker's maximum; also whether the request was cut down.
    pub fn attempts(&self, asked: Option<u32>, worker_max: u32) -> (u32, bool) {
        let max = self.attempts.max.unwrap_or(worker_max).min(worker_max).max(1);
        let wanted = asked.or(self.attempts.default).unwrap_or(1).max(1);
        (wanted.min(max), wanted > max)
    }
}

/// Which agent runs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// A command line run with `sh -c` in /workspace (see the agent contract in the README).
    pub command: Option<String>,
    /// A real agent CLI with its pinned headless command line: `codex`, `claude`, `aider`,
    /// `opencode`, `goose`, `openhands` (see `agents::Preset`).
    pub preset: Option<String>,
    /// The model the preset asks for, when not the CLI's default.
    pub model: Option<String>,
}

impl AgentConfig {
    /// The preset, if one is named (names are checked when the file is parsed).
    pub fn preset(&self) -> Option<Preset> {
        self.preset.as_deref().and_then(Preset::from_name)
    }
}

/// `agent = "codex"` is short for `[agent] preset = "codex"`. A table is read as `AgentConfig`
/// itself, so its errors (an unknown field) keep their line.
fn agent_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AgentConfig, D::Error> {
    struct AgentVisitor;
    impl<'de> serde::de::Visitor<'de> for AgentVisitor {
        type Value = AgentConfig;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a preset name (`agent = \"codex\"`) or a table with `command`, `preset` and `model`")
        }
        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<AgentConfig, E> {
            Ok(AgentConfig { preset: Some(name.to_owned()), ..AgentConfig::default() })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AgentConfig, A::Error> {
            AgentConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(AgentVisitor)
}

/// The environment a repository's steps start from: setup commands run once, in one container,
/// whose result is kept as an image for later rollouts (see `rollout::environment`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupConfig {
    /// Run in order, in one container, as the sandbox user; `/workspace` is read-only to them.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Whether setup may reach the network (the engine's default bridge); default false. The
    /// steps after it keep the repository's `network` policy.
    #[serde(default)]
    pub network: bool,
    /// Files (or directories, or `name*.ext` patterns) of the repository whose contents decide
    /// when the environment is built again; default: the usual lock files present
    /// ([`DEFAULT_DEPENDS_ON`]).
    pub depends_on: Option<Vec<String>>,
}

/// The files an environment depends on when `[setup]` names none: the lock files of the common
/// package managers, at the repository's root, those present.
pub const DEFAULT_DEPENDS_ON: [&str; 8] = [
    "Cargo.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "poetry.lock",
    "requirements*.txt",
    "go.sum",
    "uv.lock",
];

impl SetupConfig {
    /// What the environment depends on: the configured files, or the defaults.
    pub fn depends_on(&self) -> Vec<String> {
        match &self.depends_on {
            Some(files) => files.clone(),
            None => DEFAULT_DEPENDS_ON.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// Why the table cannot be used, if it cannot.
    fn problem(&self) -> Option<String> {
        if self.commands.is_empty() && (self.network || self.depends_on.is_some()) {
            return Some("`[setup]` has no `commands`: add `commands = [\"...\"]`, or remove the section".to_owned());
        }
        if self.commands.iter().any(|c| c.trim().is_empty()) {
            return Some("`setup` has an empty command".to_owned());
        }
        let outside = |path: &str| {
            let path = std::path::Path::new(path);
            path.as_os_str().is_empty()
                || path.is_absolute()
                || path.components().any(|c| matches!(c, std::path::Component::ParentDir))
        };
        self.depends_on
            .iter()
            .flatten()
            .find(|p| outside(p))
            .map(|p| format!("setup.depends_on: `{p}` is not a path inside the repository (relative, without `..`)"))
    }
}

/// `setup = [...]` is short for `[setup] commands = [...]`. A table is read as `SetupConfig`
/// itself, so its errors (an unknown field) keep their line.
fn setup_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SetupConfig, D::Error> {
    struct SetupVisitor;
    impl<'de> serde::de::Visitor<'de> for SetupVisitor {
        type Value = SetupConfig;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "a list of commands (`setup = [\"make deps\"]`) or a table with `commands`, `network` and `depends_on`",
            )
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<SetupConfig, A::Error> {
            let commands = Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
            Ok(SetupConfig { commands, ..SetupConfig::default() })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SetupConfig, A::Error> {
            SetupConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(SetupVisitor)
}

/// Whether the sandbox may reach the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPolicy {
    #[default]
    None,
    Open,
    /// Only the hosts in `allow_hosts`, through an egress proxy.
    Allowlist,
}

/// Limits that a repository may lower (never raise) below the worker's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    /// What one step may add to the disk, in MiB (see `ERRAND_SANDBOX_DISK_MB`).
    pub disk_mb: Option<u64>,
}

/// `.errand.toml` could not be read: names the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfigError {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for RepoConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl RepoConfig {
    /// Parses `.errand.toml`; the error names the line and the field.
    pub fn parse(text: &str) -> Result<Self, RepoConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| RepoConfigError {
            line: e.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
            message: e.message().trim().to_owned(),
        })?;
        if let Some(name) = config.checks.iter().find(|(_, cmd)| cmd.trim().is_empty()).map(|(n, _)| n) {
            return Err(RepoConfigError { line: None, message: format!("check `{name}` has an empty command") });
        }
        if let Some(message) = config.setup.problem() {
            return Err(RepoConfigError { line: None, message });
        }
        if let Some(name) = config.agent.preset.as_deref().filter(|n| Preset::from_name(n).is_none()) {
            let known: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
            let message = format!("agent preset `{name}` is unknown; the presets are {}", known.join(", "));
            return Err(RepoConfigError { line: None, message });
        }
        if let Some(prefix) = config.branch_prefix.as_deref()
            && !is_branch_prefix(prefix)
        {
            let message = format!(
                "`branch_prefix = \"{}\"` is not a branch name prefix: use up to 40 letters, digits, `.`, `_`, `-` and `/` (not at the start), like \"errand/\"",
                prefix.escape_default()
            );
            return Err(RepoConfigError { line: None, message });
        }
        if config.agent.preset.is_some() && config.agent.command.is_some() {
            let message = "`[agent]` has both `preset` and `command`: keep one".to_owned();
            return Err(RepoConfigError { line: None, message });
        }
        let hosts_error = match (config.network, config.allow_hosts.is_empty()) {
            (NetworkPolicy::Allowlist, true) => Some(
                "`network = \"allowlist\"` needs `allow_hosts`, the hosts the sandbox may reach: \
                 `allow_hosts = [\"api.openai.com\"]`"
                    .to_owned(),
            ),
            (NetworkPolicy::None | NetworkPolicy::Open, false) => Some(
                "`allow_hosts` only applies with `network = \"allowlist\"`: add that, or remove `allow_hosts`"
                    .to_owned(),
            ),
            _ => crate::sandbox::Allowlist::parse(&config.allow_hosts).err().map(|e| format!("allow_hosts: {e}")),
        };
        if let Some(message) = hosts_error {
            return Err(RepoConfigError { line: None, message });
        }
        Ok(config)
    }

    /// The configuration of a repository without `.errand.toml`: checks detected from the files
    /// at the repository's root.
    pub fn detected(root_files: &[String]) -> Self {
        let has = |name: &str| root_files.iter().any(|f| f == name);
        // The first match wins, most specific first: a lock file names the package manager.
        let rules: [(&[&str], &str); 8] = [
            (&["Cargo.toml"], "cargo test"),
            (&["pnpm-lock.yaml"], "pnpm test"),
            (&["yarn.lock"], "yarn test"),
            (&["package.json"], "npm test"),
            (&["go.mod"], "go test ./..."),
            (&["pyproject.toml", "pytest.ini", "setup.py", "tox.ini"], "python -m pytest"),
            (&["Makefile"], "make test"),
            (&["makefile", "GNUmakefile"], "make test"),
        ];
        let found = rules.iter().find_map(|(files, command)| files.iter().find(|f| has(f)).map(|f| (*f, *command)));
        let mut checks = IndexMap::new();
        if let Some((_, command)) = found {
            checks.insert("test".to_owned(), command.to_owned());
        }
        Self { checks, detected_from: found.map(|(file, _)| file.to_owned()), ..Self::default() }
    }

    pub fn branch_prefix(&self) -> &str {
        self.branch_prefix.as_deref().unwrap_or(DEFAULT_BRANCH_PREFIX)
    }

    pub fn baseline_checks(&self) -> bool {
        self.baseline_checks.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_errand_toml_from_the_design_parses() {
        let config = RepoConfig::parse(
            r#"
image = "debian:bookworm-slim"
setup = ["apt-get install -y make"]
timeout = "30m"

[agent]
command = "my-agent --task-file \"$ERRAND_TASK_FILE\""

[checks]
test = "make test"
lint = "make lint"
"#,
        )
        .unwrap();
        assert_eq!(config.image.as_deref(), Some("debian:bookworm-slim"));
        assert_eq!(config.timeout, Some(Duration::from_secs(1800)));
        assert_eq!(config.checks.keys().collect::<Vec<_>>(), ["test", "lint"]);
        assert_eq!(config.network, NetworkPolicy::None);
    }

    #[test]
    fn a_branch_prefix_is_plain_characters_only() {
        for good in ["errand/", "bots/errand-", "ai_work/v2."] {
            let config = RepoConfig::parse(&format!("branch_prefix = \"{good}\"\n")).expect(good);
            assert_eq!(config.branch_prefix(), good);
        }
        for bad in ["", "-x", "/x", "a..b", "a b", "a//b", "x/.hidden", "a:b", "a~1", "[x]", &"x".repeat(41)] {
            let error = RepoConfig::parse(&format!("branch_prefix = \"{bad}\"\n")).expect_err(bad);
            assert!(error.to_string().contains("is not a branch name prefix"), "{bad}: {error}");
        }
    }

    #[test]
    fn attempts_default_to_one_and_are_capped_by_the_repository_and_the_worker() {
        let none = RepoConfig::parse("").unwrap();
        assert_eq!(none.attempts(None, 4), (1, false));
        assert_eq!(none.attempts(Some(3), 4), (3, false));
        assert_eq!(none.attempts(Some(8), 4), (4, true));
        let config = RepoConfig::parse("[attempts]\ndefault = 2\nmax = 3\n").unwrap();
        assert_eq!(config.attempts(None, 4), (2, false));
        assert_eq!(config.attempts(Some(5), 4), (3, true));
        assert_eq!(config.attempts(Some(5), 2), (2, true), "the worker's maximum wins");
        let zero = RepoConfig::parse("[attempts]\nmax = 0\n").unwrap();
        assert_eq!(zero.attempts(Some(2), 4), (1, true));
    }

    #[test]
    fn an_agent_is_a_preset_name_or_a_table() {
        let short = RepoConfig::parse("agent = \"codex\"\n").unwrap();
        assert_eq!(short.agent.preset(), Some(Preset::Codex));
        let table = RepoConfig::parse("[agent]\npreset = \"claude\"\nmodel = \"opus\"\n").unwrap();
        assert_eq!((table.agent.preset(), table.agent.model.as_deref()), (Some(Preset::Claude), Some("opus")));
        let custom = RepoConfig::parse("[agent]\ncommand = \"my-agent\"\n").unwrap();
        assert_eq!((custom.agent.preset(), custom.agent.command.as_deref()), (None, Some("my-agent")));
        let unknown = RepoConfig::parse("agent = \"gpt-engineer\"\n").unwrap_err();
        assert!(
            unknown.message.contains("agent preset `gpt-engineer` is unknown; the presets are codex, claude"),
            "{unknown}"
        );
        let number = RepoConfig::parse("agent = 3\n").unwrap_err();
        assert!(number.message.contains("a preset name (`agent = \"codex\"`) or a table"), "{number}");
        assert!(RepoConfig::parse("[agent]\npreset = \"codex\"\ncommand = \"x\"\n").is_err());
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let err = RepoConfig::parse("image = \"x\"\n\n[agent]\ncomand = \"x\"\n").unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(err.message.contains("unknown field `comand`"), "{}", err.message);
    }

    #[test]
    fn setup_is_a_list_of_commands_or_a_table() {
        let list = RepoConfig::parse("setup = [\"make deps\", \"make tools\"]\n").unwrap();
        assert_eq!(list.setup.commands, ["make deps", "make tools"]);
        assert!(!list.setup.network, "setup has no network unless it asks");
        assert_eq!(list.setup.depends_on(), DEFAULT_DEPENDS_ON);

        let table = RepoConfig::parse(
            "[setup]\ncommands = [\"pip install --user -r requirements.txt\"]\nnetwork = true\ndepends_on = [\"requirements.txt\", \"tools/\"]\n",
        )
        .unwrap();
        assert_eq!(table.setup.commands, ["pip install --user -r requirements.txt"]);
        assert!(table.setup.network);
        assert_eq!(table.setup.depends_on(), ["requirements.txt", "tools/"]);
        assert_eq!(RepoConfig::parse("").unwrap().setup, SetupConfig::default());
    }

    #[test]
    fn a_wrong_setup_is_named_with_its_line_or_field() {
        let unknown = RepoConfig::parse("image = \"x\"\n\n[setup]\ncommands = [\"x\"]\nnetwrok = true\n").unwrap_err();
        assert_eq!(unknown.line, Some(5));
        assert!(unknown.message.contains("unknown field `netwrok`"), "{unknown}");
        let number = RepoConfig::parse("setup = 3\n").unwrap_err();
        assert_eq!(number.line, Some(1));
        assert!(number.message.contains("a list of commands"), "{number}");
        for (text, says) in [
            ("[setup]\nnetwork = true\n", "`[setup]` has no `commands`"),
            ("setup = [\" \"]\n", "empty command"),
            ("[setup]\ncommands = [\"x\"]\ndepends_on = [\"../secrets\"]\n", "setup.depends_on: `../secrets`"),
            ("[setup]\ncommands = [\"x\"]\ndepends_on = [\"/etc/passwd\"]\n", "setup.depends_on: `/etc/passwd`"),
        ] {
            let err = RepoConfig::parse(text).unwrap_err();
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn an_allowlist_names_its_hosts_and_hosts_need_an_allowlist() {
        let config = RepoConfig::parse("network = \"allowlist\"\nallow_hosts = [\"api.openai.com\"]\n").unwrap();
        assert_eq!(config.network, NetworkPolicy::Allowlist);
        assert_eq!(config.allow_hosts, ["api.openai.com"]);
        for (text, field) in [
            ("network = \"allowlist\"\n", "`allow_hosts`"),
            ("allow_hosts = [\"api.openai.com\"]\n", "`network = \"allowlist\"`"),
            ("network = \"open\"\nallow_hosts = [\"api.openai.com\"]\n", "`network = \"allowlist\"`"),
            ("network = \"allowlist\"\nallow_hosts = [\"https://api.openai.com\"]\n", "allow_hosts: `https://"),
        ] {
            let err = RepoConfig::parse(text).unwrap_err();
            assert!(err.message.contains(field), "{text}: {err}");
        }
    }

    #[test]
    fn a_wrong_type_is_named() {
        let err = RepoConfig::parse("timeout = \"soon\"\n").unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.to_string().starts_with("line 1:"), "{err}");
    }

    #[test]
    fn checks_are_detected_without_a_config_file() {
        let detect = |files: &[&str]| {
            let config = RepoConfig::detected(&files.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>());
            (config.checks.get("test").cloned(), config.detected_from)
        };
        let found = |command: &str, file: &str| (Some(command.to_owned()), Some(file.to_owned()));
        assert_eq!(detect(&["Cargo.toml", "src"]), found("cargo test", "Cargo.toml"));
        assert_eq!(detect(&["package.json", "pnpm-lock.yaml"]), found("pnpm test", "pnpm-lock.yaml"));
        assert_eq!(detect(&["package.json", "yarn.lock"]), found("yarn test", "yarn.lock"));
        assert_eq!(detect(&["package.json"]), found("npm test", "package.json"));
        assert_eq!(detect(&["go.mod", "Makefile"]), found("go test ./...", "go.mod"));
        assert_eq!(detect(&["tox.ini"]), found("python -m pytest", "tox.ini"));
        assert_eq!(detect(&["GNUmakefile"]), found("make test", "GNUmakefile"));
        assert_eq!(detect(&["README.md"]), (None, None));
        assert_eq!(RepoConfig::parse("").unwrap().detected_from, None);
    }
}
