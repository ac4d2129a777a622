//! The HTTP server: verifies and parses webhooks, enqueues jobs, answers at once; serves the job API.
//!
//! Routes: `POST /github/webhook`, `POST /slack/events`, `POST /slack/commands` (when Slack is
//! configured, [`slack`]), `GET /api/jobs`, `GET /api/jobs/{id}`, `GET /healthz`.
//! Nothing slow happens inside a request: no GitHub API call, no agent. A request becomes a job
//! through `request::plan`; the acknowledgement a person sees (the 👀 reaction, the tracking
//! comment) is posted outside the request by the acknowledger, nudged through `acks` (or by the
//! worker that claims the job).
//!
//! Accepted webhooks are not lost to a queue outage when a spool directory is configured
//! ([`spool`]): the job is written there, answered 202, and replayed by a background task that
//! `router` starts and that stops when the router is dropped (after `serve` returns). Requests over
//! the per-requester or per-repository rate limits ([`limits`]) get one reply saying so.

mod api;
pub mod github;
pub mod limits;
pub mod signature;
pub mod slack;
pub mod spool;
mod webhook;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use http::Request;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;
use tower_http::trace::TraceLayer;

pub use self::limits::RateLimits;
pub use self::signature::{SignatureError, parse_secrets, verify_signature};
use self::spool::Spool;
use crate::config::Mentions;
use crate::job::JobId;
use crate::queue::Queue;
use crate::secrets::Redactor;

/// GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The most jobs the spool holds by default (`ERRAND_SPOOL_MAX_JOBS`).
pub const DEFAULT_SPOOL_MAX_JOBS: usize = 10_000;

/// The most bytes the spool holds by default (`ERRAND_SPOOL_MAX_BYTES`): 256 MiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Slack's requests are small; anything larger is not from Slack.
pub const MAX_SLACK_BODY_BYTES: usize = 1024 * 1024;

/// How long a request waits for the queue by default before the job goes to the spool.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the ingress needs, loaded once at start-up.
#[derive(Debug, Clone)]
pub struct IngressSettings {
    /// `ERRAND_GITHUB_WEBHOOK_SECRET` (see [`parse_secrets`]): any one of them verifies a
    /// delivery, so a secret can be rotated without downtime. `SecretString` never prints.
    pub webhook_secrets: Vec<SecretString>,
    /// `ERRAND_MENTIONS`: the names that summon errand, e.g. `@agent`.
    pub mentions: Mentions,
    /// errand's own GitHub login; its comments never start a job (bots in general never do).
    pub bot_login: Option<String>,
    /// `ERRAND_TRIGGER_ASSIGNEE`: assigning an issue to this login starts a task.
    pub trigger_assignee: Option<String>,
    /// `ERRAND_TRIGGER_LABEL`: labelling an issue with this starts a task.
    pub trigger_label: Option<String>,
    /// `ERRAND_API_TOKEN`: bearer token of the job API; without it the API answers 404.
    pub api_token: Option<SecretString>,
    /// Larger request bodies are answered with 413 before anything else is done with them.
    pub max_body_bytes: usize,
    /// `ERRAND_SPOOL_DIR`: where jobs wait while the queue is unavailable (one directory per
    /// `serve` process). `None`: no spool, a queue failure is answered 503 and the delivery is
    /// lost unless redelivered by hand.
    pub spool_dir: Option<PathBuf>,
    /// `ERRAND_SPOOL_MAX_JOBS`: when the spool holds this many jobs, webhooks are answered 503.
    pub spool_max_jobs: usize,
    /// `ERRAND_SPOOL_MAX_BYTES`: when the spool's files reach this size, webhooks are answered 503.
    pub spool_max_bytes: u64,
    /// How long a request waits for the queue (rate counters, enqueue) before giving up on it.
    pub queue_timeout: Duration,
    /// `ERRAND_RATE_LIMIT_REQUESTER`, `ERRAND_RATE_LIMIT_REPOSITORY`: new jobs per minute.
    pub rate_limits: RateLimits,
    /// `ERRAND_SLACK_*`: the Slack routes answer 404 without it.
    pub slack: Option<Arc<slack::SlackIngress>>,
    /// The process's secrets: the job API's answers pass it.
    pub redactor: Redactor,
}

impl Default for IngressSettings {
    /// No secret (every webhook is refused), the default mention, no bot login, no job API,
    /// GitHub's body cap, no spool (bounds of 10,000 jobs and 256 MiB once one is set), a 2 s
    /// queue timeout, and 10 jobs per requester and 60 per repository per minute.
    fn default() -> Self {
        Self {
            webhook_secrets: Vec::new(),
            mentions: Mentions::default(),
            bot_login: None,
            trigger_assignee: None,
            trigger_label: None,
            api_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            spool_dir: None,
            spool_max_jobs: DEFAULT_SPOOL_MAX_JOBS,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            rate_limits: RateLimits::default(),
            slack: None,
            redactor: Redactor::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
struct AppState(Arc<Shared>);

struct Shared {
    settings: Arc<IngressSettings>,
    queue: Queue,
    /// Tells the worker a job was accepted, so it can acknowledge it at once; may be full.
    acks: Option<mpsc::Sender<JobId>>,
    /// Where jobs wait while the queue is unavailable, when configured.
    spool: Option<Arc<Spool>>,
    /// Stops the spool's replay task when the last handler state is dropped.
    _replay: Option<DropGuard>,
}

/// The ingress routes. `acks`, when given, hears the id of every new job (best effort).
///
/// With `spool_dir` set, opens the spool and starts its replay task (this needs a Tokio runtime).
/// A spool that cannot be opened is logged and the router runs without one; [`try_router`]
/// refuses instead.
pub fn router(settings: impl Into<Arc<IngressSettings>>, queue: Queue, acks: Option<mpsc::Sender<JobId>>) -> Router {
    let settings = settings.into();
    match try_router(settings.clone(), queue.clone(), acks.clone()) {
        Ok(router) => router,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "running without a spool: a queue outage loses webhooks");
            let settings = IngressSettings { spool_dir: None, ..(*settings).clone() };
            build(Arc::new(settings), queue, acks, None)
        }
    }
}

/// [`router`], but a spool directory that cannot be opened is an error.
pub fn try_router(
    settings: impl Into<Arc<IngressSettings>>,
    queue: Queue,
    acks: Option<mpsc::Sender<JobId>>,
) -> anyhow::Result<Router> {
    let settings = settings.into();
    let spool = match &settings.spool_dir {
        Some(dir) => Some(Arc::new(
            Spool::open(dir, settings.spool_max_jobs, settings.spool_max_bytes)
                .with_context(|| format!("opening the spool directory {}", dir.display()))?,
        )),
        None => None,
    };
    Ok(build(settings, queue, acks, spool))
}

fn build(
    settings: Arc<IngressSettings>,
    queue: Queue,
    acks: Option<mpsc::Sender<JobId>>,
    spool: Option<Arc<Spool>>,
) -> Router {
    if settings.webhook_secrets.is_empty() {
        tracing::warn!("no GitHub webhook secret is configured: every webhook will be refused");
    }
    let max_body_bytes = settings.max_body_bytes;
    let replay = spool
        .as_ref()
        .map(|spool| spool::start_replay(spool.clone(), queue.clone(), acks.clone(), settings.queue_timeout));
    let state = AppState(Arc::new(Shared { settings, queue, acks, spool, _replay: replay }));
    Router::new()
        .route("/github/webhook", post(webhook::github_webhook).layer(DefaultBodyLimit::max(max_body_bytes)))
        .route("/slack/events", post(slack::slack_events).layer(DefaultBodyLimit::max(MAX_SLACK_BODY_BYTES)))
        .route("/slack/commands", post(slack::slack_commands).layer(DefaultBodyLimit::max(MAX_SLACK_BODY_BYTES)))
        .merge(api::routes())
        .route("/healthz", get(|| async { "ok" }))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("reading the listener's address")?;
    tracing::debug!(%address, "serving HTTP");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await.context("serving HTTP")
}

/// One span per request, with GitHub's delivery id when there is one. Headers other than the
/// delivery id and event name are not recorded (they carry signatures and tokens).
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let header = |name: &str| {
        request.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(64).collect::<String>())
    };
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        delivery = header(webhook::DELIVERY_HEADER).as_deref().unwrap_or(""),
        event = header(webhook::EVENT_HEADER).as_deref().unwrap_or(""),
    )
}
