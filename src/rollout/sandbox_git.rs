//! The sandbox's own git repository: a `.git` at the top of the work tree, made anew for every
//! attempt, that the agent may use and change as it likes (status, diff, log, commits, its own
//! config) and that errand never reads. It borrows the repository's history from the mirror's
//! objects, which sandboxes get read-only at [`OBJECTS_DIR`]; its index is a copy of errand's, so
//! `git status` starts clean.
//!
//! errand's own git directory is elsewhere, outside every mount (see `rollout::checkouts`): what
//! the agent does to this one changes nothing errand runs, and the change errand pushes is the
//! work tree's, compared with errand's own record of the base.

use std::path::Path;

use anyhow::{Context, Result};

use crate::forge::git::CheckoutDirs;
pub use crate::sandbox::OBJECTS_DIR;

/// Writes `<work tree>/.git` for an attempt that starts at `base` on `branch`. The work tree
/// holds no `.git` when this runs (the checkout pool removes them).
pub async fn write(dirs: &CheckoutDirs, branch: &str, base: &str) -> Result<()> {
    let dot_git = dirs.work_tree.join(".git");
    // Fails if anything is there: nothing may be written through a link the sandbox left.
    tokio::fs::create_dir(&dot_git).await.context("creating the sandbox's .git")?;
    for dir in ["objects/info", "objects/pack", "refs/heads", "refs/tags", "info"] {
        tokio::fs::create_dir_all(dot_git.join(dir)).await.context("creating the sandbox's .git")?;
    }
    let files = [
        ("HEAD", format!("ref: refs/heads/{branch}\n")),
        (
            "config",
            "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n"
                .to_owned(),
        ),
        ("packed-refs", format!("# pack-refs with: peeled fully-peeled sorted \n{base} refs/heads/{branch}\n")),
        ("objects/info/alternates", format!("{OBJECTS_DIR}\n")),
    ];
    for (name, content) in files {
        tokio::fs::write(dot_git.join(name), content)
            .await
            .with_context(|| format!("writing the sandbox's .git/{name}"))?;
    }
    copy_index(&dirs.git_dir, &dot_git).await
}

/// errand's index describes the same files, so the sandbox's git need not build one (it only
/// re-reads the files whose owner or times changed when the tree was handed over).
async fn copy_index(git_dir: &Path, dot_git: &Path) -> Result<()> {
    tokio::fs::copy(git_dir.join("index"), dot_git.join("index")).await.context("copying the index")?;
    Ok(())
}
