//! Assembling a process from its settings: the queue, the clients, the one redactor, and the
//! halves it runs (the ingress with its acknowledger, the worker). Production and the tests
//! assemble the same way; only the queue may be given (tests isolate theirs).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use crate::chat::api::SlackApi;
use crate::config::{
    AllArgs, DEFAULT_SANDBOX_UID_AS_ROOT, GithubArgs, IngressArgs, QueueArgs, QueueKind, ServeArgs, ServiceSecrets,
    SlackArgs, WorkerArgs, WorkerOptions,
};
use crate::forge::git::{CommitAuthor, Git, MirrorCache};
use crate::forge::{Github, GithubAuth};
use crate::ingress::{self, IngressSettings, RateLimits};
use crate::job::{JobId, JobKind};
use crate::publish::{Publisher, Renderer};
use crate::queue::{MemoryQueue, Queue, QueueSettings, RedisQueue};
use crate::rollout::{Rollout, RolloutSettings};
use crate::sandbox::{Limits, Sandbox};
use crate::secrets::{Redactor, redis_url_password};
use crate::worker::{Worker, WorkerSettings};

/// Opens the queue the settings name; refuses to fall back to memory silently.
pub async fn open_queue(args: &QueueArgs) -> Result<Queue> {
    let settings = QueueSettings { lease: args.lease, max_deliveries: args.max_deliveries.max(1) };
    match (args.queue, &args.redis_url) {
        (QueueKind::Memory, _) => {
            tracing::warn!("using the in-process memory queue: jobs are lost when this process stops");
            Ok(Queue::Memory(MemoryQueue::new(settings)))
        }
        (QueueKind::Redis, Some(url)) => Ok(Queue::Redis(
            RedisQueue::connect(url, settings).await.context("connecting to Redis (ERRAND_REDIS_URL)")?,
        )),
        (QueueKind::Redis, None) => bail!(
            "no queue: set ERRAND_REDIS_URL (or --redis-url) to a Redis server, or pass --queue memory to run on an in-process queue that loses jobs when it stops"
        ),
    }
}

/// Connects to GitHub with the App or the token the settings give.
pub fn connect_github(args: &GithubArgs) -> Result<Option<Github>> {
    let auth = match (&args.github_app_id, &args.github_private_key_file, &args.github_token) {
        (Some(app_id), Some(key_file), _) => {
            let pem = std::fs::read_to_string(key_file)
                .with_context(|| format!("reading the GitHub App private key {}", key_file.display()))?;
            GithubAuth::App { app_id: *app_id, private_key_pem: SecretString::from(pem) }
        }
        (Some(_), None, _) | (None, Some(_), _) => {
            bail!("GitHub App mode needs both ERRAND_GITHUB_APP_ID and ERRAND_GITHUB_PRIVATE_KEY_FILE")
        }
        (None, None, Some(token)) => GithubAuth::Token(token.clone()),
        (None, None, None) => return Ok(None),
    };
    Ok(Some(Github::new(&args.github_api_url, auth, args.github_timeout)?))
}

fn renderer(github: &GithubArgs, redactor: Redactor) -> Renderer {
    Renderer { mention: github.mentions.primary().to_owned(), public_url: github.public_url.clone(), redactor }
}

/// The Slack Web API client, when a bot token is set.
pub fn connect_slack(args: &SlackArgs) -> Result<Option<SlackApi>> {
    args.slack_bot_token
        .as_ref()
        // An empty variable (as compose passes an unset one) is no token.
        .filter(|token| !token.expose_secret().trim().is_empty())
        .map(|token| SlackApi::new(token.clone(), &args.slack_api_url).context("setting up the Slack client"))
        .transpose()
}

/// Every secret this process holds, for the one redactor that everything leaving errand passes:
/// tokens, webhook and signing secrets, the App's private key, the Redis password. A worker adds
/// the values it gives agents ([`build_worker`]).
pub fn known_secrets(
    secrets: &ServiceSecrets,
    github: &GithubArgs,
    slack: &SlackArgs,
    queue: &QueueArgs,
) -> Result<Redactor> {
    let exposed = |s: &SecretString| s.expose_secret().to_owned();
    let mut known: Vec<String> = github.github_token.iter().map(exposed).collect();
    if let Some(key_file) = &github.github_private_key_file {
        let pem = std::fs::read_to_string(key_file)
            .with_context(|| format!("reading the GitHub App private key {}", key_file.display()))?;
        known.push(pem);
    }
    known.extend(slack.slack_bot_token.iter().map(exposed));
    known.extend(slack.slack_signing_secret.iter().map(exposed));
    known.extend(secrets.github_webhook_secret.iter().map(exposed));
    known.extend(secrets.api_token.iter().map(exposed));
    known.extend(queue.redis_url.as_deref().and_then(redis_url_password));
    Ok(Redactor::new(known))
}

/// The Slack side of the ingress; errand's own Slack user id is asked once (it tells mentions of
/// errand from others; without it the events' authorizations say).
async fn slack_ingress(args: &SlackArgs, api: Option<SlackApi>) -> Result<Option<Arc<ingress::slack::SlackIngress>>> {
    let secrets = args.slack_signing_secret.clone();
    let Some(slack) = ingress::slack::settings(secrets, api, args.allowlist(), args.slack_default_repos.clone())?
    else {
        return Ok(None);
    };
    let identity = tokio::time::timeout(std::time::Duration::from_secs(5), slack.api.identity()).await;
    let bot_user_id = match identity {
        Ok(Ok(me)) => Some(me.user_id.clone()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not ask Slack who errand is; reading it from each event");
            None
        }
        Err(_) => None,
    };
    tracing::info!(bot_user_id, "Slack requests accepted at /slack/events and /slack/commands");
    Ok(Some(Arc::new(ingress::slack::SlackIngress { bot_user_id, ..(*slack).clone() })))
}

fn ingress_settings(
    args: &ProcessArgs<'_>,
    ingress: &IngressArgs,
    slack: Option<Arc<ingress::slack::SlackIngress>>,
    redactor: Redactor,
) -> Result<IngressSettings> {
    let (secrets, github) = (args.secrets, args.github);
    if secrets.github_webhook_secret.is_empty() {
        bail!("set ERRAND_GITHUB_WEBHOOK_SECRET: errand refuses unsigned webhooks");
    }
    Ok(IngressSettings {
        slack,
        redactor,
        webhook_secrets: secrets.github_webhook_secret.clone(),
        mentions: github.mentions.clone(),
        bot_login: github.bot_login.clone(),
        trigger_assignee: github.trigger_assignee.clone(),
        trigger_label: github.trigger_label.clone(),
        api_token: secrets.api_token.clone(),
        spool_dir: ingress.spool_dir.clone(),
        spool_max_jobs: ingress.spool_max_jobs,
        spool_max_bytes: ingress.spool_max_bytes,
        rate_limits: RateLimits {
            per_requester: (ingress.rate_limit_requester > 0).then_some(ingress.rate_limit_requester),
            per_repository: (ingress.rate_limit_repository > 0).then_some(ingress.rate_limit_repository),
            ..RateLimits::default()
        },
        ..IngressSettings::default()
    })
}

/// The variables the agent step gets: `ERRAND_AGENT_ENV_FILE` (`NAME=VALUE` lines, `#` comments),
/// then the presets' API key variables that are set in errand's own environment.
fn agent_env(options: &WorkerOptions) -> Result<Vec<(String, SecretString)>> {
    let mut env: Vec<(String, SecretString)> = Vec::new();
    if let Some(file) = &options.agent_env_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for (n, line) in
            text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        {
            let (name, value) = line
                .split_once('=')
                .filter(|(name, _)| !name.trim().is_empty())
                .with_context(|| format!("{} line {}: expected NAME=VALUE", file.display(), n + 1))?;
            env.push((name.trim().to_owned(), SecretString::from(value.to_owned())));
        }
    }
    for name in crate::agents::Preset::ALL.iter().flat_map(|p| p.api_key_vars()) {
        if !env.iter().any(|(known, _)| known == name)
            && let Ok(value) = std::env::var(name)
        {
            env.push(((*name).to_owned(), SecretString::from(value)));
        }
    }
    Ok(env)
}

/// Builds a worker from its settings.
async fn build_worker(
    options: &WorkerOptions,
    github_args: &GithubArgs,
    queue: Queue,
    github: Github,
    slack: Option<SlackApi>,
    redactor: Redactor,
) -> Result<Worker> {
    let sandbox = Sandbox::connect()
        .await
        .context("connecting to the Docker engine")?
        .with_egress_policy(options.egress_allow_nets.clone());
    let git = Git::new(CommitAuthor { name: options.git_author_name.clone(), email: options.git_author_email.clone() })
        .with_network_timeout(github_args.github_timeout);
    let own_uid =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").context("reading this process's uid")?);
    let sandbox_uid = options.sandbox_uid.unwrap_or(if own_uid == 0 { DEFAULT_SANDBOX_UID_AS_ROOT } else { own_uid });
    if sandbox_uid == 0 {
        bail!("ERRAND_SANDBOX_UID must not be 0: sandboxes never run as root");
    }
    let agent_env = agent_env(options)?;
    // What the agent is given is secret too: its values never reach anything errand posts, and
    // every client of this worker redacts with all of them.
    let redactor = redactor.with_all(agent_env.iter().map(|(_, value)| value.expose_secret().to_owned()));
    let git = git.with_redactor(redactor.clone());
    let github = github.with_redactor(redactor.clone());
    let slack = slack.map(|slack| slack.with_redactor(redactor.clone()));
    let mirrors = MirrorCache::new(options.data_dir.join("mirrors"), git);
    let rollout = Rollout::new(
        sandbox,
        mirrors,
        RolloutSettings {
            data_dir: options.data_dir.clone(),
            default_image: options.default_image.clone(),
            default_agent_command: options.agent_command.clone(),
            agent_env,
            custom_agent_env: options.custom_agent_env.clone(),
            sandbox_uid,
            limits: Limits {
                memory_bytes: (options.sandbox_memory_mb * 1024 * 1024) as i64,
                nano_cpus: (options.sandbox_cpus * 1e9) as i64,
                pids: options.sandbox_pids,
                disk_bytes: options.sandbox_disk_mb.saturating_mul(1024 * 1024),
            },
            default_timeout: options.timeout,
            max_timeout: options.max_timeout,
            env_cache_ttl: options.env_cache_ttl,
        },
    );
    let publisher = Publisher::new(renderer(github_args, redactor), queue.clone(), github.clone()).with_slack(slack);
    let settings = WorkerSettings {
        name: format!("{}-{}-{}", hostname(), std::process::id(), &JobId::generate().short()[4..]),
        concurrency: options.concurrency,
        shutdown_grace: options.shutdown_grace,
        retry_delay: options.retry_delay,
        max_attempts: options.max_attempts.max(1),
    };
    Ok(Worker::new(queue, github, rollout, publisher, settings))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "errand".into())
}

/// Posts acknowledgements (👀 and the tracking comment) and replies for jobs `serve` accepted, outside the
/// webhook request.
pub async fn acknowledge_accepted_jobs(mut accepted: mpsc::Receiver<JobId>, queue: Queue, publisher: Publisher) {
    while let Some(id) = accepted.recv().await {
        let (queue, publisher) = (queue.clone(), publisher.clone());
        tokio::spawn(async move {
            let Ok(Some(record)) = queue.get(&id).await else { return };
            let acked = async {
                let conversation = publisher.conversation(&record.job).await?;
                match &record.job.kind {
                    JobKind::Task | JobKind::UseAttempt { .. } => conversation.acknowledge(&record).await,
                    // A reply (help, status, stop) is the whole answer: posted at once, however
                    // busy the workers are; the worker that claims the job finds it posted.
                    JobKind::Reply { reply, mention } => conversation.reply(&record, reply, mention).await,
                }
            };
            // The worker acknowledges when it claims the job if this fails.
            if let Err(e) = acked.await {
                tracing::warn!(job = %id, error = %e, "acknowledging the job failed; the worker will");
            }
        });
    }
}

/// The settings of one process, whichever command it runs: `serve` has no worker, `worker` no
/// ingress, `all` both.
pub struct ProcessArgs<'a> {
    pub secrets: &'a ServiceSecrets,
    pub ingress: Option<&'a IngressArgs>,
    pub worker: Option<&'a WorkerOptions>,
    pub queue: &'a QueueArgs,
    pub github: &'a GithubArgs,
    pub slack: &'a SlackArgs,
}

impl<'a> ProcessArgs<'a> {
    pub fn serve(args: &'a ServeArgs) -> Self {
        let ServeArgs { secrets, ingress, queue, github, slack } = args;
        Self { secrets, ingress: Some(ingress), worker: None, queue, github, slack }
    }

    pub fn worker(args: &'a WorkerArgs) -> Self {
        let WorkerArgs { secrets, worker, queue, github, slack } = args;
        Self { secrets, ingress: None, worker: Some(worker), queue, github, slack }
    }

    pub fn all(args: &'a AllArgs) -> Self {
        let AllArgs { secrets, ingress, worker, queue, github, slack } = args;
        Self { secrets, ingress: Some(ingress), worker: Some(worker), queue, github, slack }
    }
}

/// A process assembled from its settings, ready to run (see [`super::start`]).
pub struct Process {
    pub queue: Queue,
    /// Knows every secret the process holds (a worker's also what it gives agents).
    pub redactor: Redactor,
    /// The HTTP half, when the process serves.
    pub ingress: Option<Ingress>,
    /// The worker half, when the process works.
    pub worker: Option<Worker>,
}

/// The HTTP half of a process: the routes' settings, and the acknowledger that posts 👀 and the
/// tracking comment outside the request (none without GitHub credentials: then the worker does).
pub struct Ingress {
    pub settings: IngressSettings,
    pub acknowledger: Option<Publisher>,
}

impl Process {
    /// Assembles the process `args` describe, on `queue` when one is given (else the one the
    /// settings name).
    pub async fn assemble(args: ProcessArgs<'_>, queue: Option<Queue>) -> Result<Process> {
        let redactor = known_secrets(args.secrets, args.github, args.slack, args.queue)?;
        let queue = match queue {
            Some(queue) => queue,
            None => open_queue(args.queue).await?,
        };
        let github = connect_github(args.github)?;
        let slack = connect_slack(args.slack)?;
        let worker = match args.worker {
            Some(options) => {
                let github = github.clone().context("a worker needs GitHub credentials: ERRAND_GITHUB_TOKEN, or ERRAND_GITHUB_APP_ID with ERRAND_GITHUB_PRIVATE_KEY_FILE")?;
                Some(build_worker(options, args.github, queue.clone(), github, slack.clone(), redactor.clone()).await?)
            }
            None => None,
        };
        // A worker's redactor also knows what it gives agents: the ingress of `all` uses it too.
        let redactor = worker.as_ref().map_or(redactor, |worker| worker.redactor().clone());
        let ingress = match args.ingress {
            Some(ingress) => Some(assemble_ingress(&args, ingress, &queue, github, slack, &redactor).await?),
            None => None,
        };
        Ok(Process { queue, redactor, ingress, worker })
    }
}

/// The HTTP half: its settings (with Slack's, when configured) and the acknowledger.
async fn assemble_ingress(
    args: &ProcessArgs<'_>,
    ingress: &IngressArgs,
    queue: &Queue,
    github: Option<Github>,
    slack: Option<SlackApi>,
    redactor: &Redactor,
) -> Result<Ingress> {
    let slack = slack.map(|slack| slack.with_redactor(redactor.clone()));
    let slack_ingress = slack_ingress(args.slack, slack.clone()).await?;
    let settings = ingress_settings(args, ingress, slack_ingress, redactor.clone())?;
    let acknowledger = github.map(|github| {
        let github = github.with_redactor(redactor.clone());
        Publisher::new(renderer(args.github, redactor.clone()), queue.clone(), github).with_slack(slack)
    });
    if acknowledger.is_none() {
        tracing::warn!("no GitHub credentials: workers will acknowledge requests when they claim them");
    }
    Ok(Ingress { settings, acknowledger })
}
