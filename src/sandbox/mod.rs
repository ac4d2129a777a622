//! Docker sandboxes: each step of a rollout runs in a fresh container with limits, no network and no credentials.
//!
//! No network means none at all, unless the repository asks for the open network or for an allowlist; an
//! allowlisted step reaches its hosts only through an egress proxy in the worker ([`Sandbox::open_egress`]).
//!
//! One step is one container running `sh -c <script>`; the steps of an attempt share the host
//! workspace bind-mounted at `/workspace` (and errand's task and summary files at `/errand`).
//! Containers are removed when the step ends, however it ends: a guard removes them even when
//! the step's future is dropped or panics, and [`Sandbox::remove_leftovers`] finds any that a
//! crashed worker left behind by their `errand.*` labels.
//!
//! Setup is the exception: its commands share one container ([`Sandbox::run_setup`]), which is
//! then committed to an image, so that what setup installs outside the workspace is there for
//! the steps after it.

mod container;
mod disk;
mod egress;
mod read_back;
mod setup;
mod tail;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures::StreamExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::container::{ERRAND_DIR, LABEL_JOB, LABEL_MANAGED, LABEL_STEP, OBJECTS_DIR, WORKSPACE_DIR};
pub use self::egress::{AddressPolicy, Allowlist, EGRESS_NETWORK, EgressLease, NotPublic};
pub use self::read_back::{Part, Refusal, read_back};
pub use self::setup::{ImageInfo, SetupOutput, SetupSpec};
use self::tail::OutputTail;
pub use self::tail::{TAIL_BYTES, TAIL_LINES};
use crate::job::JobId;

/// How long a killed container may take to stop before the step gives up waiting for it.
const KILL_GRACE: Duration = Duration::from_secs(30);

/// Resource limits of one step's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Memory, and memory plus swap (so no swap), in bytes.
    pub memory_bytes: i64,
    /// CPU time in billionths of a CPU: `1_000_000_000` is one CPU.
    pub nano_cpus: i64,
    /// How many processes and threads may exist at once.
    pub pids: i64,
    /// What the step may add to the disk, in bytes: to its writable layer, `/workspace` and `/errand`
    /// together (see `disk`).
    pub disk_bytes: u64,
}

/// What a step's container may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkAccess {
    /// Nothing but its own loopback (`network_mode: none`).
    None,
    /// The engine's default bridge, and through it whatever the worker host reaches.
    Open,
    /// An internal network with no way out but the egress proxy at `proxy_url`, which lets through only the
    /// hosts of its [`EgressLease`]. The step gets the proxy in `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY`
    /// (and their lowercase forms).
    Proxied {
        /// The internal network's id or name.
        network: String,
        proxy_url: String,
    },
}

/// One step: what to run, where, as whom and within which limits.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub job: JobId,
    /// What the step is for: `agent`, `check:test`, `setup`. Part of the container's name.
    pub step: String,
    pub image: String,
    /// Run as `sh -c script` in `/workspace`.
    pub script: String,
    /// Host directory bind-mounted read-write at `/workspace`.
    pub workspace: std::path::PathBuf,
    /// Host directory bind-mounted read-write at `/errand` (task file, summary file).
    pub errand_dir: std::path::PathBuf,
    /// The repository's git objects (its mirror's), bind-mounted read-only at [`OBJECTS_DIR`]
    /// for the sandbox's own `.git` to borrow; `None` mounts nothing.
    pub objects: Option<std::path::PathBuf>,
    /// The step's entire environment; nothing of the worker's own environment is passed on.
    pub env: Vec<(String, String)>,
    /// Numeric `uid:gid`, never root.
    pub user: String,
    pub network: NetworkAccess,
    pub limits: Limits,
    pub timeout: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    /// The script's exit code; 137 when it was killed (timeout, cancellation, out of memory).
    pub exit_code: i64,
    /// From start to exit.
    pub duration: Duration,
    /// The last [`TAIL_LINES`] lines (at most [`TAIL_BYTES`]) of stdout and stderr, interleaved,
    /// invalid UTF-8 replaced.
    pub output_tail: String,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub cancelled: bool,
    /// Set when the step wrote more than its disk bound (and was killed, unless it had ended already):
    /// the bound, in bytes.
    pub disk_exceeded: Option<u64>,
}

/// Why a step could not run at all. A script failing, timing out or running out of memory is
/// not an error but a [`StepOutput`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The image is not on this worker (nothing is ever pulled).
    #[error("the sandbox image `{image}` is not on this worker: build or pull it there")]
    ImageMissing { image: String },
    /// The step asks for something the sandbox refuses (root, no limits, a missing directory).
    #[error("the sandbox refused step `{step}`: {reason}")]
    InvalidStep { step: String, reason: String },
    /// The Docker engine failed or could not be reached.
    #[error("the Docker engine failed while {what}: {detail}")]
    Engine { what: &'static str, detail: String },
}

impl SandboxError {
    fn engine(what: &'static str) -> impl FnOnce(DockerError) -> SandboxError {
        move |error| SandboxError::Engine { what, detail: engine_detail(&error) }
    }
}

/// The Docker engine, and the containers errand runs on it.
#[derive(Debug, Clone)]
pub struct Sandbox {
    docker: Docker,
    /// The internal network of allowlisted steps; [`EGRESS_NETWORK`] but in tests.
    egress_network: String,
    /// The addresses the egress proxy may connect to; [`AddressPolicy::strict`] unless the operator widens it.
    egress_policy: AddressPolicy,
    /// Set once the engine refused to limit a container's writable layer (`disk`), so that later
    /// containers are created without asking again.
    storage_opt_unsupported: Arc<AtomicBool>,
}

impl Sandbox {
    /// Connects to the engine at `DOCKER_HOST` (or the local socket) and agrees on an API
    /// version with it: bollard speaks a newer API than older engines (20.10 speaks 1.41) accept.
    pub async fn connect() -> anyhow::Result<Self> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "the local socket".to_owned());
        let docker = Docker::connect_with_defaults()
            .with_context(|| format!("setting up a Docker client for {host}"))?
            .negotiate_version()
            .await
            .map_err(|error| anyhow::anyhow!(engine_detail(&error)))
            .with_context(|| {
                format!("the Docker engine at {host} is not reachable: start it, or point DOCKER_HOST at it")
            })?;
        Ok(Self {
            docker,
            egress_network: EGRESS_NETWORK.to_owned(),
            egress_policy: AddressPolicy::strict(),
            storage_opt_unsupported: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Puts allowlisted steps on the internal network `name` instead of [`EGRESS_NETWORK`], so that tests
    /// can have networks of their own and remove them.
    pub fn with_egress_network(self, name: impl Into<String>) -> Self {
        Self { egress_network: name.into(), ..self }
    }

    /// Lets the egress proxy connect to the addresses `policy` admits instead of public addresses only.
    pub fn with_egress_policy(self, policy: AddressPolicy) -> Self {
        Self { egress_policy: policy, ..self }
    }

    /// Opens an egress proxy for one attempt of `job` that lets through exactly `hosts` (entries as in
    /// `allow_hosts`, see [`Allowlist`]); its steps use it through [`EgressLease::access`]. Creates the
    /// internal network when it is missing. The proxy stops when the lease is dropped.
    pub async fn open_egress(&self, job: &JobId, hosts: &[String]) -> anyhow::Result<EgressLease> {
        egress::open(&self.docker, &self.egress_network, job, hosts, self.egress_policy.clone()).await
    }

    /// Whether `image` is on this worker.
    pub async fn image_exists(&self, image: &str) -> anyhow::Result<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(anyhow::anyhow!(engine_detail(&error)))
                .with_context(|| format!("asking the Docker engine for image `{image}`")),
        }
    }

    /// Force-removes the containers errand started (all of them, or those of `job`), running
    /// or not; returns how many were removed.
    pub async fn remove_leftovers(&self, job: Option<&JobId>) -> anyhow::Result<usize> {
        let mut labels = vec![format!("{LABEL_MANAGED}=1")];
        if let Some(job) = job {
            labels.push(format!("{LABEL_JOB}={job}"));
        }
        let filters = HashMap::from([("label", labels)]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
            .await
            .map_err(|error| anyhow::anyhow!(engine_detail(&error)))
            .context("listing errand's containers")?;
        let mut removed = 0;
        for id in containers.into_iter().filter_map(|c| c.id) {
            match self.docker.remove_container(&id, Some(force_removal())).await {
                Ok(()) => removed += 1,
                // Removed meanwhile (its own step finished), or already being removed.
                Err(error) if is_not_found(&error) || is_conflict(&error) => {}
                Err(error) => {
                    return Err(anyhow::anyhow!(engine_detail(&error)))
                        .with_context(|| format!("removing leftover container {id}"));
                }
            }
        }
        Ok(removed)
    }

    /// Runs one step in a fresh container and removes the container afterwards.
    ///
    /// A timeout or `cancel` kills the container and is reported in the output, as is an
    /// out-of-memory kill; an error means the step could not run (or be observed) at all.
    pub async fn run_step(&self, spec: &StepSpec, cancel: &CancellationToken) -> Result<StepOutput, SandboxError> {
        container::validate(spec)?;
        if cancel.is_cancelled() {
            return Ok(StepOutput {
                exit_code: -1,
                duration: Duration::ZERO,
                output_tail: String::new(),
                timed_out: false,
                oom_killed: false,
                cancelled: true,
                disk_exceeded: None,
            });
        }
        if !self.image_exists(&spec.image).await.map_err(|error| SandboxError::Engine {
            what: "looking up the sandbox image",
            detail: format!("{error:#}"),
        })? {
            return Err(SandboxError::ImageMissing { image: spec.image.clone() });
        }
        // The tail of a v7 UUID is random: unique enough for steps that share a job and name.
        let name = container::container_name(spec, JobId::generate().short());
        let created =
            self.create_bounded_container(&name, container::container_body(spec), spec.limits.disk_bytes).await;
        let (id, layer_bounded) = match created {
            Ok(created) => created,
            // Removed between the check and the create.
            Err(error) if is_not_found(&error) => return Err(SandboxError::ImageMissing { image: spec.image.clone() }),
            Err(error) => return Err(SandboxError::engine("creating the step's container")(error)),
        };
        let guard = RemovalGuard { docker: self.docker.clone(), id: Some(id.clone()) };
        let result = self.run_created(&id, spec, layer_bounded, cancel).await;
        guard.remove().await;
        result
    }

    async fn run_created(
        &self,
        id: &str,
        spec: &StepSpec,
        layer_bounded: bool,
        cancel: &CancellationToken,
    ) -> Result<StepOutput, SandboxError> {
        let disk = disk::DiskWatch::start(
            &self.docker,
            &spec.step,
            vec![spec.workspace.clone(), spec.errand_dir.clone()],
            spec.limits.disk_bytes,
            (!layer_bounded).then(|| id.to_owned()),
        )
        .await?;
        let started = Instant::now();
        self.docker.start_container(id, None).await.map_err(SandboxError::engine("starting the step's container"))?;

        let mut timed_out = false;
        let mut cancelled = false;
        let mut disk_exceeded = false;
        let mut exit = tokio::select! {
            exit = self.wait_for_exit(id) => Some(exit?),
            // `sleep` (unlike `started + timeout`) copes with an effectively unlimited timeout.
            () = tokio::time::sleep(spec.timeout) => { timed_out = true; None }
            () = cancel.cancelled() => { cancelled = true; None }
            () = disk.until_exceeded() => { disk_exceeded = true; None }
        };
        if exit.is_none() {
            exit = Some(self.kill(id).await?);
        }
        let duration = started.elapsed();
        // A step can write past its bound and exit between two measurements.
        if !(timed_out || cancelled || disk_exceeded) {
            disk_exceeded = disk.exceeded().await;
        }

        let state = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(SandboxError::engine("inspecting the step's container"))?
            .state
            .unwrap_or_default();
        // The state is the authority; the wait's answer covers an engine that leaves it out.
        let exit_code = state.exit_code.or(exit).unwrap_or(-1);
        let output_tail = self.output_tail(id).await?;
        Ok(StepOutput {
            exit_code,
            duration,
            output_tail,
            timed_out,
            oom_killed: state.oom_killed.unwrap_or(false),
            cancelled,
            disk_exceeded: disk_exceeded.then_some(spec.limits.disk_bytes),
        })
    }

    /// Waits until the container has stopped; returns its exit code.
    async fn wait_for_exit(&self, id: &str) -> Result<i64, SandboxError> {
        let options = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut waits = self.docker.wait_container(id, Some(options));
        match waits.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports every non-zero exit as an error.
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(error)) => Err(SandboxError::engine("waiting for the step to finish")(error)),
            None => Err(SandboxError::Engine {
                what: "waiting for the step to finish",
                detail: "the engine closed the wait without an exit code".to_owned(),
            }),
        }
    }

    /// Kills the container and waits (a bounded time) until it has stopped.
    async fn kill(&self, id: &str) -> Result<i64, SandboxError> {
        match self.docker.kill_container(id, Some(KillContainerOptionsBuilder::new().signal("SIGKILL").build())).await {
            // 409: it stopped on its own in the meantime.
            Err(error) if !is_conflict(&error) => {
                return Err(SandboxError::engine("killing the step's container")(error));
            }
            _ => {}
        }
        tokio::time::timeout(KILL_GRACE, self.wait_for_exit(id)).await.unwrap_or(Err(SandboxError::Engine {
            what: "killing the step's container",
            detail: format!("it was still running {KILL_GRACE:?} after SIGKILL"),
        }))
    }

    /// The tail of the stopped container's stdout and stderr, interleaved as written.
    async fn output_tail(&self, id: &str) -> Result<String, SandboxError> {
        // The engine cuts to the last lines itself; OutputTail bounds the bytes, since one
        // "line" may be gigabytes long.
        let tail_lines = TAIL_LINES.to_string();
        let options = LogsOptionsBuilder::new().follow(false).stdout(true).stderr(true).tail(&tail_lines).build();
        let mut logs = self.docker.logs(id, Some(options));
        let mut tail = OutputTail::default();
        while let Some(chunk) = logs.next().await {
            let chunk = chunk.map_err(SandboxError::engine("reading the step's output"))?;
            tail.push(chunk.as_ref());
        }
        Ok(tail.into_text())
    }
}

/// Removes a step's container when the step ends. Normally [`RemovalGuard::remove`] does it in
/// line; if the step's future is dropped (a cancelled job, a panic), `Drop` hands the removal
/// to the runtime instead, so the container does not outlive the step.
struct RemovalGuard {
    docker: Docker,
    id: Option<String>,
}

impl RemovalGuard {
    async fn remove(mut self) {
        if let Some(id) = self.id.take() {
            remove_container(&self.docker, &id).await;
        }
    }
}

impl Drop for RemovalGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let docker = self.docker.clone();
                runtime.spawn(async move { remove_container(&docker, &id).await });
            }
            Err(_) => tracing::warn!(container = %id, "no runtime left to remove a step's container"),
        }
    }
}

async fn remove_container(docker: &Docker, id: &str) {
    match docker.remove_container(id, Some(force_removal())).await {
        Ok(()) => {}
        Err(error) if is_not_found(&error) => {}
        // remove_leftovers picks it up later (a worker calls it before each job).
        Err(error) => {
            tracing::warn!(container = %id, error = %engine_detail(&error), "could not remove a step's container")
        }
    }
}

fn force_removal() -> bollard::query_parameters::RemoveContainerOptions {
    RemoveContainerOptionsBuilder::new().force(true).v(true).build()
}

fn status_of(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn is_not_found(error: &DockerError) -> bool {
    status_of(error) == Some(404)
}

fn is_conflict(error: &DockerError) -> bool {
    status_of(error) == Some(409)
}

/// What the engine said, in words: its own message when it answered, else bollard's.
fn engine_detail(error: &DockerError) -> String {
    match error {
        DockerError::DockerResponseServerError { status_code, message } => {
            format!("{} (HTTP {status_code})", message.trim())
        }
        other => other.to_string(),
    }
}
