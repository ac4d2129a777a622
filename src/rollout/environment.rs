//! Environments: a repository's setup runs once, in one container that becomes an image, and
//! later attempts start every step from that image, without running setup, while it is fresh.
//!
//! The image is named `errand-env:<key>`; the key is a hash of everything setup's result depends
//! on: the repository, the base image's id, the sandbox uid, the setup commands, whether setup
//! had the network, and the contents of the `depends_on` files in the checkout. An image older
//! than the worker's `ERRAND_ENV_CACHE_TTL` is built again and replaces it.
//!
//! Workers on one engine may build the same key at once: the name goes to the last one (last
//! writer wins), and every attempt runs its steps from the image it built or found, by id. Each
//! attempt holds that image by a name of its own, `errand-env-hold:<key>-<random>`, until it ends.
//! A build that takes `errand-env:<key>` over deletes the image it displaced only when nothing
//! holds it, and a hold's release deletes the image with its last name, so no image disappears
//! under an attempt's steps and none is left behind. Holds are taken through the name
//! `errand-env:<key>` (not an id), so a build cannot delete an image between a look and a hold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest as _, Sha256};

use super::{CheckResult, RolloutAbort, RolloutError, Steps, skipped_for_time};
use crate::config::SetupConfig;
use crate::job::{JobId, RepoName};
use crate::sandbox::{ImageInfo, NetworkAccess, Sandbox, SandboxError, SetupSpec};

/// The repository of cached environment images: `errand-env:<key>`.
pub const ENV_REPOSITORY: &str = "errand-env";
/// The repository of the names by which running attempts hold their environment image.
pub const HOLD_REPOSITORY: &str = "errand-env-hold";
/// Every environment image carries `errand.env=1`, so `docker image prune --filter
/// label=errand.env=1` finds them.
pub const LABEL_ENV: &str = "errand.env";
pub const LABEL_ENV_KEY: &str = "errand.env.key";
pub const LABEL_ENV_REPO: &str = "errand.env.repo";
/// When the image was built (RFC 3339, UTC): its age decides whether it is still fresh.
pub const LABEL_ENV_CREATED: &str = "errand.env.created";
/// `$HOME` of setup and of every step started from an environment: a directory of the sandbox
/// user's in the image, so what setup installs there (`pip install --user`, `cargo fetch`, `go
/// mod download`, tools in `~/.local/bin`) is kept. Steps without an environment have `/tmp`.
pub const ENV_HOME: &str = "/home/errand";
/// The hex digits of the key kept in the image's name.
const KEY_LENGTH: usize = 24;

/// Where an attempt's steps started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentState {
    /// No setup: every step started from the repository's image.
    None,
    /// Setup ran in this attempt; `kept` when the image was kept for later attempts.
    Built { key: String, kept: bool },
    /// A kept environment was fresh: setup did not run.
    Cached { key: String, age: Duration },
}

impl EnvironmentState {
    /// The line the pull request's Testing section carries about the environment (empty
    /// without setup).
    pub fn testing_note(&self) -> String {
        match self {
            EnvironmentState::None => String::new(),
            EnvironmentState::Built { key, kept: true } => {
                format!("**Environment**: set up in this run and kept for later runs (`{ENV_REPOSITORY}:{key}`).\n\n")
            }
            EnvironmentState::Built { kept: false, .. } => {
                "**Environment**: set up in this run (this worker keeps no environments).\n\n".to_owned()
            }
            EnvironmentState::Cached { key, age } => format!(
                "**Environment**: reused from a setup run {} ago (`{ENV_REPOSITORY}:{key}`); setup did not run again.\n\n",
                rough(*age)
            ),
        }
    }

    /// For the job log.
    pub fn describe(&self) -> String {
        match self {
            EnvironmentState::None => "no setup".to_owned(),
            EnvironmentState::Built { key, kept } => format!("built {key} (kept: {kept})"),
            EnvironmentState::Cached { key, age } => format!("cached {key}, {} old", rough(*age)),
        }
    }
}

/// An age as people say it: `3 min`, `2 h 5 min`, `less than a minute`.
fn rough(age: Duration) -> String {
    let minutes = age.as_secs() / 60;
    match minutes {
        0 => "less than a minute".to_owned(),
        1..60 => format!("{minutes} min"),
        _ if minutes.is_multiple_of(60) => format!("{} h", minutes / 60),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

/// The image an attempt's steps start from, held until [`Environment::release`] (or drop).
#[derive(Debug)]
pub(super) struct Environment {
    /// The image's id.
    pub image: String,
    pub state: EnvironmentState,
    /// The setup commands as they ran (none when the environment was cached).
    pub setup: Vec<CheckResult>,
    hold: Hold,
}

impl Environment {
    pub async fn release(self) {
        self.hold.release().await;
    }
}

/// What preparing the environment came to.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per attempt, returned once and taken apart at once: a box would only add an allocation"
)]
pub(super) enum Prepared {
    Ready(Environment),
    /// A setup command failed (or the time ran out): what ran, the failing one last.
    SetupFailed(Vec<CheckResult>),
}

/// Finds a fresh environment for the attempt, or runs setup to build one (and keeps it when
/// `ttl` is not zero).
pub(super) async fn prepare(steps: &Steps<'_>, ttl: Duration) -> Result<Prepared, RolloutError> {
    let sandbox = &steps.rollout.sandbox;
    let plan = steps.plan;
    let setup = &plan.config.setup;
    let base = sandbox
        .inspect_image(&steps.image)
        .await
        .map_err(RolloutError::Transient)?
        .ok_or_else(|| RolloutError::Abort(RolloutAbort::ImageMissing { image: steps.image.clone() }))?;
    let files =
        digest_depends_on(steps.workspace.repo_dir(), setup.depends_on()).await.map_err(RolloutError::Transient)?;
    let key = environment_key(&KeyInputs {
        repo: &plan.job.repo,
        base_image: &base.id,
        sandbox_uid: steps.rollout.settings.sandbox_uid,
        setup,
        files: &files,
    });
    let hold_tag = format!("{key}-{}", JobId::generate().short());
    if !ttl.is_zero()
        && let Some(cached) = cached(sandbox, &key, &hold_tag, ttl).await.map_err(RolloutError::Transient)?
    {
        return Ok(Prepared::Ready(cached));
    }
    build(steps, key, hold_tag, ttl).await
}

/// The environment kept under `key`, when it is younger than `ttl`; held under `hold_tag` while
/// the attempt uses it. A stale one goes once nothing holds it.
async fn cached(sandbox: &Sandbox, key: &str, hold_tag: &str, ttl: Duration) -> anyhow::Result<Option<Environment>> {
    let name = format!("{ENV_REPOSITORY}:{key}");
    if !sandbox.tag_image(&name, HOLD_REPOSITORY, hold_tag).await? {
        return Ok(None);
    }
    let hold_name = format!("{HOLD_REPOSITORY}:{hold_tag}");
    let hold = Hold::new(sandbox, &hold_name);
    let found = sandbox.inspect_image(&hold_name).await?;
    match found.as_ref().and_then(|info| fresh_age(info, key, ttl, Utc::now())) {
        Some(age) => {
            let image = found.map(|info| info.id).unwrap_or_default();
            let state = EnvironmentState::Cached { key: key.to_owned(), age };
            Ok(Some(Environment { image, state, setup: Vec::new(), hold }))
        }
        None => {
            hold.release().await;
            Ok(None)
        }
    }
}

/// Runs setup in one container and commits it as the environment (kept under `key` unless `ttl`
/// is zero); a setup command that fails ends the attempt.
async fn build(steps: &Steps<'_>, key: String, hold_tag: String, ttl: Duration) -> Result<Prepared, RolloutError> {
    let (sandbox, plan) = (&steps.rollout.sandbox, steps.plan);
    let setup = &plan.config.setup;
    let remaining = steps.deadline.saturating_duration_since(tokio::time::Instant::now());
    let Some(first) = setup.commands.first() else {
        let refused =
            RolloutAbort::SandboxRefused { step: "setup".to_owned(), detail: "it has no commands".to_owned() };
        return Err(RolloutError::Abort(refused));
    };
    if remaining.is_zero() {
        return Ok(Prepared::SetupFailed(vec![CheckResult::from_report("setup 1", first, skipped_for_time())]));
    }
    let hold_name = format!("{HOLD_REPOSITORY}:{hold_tag}");
    let spec = setup_spec(steps, &key, hold_tag, remaining);
    let output = match sandbox.run_setup(&spec, steps.cancel).await {
        Ok(output) => output,
        Err(SandboxError::ImageMissing { image }) => {
            return Err(RolloutError::Abort(RolloutAbort::ImageMissing { image }));
        }
        Err(e) => {
            let refused = RolloutAbort::SandboxRefused { step: "setup".to_owned(), detail: e.to_string() };
            return Err(RolloutError::Abort(refused));
        }
    };
    tracing::info!(job = %plan.job.id, key, commands = output.commands.len(), built = output.image.is_some(), "setup finished");
    let results: Vec<CheckResult> = output
        .commands
        .into_iter()
        .zip(&setup.commands)
        .enumerate()
        .map(|(i, (report, command))| CheckResult::from_report(&format!("setup {}", i + 1), command, report))
        .collect();
    let Some(image) = output.image else {
        return Ok(Prepared::SetupFailed(results));
    };
    let hold = Hold::new(sandbox, &hold_name);
    let kept = !ttl.is_zero();
    if kept {
        keep(sandbox, &image, &key).await.map_err(RolloutError::Transient)?;
    }
    Ok(Prepared::Ready(Environment { image, state: EnvironmentState::Built { key, kept }, setup: results, hold }))
}

/// The setup container: the attempt's step container, idling while each command runs in it.
fn setup_spec(steps: &Steps<'_>, key: &str, hold_tag: String, remaining: Duration) -> SetupSpec {
    let (plan, setup) = (steps.plan, &steps.plan.config.setup);
    let env = vec![("ERRAND_REPO".to_owned(), plan.job.repo.to_string()), ("HOME".to_owned(), ENV_HOME.to_owned())];
    let network = if setup.network { NetworkAccess::Open } else { NetworkAccess::None };
    let labels = HashMap::from([
        (LABEL_ENV.to_owned(), "1".to_owned()),
        (LABEL_ENV_KEY.to_owned(), key.to_owned()),
        (LABEL_ENV_REPO.to_owned(), plan.job.repo.to_string()),
        (LABEL_ENV_CREATED.to_owned(), Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
    ]);
    SetupSpec {
        container: steps.spec(&steps.step_name("setup"), "", env, network, remaining),
        commands: setup.commands.clone(),
        home: ENV_HOME.to_owned(),
        repository: HOLD_REPOSITORY.to_owned(),
        tag: hold_tag,
        labels,
    }
}

/// Names the freshly built `image` `errand-env:<key>` for later attempts, and deletes the image
/// that had the name unless an attempt still holds it (then its last hold deletes it).
async fn keep(sandbox: &Sandbox, image: &str, key: &str) -> anyhow::Result<()> {
    let name = format!("{ENV_REPOSITORY}:{key}");
    let displaced = sandbox.inspect_image(&name).await?.map(|info| info.id).filter(|id| id != image);
    sandbox.tag_image(image, ENV_REPOSITORY, key).await?;
    if let Some(old) = displaced
        && sandbox.inspect_image(&old).await?.is_some_and(|info| info.tags.is_empty())
    {
        sandbox.remove_image(&old).await?;
    }
    Ok(())
}

/// The age of a kept environment if it is `key`'s and younger than `ttl`.
fn fresh_age(info: &ImageInfo, key: &str, ttl: Duration, now: DateTime<Utc>) -> Option<Duration> {
    if info.labels.get(LABEL_ENV_KEY).map(String::as_str) != Some(key) {
        return None;
    }
    let created = DateTime::parse_from_rfc3339(info.labels.get(LABEL_ENV_CREATED)?).ok()?;
    // A clock that went back makes an image from the future: as new as can be.
    let age = (now - created.with_timezone(&Utc)).to_std().unwrap_or(Duration::ZERO);
    (age <= ttl).then_some(age)
}

/// An attempt's own name for its environment image (see the module's documentation).
#[derive(Debug)]
struct Hold {
    sandbox: Sandbox,
    name: Option<String>,
}

impl Hold {
    fn new(sandbox: &Sandbox, name: &str) -> Self {
        Self { sandbox: sandbox.clone(), name: Some(name.to_owned()) }
    }

    async fn release(mut self) {
        if let Some(name) = self.name.take() {
            release(&self.sandbox, &name).await;
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let sandbox = self.sandbox.clone();
                runtime.spawn(async move { release(&sandbox, &name).await });
            }
            Err(_) => tracing::warn!(image = %name, "no runtime left to release an environment image"),
        }
    }
}

async fn release(sandbox: &Sandbox, name: &str) {
    if let Err(error) = sandbox.remove_image(name).await {
        tracing::warn!(image = %name, error = format!("{error:#}"), "could not release an environment image");
    }
}

/// What setup's result depends on.
struct KeyInputs<'a> {
    repo: &'a RepoName,
    base_image: &'a str,
    sandbox_uid: u32,
    setup: &'a SetupConfig,
    /// Each `depends_on` entry with what it matched: (path, digest of its contents).
    files: &'a [(String, Vec<(String, String)>)],
}

/// The environment's key: a truncated SHA-256 of its inputs, each one length-prefixed so that no
/// two different inputs read the same.
fn environment_key(inputs: &KeyInputs<'_>) -> String {
    let mut hash = Sha256::new();
    let mut put = |part: &str| {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    };
    // The layout of the image itself (where $HOME is): a new layout is a new environment.
    put("errand-env/1");
    put(ENV_HOME);
    put(&inputs.repo.to_string());
    put(inputs.base_image);
    put(&inputs.sandbox_uid.to_string());
    put(if inputs.setup.network { "network" } else { "no network" });
    put(&inputs.setup.commands.len().to_string());
    for command in &inputs.setup.commands {
        put(command);
    }
    for (pattern, matches) in inputs.files {
        put(pattern);
        put(&matches.len().to_string());
        for (path, digest) in matches {
            put(path);
            put(digest);
        }
    }
    let digest = hex::encode(hash.finalize());
    digest[..KEY_LENGTH].to_owned()
}

/// Each `depends_on` entry of the checkout at `root` with what it matched, each path with the
/// digest of its contents. An entry is a file, a directory (every file below it), or a pattern
/// with `*` and `?` in its last part; nothing outside the checkout is read (symbolic links count
/// by their target's name, and `.git` is left out).
async fn digest_depends_on(root: &Path, entries: Vec<String>) -> anyhow::Result<Vec<(String, Vec<(String, String)>)>> {
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || {
        let root = root.canonicalize().with_context(|| format!("resolving the checkout {}", root.display()))?;
        entries
            .into_iter()
            .map(|entry| {
                let matches = matches_of(&root, entry.trim_end_matches('/'))?;
                Ok((entry, matches))
            })
            .collect()
    })
    .await
    .context("hashing the files setup depends on")?
}

fn matches_of(root: &Path, entry: &str) -> anyhow::Result<Vec<(String, String)>> {
    let (dir, name) = entry.rsplit_once('/').unwrap_or(("", entry));
    let mut found = Vec::new();
    if !name.contains(['*', '?']) {
        digest_path(root, Path::new(entry), &mut found)?;
        return Ok(found);
    }
    // The directory listed must itself be inside the checkout.
    let Some(dir_path) = root.join(dir).canonicalize().ok().filter(|d| d.starts_with(root)) else { return Ok(found) };
    let Ok(listing) = std::fs::read_dir(&dir_path) else { return Ok(found) };
    let mut names: Vec<String> = listing
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".git" && wildcard_match(name, n))
        .collect();
    names.sort();
    for matched in names {
        digest_path(root, &Path::new(dir).join(matched), &mut found)?;
    }
    Ok(found)
}

/// `relative` under `root`, when its parent directory really is inside `root` (no symbolic
/// link leads out).
fn inside(root: &Path, relative: &Path) -> Option<PathBuf> {
    let path = root.join(relative);
    let parent = path.parent()?.canonicalize().ok()?;
    parent.starts_with(root).then_some(path)
}

/// Adds `relative` (a file, a symbolic link, or every file below a directory) with its digest.
fn digest_path(root: &Path, relative: &Path, found: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    let name = relative.to_string_lossy().into_owned();
    let Some(path) = inside(root, relative) else {
        found.push((name, "outside the checkout".to_owned()));
        return Ok(());
    };
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        found.push((name, "absent".to_owned()));
        return Ok(());
    };
    if meta.is_dir() {
        let mut files = Vec::new();
        for entry in
            walkdir::WalkDir::new(&path).sort_by_file_name().into_iter().filter_entry(|e| e.file_name() != ".git")
        {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            if !entry.file_type().is_dir() {
                let below = entry.path().strip_prefix(root).unwrap_or(entry.path()).to_string_lossy().into_owned();
                files.push((below, digest_entry(entry.path(), entry.file_type().is_symlink())?));
            }
        }
        found.extend(files);
    } else {
        found.push((name, digest_entry(&path, meta.file_type().is_symlink())?));
    }
    Ok(())
}

fn digest_entry(path: &Path, symlink: bool) -> anyhow::Result<String> {
    if symlink {
        let target = std::fs::read_link(path).with_context(|| format!("reading the link {}", path.display()))?;
        return Ok(format!("link to {}", target.to_string_lossy()));
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Whether `name` matches `pattern`, where `*` stands for any characters and `?` for one.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // The classic greedy match with one backtracking point: the last `*`.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(commands: &[&str], network: bool) -> SetupConfig {
        SetupConfig { commands: commands.iter().map(|c| (*c).to_owned()).collect(), network, depends_on: None }
    }

    fn key(repo: &str, base: &str, setup: &SetupConfig, files: &[(String, Vec<(String, String)>)]) -> String {
        let (owner, name) = repo.split_once('/').expect("owner/name");
        let repo = RepoName::new(owner, name).expect("a repository name");
        environment_key(&KeyInputs { repo: &repo, base_image: base, sandbox_uid: 10001, setup, files })
    }

    #[test]
    fn the_key_changes_with_every_input_and_only_with_them() {
        let deps = setup(&["make deps"], false);
        let lock = |digest: &str| vec![("Cargo.lock".to_owned(), vec![("Cargo.lock".to_owned(), digest.to_owned())])];
        let base = key("acme/app", "sha256:1", &deps, &lock("aa"));
        assert_eq!(base.len(), KEY_LENGTH);
        assert_eq!(base, key("acme/app", "sha256:1", &deps, &lock("aa")), "the same inputs, the same key");
        for other in [
            key("acme/other", "sha256:1", &deps, &lock("aa")),
            key("acme/app", "sha256:2", &deps, &lock("aa")),
            key("acme/app", "sha256:1", &setup(&["make deps", "make tools"], false), &lock("aa")),
            key("acme/app", "sha256:1", &setup(&["make deps"], true), &lock("aa")),
            key("acme/app", "sha256:1", &deps, &lock("bb")),
            key("acme/app", "sha256:1", &deps, &[]),
        ] {
            assert_ne!(base, other);
        }
        // Commands are not simply concatenated.
        assert_ne!(
            key("a/b", "i", &setup(&["ab", "c"], false), &[]),
            key("a/b", "i", &setup(&["a", "bc"], false), &[])
        );
    }

    #[tokio::test]
    async fn depends_on_reads_the_lock_files_present_and_nothing_outside_the_checkout() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path();
        for (file, content) in [
            ("Cargo.lock", "v1"),
            ("requirements.txt", "flask"),
            ("requirements-dev.txt", "pytest"),
            ("README.md", "not a dependency"),
            ("tools/a.sh", "echo a"),
            ("tools/.git/HEAD", "ignored"),
        ] {
            std::fs::create_dir_all(root.join(file).parent().expect("a parent")).expect("mkdir");
            std::fs::write(root.join(file), content).expect("write");
        }
        std::os::unix::fs::symlink("/etc/passwd", root.join("go.sum")).expect("a symlink");
        let defaults = SetupConfig::default().depends_on();
        let files = digest_depends_on(root, defaults).await.expect("hashed");
        let matched: Vec<&str> = files.iter().flat_map(|(_, m)| m.iter().map(|(p, _)| p.as_str())).collect();
        assert_eq!(
            matched,
            [
                "Cargo.lock",
                "package-lock.json",
                "pnpm-lock.yaml",
                "yarn.lock",
                "poetry.lock",
                "requirements-dev.txt",
                "requirements.txt",
                "go.sum",
                "uv.lock"
            ]
        );
        let digest_of = |path: &str| {
            files.iter().flat_map(|(_, m)| m.iter()).find(|(p, _)| p == path).map(|(_, d)| d.clone()).expect(path)
        };
        assert_eq!(digest_of("yarn.lock"), "absent");
        assert_eq!(digest_of("go.sum"), "link to /etc/passwd", "a link is not followed");
        assert_eq!(digest_of("Cargo.lock"), hex::encode(Sha256::digest(b"v1")));

        let tools = digest_depends_on(root, vec!["tools/".to_owned()]).await.expect("hashed");
        assert_eq!(tools[0].1.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["tools/a.sh"]);

        std::os::unix::fs::symlink("/etc", root.join("etc")).expect("a symlink");
        let escape = digest_depends_on(root, vec!["etc/passwd".to_owned()]).await.expect("hashed");
        assert_eq!(escape[0].1, [("etc/passwd".to_owned(), "outside the checkout".to_owned())]);
    }

    #[test]
    fn an_environment_is_fresh_until_the_ttl_and_only_for_its_key() {
        let now = Utc::now();
        let image = |key: &str, created: DateTime<Utc>| ImageInfo {
            id: "sha256:e".into(),
            labels: HashMap::from([
                (LABEL_ENV_KEY.to_owned(), key.to_owned()),
                (LABEL_ENV_CREATED.to_owned(), created.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ]),
            tags: Vec::new(),
        };
        let hours = |h: i64| chrono::Duration::hours(h);
        let ttl = Duration::from_secs(12 * 3600);
        let age = fresh_age(&image("k", now - hours(2)), "k", ttl, now).expect("fresh");
        // The label keeps milliseconds.
        assert!(age >= Duration::from_secs(7200) && age < Duration::from_secs(7201), "{age:?}");
        assert_eq!(fresh_age(&image("k", now - hours(13)), "k", ttl, now), None, "stale");
        assert_eq!(fresh_age(&image("other", now), "k", ttl, now), None, "another key's");
        assert_eq!(fresh_age(&image("k", now + hours(1)), "k", ttl, now), Some(Duration::ZERO));
        let unlabelled = ImageInfo { labels: HashMap::new(), ..image("k", now) };
        assert_eq!(fresh_age(&unlabelled, "k", ttl, now), None);
    }

    #[test]
    fn patterns_match_like_a_shell() {
        assert!(wildcard_match("requirements*.txt", "requirements.txt"));
        assert!(wildcard_match("requirements*.txt", "requirements-dev.txt"));
        assert!(!wildcard_match("requirements*.txt", "requirements.txt.bak"));
        assert!(wildcard_match("go.su?", "go.sum"));
        assert!(wildcard_match("*", "anything"));
        assert!(!wildcard_match("*.lock", "Cargo.toml"));
    }

    #[test]
    fn the_testing_note_says_whether_setup_ran() {
        let key = "0123456789abcdef01234567".to_owned();
        assert_eq!(EnvironmentState::None.testing_note(), "");
        let built = EnvironmentState::Built { key: key.clone(), kept: true }.testing_note();
        assert!(built.contains("set up in this run and kept") && built.contains("errand-env:0123"), "{built}");
        let cached = EnvironmentState::Cached { key, age: Duration::from_secs(2 * 3600 + 5 * 60) }.testing_note();
        assert!(cached.contains("reused from a setup run 2 h 5 min ago"), "{cached}");
        assert_eq!(rough(Duration::from_secs(30)), "less than a minute");
        assert_eq!(rough(Duration::from_secs(3 * 3600)), "3 h");
    }
}
