//! git on the worker: a mirror per repository (a warm start fetches, never re-clones), workspaces
//! cloned locally from the mirror, commits with errand's own identity, and pushes whose token
//! travels in the environment, never in argv, a URL or a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

use crate::job::RepoName;

/// The identity on errand's commits; errand never depends on a user's git config.
#[derive(Debug, Clone)]
pub struct CommitAuthor {
    pub name: String,
    pub email: String,
}

/// Whether preparing a workspace had to clone the repository from the forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorState {
    /// First job on this repository on this worker: cloned.
    Cloned,
    /// The mirror was there: fetched what changed.
    Fetched,
}

impl MirrorState {
    /// For the job log: whether the attempt started warm.
    pub fn describe(self) -> &'static str {
        match self {
            MirrorState::Cloned => "cloned (first job on this repository on this worker)",
            MirrorState::Fetched => "fetched into the warm mirror",
        }
    }
}

/// How long a fetch or push may go without receiving anything from the forge, unless
/// [`Git::with_network_timeout`] says otherwise (the worker uses `ERRAND_GITHUB_TIMEOUT`).
const DEFAULT_NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

/// Tries of a fetch, clone or push that fails for a passing reason (the forge stalled or
/// dropped the connection), the first included.
const NETWORK_TRIES: u32 = 3;
/// The wait before the second try; it doubles.
const NETWORK_RETRY_DELAY: Duration = Duration::from_millis(500);

/// What git prints when the network, not the request, failed: worth another try. Anything else
/// (a refused push, a missing repository, bad credentials) is final.
const PASSING_NETWORK_FAILURES: [&str; 10] = [
    "Operation too slow",
    "Operation timed out",
    "Failed to connect",
    "Connection refused",
    "Connection reset",
    "Could not resolve host",
    "RPC failed",
    "The requested URL returned error: 5",
    "the remote end hung up unexpectedly",
    "early EOF",
];

/// Runs git with a configuration of errand's own.
#[derive(Debug, Clone)]
pub struct Git {
    author: CommitAuthor,
    network_timeout: Duration,
}

impl Git {
    pub fn new(author: CommitAuthor) -> Self {
        Self { author, network_timeout: DEFAULT_NETWORK_TIMEOUT }
    }

    /// A fetch or push over HTTP that receives nothing from the forge for `timeout` is given up
    /// (and tried again, see [`NETWORK_TRIES`]); git counts it in whole seconds.
    pub fn with_network_timeout(self, timeout: Duration) -> Self {
        Self { network_timeout: timeout, ..self }
    }

    /// A git command that ignores system and user configuration, never prompts, trusts
    /// workspaces owned by the sandbox's uid, and (when a token is given) authenticates to the
    /// remote's host through an extra header set in the environment.
    fn command(&self, dir: Option<&Path>, remote: Option<(&str, &SecretString)>) -> Command {
        let mut cmd = Command::new("git");
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        // Under one byte a second for the whole time-out is a stalled transfer.
        let stalled_after = self.network_timeout.as_secs_f64().ceil().max(1.0).to_string();
        let mut config: Vec<(String, String)> = vec![
            ("safe.directory".into(), "*".into()),
            ("init.defaultBranch".into(), "main".into()),
            ("core.hooksPath".into(), "/dev/null".into()),
            ("protocol.file.allow".into(), "always".into()),
            ("http.lowSpeedLimit".into(), "1".into()),
            ("http.lowSpeedTime".into(), stalled_after),
        ];
        if let Some((url, token)) = remote {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{}", token.expose_secret()));
            config.push((format!("http.{}.extraheader", origin_of(url)), format!("AUTHORIZATION: basic {basic}")));
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", &self.author.name)
            .env("GIT_AUTHOR_EMAIL", &self.author.email)
            .env("GIT_COMMITTER_NAME", &self.author.name)
            .env("GIT_COMMITTER_EMAIL", &self.author.email)
            .env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (key, value)) in config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key).env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }

    /// Runs git and returns its stdout; the error carries git's stderr.
    async fn run(&self, dir: Option<&Path>, remote: Option<(&str, &SecretString)>, args: &[&str]) -> Result<String> {
        let output = self
            .command(dir, remote)
            .args(args)
            .output()
            .await
            .context("running git (is git installed on the worker?)")?;
        if !output.status.success() {
            bail!(
                "git {} failed ({}): {}",
                args.first().copied().unwrap_or_default(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `attempt` (a command that talks to the forge) again after a passing network failure,
    /// up to [`NETWORK_TRIES`] tries. Each try must be safe to repeat: a fetch is, and so is a
    /// push of the same commit (a push whose answer was lost finds the branch already there).
    async fn with_network_retries<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = NETWORK_RETRY_DELAY;
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(error) if tries < NETWORK_TRIES && is_passing_network_failure(&error) => {
                    tracing::warn!(what, error = format!("{error:#}"), ?delay, "git lost the forge; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    tries += 1;
                }
                done => return done,
            }
        }
    }

    /// Clones the mirror into `dest` and checks out `branch`; returns the base commit.
    pub async fn workspace_from_mirror(&self, mirror: &Path, branch: &str, dest: &Path) -> Result<String> {
        let (mirror_s, dest_s) = (path_str(mirror)?, path_str(dest)?);
        self.run(None, None, &["clone", "--quiet", "--local", "--branch", branch, mirror_s, dest_s])
            .await
            .with_context(|| format!("preparing a workspace at {branch}"))?;
        Ok(self.run(Some(dest), None, &["rev-parse", "HEAD"]).await?.trim().to_owned())
    }

    /// Brings a checkout made by [`Git::workspace_from_mirror`] to the mirror's newest `branch`,
    /// dropping whatever an earlier job left (changes, untracked and ignored files, commits);
    /// returns the base commit. Only files that differ are rewritten.
    pub async fn refresh_checkout(&self, dest: &Path, branch: &str) -> Result<String> {
        let remote_branch = format!("origin/{branch}");
        self.run(Some(dest), None, &["fetch", "--quiet", "--prune", "origin"])
            .await
            .context("refreshing a checkout")?;
        self.run(Some(dest), None, &["checkout", "--quiet", "--force", "-B", branch, &remote_branch])
            .await
            .context("checking out the base")?;
        self.run(Some(dest), None, &["clean", "--quiet", "-ffdx"]).await.context("cleaning a checkout")?;
        Ok(self.run(Some(dest), None, &["rev-parse", "HEAD"]).await?.trim().to_owned())
    }

    /// Commits everything the agent changed; `None` when it changed nothing.
    pub async fn commit_all(&self, workspace: &Path, message: &str) -> Result<Option<String>> {
        self.run(Some(workspace), None, &["add", "--all"]).await.context("staging the agent's changes")?;
        let staged = self.run(Some(workspace), None, &["diff", "--cached", "--name-only"]).await?;
        if staged.trim().is_empty() {
            return Ok(None);
        }
        self.run(Some(workspace), None, &["commit", "--quiet", "--no-verify", "-m", message])
            .await
            .context("committing the agent's changes")?;
        Ok(Some(self.run(Some(workspace), None, &["rev-parse", "HEAD"]).await?.trim().to_owned()))
    }

    /// `git diff --stat` from `base` to HEAD.
    pub async fn diffstat(&self, workspace: &Path, base: &str) -> Result<String> {
        self.run(Some(workspace), None, &["diff", "--stat", base, "HEAD"]).await
    }

    /// Pushes HEAD to `branch` on the remote, replacing what an earlier run of the same job
    /// pushed there (the branch is errand's own).
    pub async fn push(
        &self,
        workspace: &Path,
        clone_url: &str,
        token: Option<&SecretString>,
        branch: &str,
    ) -> Result<()> {
        self.push_refspec(workspace, clone_url, token, branch, &format!("+HEAD:refs/heads/{branch}")).await
    }

    /// Pushes HEAD to someone's branch (a pull request's head) only as a fast-forward: if the
    /// branch moved while the agent worked, the push is refused and nothing is overwritten.
    pub async fn push_fast_forward(
        &self,
        workspace: &Path,
        clone_url: &str,
        token: Option<&SecretString>,
        branch: &str,
    ) -> Result<()> {
        self.push_refspec(workspace, clone_url, token, branch, &format!("HEAD:refs/heads/{branch}")).await
    }

    async fn push_refspec(
        &self,
        workspace: &Path,
        clone_url: &str,
        token: Option<&SecretString>,
        branch: &str,
        refspec: &str,
    ) -> Result<()> {
        let remote = token.map(|t| (clone_url, t));
        let push = ["push", "--quiet", clone_url, refspec];
        self.with_network_retries("pushing", || self.run(Some(workspace), remote, &push))
            .await
            .with_context(|| format!("pushing {branch}"))?;
        Ok(())
    }
}

/// One bare mirror per repository under `root`; a lock per repository keeps two jobs from
/// fetching into the same mirror at once.
#[derive(Clone)]
pub struct MirrorCache {
    root: PathBuf,
    git: Git,
    locks: Arc<Mutex<HashMap<RepoName, Arc<tokio::sync::Mutex<()>>>>>,
}

impl MirrorCache {
    pub fn new(root: PathBuf, git: Git) -> Self {
        Self { root, git, locks: Arc::default() }
    }

    pub fn git(&self) -> &Git {
        &self.git
    }

    fn mirror_path(&self, repo: &RepoName) -> PathBuf {
        self.root.join(repo.owner()).join(format!("{}.git", repo.name()))
    }

    /// Brings the mirror of `repo` up to date (cloning it on first use) and returns its path.
    pub async fn sync(
        &self,
        repo: &RepoName,
        clone_url: &str,
        token: Option<&SecretString>,
    ) -> Result<(PathBuf, MirrorState)> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(repo.clone()).or_default().clone()
        };
        let _held = lock.lock().await;
        let path = self.mirror_path(repo);
        let remote = token.map(|t| (clone_url, t));
        if path.join("HEAD").exists() {
            let fetch = ["fetch", "--quiet", "--prune", clone_url, "+refs/heads/*:refs/heads/*"];
            self.git
                .with_network_retries("fetching", || self.git.run(Some(&path), remote, &fetch))
                .await
                .with_context(|| format!("fetching {repo} into its mirror"))?;
            return Ok((path, MirrorState::Fetched));
        }
        let partial = path.with_extension("git.partial");
        let partial_s = path_str(&partial)?;
        tokio::fs::create_dir_all(partial.parent().unwrap_or(&self.root))
            .await
            .context("creating the mirror directory")?;
        self.git
            .with_network_retries("cloning", || async {
                // What a failed try left behind would make the next one refuse to start.
                let _ = tokio::fs::remove_dir_all(&partial).await;
                self.git.run(None, remote, &["clone", "--quiet", "--bare", clone_url, partial_s]).await
            })
            .await
            .with_context(|| format!("cloning {repo}"))?;
        tokio::fs::rename(&partial, &path).await.context("moving the new mirror in place")?;
        Ok((path, MirrorState::Cloned))
    }
}

/// Whether git failed because the forge stalled or the connection broke (see
/// [`PASSING_NETWORK_FAILURES`]).
fn is_passing_network_failure(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    PASSING_NETWORK_FAILURES.iter().any(|sign| text.contains(sign))
}

/// `scheme://host[:port]` of a URL, which is what git's `http.<url>.*` settings match on.
fn origin_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find('/').map_or(url.len(), |j| i + 3 + j);
            &url[..end]
        }
        None => url,
    }
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().with_context(|| format!("path {} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn the_auth_header_is_scoped_to_the_remote_origin() {
        assert_eq!(origin_of("https://github.com/acme/app.git"), "https://github.com");
        assert_eq!(origin_of("https://ghe.local:8443/acme/app.git"), "https://ghe.local:8443");
        assert_eq!(origin_of("file:///srv/git/acme/app.git"), "file://");
    }
}
