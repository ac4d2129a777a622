//! The mirror cache against real git: the first job on a repository clones it, later jobs fetch
//! into the same mirror, workspaces come from the mirror, and commits carry errand's identity.

use std::path::Path;
use std::process::Command;

use errand::forge::git::{CheckoutDirs, CommitAuthor, Git, MirrorCache, MirrorState};
use errand::job::RepoName;

/// Plain git in `cwd`, as a person upstream would run it, with an identity of its own.
fn git(cwd: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(cwd)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A bare "remote" with one commit on main, made with plain git.
fn remote_with(dir: &Path, files: &[(&str, &str)]) -> String {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (path, text) in files {
        std::fs::write(src.join(path), text).unwrap();
    }
    git(&src, &["-c", "init.defaultBranch=main", "init", "-q"]);
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-qm", "initial"]);
    let bare = dir.join("remote.git");
    git(dir, &["clone", "-q", "--bare", "src", bare.to_str().unwrap()]);
    format!("file://{}", bare.display())
}

fn cache(root: &Path) -> MirrorCache {
    let git = Git::new(CommitAuthor { name: "errand".into(), email: "errand@example.com".into() });
    MirrorCache::new(root.join("mirrors"), git)
}

#[tokio::test]
async fn the_second_job_on_a_repository_fetches_instead_of_cloning() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote_with(dir.path(), &[("README.md", "hello\n")]);
    let repo: RepoName = "acme/app".parse().unwrap();
    let mirrors = cache(dir.path());

    let (first, state) = mirrors.sync(&repo, &url, None).await.unwrap();
    assert_eq!(state, MirrorState::Cloned);
    let (second, state) = mirrors.sync(&repo, &url, None).await.unwrap();
    assert_eq!(state, MirrorState::Fetched);
    assert_eq!(first, second, "one mirror per repository");
}

#[tokio::test]
async fn a_workspace_from_the_mirror_commits_the_agents_changes_with_errands_identity() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote_with(dir.path(), &[("calc.sh", "add() { echo 0; }\n")]);
    let repo: RepoName = "acme/app".parse().unwrap();
    let mirrors = cache(dir.path());
    let (mirror, _) = mirrors.sync(&repo, &url, None).await.unwrap();
    let ws = CheckoutDirs { git_dir: dir.path().join("git"), work_tree: dir.path().join("ws") };

    let base = mirrors.git().create_checkout(&mirror, "main", &ws).await.unwrap();
    assert!(!ws.work_tree.join(".git").exists(), "errand's git directory is not in the work tree");
    assert_eq!(mirrors.git().commit_all(&ws, "nothing").await.unwrap(), None, "no change, no commit");
    std::fs::write(ws.work_tree.join("calc.sh"), "add() { echo $(( $1 + $2 )); }\n").unwrap();
    std::fs::write(ws.work_tree.join("NEW.md"), "new\n").unwrap();
    let commit = mirrors.git().commit_all(&ws, "Fix add").await.unwrap().expect("a commit");
    assert_ne!(commit, base);
    let stat = mirrors.git().diffstat(&ws, &base).await.unwrap();
    assert!(stat.contains("calc.sh") && stat.contains("NEW.md") && stat.contains("2 files changed"), "{stat}");

    mirrors.git().push(&ws, &url, None, "errand/issue-1-abc").await.unwrap();
    let log = Command::new("git")
        .args(["--git-dir", &url["file://".len()..], "log", "-1", "--format=%an <%ae>|%s", "errand/issue-1-abc"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "errand <errand@example.com>|Fix add");
}

#[tokio::test]
async fn a_reused_checkout_starts_clean_at_the_newest_base() {
    use errand::rollout::{CheckoutPool, CheckoutState};

    let dir = tempfile::tempdir().unwrap();
    let url = remote_with(dir.path(), &[("calc.sh", "add() { echo 0; }\n"), (".gitignore", "build/\n")]);
    let repo: RepoName = "acme/app".parse().unwrap();
    let mirrors = cache(dir.path());
    let pool = CheckoutPool::new(dir.path().join("checkouts"));
    let (mirror, _) = mirrors.sync(&repo, &url, None).await.unwrap();

    let (first, base, state) = pool.take(mirrors.git(), &repo, &mirror, "main").await.unwrap();
    assert_eq!(state, CheckoutState::Fresh);
    let path = first.path().to_owned();
    std::fs::write(path.join("calc.sh"), "changed by the first job\n").unwrap();
    std::fs::write(path.join("untracked.txt"), "left behind\n").unwrap();
    std::fs::create_dir_all(path.join("build")).unwrap();
    std::fs::write(path.join("build/out"), "ignored output\n").unwrap();
    mirrors.git().commit_all(first.dirs(), "first job's commit").await.unwrap().expect("a commit");
    drop(first);

    // The remote moves on; the next job must start from its newest commit.
    let upstream = dir.path().join("upstream");
    git(dir.path(), &["clone", "-q", &url, upstream.to_str().unwrap()]);
    std::fs::write(upstream.join("NEWS.md"), "news\n").unwrap();
    git(&upstream, &["add", "-A"]);
    git(&upstream, &["commit", "-qm", "news"]);
    git(&upstream, &["push", "-q", "origin", "HEAD:main"]);
    mirrors.sync(&repo, &url, None).await.unwrap();

    let (second, new_base, state) = pool.take(mirrors.git(), &repo, &mirror, "main").await.unwrap();
    assert_eq!(state, CheckoutState::Reused);
    assert_eq!(second.path(), path, "the same tree, reused");
    assert_ne!(new_base, base, "at the remote's newest commit");
    assert_eq!(std::fs::read_to_string(path.join("calc.sh")).unwrap(), "add() { echo 0; }\n");
    assert!(path.join("NEWS.md").exists());
    assert!(!path.join("untracked.txt").exists() && !path.join("build").exists(), "nothing of the first job is left");
}
