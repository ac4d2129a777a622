//! errand's settings: the process's (`process`: flags and `ERRAND_*` variables, `--help` is the
//! reference) and each repository's (`repository`: `.errand.toml`, read from the default branch).

mod process;
mod repository;

pub use self::process::{
    AllArgs, Cli, CliCommand, DEFAULT_MENTION, DEFAULT_SANDBOX_UID_AS_ROOT, GithubArgs, IngressArgs, JobsAction,
    JobsArgs, Mentions, QueueArgs, QueueKind, ServeArgs, ServiceSecrets, SlackArgs, WorkerArgs, WorkerOptions,
};
pub use self::repository::{
    AgentConfig, AttemptsConfig, DEFAULT_BRANCH_PREFIX, DEFAULT_DEPENDS_ON, NetworkPolicy, REPO_CONFIG_FILE,
    RepoConfig, RepoConfigError, Resources, SetupConfig,
};
