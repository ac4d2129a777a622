//! Checked-out working trees kept between jobs, one pool per repository: a warm start refreshes a
//! tree (only the files that changed are rewritten) instead of writing the whole repository again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::forge::git::Git;
use crate::job::{JobId, RepoName};

type Idle = Arc<Mutex<HashMap<RepoName, Vec<PathBuf>>>>;

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
        if let Some(path) = reusable {
            match git.refresh_checkout(&path, branch).await {
                Ok(base) => return Ok((self.checkout(repo, path), base, CheckoutState::Reused)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = format!("{e:#}"), "dropping a checkout that could not be refreshed");
                    let _ = tokio::fs::remove_dir_all(&path).await;
                }
            }
        }
        let path = self.root.join(repo.owner()).join(repo.name()).join(JobId::generate().as_str());
        tokio::fs::create_dir_all(path.parent().unwrap_or(&self.root))
            .await
            .context("creating the checkouts directory")?;
        let base = git.workspace_from_mirror(mirror, branch, &path).await?;
        Ok((self.checkout(repo, path), base, CheckoutState::Fresh))
    }

    fn checkout(&self, repo: &RepoName, path: PathBuf) -> Checkout {
        Checkout { path, repo: repo.clone(), idle: self.idle.clone() }
    }
}

/// A working tree held by one job; back in the pool when dropped.
#[derive(Debug)]
pub struct Checkout {
    path: PathBuf,
    repo: RepoName,
    idle: Idle,
}

impl Checkout {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.entry(self.repo.clone()).or_default().push(std::mem::take(&mut self.path));
    }
}
