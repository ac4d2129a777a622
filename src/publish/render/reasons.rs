//! Why a job could not be done, as data the worker picks and words this module writes: every
//! reason a person reads when errand stops a job short of a result.

use crate::config::{REPO_CONFIG_FILE, RepoConfigError};
use crate::job::RepoName;
use crate::request::ids::IssueNumber;

use super::Renderer;

/// Why errand stops a job without a result; the requester is told, and the job ends failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Asked from Slack about a repository errand's GitHub App is not installed on.
    NotInstalled { repo: String },
    /// The job failed for passing reasons on every delivery.
    GaveUp { tries: u32, last_error: Option<String> },
    /// GitHub refused to show the repository.
    UnreadableRepository { repo: RepoName, status: u16, message: String },
    /// A follow-up on a pull request that does not exist.
    NoSuchPullRequest { repo: RepoName, number: IssueNumber },
    /// A follow-up on a closed or merged pull request.
    PullRequestClosed { number: IssueNumber, merged: bool },
    /// A follow-up on a pull request from a fork (or whose fork is gone).
    PullRequestFromFork { repo: RepoName, number: IssueNumber, fork: Option<String> },
    /// `.errand.toml` does not parse.
    InvalidConfig { branch: String, error: RepoConfigError },
    /// `use attempt N` where there is no such attempt.
    NoSuchAttempt { attempt: u32, head: String },
    /// `use attempt N` on something else than errand's pull request.
    AttemptsNeedTheirPullRequest,
    /// No agent is configured.
    NoAgent,
    /// The sandbox image is not on the worker.
    ImageMissing { image: String },
    /// `network = "allowlist"` and the worker cannot open its egress proxy.
    EgressUnavailable { detail: String },
    /// The sandbox refused a step (the worker is misconfigured).
    SandboxRefused { step: String, detail: String },
    /// The agent's change holds a secret errand knows: nothing was pushed.
    SecretInChange { files: Vec<String> },
}

impl Renderer {
    /// `reason` in words; its first line is what the job API keeps.
    pub fn reason(&self, reason: &Reason) -> String {
        match reason {
            Reason::NotInstalled { repo } => format!(
                "errand is not installed on `{repo}`, or that repository does not exist. Install errand's GitHub App on it, or name another repository."
            ),
            Reason::GaveUp { tries, last_error } => format!(
                "errand tried this job {tries} times and gave up{}.",
                last_error.as_deref().map(|e| format!("; the last error was: {e}")).unwrap_or_default()
            ),
            Reason::UnreadableRepository { repo, status, message } => {
                format!("errand cannot read {repo} (GitHub answered {status}: {message}).")
            }
            Reason::NoSuchPullRequest { repo, number } => format!("errand cannot find pull request #{number} in {repo}."),
            Reason::PullRequestClosed { number, merged } => format!(
                "pull request #{number} is {}; errand only adds to open pull requests. Ask on an issue to start new work.",
                if *merged { "merged" } else { "closed" }
            ),
            Reason::PullRequestFromFork { repo, number, fork } => {
                let from = fork.as_deref().map_or("a fork that no longer exists".to_owned(), |name| format!("the fork `{name}`"));
                format!(
                    "pull request #{number} comes from {from}, and errand can only push to branches of `{repo}`. Push the branch to `{repo}` and ask again there, or ask on an issue for a new pull request."
                )
            }
            Reason::InvalidConfig { branch, error } => {
                format!("`{REPO_CONFIG_FILE}` on `{branch}` is invalid, {error}. Fix it and ask again.")
            }
            Reason::NoSuchAttempt { attempt, head } => format!(
                "this pull request has no attempt {attempt}: errand keeps each attempt of a request that ran several on a branch named `{head}-aN`."
            ),
            Reason::AttemptsNeedTheirPullRequest => {
                "errand can only switch attempts on a pull request whose branch it may push to.".to_owned()
            }
            Reason::NoAgent => "no agent is configured: add `agent = \"codex\"` (or another preset), or an `[agent]` section with `command = \"...\"`, to `.errand.toml`".to_owned(),
            Reason::ImageMissing { image } => format!(
                "the sandbox image `{image}` is not on this worker: build or pull it there, or name another `image` in `.errand.toml`"
            ),
            Reason::EgressUnavailable { detail } => {
                format!("the worker could not open the egress proxy for `network = \"allowlist\"`: {detail}")
            }
            Reason::SandboxRefused { step, detail } => format!("the sandbox could not run step `{step}`: {detail}"),
            Reason::SecretInChange { files } => self.secret_in_change(files),
        }
    }
}
