//! A whole errand installation made of real processes, for the fault and attack tests: a Redis
//! of the test's own, the stateful fake GitHub with the calculator, an in-process ingress on the
//! Redis queue, and `errand` processes (`worker`, `serve`, `all`) started on demand with only the
//! settings given here. Waits are on the world (containers, records, requests), never sleeps.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use clap::Parser as _;
use errand::app::ProcessArgs;
use errand::config::{Cli, CliCommand};
use errand::job::{JobId, JobRecord, JobStatus};
use errand::queue::{Queue, QueueSettings, RedisQueue};
use futures::StreamExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::docker::{TEST_IMAGE, docker, sandbox_with_test_image};
use super::fake_github::{FakeGithub, FakePull, TOKEN_BOT_LOGIN};
use super::redis::TestRedis;
use super::signing;
use super::wait::wait_until;
use super::world::{GITHUB_TOKEN, REPO, WEBHOOK_SECRET, seed_calculator};

pub const ERRAND: &str = env!("CARGO_BIN_EXE_errand");

/// Short, so reclaiming a dead worker's job takes seconds.
pub const LEASE: Duration = Duration::from_secs(3);
/// The sandbox uid of the first worker: the blocking scripts sleep only as this user.
pub const FIRST_UID: u32 = 10001;
/// Bounds for waits on the world; generous, since builds and benchmarks share the CPU.
pub const STAGE_DEADLINE: Duration = Duration::from_secs(90);
pub const JOB_DEADLINE: Duration = Duration::from_secs(120);

/// `.errand.toml` for the calculator with `agent` and one check named `test`.
pub fn repo_config(agent: &str, check: &str) -> String {
    format!(
        "image = \"{TEST_IMAGE}\"\ntimeout = \"5m\"\n\n[agent]\ncommand = '''{agent}'''\n\n[checks]\ntest = '''{check}'''\n"
    )
}

/// A Redis of the test's own, the fake GitHub with the calculator, an in-process ingress on the
/// Redis queue, and `errand` processes started on demand.
pub struct Installation {
    pub redis: TestRedis,
    pub github: FakeGithub,
    pub queue: Queue,
    pub ingress_url: String,
    pub http: reqwest::Client,
    pub docker: Docker,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    /// Removes the job's containers if the test fails before a worker does.
    pub cleanup: std::sync::Mutex<Vec<JobId>>,
}

impl Installation {
    pub async fn start(errand_toml: &str) -> Installation {
        Self::start_on(errand_toml, TestRedis::start_owned()).await
    }

    /// The installation on a Redis the test chose (e.g. a durable one it crashes).
    pub async fn start_on(errand_toml: &str, redis: TestRedis) -> Installation {
        let _ = rustls::crypto::ring::default_provider().install_default();
        sandbox_with_test_image().await;
        let github = FakeGithub::start().await;
        seed_calculator(&github, errand_toml);

        // The namespace errand's own processes use: the binary cannot choose another.
        let queue = Queue::Redis(
            RedisQueue::connect(redis.url(), QueueSettings { lease: LEASE, max_deliveries: 3 })
                .await
                .expect("connecting to the test's Redis"),
        );
        // `errand serve` without GitHub credentials (the workers acknowledge), assembled and started
        // as production does, on the test's queue. One requester asks for many jobs in the
        // time-out test: no rate limits.
        let argv = [
            "errand",
            "serve",
            "--github-webhook-secret",
            WEBHOOK_SECRET,
            "--bot-login",
            TOKEN_BOT_LOGIN,
            "--rate-limit-requester",
            "0",
            "--rate-limit-repository",
            "0",
            "--redis-url",
            redis.url(),
        ];
        let Ok(Cli { command: CliCommand::Serve(args) }) = Cli::try_parse_from(argv) else {
            panic!("errand serve takes the installation's command line");
        };
        let process = errand::app::Process::assemble(ProcessArgs::serve(&args), Some(queue.clone()))
            .await
            .expect("errand serve assembles");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let ingress_url = format!("http://{}", listener.local_addr().expect("its address"));
        let shutdown = CancellationToken::new();
        tokio::spawn(errand::app::start(process, Some(listener), shutdown.clone()));
        Installation {
            redis,
            github,
            queue,
            ingress_url,
            http: reqwest::Client::new(),
            docker: docker().await,
            dir: tempfile::tempdir().expect("a temp dir for the processes"),
            shutdown,
            cleanup: std::sync::Mutex::default(),
        }
    }

    /// `errand <sub>` with only the settings given here (none of the caller's `ERRAND_*`).
    pub fn errand(&self, sub: &str, name: &str, sandbox_uid: u32, grace: Duration) -> Command {
        let data = self.dir.path().join(format!("data-{name}"));
        std::fs::create_dir_all(&data).expect("the process's data dir");
        let mut cmd = Command::new(ERRAND);
        for (key, _) in std::env::vars() {
            if key.starts_with("ERRAND_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg(sub)
            .env("ERRAND_REDIS_URL", self.redis.url())
            .env("ERRAND_LEASE", format!("{}ms", LEASE.as_millis()))
            .env("ERRAND_MAX_DELIVERIES", "3")
            .env("ERRAND_GITHUB_API_URL", self.github.api_url())
            .env("ERRAND_GITHUB_TOKEN", GITHUB_TOKEN)
            .env("ERRAND_BOT_LOGIN", TOKEN_BOT_LOGIN)
            .env("ERRAND_DATA_DIR", &data)
            .env("ERRAND_DEFAULT_IMAGE", TEST_IMAGE)
            .env("ERRAND_SANDBOX_UID", sandbox_uid.to_string())
            .env("ERRAND_SANDBOX_MEMORY_MB", "256")
            .env("ERRAND_SANDBOX_CPUS", "1")
            .env("ERRAND_SANDBOX_PIDS", "128")
            .env("ERRAND_CONCURRENCY", "1")
            .env("ERRAND_RETRY_DELAY", "100ms")
            .env("ERRAND_SHUTDOWN_GRACE", format!("{}ms", grace.as_millis()))
            .env("ERRAND_GIT_AUTHOR_EMAIL", "errand@example.com")
            .env("ERRAND_LOG", "info");
        cmd
    }

    /// Starts an `errand worker` process.
    pub fn worker(&self, name: &str, sandbox_uid: u32, grace: Duration) -> Process {
        self.worker_with(name, sandbox_uid, grace, &[])
    }

    /// Starts an `errand worker` process with `env` on top of the installation's settings.
    pub fn worker_with(&self, name: &str, sandbox_uid: u32, grace: Duration, env: &[(&str, &str)]) -> Process {
        let mut cmd = self.errand("worker", name, sandbox_uid, grace);
        cmd.envs(env.iter().copied());
        Process::spawn(cmd, name, self.dir.path())
    }

    /// Starts an `errand worker` process as `uid`, not root: in the Docker socket's group (as a
    /// deployment gives it the socket), with its sandboxes running as itself, and its data
    /// directory its own. The fake GitHub must serve git over HTTP (its files are root's).
    pub fn worker_as_user(&self, name: &str, uid: u32, grace: Duration, env: &[(&str, &str)]) -> Process {
        use std::os::unix::fs::MetadataExt as _;
        let mut errand = self.errand("worker", name, uid, grace);
        errand.envs(env.iter().copied());
        // The user must reach its data directory inside this test's private one.
        std::fs::set_permissions(self.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("opening the test's directory to the worker's user");
        let data = self.dir.path().join(format!("data-{name}"));
        std::os::unix::fs::chown(&data, Some(uid), Some(uid)).expect("the worker's data directory is its own");
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|host| host.strip_prefix("unix://").map(str::to_owned))
            .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
        let socket_gid = std::fs::metadata(&socket).expect("the Docker socket").gid();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--groups", &socket_gid.to_string()])
            .args(["--inh-caps=-all", "--"])
            .arg(errand.get_program())
            .args(errand.get_args());
        for (key, value) in errand.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        Process::spawn(cmd, name, self.dir.path())
    }

    /// Starts `errand <sub>` (`serve` or `all`) on a free loopback port and waits until it
    /// answers `/healthz`.
    pub async fn http_process(&self, sub: &str, name: &str, grace: Duration) -> Process {
        self.http_process_with(sub, name, grace, &[]).await.0
    }

    /// [`Installation::http_process`] with `env` on top of the installation's settings; also
    /// returns the process's base URL.
    pub async fn http_process_with(
        &self,
        sub: &str,
        name: &str,
        grace: Duration,
        env: &[(&str, &str)],
    ) -> (Process, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut cmd = self.errand(sub, name, FIRST_UID, grace);
        cmd.env("ERRAND_LISTEN", format!("127.0.0.1:{port}")).env("ERRAND_GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET);
        if sub == "serve" {
            cmd.env_remove("ERRAND_GITHUB_TOKEN");
        }
        cmd.envs(env.iter().copied());
        let process = Process::spawn(cmd, name, self.dir.path());
        let url = format!("http://127.0.0.1:{port}/healthz");
        wait_until(&format!("errand {sub} answers {url}"), STAGE_DEADLINE, async || {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("errand {sub} exited before answering: {status}\n{}", process.log_tail());
            }
            let answer = self.http.get(&url).send().await.ok()?;
            answer.status().is_success().then_some(())
        })
        .await;
        (process, format!("http://127.0.0.1:{port}"))
    }

    /// Comments `@agent fix this` on issue #1 through a signed webhook; returns the job's id.
    pub async fn request_fix(&self) -> JobId {
        let (id, _) = self.request_fix_at(&self.ingress_url, REPO, 1, "fault-delivery-1").await;
        let jobs = self.queue.list(10).await.expect("listing jobs");
        assert_eq!(jobs.len(), 1, "one job is queued: {jobs:?}");
        assert_eq!(jobs[0].job.id, id, "the job the ingress named is queued");
        id
    }

    /// Comments `@agent fix this` on `issue` of `repo` through a signed webhook to the ingress at
    /// `ingress_url` (the in-process one or an `errand serve`); returns the job's id and the
    /// ingress's answer.
    pub async fn request_fix_at(
        &self,
        ingress_url: &str,
        repo: &str,
        issue: u64,
        delivery: &str,
    ) -> (JobId, serde_json::Value) {
        self.comment_at(ingress_url, repo, issue, "@agent fix this", delivery).await
    }

    /// Has `octocat` comment `text` on issue #1 through a signed webhook to the in-process
    /// ingress; returns the job's id.
    pub async fn request(&self, text: &str, delivery: &str) -> JobId {
        self.comment_at(&self.ingress_url, REPO, 1, text, delivery).await.0
    }

    async fn comment_at(
        &self,
        ingress_url: &str,
        repo: &str,
        issue: u64,
        text: &str,
        delivery: &str,
    ) -> (JobId, serde_json::Value) {
        let comment = self.github.add_issue_comment(repo, issue, "octocat", text);
        let payload = serde_json::to_vec(&self.github.issue_comment_webhook(repo, issue, comment)).expect("JSON");
        let answer = self
            .http
            .post(format!("{ingress_url}/github/webhook"))
            .header("X-GitHub-Event", "issue_comment")
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", signing::github_signature(WEBHOOK_SECRET, &payload))
            .header("Content-Type", "application/json")
            .body(payload)
            .send()
            .await
            .expect("the ingress answers");
        let status = answer.status().as_u16();
        let json: serde_json::Value = answer.json().await.expect("a JSON answer");
        assert_eq!(status, 202, "the ingress accepts the request on {repo}#{issue}: {json}");
        let id: JobId = json["job_id"].as_str().and_then(|id| id.parse().ok()).expect("a job id in the answer");
        self.cleanup.lock().unwrap_or_else(|p| p.into_inner()).push(id.clone());
        (id, json)
    }

    pub async fn record(&self, job: &JobId) -> JobRecord {
        self.queue.get(job).await.expect("reading the job").expect("the job exists")
    }

    /// Waits until the job has ended, however it ended; returns its record.
    pub async fn ended(&self, job: &JobId) -> JobRecord {
        wait_until("the job ends", JOB_DEADLINE, async || {
            let record = self.record(job).await;
            record.state.is_terminal().then_some(record)
        })
        .await
    }

    /// The job's containers (running or not), optionally only those of `step`: (id, running).
    pub async fn containers(&self, job: &JobId, step: Option<&str>) -> Vec<(String, bool)> {
        let mut labels = vec![format!("errand.job={job}")];
        labels.extend(step.map(|step| format!("errand.step={step}")));
        let filters = std::collections::HashMap::from([("label", labels)]);
        self.docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
            .await
            .expect("listing containers")
            .into_iter()
            .filter_map(|c| Some((c.id?, c.state == Some(ContainerSummaryStateEnum::RUNNING))))
            .collect()
    }

    /// The steps of the job's containers created since `since` (unix seconds), from the engine's
    /// event log, in order.
    pub async fn containers_created(&self, job: &JobId, since: u64) -> Vec<String> {
        let filters = std::collections::HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("event", vec!["create".to_owned()]),
            ("label", vec![format!("errand.job={job}")]),
        ]);
        let until = (unix_seconds() + 1).to_string();
        let options = EventsOptionsBuilder::new().since(&since.to_string()).until(&until).filters(&filters).build();
        let events: Vec<_> = self.docker.events(Some(options)).collect().await;
        events
            .into_iter()
            .map(|event| {
                let event = event.expect("reading the engine's events");
                let attributes = event.actor.and_then(|actor| actor.attributes).unwrap_or_default();
                attributes.get("errand.step").cloned().unwrap_or_default()
            })
            .collect()
    }

    /// Waits until the job's `step` runs in a container; returns the container's id.
    pub async fn running_container(&self, job: &JobId, step: &str) -> String {
        wait_until(&format!("the job's `{step}` container is running"), STAGE_DEADLINE, async || {
            self.containers(job, Some(step)).await.into_iter().find(|(_, running)| *running).map(|(id, _)| id)
        })
        .await
    }

    pub async fn assert_running(&self, container: &str, what: &str) {
        let state = self.docker.inspect_container(container, None).await.ok().and_then(|c| c.state);
        assert_eq!(
            state.and_then(|s| s.running),
            Some(true),
            "{what} ({container}) is still running before the second worker starts"
        );
    }

    pub async fn wait_until_no_containers(&self, job: &JobId, what: &str) {
        wait_until(what, Duration::from_secs(30), async || self.containers(job, None).await.is_empty().then_some(()))
            .await;
    }

    /// The bodies of the comments on issue #1 that errand wrote.
    pub fn tracking_comments(&self) -> Vec<String> {
        self.tracking_comments_on(REPO, 1)
    }

    /// The bodies of the comments on `issue` of `repo` that errand wrote.
    pub fn tracking_comments_on(&self, repo: &str, issue: u64) -> Vec<String> {
        self.github.comments(repo, issue).into_iter().filter(|c| c.author != "octocat").map(|c| c.body).collect()
    }

    /// The job ends `succeeded` after `deliveries` deliveries, with exactly one pull request
    /// carrying the fix, exactly one tracking comment showing ✅ Done, and none of its
    /// containers left.
    pub async fn assert_done_exactly_once(&self, job: &JobId, deliveries: u32) {
        let pulls = self.assert_done_exactly_once_on(REPO, 1, job, deliveries).await;
        assert_eq!(self.github.pull_requests(REPO).len(), 1, "exactly one pull request in the repository: {pulls:?}");
    }

    /// [`Installation::assert_done_exactly_once`] for the job asked for on `issue` of `repo`: its
    /// pull request is the only one from a branch of that issue, its tracking comment the only
    /// comment errand wrote there. Returns the pull request.
    pub async fn assert_done_exactly_once_on(&self, repo: &str, issue: u64, job: &JobId, deliveries: u32) -> FakePull {
        let record = wait_until("the job succeeds", JOB_DEADLINE, async || {
            let record = self.record(job).await;
            assert!(
                !(record.state.is_terminal() && record.state.status() != JobStatus::Succeeded),
                "the job ended {:?}: {record:?}",
                record.state.status()
            );
            (record.state.status() == JobStatus::Succeeded).then_some(record)
        })
        .await;
        assert_eq!(record.deliveries, deliveries, "deliveries of the job: {record:?}");

        let branch = format!("errand/issue-{issue}-");
        let pulls: Vec<FakePull> =
            self.github.pull_requests(repo).into_iter().filter(|p| p.head.starts_with(&branch)).collect();
        assert_eq!(
            pulls.len(),
            1,
            "exactly one pull request from a branch {branch}* in {repo}: {pulls:?}; errand's comments: {:#?}",
            self.tracking_comments_on(repo, issue)
        );
        let pull = &pulls[0];
        assert!(pull.head.ends_with(job.short()), "the job's branch: {}", pull.head);
        assert_eq!(
            self.github.file_at(repo, &pull.head, "calc.sh").as_deref(),
            Some("add() { echo $(( $1 + $2 )); }\n"),
            "the pull request holds the fix"
        );
        assert_eq!(record.pull_request.as_ref().map(|p| p.number), Some(pull.number), "the job records its PR");

        let tracking = self.tracking_comments_on(repo, issue);
        assert_eq!(tracking.len(), 1, "exactly one tracking comment on #{issue}: {tracking:#?}");
        assert!(tracking[0].contains("✅ **Done**"), "the tracking comment is terminal: {}", tracking[0]);
        assert!(tracking[0].contains(&format!("/pull/{}", pull.number)), "it links the PR: {}", tracking[0]);

        self.wait_until_no_containers(job, "none of the job's containers remains").await;
        pull.clone()
    }

    pub fn assert_alive(&self, process: &Process) {
        let mut child = process.child.lock();
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "worker {} is still running\n{}",
            process.name,
            process.log_tail()
        );
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for job in self.cleanup.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            remove_containers_of(&job);
        }
    }
}

/// Force-removes the job's containers with the docker CLI (from `Drop`, without a runtime).
pub fn remove_containers_of(job: &JobId) {
    let listed = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=errand.job={job}")]).output();
    let Ok(listed) = listed else { return };
    let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout).split_whitespace().map(str::to_owned).collect();
    if !ids.is_empty() {
        let _ =
            Command::new("docker").args(["rm", "-f"]).args(&ids).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A running `errand` process; killed when dropped, and its log printed if the test failed.
pub struct Process {
    pub name: String,
    pub child: ChildCell,
    pub log: PathBuf,
}

/// The child behind a lock, so that `&Process` can ask whether it still runs.
pub struct ChildCell(std::sync::Mutex<Child>);

impl ChildCell {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        self.lock().try_wait()
    }
}

impl Process {
    pub fn spawn(mut cmd: Command, name: &str, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("the process's log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file again"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {ERRAND}: {e}"));
        Process { name: name.to_owned(), child: ChildCell(std::sync::Mutex::new(child)), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().id()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn sigkill(&mut self) {
        let mut child = self.child.lock();
        child.kill().expect("SIGKILL to the worker");
        child.wait().expect("reaping the killed worker");
    }

    /// Sends SIGTERM and waits for the exit; panics if the process outlives `within`.
    pub async fn sigterm_and_wait(&mut self, within: Duration) -> ExitStatus {
        self.signal("TERM");
        let sent_at = Instant::now();
        let name = self.name.clone();
        let status = wait_until(&format!("{name} exits after SIGTERM"), within, async || {
            self.child.try_wait().expect("asking whether the process exited")
        })
        .await;
        eprintln!("{name} exited {status} {:?} after SIGTERM", sent_at.elapsed());
        status
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!("--- last lines of {} ({}) ---\n{tail}", self.name, self.log.display())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let mut child = self.child.lock();
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(child);
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock after 1970").as_secs()
}
