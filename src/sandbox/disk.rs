//! The per-step disk bound: the engine's size limit on a container's writable layer where it has one, and
//! always a watcher that measures what the step wrote and has its container killed when that passes the bound.
//!
//! The engine's storage option (`--storage-opt size=`) needs a storage driver with quotas (overlay2 on xfs
//! with `pquota`, btrfs, zfs); others (fuse-overlayfs, vfs, overlay2 on ext4) refuse to create the container.
//! Either way it never covers the bind-mounted `/workspace` and `/errand`, so those are always measured,
//! and so is the writable layer when the engine cannot bound it.
//!
//! What counts is what the step *adds*: the host directories are measured when the step starts and the
//! bound applies to their growth, so a repository that is itself larger than the bound still runs; the
//! writable layer starts empty for every step, so all of it is growth.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptionsBuilder};
use tokio::time::Instant;

use super::{Sandbox, SandboxError, engine_detail, is_not_found};

/// How often a running step's disk use is measured. A step writing at disk speed overshoots its bound by
/// at most this long's writes before it is killed; measuring more often would cost a walk of the
/// workspace (about 30 ms for 10,000 files) and, without the engine's quota, the engine's own walk of
/// the writable layer, every time, for every running step.
pub(super) const DISK_POLL: Duration = Duration::from_secs(2);

/// Measuring may take at most one part in this many of the watcher's time: the pause after a
/// measurement that took `t` is at least `t * WALK_SHARE_INVERSE`, so a huge workspace is measured less
/// often rather than keeping a core busy.
const WALK_SHARE_INVERSE: u32 = 10;

/// The bytes allocated on disk under `roots` (`st_blocks * 512`): symbolic links are not followed,
/// a file with several hard links counts once, and entries that vanish during the walk are skipped.
/// Blocking: call it through `spawn_blocking`.
pub(super) fn allocated_bytes(roots: &[PathBuf]) -> std::io::Result<u64> {
    let mut total = 0u64;
    // Only inodes with more than one link can be met twice.
    let mut linked: HashSet<(u64, u64)> = HashSet::new();
    let mut count = |metadata: &std::fs::Metadata| {
        if metadata.nlink() > 1 && !linked.insert((metadata.dev(), metadata.ino())) {
            return;
        }
        total = total.saturating_add(metadata.blocks().saturating_mul(512));
    };
    let mut directories = Vec::new();
    for root in roots {
        // A missing root is an error: the step's directories exist while it runs.
        let metadata = std::fs::symlink_metadata(root)?;
        count(&metadata);
        if metadata.is_dir() {
            directories.push(root.clone());
        }
    }
    while let Some(directory) = directories.pop() {
        // Removed meanwhile, or unreadable: what cannot be listed is not counted (a worker running
        // as root, as in production, can list everything).
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries.flatten() {
            // `DirEntry::metadata` does not follow a symbolic link.
            let Ok(metadata) = entry.metadata() else { continue };
            count(&metadata);
            if metadata.is_dir() {
                directories.push(entry.path());
            }
        }
    }
    Ok(total)
}

/// Whether the engine refused a container because its storage driver cannot limit the writable layer's
/// size. The drivers say it differently: "--storage-opt is not supported" (fuse-overlayfs, as on the
/// engine errand is tested on), "--storage-opt is supported only for overlay over xfs with 'pquota' mount
/// option" (overlay2), "--storage-opt is not supported for vfs", "--storage-opt size is only supported
/// for ReadWrite Layers".
fn storage_opt_unsupported(error: &DockerError) -> bool {
    let DockerError::DockerResponseServerError { message, .. } = error else { return false };
    let message = message.to_ascii_lowercase();
    message.contains("storage-opt") && message.contains("support")
}

impl Sandbox {
    /// Creates a container whose writable layer the engine keeps under `disk_bytes`, or, on an engine
    /// that cannot (found out on the first try and remembered for this sandbox), one without. Returns
    /// its id and whether the engine bounds its writable layer.
    pub(super) async fn create_bounded_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
        disk_bytes: u64,
    ) -> Result<(String, bool), DockerError> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        if !self.storage_opt_unsupported.load(Ordering::Relaxed) {
            let mut bounded = body.clone();
            let host = bounded.host_config.get_or_insert_default();
            host.storage_opt = Some(HashMap::from([("size".to_owned(), disk_bytes.to_string())]));
            match self.docker.create_container(Some(options.clone()), bounded).await {
                Ok(created) => return Ok((created.id, true)),
                Err(error) if storage_opt_unsupported(&error) => {
                    // Said once per worker: every step is measured instead, and that is enough.
                    if !self.storage_opt_unsupported.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            answer = %engine_detail(&error),
                            "the Docker engine cannot limit a container's writable layer; errand measures it instead"
                        );
                    }
                }
                Err(error) => return Err(error),
            }
        }
        let created = self.docker.create_container(Some(options), body).await?;
        Ok((created.id, false))
    }
}

/// Measures what one step adds to the disk against its bound.
pub(super) struct DiskWatch {
    docker: Docker,
    /// The host directories the step writes to.
    dirs: Vec<PathBuf>,
    /// Their size when the step started.
    baseline: u64,
    limit: u64,
    /// The container whose writable layer is measured too: set when the engine does not bound it.
    layer_of: Option<String>,
}

impl DiskWatch {
    /// Measures `dirs` as `step` starts. `layer_of` names the step's container when the engine does
    /// not bound its writable layer.
    pub(super) async fn start(
        docker: &Docker,
        step: &str,
        mut dirs: Vec<PathBuf>,
        limit: u64,
        layer_of: Option<String>,
    ) -> Result<Self, SandboxError> {
        // A directory under another one is measured with it, not twice.
        let all = dirs.clone();
        dirs.retain(|dir| !all.iter().any(|other| other != dir && dir.starts_with(other)));
        dirs.dedup();
        let baseline = measure(&dirs).await.map_err(|error| SandboxError::InvalidStep {
            step: step.to_owned(),
            reason: format!("its directories could not be measured for the disk bound: {error:#}"),
        })?;
        Ok(Self { docker: docker.clone(), dirs, baseline, limit, layer_of })
    }

    /// Returns once the step has written more than its bound; never, otherwise.
    pub(super) async fn until_exceeded(&self) {
        let mut pause = DISK_POLL;
        loop {
            tokio::time::sleep(pause).await;
            let measuring = Instant::now();
            if self.exceeded().await {
                return;
            }
            pause = DISK_POLL.max(measuring.elapsed() * WALK_SHARE_INVERSE);
        }
    }

    /// Whether the step has written more than its bound. A measurement that fails (a directory
    /// removed from under it, the engine not answering) counts as within the bound: the next one decides.
    pub(super) async fn exceeded(&self) -> bool {
        match self.growth().await {
            Ok(growth) => growth > self.limit,
            Err(error) => {
                tracing::warn!(error = %error, "could not measure a step's disk use");
                false
            }
        }
    }

    /// What the step wrote: the growth of its directories (what it deleted offsets what it wrote),
    /// plus its writable layer when that is measured here.
    async fn growth(&self) -> Result<u64, String> {
        let dirs = measure(&self.dirs).await.map_err(|error| format!("{error:#}"))?;
        let layer = match &self.layer_of {
            Some(id) => self.layer_size(id).await?,
            None => 0,
        };
        Ok(dirs.saturating_sub(self.baseline).saturating_add(layer))
    }

    /// The size of the container's writable layer, as the engine counts it (`SizeRw`: the apparent
    /// size of the files the container added or changed).
    async fn layer_size(&self, id: &str) -> Result<u64, String> {
        let options = InspectContainerOptionsBuilder::new().size(true).build();
        match self.docker.inspect_container(id, Some(options)).await {
            Ok(inspect) => Ok(inspect.size_rw.unwrap_or(0).max(0).unsigned_abs()),
            // Gone: the step is over and nothing is left to measure.
            Err(error) if is_not_found(&error) => Ok(0),
            Err(error) => Err(engine_detail(&error)),
        }
    }
}

/// [`allocated_bytes`] off the runtime's threads.
async fn measure(dirs: &[PathBuf]) -> anyhow::Result<u64> {
    let dirs = dirs.to_vec();
    let bytes = tokio::task::spawn_blocking(move || allocated_bytes(&dirs)).await??;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temp dir")
    }

    #[test]
    fn allocated_bytes_count_blocks_once_per_inode_and_do_not_follow_links() {
        let outside = tree();
        std::fs::write(outside.path().join("large"), vec![1u8; 1 << 20]).expect("a file outside");
        let root = tree();
        let empty = allocated_bytes(&[root.path().to_owned()]).expect("the empty tree");

        std::fs::create_dir(root.path().join("sub")).expect("a directory");
        std::fs::write(root.path().join("sub/data"), vec![1u8; 256 * 1024]).expect("a file");
        let with_file = allocated_bytes(&[root.path().to_owned()]).expect("the tree");
        assert!(with_file >= empty + 256 * 1024, "{with_file} bytes after writing 256 KiB to an empty tree of {empty}");

        std::fs::hard_link(root.path().join("sub/data"), root.path().join("again")).expect("a hard link");
        std::os::unix::fs::symlink(outside.path(), root.path().join("elsewhere")).expect("a symbolic link");
        std::os::unix::fs::symlink(outside.path().join("large"), root.path().join("large")).expect("a link");
        let linked = allocated_bytes(&[root.path().to_owned()]).expect("the tree");
        assert!(linked < with_file + 64 * 1024, "{linked} bytes: a hard link or a symbolic link was counted as data");
    }

    #[test]
    fn sparse_files_count_what_they_allocate_and_a_missing_root_is_an_error() {
        let root = tree();
        let file = std::fs::File::create(root.path().join("sparse")).expect("a file");
        file.set_len(1 << 30).expect("a sparse gigabyte");
        let bytes = allocated_bytes(&[root.path().to_owned()]).expect("the tree");
        assert!(bytes < 1 << 20, "{bytes} bytes for a file that allocates nothing");
        assert!(allocated_bytes(&[root.path().join("missing")]).is_err());
    }

    #[test]
    fn only_the_engines_storage_opt_refusals_count_as_unsupported() {
        let refused =
            |message: &str| DockerError::DockerResponseServerError { status_code: 500, message: message.to_owned() };
        for message in [
            "--storage-opt is not supported",
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
            "--storage-opt is not supported for vfs",
            "--storage-opt size is only supported for ReadWrite Layers",
        ] {
            assert!(storage_opt_unsupported(&refused(message)), "{message}");
        }
        assert!(!storage_opt_unsupported(&refused("No such image: errand-sandbox-test:latest")));
        assert!(!storage_opt_unsupported(&refused("Conflict. The container name is already in use")));
    }
}
