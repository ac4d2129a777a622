//! Setup in one container: its commands run one after another as execs in a container that idles
//! meanwhile, so what one installs outside `/workspace` is there for the next; when all of them
//! pass, the stopped container is committed to an image, the environment later steps start from.
//! Also the image operations the environment cache needs (inspect, tag, remove).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures::StreamExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::container::{self, WORKSPACE_DIR};
use super::disk::DiskWatch;
use super::tail::OutputTail;
use super::{
    LABEL_JOB, LABEL_MANAGED, LABEL_STEP, RemovalGuard, Sandbox, SandboxError, StepOutput, StepSpec, engine_detail,
    is_conflict, is_not_found,
};
use crate::job::JobId;

/// What the setup container runs while the commands run beside it: nothing, until it is killed.
const IDLE_SCRIPT: &str = "while :; do sleep 3600; done";
/// How long after a command's output ends the engine may take to record its exit code.
const EXEC_EXIT_GRACE: Duration = Duration::from_secs(10);

/// Setup: several commands in one container, committed to an image when all of them pass.
#[derive(Debug, Clone)]
pub struct SetupSpec {
    /// The container: image, mounts, user, environment, network, limits. Its `script` is not
    /// run (the container idles while each command runs in it), `/workspace` is read-only, and
    /// `timeout` bounds all the commands together.
    pub container: StepSpec,
    /// Each run as `sh -c command` in `/workspace`, in order; the first that fails ends setup.
    pub commands: Vec<String>,
    /// An absolute directory created for the sandbox user before the container starts (the
    /// environment's `$HOME`): a non-root user has nowhere else to install into that is kept.
    pub home: String,
    /// The image committed when every command passed: `repository:tag`, with these labels.
    pub repository: String,
    pub tag: String,
    pub labels: HashMap<String, String>,
}

/// How setup went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupOutput {
    /// One per command that ran, in order (setup stops at the first that fails).
    pub commands: Vec<StepOutput>,
    /// The id of the committed image; `None` unless every command passed.
    pub image: Option<String>,
}

/// An image on the engine: its id and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    /// Its `repository:tag` names.
    pub tags: Vec<String>,
}

impl Sandbox {
    /// Runs setup's commands in one fresh container and, when all of them pass, commits the
    /// container to `repository:tag`. The container has the hardening of every step (non-root,
    /// no capabilities, no privilege escalation, limits, labels) and is removed afterwards,
    /// however setup ends.
    pub async fn run_setup(&self, spec: &SetupSpec, cancel: &CancellationToken) -> Result<SetupOutput, SandboxError> {
        let step = &spec.container;
        container::validate(step)?;
        let invalid = |reason: String| SandboxError::InvalidStep { step: step.step.clone(), reason };
        if !spec.home.starts_with('/') || spec.home.contains("..") || spec.home.trim_matches('/').is_empty() {
            return Err(invalid(format!("the environment's home `{}` is not an absolute directory", spec.home)));
        }
        if cancel.is_cancelled() {
            return Ok(SetupOutput { commands: vec![cancelled(Duration::ZERO)], image: None });
        }
        if !self.image_exists(&step.image).await.map_err(|error| SandboxError::Engine {
            what: "looking up the sandbox image",
            detail: format!("{error:#}"),
        })? {
            return Err(SandboxError::ImageMissing { image: step.image.clone() });
        }
        let name = container::container_name(step, JobId::generate().short());
        let created = self
            .create_bounded_container(&name, container::setup_container_body(step, IDLE_SCRIPT), step.limits.disk_bytes)
            .await;
        let (id, layer_bounded) = match created {
            Ok(created) => created,
            Err(error) if is_not_found(&error) => return Err(SandboxError::ImageMissing { image: step.image.clone() }),
            Err(error) => return Err(SandboxError::engine("creating the setup container")(error)),
        };
        let guard = RemovalGuard { docker: self.docker.clone(), id: Some(id.clone()) };
        let result = self.run_setup_in(&id, spec, layer_bounded, cancel).await;
        guard.remove().await;
        result
    }

    async fn run_setup_in(
        &self,
        id: &str,
        spec: &SetupSpec,
        layer_bounded: bool,
        cancel: &CancellationToken,
    ) -> Result<SetupOutput, SandboxError> {
        let step = &spec.container;
        let (uid, gid) = user_ids(&step.user);
        let home = spec.home.trim_matches('/');
        self.docker
            .upload_to_container(
                id,
                Some(UploadToContainerOptionsBuilder::new().path("/").build()),
                bollard::body_full(directory_tar(home, uid, gid).into()),
            )
            .await
            .map_err(SandboxError::engine("creating the environment's home in the setup container"))?;
        // All the commands together are one step against the disk bound. The workspace is read-only
        // to them, so only errand's directory (and the writable layer) can grow.
        let disk = DiskWatch::start(
            &self.docker,
            &step.step,
            vec![step.errand_dir.clone()],
            step.limits.disk_bytes,
            (!layer_bounded).then(|| id.to_owned()),
        )
        .await?;
        self.docker.start_container(id, None).await.map_err(SandboxError::engine("starting the setup container"))?;

        let deadline = Instant::now() + step.timeout;
        let mut outputs = Vec::new();
        for command in &spec.commands {
            let output = self.run_setup_command(id, step, command, deadline, &disk, cancel).await?;
            let passed = output.exit_code == 0
                && !output.timed_out
                && !output.cancelled
                && !output.oom_killed
                && output.disk_exceeded.is_none();
            outputs.push(output);
            if !passed {
                // A timeout, cancellation or the disk bound already killed the container; a failure stops it here.
                self.kill(id).await?;
                return Ok(SetupOutput { commands: outputs, image: None });
            }
        }
        // Committed stopped, so nothing changes the files while they are read.
        self.kill(id).await?;
        let labels = spec
            .labels
            .clone()
            .into_iter()
            // The setup container's own labels would be the image's, and so every container's
            // started from it: a container someone runs from the image by hand is not errand's.
            .chain([LABEL_MANAGED, LABEL_JOB, LABEL_STEP].map(|label| (label.to_owned(), String::new())))
            .collect();
        let config = ContainerConfig {
            labels: Some(labels),
            // Instead of the idle loop, for whoever runs the image by hand.
            entrypoint: Some(vec!["sh".to_owned()]),
            ..ContainerConfig::default()
        };
        let options = CommitContainerOptionsBuilder::new()
            .container(id)
            .repo(&spec.repository)
            .tag(&spec.tag)
            .pause(false)
            .build();
        let committed = self
            .docker
            .commit_container(options, config)
            .await
            .map_err(SandboxError::engine("committing the setup container to an image"))?;
        Ok(SetupOutput { commands: outputs, image: Some(committed.id) })
    }

    /// Runs one setup command as an exec in the running setup container, until `deadline` or until
    /// setup has written more than its disk bound.
    async fn run_setup_command(
        &self,
        id: &str,
        step: &StepSpec,
        command: &str,
        deadline: Instant,
        disk: &DiskWatch,
        cancel: &CancellationToken,
    ) -> Result<StepOutput, SandboxError> {
        let started = Instant::now();
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec!["sh", "-c", command]),
                    user: Some(step.user.as_str()),
                    working_dir: Some(WORKSPACE_DIR),
                    privileged: Some(false),
                    ..CreateExecOptions::default()
                },
            )
            .await
            .map_err(SandboxError::engine("starting a setup command"))?;
        let started_exec =
            self.docker.start_exec(&exec.id, None).await.map_err(SandboxError::engine("starting a setup command"))?;
        let StartExecResults::Attached { mut output, .. } = started_exec else {
            return Err(SandboxError::Engine {
                what: "starting a setup command",
                detail: "the engine did not attach to its output".to_owned(),
            });
        };
        let mut tail = OutputTail::default();
        let (mut timed_out, mut was_cancelled, mut disk_exceeded) = (false, false, false);
        let until_deadline = tokio::time::sleep_until(deadline);
        tokio::pin!(until_deadline);
        // Pinned out of the loop, so that each chunk of output does not start the measuring over.
        let over_disk_bound = disk.until_exceeded();
        tokio::pin!(over_disk_bound);
        loop {
            tokio::select! {
                chunk = output.next() => match chunk {
                    Some(Ok(chunk)) => tail.push(chunk.as_ref()),
                    Some(Err(error)) => return Err(SandboxError::engine("reading a setup command's output")(error)),
                    None => break,
                },
                () = &mut until_deadline => { timed_out = true; break }
                () = cancel.cancelled() => { was_cancelled = true; break }
                () = &mut over_disk_bound => { disk_exceeded = true; break }
            }
        }
        let killed = timed_out || was_cancelled || disk_exceeded;
        if killed {
            // The container goes, and every process in it with it.
            self.kill(id).await?;
        }
        let duration = started.elapsed();
        // A command can write past the bound and end between two measurements.
        if !killed {
            disk_exceeded = disk.exceeded().await;
        }
        let exit_code = self.exec_exit_code(&exec.id).await?;
        let oom_killed = exit_code != 0
            && self
                .docker
                .inspect_container(id, None)
                .await
                .map_err(SandboxError::engine("inspecting the setup container"))?
                .state
                .and_then(|state| state.oom_killed)
                .unwrap_or(false);
        Ok(StepOutput {
            exit_code: if killed { 137 } else { exit_code },
            duration,
            output_tail: tail.into_text(),
            timed_out,
            oom_killed,
            cancelled: was_cancelled,
            disk_exceeded: disk_exceeded.then_some(step.limits.disk_bytes),
        })
    }

    /// The exit code of an exec whose output has ended. The engine may close the output a moment
    /// before it records the exit, so this waits (a bounded time) for the record.
    async fn exec_exit_code(&self, exec: &str) -> Result<i64, SandboxError> {
        let give_up = Instant::now() + EXEC_EXIT_GRACE;
        loop {
            let inspect =
                self.docker.inspect_exec(exec).await.map_err(SandboxError::engine("inspecting a setup command"))?;
            match (inspect.running, inspect.exit_code) {
                (Some(false), Some(code)) => return Ok(code),
                _ if Instant::now() >= give_up => return Ok(inspect.exit_code.unwrap_or(137)),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// The image's id, labels and names; `None` when the engine has no such image.
    pub async fn inspect_image(&self, image: &str) -> anyhow::Result<Option<ImageInfo>> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(ImageInfo {
                id: inspect.id.unwrap_or_default(),
                labels: inspect.config.and_then(|config| config.labels).unwrap_or_default(),
                tags: inspect.repo_tags.unwrap_or_default(),
            })),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(anyhow::anyhow!(engine_detail(&error)))
                .with_context(|| format!("asking the Docker engine for image `{image}`")),
        }
    }

    /// Names `image` (an id or a name) `repository:tag` as well, taking the name from any image
    /// that had it. Returns false when there is no such image.
    pub async fn tag_image(&self, image: &str, repository: &str, tag: &str) -> anyhow::Result<bool> {
        let options = TagImageOptionsBuilder::new().repo(repository).tag(tag).build();
        match self.docker.tag_image(image, Some(options)).await {
            Ok(()) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(anyhow::anyhow!(engine_detail(&error)))
                .with_context(|| format!("naming image `{image}` {repository}:{tag}")),
        }
    }

    /// Removes `image` without force: a name is untagged, and the image deleted with its last
    /// name. Returns false when it is gone already or still in use (a container, other names).
    pub async fn remove_image(&self, image: &str) -> anyhow::Result<bool> {
        let options = RemoveImageOptionsBuilder::new().force(false).noprune(false).build();
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(true),
            Err(error) if is_not_found(&error) || is_conflict(&error) => Ok(false),
            Err(error) => {
                Err(anyhow::anyhow!(engine_detail(&error))).with_context(|| format!("removing image `{image}`"))
            }
        }
    }
}

fn cancelled(duration: Duration) -> StepOutput {
    StepOutput {
        exit_code: -1,
        duration,
        output_tail: String::new(),
        timed_out: false,
        oom_killed: false,
        cancelled: true,
        disk_exceeded: None,
    }
}

/// The numeric uid and gid of a validated `uid[:gid]`.
fn user_ids(user: &str) -> (u32, u32) {
    let mut ids = user.split(':').map(|id| id.parse::<u32>().unwrap_or(u32::MAX));
    let uid = ids.next().unwrap_or(u32::MAX);
    (uid, ids.next().unwrap_or(uid))
}

/// A tar archive holding one directory, `path` (relative, at most 100 bytes), owned by
/// `uid:gid` with mode 0755. The engine creates missing parents as root, and keeps the owner
/// written here (its archive API is `docker cp` without the client's rewrite to root).
fn directory_tar(path: &str, uid: u32, gid: u32) -> Vec<u8> {
    let mut header = [0u8; 512];
    let mut put = |offset: usize, field: &[u8]| header[offset..offset + field.len()].copy_from_slice(field);
    let name = format!("{}/", path.trim_end_matches('/'));
    put(0, &name.as_bytes()[..name.len().min(100)]);
    put(100, b"0000755\0");
    put(108, format!("{uid:07o}\0").as_bytes());
    put(116, format!("{gid:07o}\0").as_bytes());
    put(124, b"00000000000\0");
    put(136, b"00000000000\0");
    put(148, b"        ");
    put(156, b"5");
    put(257, b"ustar\0");
    put(263, b"00");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    // Two empty blocks end an archive.
    tar.extend([0u8; 1024]);
    tar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_archive_is_one_directory_owned_by_the_sandbox_user() {
        let tar = directory_tar("home/errand", 10001, 10002);
        assert_eq!(tar.len(), 1536);
        assert_eq!(&tar[..12], b"home/errand/");
        assert_eq!(&tar[108..116], b"0023421\0", "uid 10001 in octal");
        assert_eq!(&tar[116..124], b"0023422\0");
        assert_eq!(tar[156], b'5', "a directory");
        // The checksum is the sum of the header's bytes with its own field read as spaces.
        let mut header = tar[..512].to_vec();
        let written = String::from_utf8_lossy(&header[148..154]).into_owned();
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(&written, 8).expect("octal"), sum);
        assert!(tar[512..].iter().all(|&b| b == 0));
    }

    #[test]
    fn user_ids_come_from_uid_and_gid() {
        assert_eq!(user_ids("10001:10002"), (10001, 10002));
        assert_eq!(user_ids("10001"), (10001, 10001));
    }
}
