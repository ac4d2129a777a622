//! `POST /github/webhook`: an extractor that checks size and signature and hands the handler our
//! own event, and the handler that applies the rate limits, enqueues (or spools) and answers.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::AppState;
use super::github::{self, GithubEvent, ParseContext, PayloadError};
use super::limits::{self, Verdict};
use super::signature::{SignatureError, verify_signature};
use super::spool::{Spool, SpoolError};
use crate::job::Job;
use crate::queue::Enqueued;
use crate::request::{self, Reply, Trigger};

pub(super) const DELIVERY_HEADER: &str = "x-github-delivery";
pub(super) const EVENT_HEADER: &str = "x-github-event";
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// GitHub's delivery ids are GUIDs; anything longer or stranger is not used as a queue key.
const MAX_DELIVERY_ID_LEN: usize = 100;

/// A delivery that passed the size limit and the signature check, read into our own event.
pub(super) struct VerifiedDelivery {
    /// `X-GitHub-Delivery`, the idempotency key of the delivery (redeliveries repeat it).
    delivery: Option<String>,
    event: GithubEvent,
}

/// Why a webhook request is refused, and with which status.
#[derive(Debug, thiserror::Error)]
pub(super) enum WebhookError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read")]
    Unreadable,
    #[error("signature refused: {0}")]
    Signature(#[from] SignatureError),
    #[error("no X-GitHub-Event header")]
    MissingEvent,
    #[error("no usable X-GitHub-Delivery header")]
    MissingDelivery,
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("the queue is unavailable")]
    QueueUnavailable,
    #[error("the queue is unavailable and {0}")]
    Spool(#[from] SpoolError),
}

impl WebhookError {
    fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Unreadable | Self::MissingEvent | Self::MissingDelivery | Self::Payload(_) => StatusCode::BAD_REQUEST,
            Self::QueueUnavailable | Self::Spool(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        // Refusals are expected (scanners, misconfigured hooks) and logged without the body.
        match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => tracing::error!(error = %self, "webhook not accepted"),
            _ => tracing::warn!(error = %self, "webhook refused"),
        }
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl FromRequest<AppState> for VerifiedDelivery {
    type Rejection = WebhookError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let settings = &state.0.settings;
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                WebhookError::TooLarge(settings.max_body_bytes)
            } else {
                WebhookError::Unreadable
            }
        })?;
        // The signature is checked on the raw bytes before anything else looks at them.
        let signature = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
        verify_signature(&settings.webhook_secrets, signature, &body)?;

        let event = header(&headers, EVENT_HEADER).ok_or(WebhookError::MissingEvent)?;
        let delivery = header(&headers, DELIVERY_HEADER).map(str::to_owned);
        let context = ParseContext {
            mentions: &settings.mentions,
            bot_login: settings.bot_login.as_deref(),
            assignee: settings.trigger_assignee.as_deref(),
            label: settings.trigger_label.as_deref(),
        };
        let event = github::parse_event(event, &body, &context)?;
        Ok(Self { delivery, event })
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

pub(super) async fn github_webhook(
    State(state): State<AppState>,
    verified: VerifiedDelivery,
) -> Result<Response, WebhookError> {
    match verified.event {
        GithubEvent::Ping { zen, hook_id } => {
            tracing::info!(?hook_id, "ping");
            Ok((StatusCode::OK, Json(json!({ "ok": true, "zen": zen }))).into_response())
        }
        GithubEvent::Ignored(reason) => {
            let reason = reason.describe();
            tracing::debug!(%reason, "delivery ignored");
            Ok(ignored(&reason))
        }
        GithubEvent::Trigger(trigger) => accept_trigger(&state, verified.delivery, &trigger).await,
    }
}

/// Plans the trigger into a job, counts it against the rate limits, and enqueues it (or spools
/// it while the queue is away); answers 202 with the job's id, 200 for a duplicate, 429 for a
/// requester who was told about a limit already.
pub(super) async fn accept_trigger(
    state: &AppState,
    delivery: Option<String>,
    trigger: &Trigger,
) -> Result<Response, WebhookError> {
    let shared = &state.0;
    let settings = &shared.settings;
    // Every command gets an answer in the thread: a task runs the agent; help, status, stop, a
    // malformed command get a reply, posted by the acknowledger at once (or the worker).
    let job = request::plan(trigger, &shared.queue, settings.queue_timeout).await;
    let delivery = delivery
        .filter(|d| d.len() <= MAX_DELIVERY_ID_LEN && d.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(WebhookError::MissingDelivery)?;
    let dedup_key = trigger.dedup_key.clone().unwrap_or_else(|| format!("github:{delivery}"));

    // While the spool holds jobs the queue is known to be failing (or just back): new jobs queue
    // up behind them, in order, without each request waiting for the queue to time out.
    if let Some(spool) = shared.spool.as_ref().filter(|spool| !spool.is_empty()) {
        return spool_job(spool, &job, &dedup_key).await;
    }
    let job = match admit(state, trigger, job).await {
        Ok(job) => job,
        Err(refused) => return Ok(refused),
    };
    enqueue(state, trigger, job, &dedup_key).await
}

/// The job, or the reply that replaces it when the requester or the repository is over a rate
/// limit; `Err` with a 429 when the requester was told already.
async fn admit(state: &AppState, trigger: &Trigger, job: Job) -> Result<Job, Response> {
    let settings = &state.0.settings;
    let limits = &settings.rate_limits;
    match limits::check(&state.0.queue, limits, &trigger.requested_by, &trigger.repo, settings.queue_timeout).await {
        Verdict::Allowed => Ok(job),
        // The delivery's dedup key is kept, so a redelivery does not reply twice.
        Verdict::Tell { scope, limit, retry_after } => Ok(trigger.reply_job(Reply::RateLimited {
            scope,
            limit,
            window_secs: limits.window.as_secs(),
            retry_after_secs: whole_seconds(retry_after),
        })),
        Verdict::Refuse { retry_after } => Err(rate_limited(retry_after)),
    }
}

/// Enqueues the job under its idempotency key; spools it when the queue fails and a spool is
/// configured (a timed-out enqueue may still have happened: replaying it finds the key).
async fn enqueue(state: &AppState, trigger: &Trigger, job: Job, dedup_key: &str) -> Result<Response, WebhookError> {
    let shared = &state.0;
    let timeout = shared.settings.queue_timeout;
    let enqueued = match tokio::time::timeout(timeout, shared.queue.enqueue(job.clone(), dedup_key)).await {
        Ok(Ok(enqueued)) => enqueued,
        failed => {
            let error = match failed {
                Ok(Err(error)) => format!("{error:#}"),
                _ => format!("no answer in {timeout:?}"),
            };
            tracing::error!(%error, spool = shared.spool.is_some(), "could not enqueue a job");
            // Without a spool GitHub shows the 503 and the delivery can be redelivered by hand.
            let spool = shared.spool.as_ref().ok_or(WebhookError::QueueUnavailable)?;
            return spool_job(spool, &job, dedup_key).await;
        }
    };
    match enqueued {
        Enqueued::Accepted { position } => {
            tracing::info!(job = %job.id, repo = %trigger.repo, issue = ?trigger.about, position, "job queued");
            if let Some(acks) = &shared.acks {
                // Never wait here: a full channel only means the worker acknowledges a bit later.
                if let Err(error) = acks.try_send(job.id.clone()) {
                    tracing::debug!(%error, "acknowledgement left to the worker");
                }
            }
            Ok((StatusCode::ACCEPTED, Json(json!({ "job_id": job.id, "position": position }))).into_response())
        }
        Enqueued::Duplicate { job_id } => {
            tracing::info!(job = %job_id, "duplicate delivery");
            Ok((StatusCode::OK, Json(json!({ "duplicate_of": job_id }))).into_response())
        }
    }
}

/// Writes the job to the spool and answers 202, or 503 when the spool is full or failing.
async fn spool_job(spool: &Spool, job: &Job, dedup_key: &str) -> Result<Response, WebhookError> {
    spool.push(job, dedup_key).await?;
    tracing::warn!(job = %job.id, waiting = spool.len(), "job spooled until the queue answers");
    Ok((StatusCode::ACCEPTED, Json(json!({ "job_id": job.id, "spooled": true }))).into_response())
}

/// A wait in whole seconds, rounded up.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The answer to a request over a rate limit whose requester was told already.
fn rate_limited(retry_after: Duration) -> Response {
    let seconds = whole_seconds(retry_after);
    let body = Json(json!({ "error": "rate limit reached", "retry_after_seconds": seconds }));
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, seconds.to_string())], body).into_response()
}

/// The answer to a delivery that starts nothing: 200 with the reason (GitHub's delivery log shows it).
fn ignored(reason: &str) -> Response {
    (StatusCode::OK, Json(json!({ "ignored": reason }))).into_response()
}
