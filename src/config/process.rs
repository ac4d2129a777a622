//! Process settings: the command line and its `ERRAND_*` variables (`--help` is the reference).
//!
//! Every value is parsed here, once, into the type its users want: a malformed variable stops the
//! process at start with clap's message naming it, and nothing later parses a setting again. An
//! empty variable (compose passes one that is not set as empty) reads as unset.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::chat::resolve::{Allowlist, ChannelDefaults};
use crate::sandbox::AddressPolicy;

/// The name that summons errand when `ERRAND_MENTIONS` names none.
pub const DEFAULT_MENTION: &str = "@agent";

/// The uid sandboxes run as when `ERRAND_SANDBOX_UID` is not set and errand runs as root; run as
/// another user, errand gives sandboxes its own uid.
pub const DEFAULT_SANDBOX_UID_AS_ROOT: u32 = 10001;

/// A default duration as the `ERRAND_*` durations are written (`30s`), for clap's `default_value`:
/// the text must live as long as the program, as clap's own `default_value_t` keeps it.
macro_rules! duration_text {
    ($duration:expr) => {{
        static TEXT: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| humantime::format_duration($duration).to_string());
        TEXT.as_str()
    }};
}

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
    /// Names that summon errand in a comment, comma-separated (the `@` is optional); errand calls
    /// itself by the first in what it writes.
    #[arg(long, env = "ERRAND_MENTIONS", default_value = DEFAULT_MENTION, value_parser = Mentions::parse)]
    pub mentions: Mentions,
    /// Base URL of errand's own job pages (links in comments); default: none.
    #[arg(long, env = "ERRAND_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long one GitHub request (an API call, a git fetch or push) may wait for GitHub before
    /// errand gives that try up and retries it.
    #[arg(
        long,
        env = "ERRAND_GITHUB_TIMEOUT",
        default_value = duration_text!(crate::forge::git::DEFAULT_NETWORK_TIMEOUT),
        value_parser = humantime::parse_duration
    )]
    pub github_timeout: Duration,
}

/// How errand talks to Slack. Slack is off until a signing secret, a bot token and an
/// allowlist (channels or users) are set.
#[derive(Debug, Clone, Args)]
pub struct SlackArgs {
    /// Slack signing secrets, comma-separated; any one verifies (rotation).
    #[arg(
        long,
        env = "ERRAND_SLACK_SIGNING_SECRET",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true,
        value_parser = secrets
    )]
    // `::std::vec::Vec` is one value to clap, split by `secrets`: clap's own splitting keeps the
    // empty entry of an empty variable.
    pub slack_signing_secret: ::std::vec::Vec<SecretString>,
    /// The bot token (`xoxb-...`) errand posts, edits, reacts and reads threads with.
    #[arg(long, env = "ERRAND_SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<SecretString>,
    /// Slack Web API base URL.
    #[arg(long, env = "ERRAND_SLACK_API_URL", default_value = crate::chat::api::DEFAULT_API_URL)]
    pub slack_api_url: String,
    /// Channel ids whose members may ask errand, comma-separated.
    #[arg(
        long,
        env = "ERRAND_SLACK_ALLOWED_CHANNELS",
        default_value = "",
        hide_default_value = true,
        value_parser = Allowlist::parse_channels
    )]
    pub slack_allowed_channels: BTreeSet<String>,
    /// User ids who may ask errand in any channel it is in, comma-separated.
    #[arg(
        long,
        env = "ERRAND_SLACK_ALLOWED_USERS",
        default_value = "",
        hide_default_value = true,
        value_parser = Allowlist::parse_users
    )]
    pub slack_allowed_users: BTreeSet<String>,
    /// Workspace (team) ids requesters must belong to, comma-separated; empty: any workspace
    /// the app is installed in.
    #[arg(
        long,
        env = "ERRAND_SLACK_ALLOWED_TEAMS",
        default_value = "",
        hide_default_value = true,
        value_parser = Allowlist::parse_teams
    )]
    pub slack_allowed_teams: BTreeSet<String>,
    /// Each channel's default repository: `CHANNEL=owner/name,...`.
    #[arg(
        long,
        env = "ERRAND_SLACK_DEFAULT_REPOS",
        default_value = "",
        hide_default_value = true,
        value_parser = ChannelDefaults::parse
    )]
    pub slack_default_repos: ChannelDefaults,
}

/// The secrets of errand's HTTP side. Every errand process reads them, a worker too: it must know
/// them to keep them out of everything it posts and pushes (compose and the chart give every
/// process the same environment).
#[derive(Debug, Clone, Args)]
pub struct ServiceSecrets {
    /// Webhook secrets, comma-separated; any one verifies (rotation).
    #[arg(
        long,
        env = "ERRAND_GITHUB_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true,
        value_parser = secrets
    )]
    // One value to clap, split by `secrets` (see `SlackArgs::slack_signing_secret`).
    pub github_webhook_secret: ::std::vec::Vec<SecretString>,
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
    #[arg(long, env = "ERRAND_SPOOL_MAX_JOBS", default_value_t = crate::ingress::DEFAULT_SPOOL_MAX_JOBS)]
    pub spool_max_jobs: usize,
    /// Bytes the spool holds at most; beyond, webhooks are answered 503.
    #[arg(long, env = "ERRAND_SPOOL_MAX_BYTES", default_value_t = crate::ingress::DEFAULT_SPOOL_MAX_BYTES)]
    pub spool_max_bytes: u64,
    /// New jobs one requester may start per minute (0: no limit); over it they are told when to
    /// try again.
    #[arg(long, env = "ERRAND_RATE_LIMIT_REQUESTER", default_value_t = crate::ingress::limits::DEFAULT_JOBS_PER_REQUESTER)]
    pub rate_limit_requester: u64,
    /// New jobs one repository may get per minute (0: no limit).
    #[arg(long, env = "ERRAND_RATE_LIMIT_REPOSITORY", default_value_t = crate::ingress::limits::DEFAULT_JOBS_PER_REPOSITORY)]
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
    #[arg(long, env = "ERRAND_CUSTOM_AGENT_ENV", default_value = "", hide_default_value = true, value_parser = names)]
    // One value to clap, split by `names` (see `SlackArgs::slack_signing_secret`).
    pub custom_agent_env: ::std::vec::Vec<String>,
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
    #[arg(
        long,
        env = "ERRAND_EGRESS_ALLOW_NETS",
        default_value = "",
        hide_default_value = true,
        value_parser = egress_policy
    )]
    pub egress_allow_nets: AddressPolicy,
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

impl SlackArgs {
    /// Who may ask errand from Slack, from the three allowlist settings.
    pub fn allowlist(&self) -> Allowlist {
        Allowlist {
            channels: self.slack_allowed_channels.clone(),
            users: self.slack_allowed_users.clone(),
            teams: self.slack_allowed_teams.clone(),
        }
    }
}

/// The names that summon errand (`ERRAND_MENTIONS`): never none, each with its `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mentions(Vec<String>);

impl Mentions {
    /// Parses comma-separated names, the `@` optional (`@agent, errand`); spaces around them and
    /// empty entries are ignored, and a value naming none is the default, [`DEFAULT_MENTION`].
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut names = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let name = entry.strip_prefix('@').unwrap_or(entry);
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '@') {
                return Err(format!("`{entry}` in ERRAND_MENTIONS is not a name: write names like `@agent`"));
            }
            names.push(format!("@{name}"));
        }
        Ok(if names.is_empty() { Self::default() } else { Self(names) })
    }

    /// The name errand goes by in what it writes (`Write @agent help`): the first configured.
    pub fn primary(&self) -> &str {
        &self.0[0]
    }

    /// Every name, for reading comments and messages.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

impl Default for Mentions {
    fn default() -> Self {
        Self(vec![DEFAULT_MENTION.to_owned()])
    }
}

/// The default mentions by reference, so that parse contexts holding `&Mentions` (the webhook's
/// and Slack's) have a `Default` too.
impl Default for &Mentions {
    fn default() -> Self {
        static DEFAULT: std::sync::LazyLock<Mentions> = std::sync::LazyLock::new(Mentions::default);
        &DEFAULT
    }
}

/// Comma-separated secrets, spaces around them and empty entries ignored.
fn secrets(value: &str) -> Result<Vec<SecretString>, Infallible> {
    Ok(crate::ingress::parse_secrets(value))
}

/// Comma-separated variable names, spaces around them and empty entries ignored.
fn names(value: &str) -> Result<Vec<String>, Infallible> {
    Ok(value.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect())
}

/// `ERRAND_EGRESS_ALLOW_NETS`: comma-separated CIDRs on top of the public addresses.
fn egress_policy(value: &str) -> Result<AddressPolicy, String> {
    let nets: Vec<String> = value.split(',').map(str::to_owned).collect();
    AddressPolicy::parse(&nets).map_err(|e| format!("ERRAND_EGRESS_ALLOW_NETS: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// `errand worker` with `args` and no environment: only what the arguments say.
    fn worker(args: &[&str]) -> Result<WorkerArgs, clap::Error> {
        let mut command = vec!["errand", "worker"];
        command.extend_from_slice(args);
        match Cli::try_parse_from(command)?.command {
            CliCommand::Worker(args) => Ok(args),
            other => panic!("not a worker: {other:?}"),
        }
    }

    #[test]
    fn unset_settings_take_the_defaults_the_code_states() {
        let CliCommand::All(args) = Cli::try_parse_from(["errand", "all"]).unwrap().command else {
            panic!("not `errand all`");
        };
        let ingress = crate::ingress::IngressSettings::default();
        assert_eq!(args.github.mentions, ingress.mentions);
        assert_eq!(args.github.mentions.primary(), DEFAULT_MENTION);
        assert_eq!(
            (args.ingress.spool_max_jobs, args.ingress.spool_max_bytes),
            (ingress.spool_max_jobs, ingress.spool_max_bytes)
        );
        let limits = crate::ingress::RateLimits::default();
        assert_eq!(Some(args.ingress.rate_limit_requester), limits.per_requester);
        assert_eq!(Some(args.ingress.rate_limit_repository), limits.per_repository);
        assert_eq!(args.github.github_timeout, crate::forge::git::DEFAULT_NETWORK_TIMEOUT);
        assert_eq!(args.slack.slack_api_url, crate::chat::api::DEFAULT_API_URL);
    }

    #[test]
    fn mentions_keep_their_order_and_gain_their_at() {
        let mentions = Mentions::parse(" errand, @agent ,,").unwrap();
        assert_eq!(mentions.names(), ["@errand", "@agent"]);
        assert_eq!(mentions.primary(), "@errand");
        for blank in ["", " ", ",", " , "] {
            assert_eq!(Mentions::parse(blank).unwrap(), Mentions::default(), "{blank:?}");
        }
        assert_eq!(Mentions::default().primary(), DEFAULT_MENTION);
        for bad in ["@", "two words", "a@b"] {
            let error = Mentions::parse(bad).unwrap_err();
            assert!(error.contains("ERRAND_MENTIONS") && error.contains(bad), "{error}");
        }
    }

    #[test]
    fn lists_are_parsed_once_and_an_empty_value_is_none() {
        let args = worker(&[
            "--mentions",
            "",
            "--slack-allowed-channels",
            "",
            "--slack-default-repos",
            "",
            "--github-webhook-secret",
            "",
            "--slack-signing-secret",
            " , ",
            "--custom-agent-env",
            "",
            "--egress-allow-nets",
            "",
        ])
        .unwrap();
        assert_eq!(args.github.mentions, Mentions::default());
        assert!(args.slack.allowlist().is_off() && args.slack.slack_default_repos.is_empty());
        assert!(args.secrets.github_webhook_secret.is_empty() && args.slack.slack_signing_secret.is_empty());
        assert!(args.worker.custom_agent_env.is_empty());
        assert_eq!(args.worker.egress_allow_nets, AddressPolicy::strict());

        let args = worker(&[
            "--slack-allowed-channels",
            "C0DEV, c0ops",
            "--slack-allowed-teams",
            "T0ACME",
            "--slack-default-repos",
            "C0DEV=acme/webapp",
            "--custom-agent-env",
            " OPENAI_API_KEY ,, MY_TOKEN",
            "--egress-allow-nets",
            "10.20.0.0/16,",
        ])
        .unwrap();
        let allowlist = args.slack.allowlist();
        assert_eq!(allowlist.channels, BTreeSet::from(["C0DEV".to_owned(), "C0OPS".to_owned()]));
        assert!(allowlist.allows("T0ACME", "C0OPS", "U0ANY") && !allowlist.allows("T0OTHER", "C0OPS", "U0ANY"));
        assert_eq!(
            args.slack.slack_default_repos.get("C0DEV").map(ToString::to_string).as_deref(),
            Some("acme/webapp")
        );
        assert_eq!(args.worker.custom_agent_env, ["OPENAI_API_KEY", "MY_TOKEN"]);
        assert_eq!(args.worker.egress_allow_nets, AddressPolicy::parse(&["10.20.0.0/16".to_owned()]).unwrap());
    }

    #[test]
    fn a_malformed_value_stops_the_process_naming_its_variable() {
        for (flag, value, variable) in [
            ("--egress-allow-nets", "10.0.0.0/33", "ERRAND_EGRESS_ALLOW_NETS"),
            ("--slack-default-repos", "C0DEV=acme", "ERRAND_SLACK_DEFAULT_REPOS"),
            ("--slack-allowed-channels", "#general", "ERRAND_SLACK_ALLOWED_CHANNELS"),
            ("--slack-allowed-users", "@alice", "ERRAND_SLACK_ALLOWED_USERS"),
            ("--slack-allowed-teams", "acme corp", "ERRAND_SLACK_ALLOWED_TEAMS"),
            ("--mentions", "@", "ERRAND_MENTIONS"),
        ] {
            let error = worker(&[flag, value]).unwrap_err().to_string();
            assert!(error.contains(variable) && error.contains(value), "{flag} {value}: {error}");
        }
    }
}
