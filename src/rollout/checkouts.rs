//! Checked-out working trees kept between jobs, one pool per repository: a warm start refreshes a
//! tree (only the files that changed are rewritten) instead of writing the whole repository again.
//!
//! A checkout is two directories side by side: `git/`, errand's own git directory, and `tree/`,
//! the work tree that sandboxes get at /workspace. Only `tree/` is ever mounted. Whatever a
//! sandbox left in a tree is hostile: before errand's git touches it again, every `.git` in it is
//! removed ([`Checkout::remove_planted_git`]), and a reused tree is reset from errand's own git
//! state, so nothing carries over from one job to the next.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::forge::git::{CheckoutDirs, Git};
use crate::job::{JobId, RepoName};

type Idle = Arc<Mutex<HashMap<RepoName, Vec<CheckoutDirs>>>>;

/// Whether a checkout was reused from an earlier job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutState {
    Fresh,
    Reused,
}

/// The pool. Trees left by an earlier run of the worker are removed when it is created, since
/// nothing says whether a job was still changing them.
#[derive(Clone)]
pub struct CheckoutPool {
    root: PathBuf,
    idle: Idle,
}

impl CheckoutPool {
    pub fn new(root: PathBuf) -> Self {
        if root.exists()
            && let Err(e) = std::fs::remove_dir_all(&root)
        {
            tracing::warn!(path = %root.display(), error = %e, "could not remove an earlier run's checkouts");
        }
        Self { root, idle: Arc::default() }
    }

    /// A working tree of `repo` at the newest `branch` of `mirror`, for one job's exclusive use.
    pub async fn take(
        &self,
        git: &Git,
        repo: &RepoName,
        mirror: &Path,
        branch: &str,
    ) -> Result<(Checkout, String, CheckoutState)> {
        let reusable = self.idle.lock().unwrap_or_else(|e| e.into_inner()).get_mut(repo).and_then(Vec::pop);
        if let Some(dirs) = reusable {
            let checkout = self.checkout(repo, dirs);
            let refreshed = match checkout.remove_planted_git().await {
                Ok(_) => git.refresh_checkout(mirror, checkout.dirs(), branch).await,
                Err(e) => Err(e),
            };
            match refreshed {
                Ok(base) => return Ok((checkout, base, CheckoutState::Reused)),
                Err(e) => {
                    tracing::warn!(path = %checkout.dirs().work_tree.display(), error = format!("{e:#}"), "dropping a checkout that could not be refreshed");
                    checkout.discard().await;
                }
            }
        }
        let top = self.root.join(repo.owner()).join(repo.name()).join(JobId::generate().as_str());
        tokio::fs::create_dir_all(&top).await.context("creating the checkouts directory")?;
        let dirs = CheckoutDirs { git_dir: top.join("git"), work_tree: top.join("tree") };
        let checkout = self.checkout(repo, dirs);
        match git.create_checkout(mirror, branch, checkout.dirs()).await {
            Ok(base) => Ok((checkout, base, CheckoutState::Fresh)),
            Err(e) => {
                checkout.discard().await;
                Err(e)
            }
        }
    }

    fn checkout(&self, repo: &RepoName, dirs: CheckoutDirs) -> Checkout {
        Checkout { dirs: Some(dirs), repo: repo.clone(), idle: self.idle.clone() }
    }
}

/// A working tree held by one job; back in the pool when dropped.
#[derive(Debug)]
pub struct Checkout {
    /// `None` once discarded.
    dirs: Option<CheckoutDirs>,
    repo: RepoName,
    idle: Idle,
}

impl Checkout {
    pub fn dirs(&self) -> &CheckoutDirs {
        self.dirs.as_ref().expect("a checkout is discarded only when it is dropped")
    }

    /// The work tree (mounted at /workspace).
    pub fn path(&self) -> &Path {
        &self.dirs().work_tree
    }

    /// Removes every `.git` (folder, file or link) in the work tree and returns the paths of those
    /// below its top, which the sandbox made. errand's git never reads them anyway (it names its
    /// own git directory), but git treats a folder holding a `.git` as another repository and
    /// would read that repository's files; and the sandbox's own `.git` at the top (see
    /// [`super::sandbox_git`]) is made anew for every attempt. Links are removed, never followed.
    pub async fn remove_planted_git(&self) -> Result<Vec<String>> {
        let tree = self.path().to_owned();
        tokio::task::spawn_blocking(move || remove_git_entries(&tree)).await.context("sweeping the work tree")?
    }

    async fn discard(mut self) {
        if let Some(dirs) = self.dirs.take()
            && let Some(top) = dirs.work_tree.parent()
        {
            let _ = tokio::fs::remove_dir_all(top).await;
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(dirs) = self.dirs.take() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.entry(self.repo.clone()).or_default().push(dirs);
        }
    }
}

/// See [`Checkout::remove_planted_git`].
fn remove_git_entries(tree: &Path) -> Result<Vec<String>> {
    let mut planted = Vec::new();
    let mut walk = walkdir::WalkDir::new(tree).min_depth(1).follow_links(false).into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            // A folder the sandbox made unreadable to a worker that is not root: git cannot read
            // into it either (it warns and goes on), so nothing in it reaches git.
            Err(error) => {
                tracing::warn!(tree = %tree.display(), %error, "a folder of the work tree could not be read");
                continue;
            }
        };
        if entry.file_name() != ".git" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_dir() {
            walk.skip_current_dir();
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
        if entry.depth() > 1 {
            planted.push(path.strip_prefix(tree).unwrap_or(path).display().to_string());
        }
    }
    Ok(planted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_git_entry_in_a_tree_is_removed_and_those_below_the_top_are_named() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let tree = dir.path();
        let outside = tempfile::tempdir().expect("another temp dir");
        std::fs::write(outside.path().join("keep"), "not the tree's").expect("write");
        std::fs::create_dir_all(tree.join(".git/hooks")).expect("mkdir");
        std::fs::create_dir_all(tree.join("vendor/lib/.git")).expect("mkdir");
        std::fs::write(tree.join("vendor/lib/.git/config"), "[core]\n\tfsmonitor = touch /tmp/x\n").expect("write");
        std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
        std::fs::write(tree.join("sub/.git"), "gitdir: /etc\n").expect("write");
        std::os::unix::fs::symlink(outside.path(), tree.join("docs.git")).expect("a link");
        std::fs::create_dir_all(tree.join("deep")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), tree.join("deep/.git")).expect("a link");
        std::fs::write(tree.join("README"), "content").expect("write");

        let mut planted = remove_git_entries(tree).expect("the sweep");
        planted.sort();

        assert_eq!(planted, ["deep/.git", "sub/.git", "vendor/lib/.git"]);
        for gone in [".git", "vendor/lib/.git", "sub/.git", "deep/.git"] {
            assert!(std::fs::symlink_metadata(tree.join(gone)).is_err(), "{gone} is still there");
        }
        assert!(tree.join("README").exists() && tree.join("docs.git").exists(), "other entries stay");
        assert!(outside.path().join("keep").exists(), "nothing was followed through a link");
    }
}
