//! An attempt's directories on the worker: the repository's working tree (mounted at /workspace,
//! a checkout from the pool, with the sandbox's own `.git`) and errand's own files (mounted at
//! /errand: the task, the summary). On drop errand's files are removed and the working tree goes
//! back to the pool.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::checkouts::Checkout;
use super::{SUMMARY_FILE, TASK_FILE};
use crate::forge::git::CheckoutDirs;
use crate::job::Job;
use crate::sandbox::{Part, Refusal, read_back};

/// The most of the agent's summary errand reads.
const MAX_SUMMARY_BYTES: u64 = 64 * 1024;

#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    checkout: Checkout,
    errand: PathBuf,
    /// The mirror's objects, which the sandbox's `.git` borrows (mounted read-only).
    objects: PathBuf,
    sandbox_uid: u32,
}

impl Workspace {
    /// Creates errand's directory for the job (clearing what an earlier delivery left) beside the
    /// working tree the job holds.
    pub async fn create(
        data_dir: &Path,
        job: &Job,
        attempt: Option<u32>,
        checkout: Checkout,
        objects: PathBuf,
        sandbox_uid: u32,
    ) -> Result<Self> {
        let name = match attempt {
            Some(attempt) => format!("{}-a{attempt}", job.id),
            None => job.id.to_string(),
        };
        let root = data_dir.join("work").join(name);
        if root.exists() {
            tokio::fs::remove_dir_all(&root).await.context("clearing an earlier delivery's workspace")?;
        }
        let errand = root.join("errand");
        tokio::fs::create_dir_all(&errand).await.context("creating the workspace")?;
        Ok(Self { checkout, errand, objects, root, sandbox_uid })
    }

    pub fn repo_dir(&self) -> &Path {
        self.checkout.path()
    }

    /// errand's git directory and the work tree.
    pub fn checkout(&self) -> &Checkout {
        &self.checkout
    }

    pub fn git_dirs(&self) -> &CheckoutDirs {
        self.checkout.dirs()
    }

    pub fn errand_dir(&self) -> &Path {
        &self.errand
    }

    pub fn objects_dir(&self) -> &Path {
        &self.objects
    }

    /// Writes the task file the agent reads through `$ERRAND_TASK_FILE`.
    pub async fn write_task(&self, job: &Job, context: &str) -> Result<()> {
        let file = self.errand.join(Path::new(TASK_FILE).file_name().unwrap_or_default());
        tokio::fs::write(file, render_task_file(job, context)).await.context("writing the task file")
    }

    /// Makes the workspace the sandbox user's: when the worker runs as root, the work tree (with
    /// the sandbox's `.git`) and errand's directory change owner.
    pub async fn hand_to_sandbox(&self) -> Result<()> {
        hand_to_sandbox(self.repo_dir(), &self.errand, self.sandbox_uid).await
    }

    /// The agent's summary: `Ok(None)` when it wrote none, refused when it left something other
    /// than a regular file there.
    pub async fn read_summary(&self) -> Result<Option<String>, Refusal> {
        let path = self.errand.join(Path::new(SUMMARY_FILE).file_name().unwrap_or_default());
        let Some(bytes) = read_back(&path, MAX_SUMMARY_BYTES, Part::Head).await? else { return Ok(None) };
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!(path = %self.root.display(), error = %e, "could not remove a workspace");
        }
    }
}

/// Makes a working tree and errand's directory the sandbox user's: when the worker runs as root,
/// everything in them changes owner (links themselves, never what they point to). errand's own
/// git directory is not in the tree and stays the worker's. A non-root worker runs its sandboxes
/// as itself and changes nothing.
pub async fn hand_to_sandbox(repo: &Path, errand: &Path, uid: u32) -> Result<()> {
    let (repo, errand) = (repo.to_owned(), errand.to_owned());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
        if me != 0 || uid == 0 {
            return Ok(());
        }
        let entries = walkdir::WalkDir::new(&repo).into_iter().chain(walkdir::WalkDir::new(&errand));
        for entry in entries {
            let entry = entry.context("walking the workspace")?;
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(uid))
                .with_context(|| format!("handing {} to the sandbox user", entry.path().display()))?;
        }
        Ok(())
    })
    .await
    .context("handing the workspace to the sandbox user")?
}

/// The task file: the instruction with its context, for the agent. `context` is more of it,
/// in Markdown (a follow-up's pull request and review comments), placed before the instructions
/// on how to answer.
pub fn render_task_file(job: &Job, context: &str) -> String {
    let instruction =
        if job.task.instruction.trim().is_empty() { "Resolve the issue below." } else { job.task.instruction.trim() };
    format!(
        "# Task\n\n{instruction}\n\n## Context\n\n- Repository: {repo}\n- Requested by: @{who}\n- Request: {url}\n\n## Issue: {title}\n\n{body}\n\n{context}## How to answer\n\nChange the files in /workspace; errand commits what they hold and opens the pull request (the git repository there is yours to use, and your own commits are not needed). Write a summary to the file named by $ERRAND_SUMMARY_FILE: its first line is the title. If the request is a question, change nothing and write the answer there.\n",
        repo = job.repo,
        who = job.requested_by,
        url = job.task.url,
        title = job.task.title,
        body = job.task.body.trim(),
        context = if context.trim().is_empty() { String::new() } else { format!("{}\n\n", context.trim()) },
    )
}
