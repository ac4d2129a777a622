//! `POST /slack/events` and `POST /slack/commands`: Slack's signed requests, verified, read into
//! a request, checked against the allowlist, given a repository, and enqueued like a GitHub
//! comment. Slack wants an answer within 3 seconds, so nothing here calls Slack: what must be
//! said without a job (a refusal, "which repository?") is posted by a task of its own, once per
//! message, and a slash command is answered in the HTTP response itself.
//!
//! Slack resends an event it did not see answered in time (`X-Slack-Retry-Num`). A retry carries
//! the same `event_id` and message, so the message's idempotency key makes it a duplicate: no
//! second job, and no request lost when the first answer really did not arrive.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use serde_json::json;

use super::AppState;
use super::webhook::{WebhookError, accept_trigger};
use crate::chat::api::SlackApi;
use crate::chat::events::{self, ParseContext, Placement, SlackEvent, SlackRequest, SlashCommandError};
use crate::chat::resolve::{Allowlist, ChannelDefaults, RepoSource, Resolution, resolve_repository};
use crate::chat::signature::{SlackSignatureError, verify_slack_request};
use crate::job::JobRecord;
use crate::publish::render::{SlackNotice, slack_notice};
use crate::queue::Queue;
use crate::request::command::{Command, ParseError, Parsed};
use crate::request::ids::{MessageTs, SlackChannel, SlackTeam, ThreadKey};
use crate::request::{SlackMessage, SlackPlace, SlackTarget, Trigger};

const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SIGNATURE_HEADER: &str = "x-slack-signature";

/// How long errand remembers that it answered a message without a job (a refusal, a question).
const NOTICE_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// What the Slack routes need, loaded once at start-up.
#[derive(Clone)]
pub struct SlackIngress {
    /// `ERRAND_SLACK_SIGNING_SECRET`: any one verifies a request (rotation).
    pub signing_secrets: Vec<SecretString>,
    /// errand's own Slack user id (`auth.test`), when known; else the payload's authorizations say.
    pub bot_user_id: Option<String>,
    pub allowlist: Allowlist,
    pub defaults: ChannelDefaults,
    /// Posts the answers that need no job, outside the request.
    pub api: SlackApi,
}

impl std::fmt::Debug for SlackIngress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackIngress")
            .field("bot_user_id", &self.bot_user_id)
            .field("allowlist", &self.allowlist)
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

/// Why a Slack request is refused at the edge.
fn refuse(status: StatusCode, error: &str) -> Response {
    tracing::warn!(%status, error, "Slack request refused");
    (status, Json(json!({ "error": error }))).into_response()
}

/// Why a Slack request stops at the edge before it is read.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("Slack is not configured on this errand")]
    NotConfigured,
    #[error("signature refused: {0}")]
    Signature(#[from] SlackSignatureError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NotConfigured => StatusCode::NOT_FOUND,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
        };
        refuse(status, &self.to_string())
    }
}

/// Checks the signature over the raw body before anything else looks at it.
fn verify<'a>(state: &'a AppState, headers: &HeaderMap, body: &[u8]) -> Result<&'a SlackIngress, Refused> {
    let slack = state.0.settings.slack.as_deref().ok_or(Refused::NotConfigured)?;
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    verify_slack_request(&slack.signing_secrets, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), body, Utc::now())?;
    Ok(slack)
}

/// `POST /slack/events`.
pub(super) async fn slack_events(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let slack = match verify(&state, &headers, &body) {
        Ok(slack) => slack,
        Err(refused) => return refused.into_response(),
    };
    let context = ParseContext { bot_user_id: slack.bot_user_id.as_deref(), mentions: &state.0.settings.mentions };
    let request = match events::parse_event(&body, &context) {
        Ok(SlackEvent::UrlVerification { challenge }) => {
            return (StatusCode::OK, Json(json!({ "challenge": challenge }))).into_response();
        }
        Ok(SlackEvent::Ignored(reason)) => {
            let reason = reason.describe();
            tracing::debug!(%reason, "Slack event ignored");
            return (StatusCode::OK, Json(json!({ "ignored": reason }))).into_response();
        }
        Ok(SlackEvent::Request(request)) => request,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Some(retry) = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()) {
        tracing::info!(retry, event = request.event_id, "Slack retried an event; its key makes it a duplicate");
    }
    if !slack.allowlist.allows(request.requester_team(), &request.channel, &request.user) {
        tracing::info!(channel = request.channel, user = request.user, "Slack request outside the allowlist");
        notify(&state.0.queue, slack, &request, slack_notice(&SlackNotice::NotAllowed { user: &request.user }));
        return answered("refused: not on the allowlist");
    }
    // A request later in a thread continues the thread's last task, in its repository.
    let earlier = earlier_in_thread(&state, &request).await;
    let Some((target, command)) = locate(slack, &request, earlier.as_ref()) else {
        let configured = slack.defaults.repositories();
        let mention = request.slack_mention();
        let question = slack_notice(&SlackNotice::WhichRepository { configured: &configured, mention: &mention });
        notify(&state.0.queue, slack, &request, question);
        return answered("no repository: asked which");
    };
    let trigger = event_trigger(&request, target, command, earlier);
    slack_answer(accept_trigger(&state, Some(request.event_id.clone()), &trigger).await)
}

/// The repository a request works in, the issue or pull request it linked, and the command with
/// the repository taken out of its instruction; `None` when errand must ask. A repository the
/// text names comes first, then the thread's (`earlier`), then the channel's default.
fn locate(
    slack: &SlackIngress,
    request: &SlackRequest,
    earlier: Option<&JobRecord>,
) -> Option<(SlackTarget, Result<Command, ParseError>)> {
    let text = match &request.command {
        Ok(Command::Task { instruction, .. }) => instruction.as_str(),
        _ => request.text.as_str(),
    };
    let (repo, item, instruction) = match resolve_repository(text, &request.channel, &slack.defaults) {
        Resolution::Resolved(found) if found.source != RepoSource::ChannelDefault || earlier.is_none() => {
            (found.repo, found.item, found.instruction)
        }
        _ => (earlier?.job.repo.clone(), None, text.trim().to_owned()),
    };
    let command = match &request.command {
        Ok(Command::Task { options, .. }) => Ok(Command::Task { instruction, options: options.clone() }),
        other => other.clone(),
    };
    Some((SlackTarget { repo, item }, command))
}

/// The thread's last task, when the request is a reply in a thread that has one (bounded by the
/// queue timeout; a slow queue only loses the continuation).
async fn earlier_in_thread(state: &AppState, request: &SlackRequest) -> Option<JobRecord> {
    if request.placement != Placement::InThread {
        return None;
    }
    let thread = ThreadKey::slack(&SlackChannel::new(&request.channel), &MessageTs::new(&request.thread_ts));
    match tokio::time::timeout(state.0.settings.queue_timeout, state.0.queue.last_in_thread(&thread)).await {
        Ok(Ok(last)) => last,
        Ok(Err(e)) => {
            tracing::warn!(error = format!("{e:#}"), "could not read the thread's last job");
            None
        }
        Err(_) => None,
    }
}

/// The request as a trigger, continuing the thread's earlier task when there is one.
fn event_trigger(
    request: &SlackRequest,
    target: SlackTarget,
    command: Result<Command, ParseError>,
    earlier: Option<JobRecord>,
) -> Trigger {
    let message = SlackMessage {
        place: place(&request.team_id, &request.channel, &request.user),
        ts: MessageTs::new(&request.ts),
        thread_ts: MessageTs::new(&request.thread_ts),
        dedup_key: request.dedup_key(),
    };
    let asked = Parsed { mention: request.mention.clone(), command };
    Trigger::slack_message(message, target, asked, earlier.map(|record| record.job.id))
}

fn place(team: &str, channel: &str, user: &str) -> SlackPlace {
    SlackPlace { team: SlackTeam::new(team), channel: SlackChannel::new(channel), user: user.to_owned() }
}

/// Slack only needs to hear that the event arrived: every outcome but a queue outage is a 200.
/// A queue outage without room in the spool is a 503, and Slack's retry brings the event back.
fn slack_answer(accepted: Result<Response, WebhookError>) -> Response {
    match accepted {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            parts.status = StatusCode::OK;
            Response::from_parts(parts, body)
        }
        Err(error) => error.into_response(),
    }
}

fn answered(what: &str) -> Response {
    (StatusCode::OK, Json(json!({ "answered": what }))).into_response()
}

/// Posts `text` in the request's thread outside the request, once per message (a retried event
/// finds the note and posts nothing).
fn notify(queue: &Queue, slack: &SlackIngress, request: &SlackRequest, text: String) {
    let (queue, api) = (queue.clone(), slack.api.clone());
    let (channel, thread_ts, key) =
        (request.channel.clone(), request.thread_ts.clone(), format!("slack-notice:{}", request.dedup_key()));
    tokio::spawn(async move {
        match queue.try_lock(&key, NOTICE_MEMORY).await {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not check for an earlier note; posting"),
        }
        if let Err(e) = api.post_in_thread(&channel, &thread_ts, &text).await {
            tracing::error!(error = %e, channel, "could not post a note in Slack");
            let _ = queue.unlock(&key).await;
        }
    });
}

/// `POST /slack/commands`: `/errand <task> [in owner/repo]`. Answered at once with a message
/// only the requester sees; the work is answered in a thread errand starts in the channel.
pub(super) async fn slack_commands(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let slack = match verify(&state, &headers, &body) {
        Ok(slack) => slack,
        Err(refused) => return refused.into_response(),
    };
    let slash = match events::parse_slash_command(&body) {
        Ok(slash) => slash,
        Err(SlashCommandError::SslCheck) => return StatusCode::OK.into_response(),
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if !slack.allowlist.allows(&slash.team_id, &slash.channel_id, &slash.user_id) {
        return ephemeral(&slack_notice(&SlackNotice::NotAllowed { user: &slash.user_id }));
    }
    let mention = slash.command.clone();
    let (instruction, options) = match slash.parse_command() {
        Ok(Command::Task { instruction, options }) => (instruction, options),
        Ok(Command::Help) => return ephemeral(&slack_notice(&SlackNotice::Help { mention: &mention })),
        Ok(other) => {
            let notice = SlackNotice::ThreadCommandInSlash { mention: &mention, command: other.name() };
            return ephemeral(&slack_notice(&notice));
        }
        Err(error) => return ephemeral(&slack_notice(&SlackNotice::Malformed { error: &error, mention: &mention })),
    };
    let found = match resolve_repository(&instruction, &slash.channel_id, &slack.defaults) {
        Resolution::Resolved(found) => found,
        Resolution::Unresolved => {
            let configured = slack.defaults.repositories();
            return ephemeral(&slack_notice(&SlackNotice::WhichRepository {
                configured: &configured,
                mention: &mention,
            }));
        }
    };
    let asked = Parsed { mention, command: Ok(Command::Task { instruction: found.instruction, options }) };
    let target = SlackTarget { repo: found.repo, item: found.item };
    let place = place(&slash.team_id, &slash.channel_id, &slash.user_id);
    let trigger = Trigger::slash_command(place, target, asked, slash.trigger_id.as_deref());
    let delivery = slash.trigger_id.clone().or_else(|| Some(crate::job::JobId::generate().to_string()));
    match accept_trigger(&state, delivery, &trigger).await {
        Ok(response) if response.status().is_success() => {
            ephemeral(&slack_notice(&SlackNotice::OnIt { repo: &trigger.repo }))
        }
        Ok(_) => ephemeral(&slack_notice(&SlackNotice::TooMuchWork)),
        Err(error) => {
            tracing::error!(%error, "slash command not accepted");
            ephemeral(&slack_notice(&SlackNotice::CouldNotQueue))
        }
    }
}

/// A slash command's answer that only its requester sees.
fn ephemeral(text: &str) -> Response {
    (StatusCode::OK, Json(json!({ "response_type": "ephemeral", "text": text }))).into_response()
}

/// Reads the Slack settings: `None` when Slack is not configured; an error for a half or
/// invalid configuration.
pub fn settings(
    signing_secrets: Vec<SecretString>,
    api: Option<SlackApi>,
    allowlist: Allowlist,
    defaults: ChannelDefaults,
) -> anyhow::Result<Option<Arc<SlackIngress>>> {
    match (signing_secrets.is_empty(), api) {
        (true, None) => Ok(None),
        (false, Some(api)) => {
            if allowlist.is_off() {
                tracing::warn!(
                    "Slack is connected but no channel or user is allowed: every request gets a polite refusal (set ERRAND_SLACK_ALLOWED_CHANNELS or ERRAND_SLACK_ALLOWED_USERS)"
                );
            }
            Ok(Some(Arc::new(SlackIngress { signing_secrets, bot_user_id: None, allowlist, defaults, api })))
        }
        (true, Some(_)) => anyhow::bail!("ERRAND_SLACK_BOT_TOKEN is set without ERRAND_SLACK_SIGNING_SECRET"),
        (false, None) => anyhow::bail!("ERRAND_SLACK_SIGNING_SECRET is set without ERRAND_SLACK_BOT_TOKEN"),
    }
}
