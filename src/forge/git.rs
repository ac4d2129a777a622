//! git on the worker: a mirror per repository (a warm start fetches, never re-clones), checkouts
//! that borrow the mirror's objects, commits with errand's own identity, and pushes whose token
//! travels in the environment, never in argv, a URL or a file.
//!
//! A checkout's git directory lives outside its work tree and outside every sandbox mount, and
//! every command names it: git never runs on anything a sandbox can write, and never with
//! configuration a repository or a sandbox wrote (see [`HARDENED_CONFIG`]).

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
use crate::secrets::Redactor;

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
/// [`Git::with_network_timeout`] says otherwise; also the default of `ERRAND_GITHUB_TIMEOUT`, which
/// the worker passes there.
pub const DEFAULT_NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A checkout as errand's git sees it: errand's own git directory, which no sandbox ever sees,
/// and the work tree it describes (mounted into sandboxes at /workspace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutDirs {
    pub git_dir: PathBuf,
    pub work_tree: PathBuf,
}

/// Where a git command runs. errand's git always names its repository (`GIT_DIR`, and
/// `GIT_WORK_TREE` for a checkout) and never discovers one, so no `.git` in a work tree is ever
/// read: whatever a sandbox wrote there (config, hooks, a `.git` file pointing elsewhere) is
/// not git's configuration.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    /// No repository yet (a clone).
    Nowhere,
    /// A bare repository: a mirror.
    Bare(&'a Path),
    /// A checkout.
    Checkout(&'a CheckoutDirs),
}

/// Configuration every git command errand runs gets on its command line (which outranks the
/// repository's): nothing that executes a program is taken from anywhere else, and repository
/// features that run code or reach into other repositories are off.
const HARDENED_CONFIG: [(&str, &str); 20] = [
    ("init.defaultBranch", "main"),
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.untrackedCache", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("core.askPass", ""),
    // An empty value empties the list of helpers.
    ("credential.helper", ""),
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.http.allow", "always"),
    // The mirror is a local repository; tests serve their forge from files too.
    ("protocol.file.allow", "always"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("advice.detachedHead", "false"),
];

/// Runs git with a configuration of errand's own.
#[derive(Debug, Clone)]
pub struct Git {
    author: CommitAuthor,
    network_timeout: Duration,
    /// Commit messages pass it before they are pushed.
    redactor: Redactor,
    /// `GIT_*` variables of errand's own environment, removed from every git command: git takes
    /// repositories, configuration and programs from them.
    inherited_git_vars: Arc<Vec<std::ffi::OsString>>,
}

impl Git {
    pub fn new(author: CommitAuthor) -> Self {
        let inherited_git_vars = std::env::vars_os()
            .map(|(name, _)| name)
            .filter(|name| name.to_string_lossy().starts_with("GIT_"))
            .collect();
        Self {
            author,
            network_timeout: DEFAULT_NETWORK_TIMEOUT,
            redactor: Redactor::default(),
            inherited_git_vars: Arc::new(inherited_git_vars),
        }
    }

    /// A fetch or push over HTTP that receives nothing from the forge for `timeout` is given up
    /// (and tried again, see [`NETWORK_TRIES`]); git counts it in whole seconds.
    pub fn with_network_timeout(self, timeout: Duration) -> Self {
        Self { network_timeout: timeout, ..self }
    }

    /// Redacts commit messages with `redactor` (they are pushed, so they leave errand).
    pub fn with_redactor(self, redactor: Redactor) -> Self {
        Self { redactor, ..self }
    }

    /// The redactor commit messages pass; its known secrets are what a change must not hold.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// A git command on `at` that ignores system and user configuration and errand's own `GIT_*`
    /// variables, never prompts, runs nothing a repository configures, and (when a token is
    /// given) authenticates to the remote's host through an extra header set in the environment.
    fn command(&self, at: At<'_>, remote: Option<(&str, &SecretString)>) -> Command {
        let mut cmd = Command::new("git");
        for name in self.inherited_git_vars.iter() {
            cmd.env_remove(name);
        }
        cmd.env_remove("SSH_ASKPASS");
        match at {
            At::Nowhere => {}
            At::Bare(dir) => {
                cmd.current_dir(dir).env("GIT_DIR", dir);
            }
            At::Checkout(dirs) => {
                cmd.current_dir(&dirs.work_tree).env("GIT_DIR", &dirs.git_dir).env("GIT_WORK_TREE", &dirs.work_tree);
            }
        }
        // Under one byte a second for the whole time-out is a stalled transfer.
        let stalled_after = self.network_timeout.as_secs_f64().ceil().max(1.0).to_string();
        let mut config: Vec<(String, String)> =
            HARDENED_CONFIG.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        config.push(("http.lowSpeedLimit".into(), "1".into()));
        config.push(("http.lowSpeedTime".into(), stalled_after));
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
    async fn run(&self, at: At<'_>, remote: Option<(&str, &SecretString)>, args: &[&str]) -> Result<String> {
        let output = self
            .command(at, remote)
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

    /// Makes a checkout of the mirror's `branch` at `dirs` (both directories new); returns the
    /// base commit. The git directory borrows the mirror's objects (git's alternates) instead of
    /// copying or hard-linking them: nothing of the mirror is writable through a checkout.
    pub async fn create_checkout(&self, mirror: &Path, branch: &str, dirs: &CheckoutDirs) -> Result<String> {
        let git_dir = path_str(&dirs.git_dir)?;
        self.run(At::Nowhere, None, &["init", "--quiet", "--bare", git_dir]).await.context("creating a checkout")?;
        let alternates = dirs.git_dir.join("objects").join("info").join("alternates");
        let mirror_objects = std::path::absolute(mirror.join("objects")).context("locating the mirror's objects")?;
        tokio::fs::write(&alternates, format!("{}\n", path_str(&mirror_objects)?))
            .await
            .context("pointing a checkout at the mirror's objects")?;
        tokio::fs::create_dir_all(&dirs.work_tree).await.context("creating a work tree")?;
        self.refresh_checkout(mirror, dirs, branch).await.with_context(|| format!("preparing a workspace at {branch}"))
    }

    /// Brings a checkout to the mirror's newest `branch` from errand's own git state, dropping
    /// whatever an earlier job left in the work tree (changes, untracked and ignored files,
    /// commits); returns the base commit. Only files that differ are rewritten. The caller has
    /// removed every `.git` the sandbox could have left in the tree
    /// (see `rollout::checkouts`).
    pub async fn refresh_checkout(&self, mirror: &Path, dirs: &CheckoutDirs, branch: &str) -> Result<String> {
        let at = At::Checkout(dirs);
        let remote_branch = format!("refs/remotes/origin/{branch}");
        let refspec = format!("+refs/heads/{branch}:{remote_branch}");
        let fetch = ["fetch", "--quiet", "--no-tags", "--no-recurse-submodules", path_str(mirror)?, &refspec];
        self.run(at, None, &fetch).await.context("fetching the base into a checkout")?;
        self.run(
            at,
            None,
            &["checkout", "--quiet", "--force", "--no-recurse-submodules", "-B", branch, &remote_branch],
        )
        .await
        .context("checking out the base")?;
        self.run(at, None, &["clean", "--quiet", "-ffdx"]).await.context("cleaning a checkout")?;
        Ok(self.run(at, None, &["rev-parse", "HEAD"]).await?.trim().to_owned())
    }

    /// Commits everything in the work tree (redacting `message`); `None` when nothing changed.
    pub async fn commit_all(&self, dirs: &CheckoutDirs, message: &str) -> Result<Option<String>> {
        let at = At::Checkout(dirs);
        self.run(at, None, &["add", "--all"]).await.context("staging the agent's changes")?;
        let staged = self.run(at, None, &["diff", "--cached", "--name-only", "--no-ext-diff"]).await?;
        if staged.trim().is_empty() {
            return Ok(None);
        }
        let message = self.redactor.redact(message);
        self.run(at, None, &["commit", "--quiet", "--no-verify", "-m", &message])
            .await
            .context("committing the agent's changes")?;
        Ok(Some(self.run(at, None, &["rev-parse", "HEAD"]).await?.trim().to_owned()))
    }

    /// `git diff --stat` from `base` to HEAD.
    pub async fn diffstat(&self, dirs: &CheckoutDirs, base: &str) -> Result<String> {
        self.run(At::Checkout(dirs), None, &["diff", "--stat", "--no-ext-diff", "--no-textconv", base, "HEAD"]).await
    }

    /// The files that HEAD adds or changes since `base` whose contents (or names) hold a secret
    /// this process knows: such a change is never pushed. Reads git's objects, not the work tree.
    pub async fn files_with_secrets(&self, dirs: &CheckoutDirs, base: &str) -> Result<Vec<String>> {
        let at = At::Checkout(dirs);
        let raw = self
            .run(at, None, &["diff", "--raw", "-z", "--no-renames", "--no-abbrev", "--no-ext-diff", base, "HEAD"])
            .await
            .context("listing the change")?;
        let changed = new_blobs(&raw);
        let mut found: Vec<String> = changed
            .iter()
            .filter(|(_, path)| self.redactor.find_known(path.as_bytes()))
            .map(|(_, p)| p.clone())
            .collect();
        if !changed.is_empty() {
            let with_secrets = self.blobs_with_secrets(at, &changed).await.context("reading the change")?;
            for path in with_secrets {
                if !found.contains(&path) {
                    found.push(path);
                }
            }
        }
        Ok(found)
    }

    /// Streams `blobs` through `git cat-file --batch` and returns the paths whose contents hold a
    /// known secret.
    async fn blobs_with_secrets(&self, at: At<'_>, blobs: &[(String, String)]) -> Result<Vec<String>> {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        let mut child = self
            .command(at, None)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .spawn()
            .context("running git")?;
        let mut stdin = child.stdin.take().context("git's stdin")?;
        let ids: String = blobs.iter().map(|(id, _)| format!("{id}\n")).collect();
        let feed = tokio::spawn(async move {
            let written = stdin.write_all(ids.as_bytes()).await;
            drop(stdin);
            written
        });
        let mut out = tokio::io::BufReader::new(child.stdout.take().context("git's stdout")?);
        let mut found = Vec::new();
        let mut header = String::new();
        let mut content = Vec::new();
        for (_, path) in blobs {
            header.clear();
            out.read_line(&mut header).await?;
            let size: u64 = match header.trim_end().rsplit_once(' ') {
                Some((_, size)) if header.contains(" blob ") => size.parse().context("reading git's object size")?,
                _ => bail!("git could not read an object of the change: {}", header.trim_end()),
            };
            content.clear();
            (&mut out).take(size + 1).read_to_end(&mut content).await?;
            if self.redactor.find_known(&content) {
                found.push(path.clone());
            }
        }
        feed.await.context("feeding git")??;
        let status = child.wait().await?;
        if !status.success() {
            bail!("git cat-file failed ({status})");
        }
        Ok(found)
    }

    /// Pushes HEAD to `branch` on the remote, replacing what an earlier run of the same job
    /// pushed there (the branch is errand's own).
    pub async fn push(
        &self,
        dirs: &CheckoutDirs,
        clone_url: &str,
        token: Option<&SecretString>,
        branch: &str,
    ) -> Result<()> {
        self.push_refspec(dirs, clone_url, token, branch, &format!("+HEAD:refs/heads/{branch}")).await
    }

    /// Pushes HEAD to someone's branch (a pull request's head) only as a fast-forward: if the
    /// branch moved while the agent worked, the push is refused and nothing is overwritten.
    pub async fn push_fast_forward(
        &self,
        dirs: &CheckoutDirs,
        clone_url: &str,
        token: Option<&SecretString>,
        branch: &str,
    ) -> Result<()> {
        self.push_refspec(dirs, clone_url, token, branch, &format!("HEAD:refs/heads/{branch}")).await
    }

    async fn push_refspec(
        &self,
        dirs: &CheckoutDirs,
        clone_url: &str,
        token: Option<&SecretString>,
        branch: &str,
        refspec: &str,
    ) -> Result<()> {
        let remote = token.map(|t| (clone_url, t));
        let push = ["push", "--quiet", "--no-verify", "--no-recurse-submodules", clone_url, refspec];
        self.with_network_retries("pushing", || self.run(At::Checkout(dirs), remote, &push))
            .await
            .with_context(|| format!("pushing {branch}"))?;
        Ok(())
    }
}

/// The blobs a `git diff --raw -z` adds or changes, with their paths: `(object id, path)`.
fn new_blobs(raw: &str) -> Vec<(String, String)> {
    let mut fields = raw.split('\0');
    let mut blobs = Vec::new();
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        // `:old_mode new_mode old_id new_id status`
        let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let (Some(new_mode), Some(new_id), Some(status)) = (parts.get(1), parts.get(3), parts.get(4)) else {
            continue;
        };
        // Deleted files and submodule links hold nothing to push.
        let holds_content = !status.starts_with('D') && *new_mode != "160000";
        if holds_content && new_id.bytes().any(|b| b != b'0') {
            blobs.push(((*new_id).to_owned(), path.to_owned()));
        }
    }
    blobs
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
                .with_network_retries("fetching", || self.git.run(At::Bare(&path), remote, &fetch))
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
                self.git.run(At::Nowhere, remote, &["clone", "--quiet", "--bare", clone_url, partial_s]).await
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
