//! The bare repositories behind the fake's repositories: seeding them, reading refs, blobs,
//! commits and diffs with `git`, the `post-receive` hook that keeps `refs/pull/N/head` on an
//! open pull request's head branch, and serving them over git's smart HTTP (`git
//! http-backend`), as GitHub does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::http::{HeaderMap, Uri};

use super::routes::Reply;
use super::world::World;

/// Commits made by `add_repo` carry this date, so their shas are the same on every run.
const FIXED_GIT_DATE: &str = "2026-01-01T00:00:00Z";
/// In each bare repository: `N branch` for every open same-repository pull request, read by
/// [`POST_RECEIVE_HOOK`].
pub(super) const PULL_MAP_FILE: &str = "fake-github-pulls";
/// GitHub moves `refs/pull/N/head` when the head branch of an open pull request is pushed; this
/// hook does the same in the bare repository (hooks run in the bare repository's directory).
const POST_RECEIVE_HOOK: &str = r#"#!/bin/sh
# Written by the fake GitHub (tests/support/fake_github/git.rs): keep refs/pull/N/head on the head
# branch of each open same-repository pull request, as GitHub does on push.
[ -f fake-github-pulls ] || exit 0
while read -r old new ref; do
  case "$ref" in refs/heads/*) branch="${ref#refs/heads/}" ;; *) continue ;; esac
  case "$new" in *[!0]*) ;; *) continue ;; esac
  while read -r number head; do
    if [ "$head" = "$branch" ]; then git update-ref "refs/pull/$number/head" "$new"; fi
  done < fake-github-pulls
done
exit 0
"#;

/// Makes the bare repository `owner/name.git` under `root`, with the `post-receive` hook, its
/// `main` holding one commit with `files`; returns its path and that commit's sha.
pub(super) fn seed_bare_repo(root: &Path, owner: &str, name: &str, files: &[(&str, &str)]) -> (PathBuf, String) {
    let bare = root.join(owner).join(format!("{name}.git"));
    let seed = root.join(".seed").join(owner).join(name);
    std::fs::create_dir_all(&seed).expect("a seed work tree");
    git_ok(root, &["init", "--bare", "--quiet", path_str(&bare)]);
    let hook = bare.join("hooks").join("post-receive");
    std::fs::create_dir_all(hook.parent().expect("a hooks dir")).expect("the hooks dir");
    std::fs::write(&hook, POST_RECEIVE_HOOK).expect("the post-receive hook");
    make_executable(&hook);
    git_ok(&seed, &["init", "--quiet"]);
    write_files(&seed, files);
    git_ok(&seed, &["add", "--all"]);
    git_ok(&seed, &["commit", "--quiet", "--allow-empty", "-m", "Initial commit"]);
    git_ok(&seed, &["push", "--quiet", path_str(&bare), "HEAD:refs/heads/main"]);
    let initial_sha = git_ok(&bare, &["rev-parse", "refs/heads/main"]).trim().to_owned();
    std::fs::remove_dir_all(&seed).expect("removing the seed work tree");
    (bare, initial_sha)
}

pub(super) fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Fake GitHub")
        .env("GIT_AUTHOR_EMAIL", "fake-github@example.com")
        .env("GIT_COMMITTER_NAME", "Fake GitHub")
        .env("GIT_COMMITTER_EMAIL", "fake-github@example.com")
        .env("GIT_AUTHOR_DATE", FIXED_GIT_DATE)
        .env("GIT_COMMITTER_DATE", FIXED_GIT_DATE)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("running git")
}

pub(super) fn git_ok(dir: &Path, args: &[&str]) -> String {
    let output = git(dir, args);
    assert!(output.status.success(), "git {args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

/// A ref or path argument must not be read as an option by git.
pub(super) fn safe_for_git(text: &str) -> bool {
    !text.starts_with('-') && !text.contains('\0')
}

pub(super) fn resolve(bare: &Path, git_ref: &str) -> Option<String> {
    if !safe_for_git(git_ref) {
        return None;
    }
    let output = git(bare, &["rev-parse", "--verify", "--quiet", &format!("{git_ref}^{{commit}}")]);
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

pub(super) fn read_blob(bare: &Path, git_ref: &str, path: &str) -> Option<Vec<u8>> {
    if !safe_for_git(git_ref) {
        return None;
    }
    let output = git(bare, &["cat-file", "blob", &format!("{git_ref}:{path}")]);
    output.status.success().then_some(output.stdout)
}

/// Writes `files` under `dir`; files named `*.sh` or starting with `#!` are executable.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a file path")).expect("the file's directory");
        std::fs::write(&file, content).expect("a seed file");
        if path.ends_with(".sh") || content.starts_with("#!") {
            make_executable(&file);
        }
    }
}

/// Commits `files` on top of `from` (a ref of `bare`) in a scratch clone under `root` and
/// pushes the commit to `target` (a full ref name, force); returns its sha.
pub(super) fn commit_files(
    root: &Path,
    bare: &Path,
    from: &str,
    files: &[(&str, &str)],
    message: &str,
    target: &str,
) -> String {
    let parent = resolve(bare, from).unwrap_or_else(|| panic!("{} has no {from}", bare.display()));
    let scratch = tempfile::Builder::new().prefix(".commit").tempdir_in(root).expect("a scratch dir");
    let work = scratch.path().join("work");
    git_ok(root, &["clone", "--quiet", "--no-checkout", path_str(bare), path_str(&work)]);
    git_ok(&work, &["checkout", "--quiet", "--detach", &parent]);
    write_files(&work, files);
    git_ok(&work, &["add", "--all"]);
    git_ok(&work, &["commit", "--quiet", "--allow-empty", "-m", message]);
    git_ok(&work, &["push", "--quiet", "--force", path_str(bare), &format!("HEAD:{target}")]);
    git_ok(&work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// A review comment's `diff_hunk`, as GitHub cuts it: the hunk of the pull request's diff that
/// holds `line` (of the file at `head`), from its header down to that line. A line outside the
/// diff gets a hunk of up to three lines of context ending at it; a file the fake cannot read, a
/// fixed one.
pub(super) fn review_diff_hunk(bare: &Path, base: Option<&str>, head: &str, path: &str, line: u64) -> String {
    let from_diff = || {
        let merge_base = git(bare, &["merge-base", base?, head]);
        let merge_base = String::from_utf8_lossy(&merge_base.stdout).trim().to_owned();
        let diff = git(bare, &["diff", "--no-color", "--unified=3", &merge_base, head, "--", path]);
        diff.status.success().then_some(())?;
        hunk_ending_at(&String::from_utf8_lossy(&diff.stdout), line)
    };
    let context = || {
        let text = String::from_utf8_lossy(&read_blob(bare, head, path)?).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let end = usize::try_from(line).ok().filter(|l| (1..=lines.len()).contains(l))?;
        let start = end.saturating_sub(2).max(1);
        let count = end - start + 1;
        let body: Vec<String> = lines[start - 1..end].iter().map(|l| format!(" {l}")).collect();
        Some(format!("@@ -{start},{count} +{start},{count} @@\n{}", body.join("\n")))
    };
    from_diff().or_else(context).unwrap_or_else(|| "@@ -1,3 +1,3 @@".to_owned())
}

/// In a unified diff, the hunk holding new-file line `line`, cut after that line.
fn hunk_ending_at(diff: &str, line: u64) -> Option<String> {
    let mut hunk: Option<(Vec<&str>, u64)> = None;
    for text in diff.lines() {
        if text.starts_with("@@") {
            let start = text.split_whitespace().find_map(|w| w.strip_prefix('+'))?;
            let start = start.split(',').next()?.parse().ok()?;
            hunk = Some((vec![text], start));
            continue;
        }
        let Some((lines, next)) = hunk.as_mut() else { continue };
        match text.as_bytes().first() {
            Some(b'+' | b' ') => {
                lines.push(text);
                if *next == line {
                    return Some(lines.join("\n"));
                }
                *next += 1;
            }
            Some(b'-') => lines.push(text),
            _ => {}
        }
    }
    None
}

pub(super) fn branches(bare: &Path) -> Vec<String> {
    git_ok(bare, &["for-each-ref", "--format=%(refname:short)", "refs/heads"]).lines().map(str::to_owned).collect()
}

#[cfg(unix)]
fn make_executable(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).expect("chmod +x");
}

#[cfg(not(unix))]
fn make_executable(_file: &Path) {}

impl World {
    /// Whether `path` is a git smart-HTTP request for a repository served that way.
    pub(super) fn serves_git_over_http(&self, path: &str) -> bool {
        let Some((repo, _)) = path.trim_start_matches('/').split_once(".git/") else { return false };
        self.repos.get(repo).is_some_and(|r| r.clone_url.starts_with("http"))
    }

    /// Answers a git smart-HTTP request (`info/refs`, `git-upload-pack`, `git-receive-pack`)
    /// with git's own CGI, `git http-backend`, on the bare repository. Anyone may fetch and push:
    /// the fake checks no git credentials.
    pub(super) fn git_http_backend(&self, method: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let run = Command::new("git")
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", uri.path())
            .env("QUERY_STRING", uri.query().unwrap_or_default())
            .env("REQUEST_METHOD", method)
            .env("CONTENT_TYPE", header("content-type"))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
            .env("GIT_PROTOCOL", header("git-protocol"))
            // Pushing over HTTP needs an authenticated user by default.
            .env("REMOTE_USER", "errand")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                let mut stdin = child.stdin.take().expect("a piped stdin");
                stdin.write_all(body)?;
                drop(stdin);
                child.wait_with_output()
            });
        let output = match run {
            Ok(output) => output,
            Err(error) => return Reply::error(500, &format!("running git http-backend: {error}"), ""),
        };
        // CGI: header lines, an empty line, the body.
        let out = output.stdout;
        let Some(split) = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| (at, at + 4))
            .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|at| (at, at + 2)))
        else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Reply::error(500, &format!("git http-backend gave no CGI headers: {stderr}"), "");
        };
        let mut reply =
            Reply { status: 200, body: None, raw: Some(out[split.1..].to_vec()), headers: Vec::new(), matched: true };
        for line in String::from_utf8_lossy(&out[..split.0]).lines() {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim().to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "status" => reply.status = value.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(500),
                "content-type" => reply.headers.push(("content-type", value)),
                "cache-control" => reply.headers.push(("cache-control", value)),
                _ => {}
            }
        }
        reply
    }
}
