//! The HTTP server: verifies and parses webhooks, enqueues jobs, answers at once; serves the job API.
//!
//! Routes: `POST /github/webhook`, `GET /api/jobs`, `GET /api/jobs/{id}`, `GET /healthz`.
//! Nothing slow happens inside a request: no GitHub API call, no agent. The acknowledgement a
//! person sees (the 👀 reaction, the tracking comment) is the worker's, nudged through `acks`.

mod api;
pub mod github;
pub mod signature;
mod webhook;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use http::Request;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_http::trace::TraceLayer;

pub use self::signature::{SignatureError, parse_secrets, verify_signature};
use crate::job::JobId;
use crate::queue::Queue;

/// GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The name that summons errand when none is configured (`ERRAND_MENTIONS`).
pub const DEFAULT_MENTION: &str = "@agent";

/// What the ingress needs, loaded once at start-up.
#[derive(Debug, Clone)]
pub struct IngressSettings {
    /// `ERRAND_GITHUB_WEBHOOK_SECRET` (see [`parse_secrets`]): any one of them verifies a
    /// delivery, so a secret can be rotated without downtime. `SecretString` never prints.
    pub webhook_secrets: Vec<SecretString>,
    /// `ERRAND_MENTIONS`: the names that summon errand, e.g. `@agent`.
    pub mentions: Vec<String>,
    /// errand's own GitHub login; its comments never start a job (bots in general never do).
    pub bot_login: Option<String>,
    /// `ERRAND_API_TOKEN`: bearer token of the job API; without it the API answers 404.
    pub api_token: Option<SecretString>,
    /// Larger request bodies are answered with 413 before anything else is done with them.
    pub max_body_bytes: usize,
}

impl Default for IngressSettings {
    /// No secret (every webhook is refused), the default mention, no bot login, no job API and
    /// GitHub's body cap.
    fn default() -> Self {
        Self {
            webhook_secrets: Vec::new(),
            mentions: vec![DEFAULT_MENTION.to_owned()],
            bot_login: None,
            api_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
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
}

/// The ingress routes. `acks`, when given, hears the id of every new job (best effort).
pub fn router(settings: impl Into<Arc<IngressSettings>>, queue: Queue, acks: Option<mpsc::Sender<JobId>>) -> Router {
    let settings = settings.into();
    if settings.webhook_secrets.is_empty() {
        tracing::warn!("no GitHub webhook secret is configured: every webhook will be refused");
    }
    let max_body_bytes = settings.max_body_bytes;
    let state = AppState(Arc::new(Shared { settings, queue, acks }));
    Router::new()
        .route("/github/webhook", post(webhook::github_webhook).layer(DefaultBodyLimit::max(max_body_bytes)))
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
