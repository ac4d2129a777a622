//! A stateful fake Slack: a real HTTP server on a loopback port that holds a small workspace
//! (channels, their messages and threads, reactions) and answers the Web API calls errand makes
//! (`auth.test`, `chat.postMessage`, `chat.update`, `reactions.add`, `conversations.replies`)
//! with Slack-shaped JSON, reached through the real slack-morphism client.
//!
//! As on Slack, every answer is HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error":
//! "<code>"}`, except a rate limit (429 with `Retry-After`). Arguments are read from the query
//! string, a JSON body or a form body, whichever the client sends; the token from
//! `Authorization: Bearer` (or a `token` argument) must be [`BOT_TOKEN`]. Message `ts` values are
//! made like Slack's (`"{seconds}.{6 digits}"`, strictly increasing), and what the bot token posts
//! is authored by the bot user [`BOT_USER_ID`] with `bot_id` [`BOT_ID`].
//!
//! The envelopes start from the examples in Slack's own Web API description
//! (`tests/data/slack/web-api-subset.json`; see `tests/data/slack/SOURCES.md`). That description
//! has no `conversations.replies`, and its `chat.postMessage` example is a legacy bot's message
//! (`subtype: bot_message`, `username`); messages here take the shape Slack gives a bot token's
//! and a person's messages today (`user` + `bot_id` + `bot_profile`; `client_msg_id` + `blocks`).
//!
//! Every request is recorded with the arguments it carried and when it arrived, and faults can be
//! injected per method: a rate limit ([`FakeSlack::rate_limit_next`]), an `ok: false` error
//! ([`FakeSlack::fail_next`]) or an HTTP status ([`FakeSlack::http_error_next`]).
//!
//! It depends on no other test-support module, so a test binary can include it with `#[path]`.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The bot token the fake accepts; any other answers `invalid_auth`.
pub const BOT_TOKEN: &str = "xoxb-0000000001-errand-test-token";
/// The bot user's id: the `user` of what the bot token posts, and `auth.test`'s `user_id`.
pub const BOT_USER_ID: &str = "U0ERRANDBOT";
/// The bot's id: the `bot_id` of what the bot token posts.
pub const BOT_ID: &str = "B0ERRAND";
pub const APP_ID: &str = "A0ERRAND";
pub const TEAM_ID: &str = "T0ERRAND";
const TEAM_NAME: &str = "Errand Test";
const BOT_NAME: &str = "errand";

/// Slack refuses message texts longer than this (`msg_too_long`).
const MAX_TEXT_CHARS: usize = 40_000;
/// `conversations.replies` answers at most this many messages per page, and this many without a
/// `limit`.
const MAX_PAGE: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Public inspection types
// ---------------------------------------------------------------------------------------------

/// A message as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSlackMessage {
    pub ts: String,
    /// The thread it is a reply in (its first message's `ts`); `None` for a message in the
    /// channel itself, also when it started a thread.
    pub thread_ts: Option<String>,
    /// The author's user id ([`BOT_USER_ID`] for the bot's messages).
    pub user: String,
    /// Posted with the bot token.
    pub bot: bool,
    /// The current text.
    pub text: String,
    /// How many times it was edited (`chat.update`).
    pub edits: usize,
    /// Earlier texts, oldest first.
    pub history: Vec<String>,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub http_method: String,
    /// The Web API method, e.g. `chat.postMessage` (the path after `/api/`).
    pub method: String,
    /// The raw query string, empty when there was none.
    pub query: String,
    pub content_type: Option<String>,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    /// The arguments (query string and body merged; the body wins), as a JSON object.
    pub args: Value,
    /// The HTTP status answered.
    pub status: u16,
    /// The `error` code answered, if `ok` was false.
    pub error: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

// ---------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------

/// A handle on a running fake Slack. Clones share the workspace; the server stops when the last
/// handle is dropped (or on [`FakeSlack::stop`]).
#[derive(Clone)]
pub struct FakeSlack {
    inner: Arc<Inner>,
}

struct Inner {
    api_url: String,
    world: Arc<Mutex<World>>,
    /// Cancelled on drop: the server stops accepting and closes idle keep-alive connections.
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl FakeSlack {
    /// Starts the server on `127.0.0.1:0` in the current tokio runtime.
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port for the fake Slack");
        let api_url = format!("http://{}/api", listener.local_addr().expect("its address"));
        let world = Arc::new(Mutex::new(World::default()));
        let router = axum::Router::new().fallback(serve_request).with_state(world.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stopped = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stopped).await {
                eprintln!("the fake Slack stopped: {error}");
            }
        });
        FakeSlack { inner: Arc::new(Inner { api_url, world, shutdown }) }
    }

    /// The Web API base URL, `http://127.0.0.1:PORT/api` (no trailing slash), for
    /// `ERRAND_SLACK_API_URL`.
    pub fn api_url(&self) -> String {
        self.inner.api_url.clone()
    }

    /// The bot token the fake accepts ([`BOT_TOKEN`]), for `ERRAND_SLACK_BOT_TOKEN`.
    pub fn bot_token(&self) -> String {
        BOT_TOKEN.to_owned()
    }

    /// Stops answering; later requests fail to connect.
    pub fn stop(&self) {
        self.inner.shutdown.cancel();
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.inner.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // --- seeding ---------------------------------------------------------------------------

    /// Adds a channel (an id such as `C0123ABCD`), which the bot is a member of.
    pub fn add_channel(&self, channel_id: &str) {
        self.world().channels.entry(channel_id.to_owned()).or_default();
    }

    /// A person's message: `user` posts `text` in the channel, or as a reply in the thread
    /// `thread_ts` (which must be a message of the channel; a reply's `ts` stands for its
    /// thread, as Slack treats it). Returns the new message's `ts`.
    pub fn add_message(&self, channel_id: &str, user: &str, text: &str, thread_ts: Option<&str>) -> String {
        let mut world = self.world();
        let thread = thread_ts.map(|ts| {
            let channel = world.channel(channel_id).unwrap_or_else(|| panic!("no channel {channel_id}"));
            channel.thread_of(ts).unwrap_or_else(|| panic!("{channel_id} has no message {ts}"))
        });
        world.post(channel_id, user, false, text, thread)
    }

    // --- faults ----------------------------------------------------------------------------

    /// The next `times` calls of `method` (e.g. `chat.postMessage`, or `*` for any) are answered
    /// `429 Too Many Requests` with `Retry-After: retry_after_secs` and `{"ok": false, "error":
    /// "ratelimited"}`, without effect.
    pub fn rate_limit_next(&self, method: &str, times: usize, retry_after_secs: u64) {
        self.add_fault(method, times, FaultKind::RateLimited { retry_after_secs });
    }

    /// The next call of `method` (or `*`) is answered `{"ok": false, "error": error}`, without
    /// effect.
    pub fn fail_next(&self, method: &str, error: &str) {
        self.add_fault(method, 1, FaultKind::Error(error.to_owned()));
    }

    /// The next `times` calls of `method` (or `*`) are answered with the HTTP status `status`
    /// (e.g. 503) and a non-JSON body, without effect, as a load balancer in trouble would.
    pub fn http_error_next(&self, method: &str, times: usize, status: u16) {
        self.add_fault(method, times, FaultKind::Status(status));
    }

    fn add_fault(&self, method: &str, times: usize, kind: FaultKind) {
        if times == 0 {
            return;
        }
        self.world().faults.push(Fault { method: method.to_owned(), remaining: times, kind });
    }

    // --- inspection ------------------------------------------------------------------------

    /// Every message of the channel, thread replies included, oldest first.
    pub fn messages(&self, channel_id: &str) -> Vec<FakeSlackMessage> {
        let world = self.world();
        let channel = world.channel(channel_id).unwrap_or_else(|| panic!("no channel {channel_id}"));
        channel.messages.values().map(Message::inspect).collect()
    }

    /// The thread `thread_ts`: its first message, then the replies, oldest first. Empty when the
    /// channel has no message `thread_ts`.
    pub fn thread(&self, channel_id: &str, thread_ts: &str) -> Vec<FakeSlackMessage> {
        let world = self.world();
        let channel = world.channel(channel_id).unwrap_or_else(|| panic!("no channel {channel_id}"));
        channel.thread(thread_ts).into_iter().map(Message::inspect).collect()
    }

    /// The replies in the thread `thread_ts` (its first message left out), oldest first.
    pub fn replies(&self, channel_id: &str, thread_ts: &str) -> Vec<FakeSlackMessage> {
        self.thread(channel_id, thread_ts).into_iter().filter(|m| m.thread_ts.is_some()).collect()
    }

    /// The reactions on message `ts` (`"eyes"`, ...), in the order they were first made; a name
    /// appears once however many users reacted with it.
    pub fn reactions(&self, channel_id: &str, ts: &str) -> Vec<String> {
        let world = self.world();
        let channel = world.channel(channel_id).unwrap_or_else(|| panic!("no channel {channel_id}"));
        channel.find(ts).map(|m| m.reactions.iter().map(|(name, _)| name.clone()).collect()).unwrap_or_default()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.world().requests.clone()
    }

    /// The requests for one Web API method (e.g. `chat.postMessage`), in arrival order.
    pub fn requests_for(&self, method: &str) -> Vec<RecordedRequest> {
        self.world().requests.iter().filter(|r| r.method == method).cloned().collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The workspace
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct World {
    channels: BTreeMap<String, Channel>,
    /// The last `ts` handed out, in microseconds since the epoch.
    last_ts: u64,
    /// Numbers `client_msg_id`s and block ids.
    serial: u64,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
}

#[derive(Default)]
struct Channel {
    /// By `ts` in microseconds, so in order.
    messages: BTreeMap<u64, Message>,
}

impl Channel {
    fn find(&self, ts: &str) -> Option<&Message> {
        self.messages.get(&parse_ts(ts)?)
    }

    fn find_mut(&mut self, ts: &str) -> Option<&mut Message> {
        self.messages.get_mut(&parse_ts(ts)?)
    }

    /// The thread a reply to message `ts` goes to: `ts` itself, or its thread if it is a reply.
    fn thread_of(&self, ts: &str) -> Option<String> {
        self.find(ts).map(|m| m.thread_ts.clone().unwrap_or_else(|| m.ts.clone()))
    }

    /// The message `thread_ts` and its replies, oldest first.
    fn thread(&self, thread_ts: &str) -> Vec<&Message> {
        let Some(parent) = self.find(thread_ts) else { return Vec::new() };
        if parent.thread_ts.is_some() {
            // A reply's `ts` names only that reply, as `conversations.replies` treats it.
            return vec![parent];
        }
        self.messages.values().filter(|m| m.ts == thread_ts || m.thread_ts.as_deref() == Some(thread_ts)).collect()
    }
}

struct Message {
    ts: String,
    thread_ts: Option<String>,
    user: String,
    bot: bool,
    text: String,
    history: Vec<String>,
    /// `(user, ts)` of the last edit.
    edited: Option<(String, String)>,
    /// Reaction names in the order first made, each with the users who made it.
    reactions: Vec<(String, Vec<String>)>,
    /// A person's messages carry a `client_msg_id` and blocks, as Slack's clients send them.
    serial: u64,
}

impl Message {
    fn inspect(&self) -> FakeSlackMessage {
        FakeSlackMessage {
            ts: self.ts.clone(),
            thread_ts: self.thread_ts.clone(),
            user: self.user.clone(),
            bot: self.bot,
            text: self.text.clone(),
            edits: self.history.len(),
            history: self.history.clone(),
        }
    }
}

impl World {
    fn channel(&self, channel_id: &str) -> Option<&Channel> {
        self.channels.get(channel_id)
    }

    /// A `ts` later than every earlier one: now, or one microsecond after the last.
    fn next_ts(&mut self) -> (u64, String) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_micros() as u64;
        self.last_ts = now.max(self.last_ts + 1);
        (self.last_ts, format_ts(self.last_ts))
    }

    /// Adds a message; `thread_ts` must already be resolved to a thread's first message.
    fn post(&mut self, channel_id: &str, user: &str, bot: bool, text: &str, thread_ts: Option<String>) -> String {
        let (key, ts) = self.next_ts();
        self.serial += 1;
        let message = Message {
            ts: ts.clone(),
            thread_ts,
            user: user.to_owned(),
            bot,
            text: text.to_owned(),
            history: Vec::new(),
            edited: None,
            reactions: Vec::new(),
            serial: self.serial,
        };
        let channel = self.channels.get_mut(channel_id).unwrap_or_else(|| panic!("no channel {channel_id}"));
        channel.messages.insert(key, message);
        ts
    }

    /// A message as the Web API shows it, with its thread fields.
    fn message_json(&self, channel: &Channel, message: &Message) -> Value {
        let mut json = json!({ "type": "message", "text": message.text, "user": message.user, "ts": message.ts });
        if message.bot {
            json["bot_id"] = json!(BOT_ID);
            json["app_id"] = json!(APP_ID);
            json["bot_profile"] = json!({
                "id": BOT_ID,
                "app_id": APP_ID,
                "name": BOT_NAME,
                "icons": { "image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png" },
                "deleted": false,
                "updated": 1_700_000_000,
                "team_id": TEAM_ID,
            });
        } else {
            json["client_msg_id"] = json!(format!("00000000-0000-4000-8000-{:012}", message.serial));
            json["blocks"] = json!([{
                "type": "rich_text",
                "block_id": format!("b{}", message.serial),
                "elements": [{ "type": "rich_text_section", "elements": [{ "type": "text", "text": message.text }] }],
            }]);
        }
        json["team"] = json!(TEAM_ID);
        if let Some((user, ts)) = &message.edited {
            json["edited"] = json!({ "user": user, "ts": ts });
        }
        if !message.reactions.is_empty() {
            let reactions: Vec<Value> = message
                .reactions
                .iter()
                .map(|(name, users)| json!({ "name": name, "users": users, "count": users.len() }))
                .collect();
            json["reactions"] = json!(reactions);
        }
        match &message.thread_ts {
            Some(thread_ts) => {
                json["thread_ts"] = json!(thread_ts);
                if let Some(parent) = channel.find(thread_ts) {
                    json["parent_user_id"] = json!(parent.user);
                }
            }
            None => {
                let replies: Vec<&Message> =
                    channel.messages.values().filter(|m| m.thread_ts.as_deref() == Some(&message.ts)).collect();
                if let Some(latest) = replies.last() {
                    let mut users: Vec<&str> = Vec::new();
                    for reply in &replies {
                        if !users.contains(&reply.user.as_str()) {
                            users.push(&reply.user);
                        }
                    }
                    json["thread_ts"] = json!(message.ts);
                    json["reply_count"] = json!(replies.len());
                    json["reply_users_count"] = json!(users.len());
                    json["latest_reply"] = json!(latest.ts);
                    json["reply_users"] = json!(users);
                    json["is_locked"] = json!(false);
                    json["subscribed"] = json!(false);
                }
            }
        }
        json
    }
}

struct Fault {
    /// A Web API method, or `*`.
    method: String,
    remaining: usize,
    kind: FaultKind,
}

#[derive(Clone)]
enum FaultKind {
    RateLimited { retry_after_secs: u64 },
    Error(String),
    Status(u16),
}

/// Slack's `ts`: seconds, a dot, six digits of microseconds.
fn format_ts(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn parse_ts(ts: &str) -> Option<u64> {
    let (secs, micros) = ts.split_once('.')?;
    if micros.len() != 6 || !secs.bytes().chain(micros.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(secs.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?)
}

/// Slack's cursors are opaque base64; this one is `next_ts:<micros>` like the ones Slack hands out.
fn encode_cursor(next: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("next_ts:{next}"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("next_ts:")?.parse().ok()
}

/// The example responses of `tests/data/slack/web-api-subset.json`, by path.
struct Templates {
    post_message: Value,
    update: Value,
    auth_test: Value,
}

static TEMPLATES: LazyLock<Templates> = LazyLock::new(|| {
    let spec: Value = serde_json::from_str(include_str!("../data/slack/web-api-subset.json"))
        .expect("tests/data/slack/web-api-subset.json is JSON");
    let example = |path: &str| {
        let operation = spec["paths"][path].as_object().and_then(|o| o.values().next()).cloned().unwrap_or_default();
        let example = operation["responses"]["200"]["examples"]["application/json"].clone();
        assert!(example.is_object(), "web-api-subset.json has a 200 example for {path}");
        example
    };
    Templates {
        post_message: example("/chat.postMessage"),
        update: example("/chat.update"),
        auth_test: example("/auth.test"),
    }
});

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// An answer before it becomes an HTTP response.
struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn ok(mut fields: Value) -> Reply {
        fields["ok"] = json!(true);
        Reply { status: 200, body: fields, headers: Vec::new() }
    }

    /// Slack's answer to a call that failed: HTTP 200 and `ok: false`.
    fn error(code: &str) -> Reply {
        Reply { status: 200, body: json!({ "ok": false, "error": code }), headers: Vec::new() }
    }

    fn error_code(&self) -> Option<String> {
        (self.body["ok"] == json!(false)).then(|| self.body["error"].as_str().unwrap_or_default().to_owned())
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = if self.body.is_null() {
            (status, "<html><body>upstream trouble</body></html>").into_response()
        } else {
            (status, axum::Json(self.body)).into_response()
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// The one axum handler: everything is answered by [`World::answer`] under the workspace's
/// lock, so each request sees and leaves a consistent workspace.
async fn serve_request(
    axum::extract::State(world): axum::extract::State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    world.answer(at, &method, &uri, &headers, &body).into_response()
}

/// A call's arguments and who made it.
struct Call {
    args: Map<String, Value>,
    /// Whether the token was [`BOT_TOKEN`]; `None` without a token.
    authed: Option<bool>,
}

impl Call {
    /// An argument as text (Slack takes `"true"` and `true`, `"5"` and `5` alike).
    fn text(&self, name: &str) -> Option<String> {
        match self.args.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

impl World {
    fn answer(&mut self, at: Instant, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let header = |name: axum::http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let authorization = header(axum::http::header::AUTHORIZATION);
        let content_type = header(axum::http::header::CONTENT_TYPE);
        let api_method = uri.path().strip_prefix("/api/").unwrap_or_default().to_owned();
        let query = uri.query().unwrap_or_default().to_owned();

        let (args, reply) = match parse_args(&query, content_type.as_deref(), body) {
            Err(code) => (Value::Null, Reply::error(code)),
            Ok(args) => {
                let bearer = authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).map(str::to_owned);
                let token = bearer.or_else(|| args.get("token").and_then(Value::as_str).map(str::to_owned));
                let call = Call { authed: token.map(|t| t == BOT_TOKEN), args };
                let reply = match self.take_fault(&api_method) {
                    Some(kind) => fault_reply(kind),
                    None => self.route(&api_method, &call),
                };
                (Value::Object(call.args), reply)
            }
        };
        self.requests.push(RecordedRequest {
            http_method: method.as_str().to_owned(),
            method: api_method,
            query,
            content_type,
            authorization,
            args,
            status: reply.status,
            error: reply.error_code(),
            at,
        });
        reply
    }

    fn take_fault(&mut self, api_method: &str) -> Option<FaultKind> {
        let at = self.faults.iter().position(|f| f.method == "*" || f.method == api_method)?;
        let fault = &mut self.faults[at];
        fault.remaining -= 1;
        let kind = fault.kind.clone();
        if fault.remaining == 0 {
            self.faults.remove(at);
        }
        Some(kind)
    }

    fn route(&mut self, api_method: &str, call: &Call) -> Reply {
        match call.authed {
            None => return Reply::error("not_authed"),
            Some(false) => return Reply::error("invalid_auth"),
            Some(true) => {}
        }
        match api_method {
            "auth.test" => self.auth_test(),
            "chat.postMessage" => self.post_message(call),
            "chat.update" => self.update(call),
            "reactions.add" => self.reactions_add(call),
            "conversations.replies" => self.replies(call),
            _ => Reply::error("unknown_method"),
        }
    }

    fn auth_test(&self) -> Reply {
        let mut body = TEMPLATES.auth_test.clone();
        body["url"] = json!("https://errand-test.slack.com/");
        body["team"] = json!(TEAM_NAME);
        body["user"] = json!(BOT_NAME);
        body["team_id"] = json!(TEAM_ID);
        body["user_id"] = json!(BOT_USER_ID);
        body["bot_id"] = json!(BOT_ID);
        body["is_enterprise_install"] = json!(false);
        Reply::ok(body)
    }

    fn post_message(&mut self, call: &Call) -> Reply {
        let Some(channel_id) = call.text("channel") else { return Reply::error("channel_not_found") };
        let Some(channel) = self.channels.get(&channel_id) else { return Reply::error("channel_not_found") };
        let text = call.text("text").unwrap_or_default();
        if text.is_empty() && call.args.get("blocks").is_none() {
            return Reply::error("no_text");
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Reply::error("msg_too_long");
        }
        let thread_ts = match call.text("thread_ts") {
            None => None,
            Some(ts) => match channel.thread_of(&ts) {
                Some(thread) => Some(thread),
                None => return Reply::error("thread_not_found"),
            },
        };
        let ts = self.post(&channel_id, BOT_USER_ID, true, &text, thread_ts);
        let channel = &self.channels[&channel_id];
        let message = self.message_json(channel, channel.find(&ts).expect("the message just posted"));
        let mut body = TEMPLATES.post_message.clone();
        body["channel"] = json!(channel_id);
        body["ts"] = json!(ts);
        body["message"] = message;
        Reply::ok(body)
    }

    fn update(&mut self, call: &Call) -> Reply {
        let Some(channel_id) = call.text("channel") else { return Reply::error("channel_not_found") };
        if !self.channels.contains_key(&channel_id) {
            return Reply::error("channel_not_found");
        }
        let Some(ts) = call.text("ts") else { return Reply::error("message_not_found") };
        let text = call.text("text").unwrap_or_default();
        if text.is_empty() && call.args.get("blocks").is_none() {
            return Reply::error("no_text");
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Reply::error("msg_too_long");
        }
        let (_, edited_ts) = self.next_ts();
        let channel = self.channels.get_mut(&channel_id).expect("checked above");
        let Some(message) = channel.find_mut(&ts) else { return Reply::error("message_not_found") };
        if !message.bot {
            return Reply::error("cant_update_message");
        }
        let previous = std::mem::replace(&mut message.text, text.clone());
        message.history.push(previous);
        message.edited = Some((BOT_USER_ID.to_owned(), edited_ts));
        let channel = &self.channels[&channel_id];
        let message = channel.find(&ts).expect("the message just edited");
        let mut json = self.message_json(channel, message);
        if let Some(object) = json.as_object_mut() {
            // `chat.update` answers the message without its `ts` and thread fields.
            for field in ["ts", "thread_ts", "parent_user_id", "reply_count", "reply_users_count", "latest_reply"] {
                object.remove(field);
            }
        }
        let mut body = TEMPLATES.update.clone();
        body["channel"] = json!(channel_id);
        body["ts"] = json!(ts);
        body["text"] = json!(text);
        body["message"] = json;
        Reply::ok(body)
    }

    fn reactions_add(&mut self, call: &Call) -> Reply {
        let Some(channel_id) = call.text("channel") else { return Reply::error("channel_not_found") };
        let Some(channel) = self.channels.get_mut(&channel_id) else { return Reply::error("channel_not_found") };
        let Some(name) = call.text("name") else { return Reply::error("invalid_name") };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-'".contains(c));
        if !valid {
            return Reply::error("invalid_name");
        }
        let Some(ts) = call.text("timestamp") else { return Reply::error("no_item_specified") };
        let Some(message) = channel.find_mut(&ts) else { return Reply::error("message_not_found") };
        match message.reactions.iter_mut().find(|(n, _)| *n == name) {
            Some((_, users)) if users.iter().any(|u| u == BOT_USER_ID) => return Reply::error("already_reacted"),
            Some((_, users)) => users.push(BOT_USER_ID.to_owned()),
            None => message.reactions.push((name, vec![BOT_USER_ID.to_owned()])),
        }
        Reply::ok(json!({}))
    }

    /// `conversations.replies`: the thread, its first message first, `limit` per page. A page
    /// after the first carries on where the previous one stopped (the first message is not
    /// repeated). `oldest`, `latest` and `inclusive` are not supported.
    fn replies(&self, call: &Call) -> Reply {
        let Some(channel_id) = call.text("channel") else { return Reply::error("channel_not_found") };
        let Some(channel) = self.channels.get(&channel_id) else { return Reply::error("channel_not_found") };
        let Some(ts) = call.text("ts") else { return Reply::error("invalid_arguments") };
        let thread = channel.thread(&ts);
        if thread.is_empty() {
            return Reply::error("thread_not_found");
        }
        let limit = call.text("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let start = match call.text("cursor").filter(|c| !c.is_empty()) {
            None => 0,
            Some(cursor) => match decode_cursor(&cursor) {
                Some(next) => thread.iter().position(|m| parse_ts(&m.ts) >= Some(next)).unwrap_or(thread.len()),
                None => return Reply::error("invalid_cursor"),
            },
        };
        let page: Vec<Value> = thread.iter().skip(start).take(limit).map(|m| self.message_json(channel, m)).collect();
        let next = thread.get(start + limit).and_then(|m| parse_ts(&m.ts));
        Reply::ok(json!({
            "messages": page,
            "has_more": next.is_some(),
            "response_metadata": { "next_cursor": next.map(encode_cursor).unwrap_or_default() },
        }))
    }
}

fn fault_reply(kind: FaultKind) -> Reply {
    match kind {
        FaultKind::RateLimited { retry_after_secs } => Reply {
            status: 429,
            body: json!({ "ok": false, "error": "ratelimited" }),
            headers: vec![("retry-after", retry_after_secs.to_string())],
        },
        FaultKind::Error(code) => Reply::error(&code),
        FaultKind::Status(status) => Reply { status, body: Value::Null, headers: Vec::new() },
    }
}

/// The arguments of a call: the query string, then the body (JSON or form) on top. Slack answers
/// `invalid_json` to a JSON body it cannot read, and `invalid_form_data` to a form body.
fn parse_args(query: &str, content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, &'static str> {
    let mut args: Map<String, Value> =
        form_urlencoded::parse(query.as_bytes()).into_owned().map(|(k, v)| (k, Value::String(v))).collect();
    if body.is_empty() {
        return Ok(args);
    }
    let media = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => args.extend(object),
            _ => return Err("invalid_json"),
        },
        "application/x-www-form-urlencoded" => {
            let text = std::str::from_utf8(body).map_err(|_| "invalid_form_data")?;
            args.extend(form_urlencoded::parse(text.as_bytes()).into_owned().map(|(k, v)| (k, Value::String(v))));
        }
        _ => return Err("invalid_form_data"),
    }
    Ok(args)
}
