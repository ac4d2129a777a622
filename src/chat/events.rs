//! Verified Slack requests turned into our own events: an Events API callback (`/slack/events`)
//! becomes a URL check, a request to errand or a reason to ignore it; a slash command
//! (`/slack/commands`) becomes a [`SlashCommand`].
//!
//! The payload is read leniently, field by field: unknown fields and unknown event shapes are
//! ignored (many Slack events, e.g. `team_join`, use the same field names with other types), and
//! only what a request needs is required; a missing or mistyped piece is a typed error (400).
//!
//! Decisions:
//! - **Mentions.** Slack writes a mention as `<@U0BOTID>` (older clients: `<@U0BOTID|name>`).
//!   Before the text goes to [`command::parse_comment`], every mention of errand's own user is
//!   replaced by the first configured mention name (`ERRAND_MENTIONS`, e.g. `@agent`), and the
//!   rest of Slack's markup is turned into plain text ([`plain_text`]): other people become
//!   `@name`, links their URL, `&lt;`/`&gt;`/`&amp;` their characters. So the parser's rules
//!   hold in Slack too: a mention inside a code block or a `>` quote asks for nothing, and a
//!   command reads the same as on GitHub. Only a real Slack mention summons errand: a message
//!   must contain `<@BOTID>`, and text someone merely typed as `<@BOTID>` arrives escaped and
//!   stays text. (Once it does, a configured name typed as plain text in the same message reads
//!   as a mention too; it is the same person's message either way.)
//! - **errand's user id.** Taken from [`ParseContext::bot_user_id`] (`auth.test` at start). When
//!   it is unknown, the payload's own `authorizations` entries marked `is_bot` name it; failing
//!   that, an `app_mention` (which Slack only sends when errand was mentioned) takes its first
//!   mention as errand's.
//! - **One message, one request.** In a channel errand is in, a message that mentions it arrives
//!   twice when the app subscribes to both `app_mention` and `message.*`, with different
//!   `event_id`s. Slack sends `app_mention` for every mention in a conversation errand is part
//!   of, top-level or in a thread (the event then carries `thread_ts`), so `app_mention` is the
//!   only source of channel requests: a channel `message` that mentions errand is ignored as
//!   [`SlackIgnoreReason::CoveredByAppMention`]. Taking `message` for thread replies instead would
//!   lose every thread request of an app subscribed to `app_mention` only (the minimal
//!   `app_mentions:read` scope). Direct messages are the exception: Slack sends no `app_mention`
//!   there, so a DM `message` (channel type `im`) that mentions errand is a request. As a second
//!   guard, [`SlackRequest::dedup_key`] names the message (channel and `ts`), which both events
//!   share: the ingress should drop a second request with the same key.
//! - **Loop safety.** Messages with a `bot_id`, the `bot_message` subtype or errand's own user are
//!   ignored, whatever their type. Edits (`message_changed`, or an `app_mention` carrying
//!   `edited`) and deletions are ignored: an edit never starts a second job. Of the other
//!   subtypes only those a person writes (`thread_broadcast`, `file_share`) can be requests.
//! - **Slash commands.** `application/x-www-form-urlencoded` is decoded by `form_urlencoded`
//!   ([`decode_form`]). An empty `/errand` asks for help.

use serde_json::Value;

use crate::config::Mentions;
use crate::request::command::{self, Command, ParseError};

/// The mention a slash command's text is read after (`/errand fix it` as `@errand fix it`).
const FALLBACK_MENTION: &str = "@errand";

/// Subtypes of messages a person wrote; every other subtype is a system or bot message.
const PERSON_SUBTYPES: [&str; 2] = ["thread_broadcast", "file_share"];

/// What errand needs to know to read a callback.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseContext<'a> {
    /// errand's own Slack user id (`auth.test`'s `user_id`, e.g. `U0BOTID`), when known.
    pub bot_user_id: Option<&'a str>,
    /// The names that summon errand (`ERRAND_MENTIONS`); a Slack mention of errand reads as the
    /// primary one.
    pub mentions: &'a Mentions,
}

/// A verified `/slack/events` body, in our terms.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackEvent {
    /// Slack checking the request URL: answer with the challenge.
    UrlVerification { challenge: String },
    /// A request addressed to errand.
    Request(Box<SlackRequest>),
    /// Anything else, with the reason (for logs; Slack still gets a 200).
    Ignored(SlackIgnoreReason),
}

/// Why a callback starts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackIgnoreReason {
    /// A callback type other than `event_callback` (e.g. `app_rate_limited`, or an interactivity
    /// payload sent to the wrong URL).
    Callback(String),
    /// An event type errand does not handle (e.g. `reaction_added`).
    Event(String),
    /// Written by a bot, errand included: never answer bots. The bot or user id, when given.
    Bot(Option<String>),
    /// An edited message (`message_changed`, or a mention re-sent with `edited`).
    Edited,
    /// A deleted message (`message_deleted`).
    Deleted,
    /// A message subtype that is not a person writing (e.g. `channel_join`, `message_replied`).
    Subtype(String),
    /// The message does not mention errand, or only inside code or a quote.
    NoMention,
    /// A channel message that mentions errand: its `app_mention` twin is the request.
    CoveredByAppMention,
}

impl SlackIgnoreReason {
    /// A short explanation for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Callback(kind) => format!("callback type `{kind}` is not handled"),
            Self::Event(kind) => format!("event `{kind}` is not handled"),
            Self::Bot(Some(id)) => format!("message by bot `{id}`"),
            Self::Bot(None) => "message by a bot".to_owned(),
            Self::Edited => "an edited message".to_owned(),
            Self::Deleted => "a deleted message".to_owned(),
            Self::Subtype(subtype) => format!("message subtype `{subtype}` is not handled"),
            Self::NoMention => "no mention of errand outside code and quotes".to_owned(),
            Self::CoveredByAppMention => "a channel message; its app_mention event is the request".to_owned(),
        }
    }
}

/// Where in a conversation errand was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A message of its own in the channel: errand answers in a new thread under it.
    TopLevel,
    /// A reply in a thread: errand answers in that thread.
    InThread,
}

/// A request to errand from a Slack message.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackRequest {
    /// The workspace the event was sent for (the callback's `team_id`).
    pub team_id: String,
    /// The requester's own workspace when Slack names it (`user_team`, set in channels shared
    /// with another organisation); see [`SlackRequest::requester_team`].
    pub user_team: Option<String>,
    /// Slack's id of this delivery (retries keep it).
    pub event_id: String,
    pub channel: String,
    /// The Slack user id of the person who asked.
    pub user: String,
    /// The message's own `ts` (its id within the channel; gets the 👀 reaction).
    pub ts: String,
    /// The thread to answer in: the message's `thread_ts`, or its own `ts` at top level.
    pub thread_ts: String,
    pub placement: Placement,
    /// The whole message as plain text (Slack markup resolved, errand's mention as `mention`).
    pub text: String,
    /// errand's user id as mentioned; replies address errand as `<@bot_user_id>`.
    pub bot_user_id: String,
    /// The configured name the mention was read as (e.g. `@agent`).
    pub mention: String,
    /// What the text after the mention asks.
    pub command: Result<Command, ParseError>,
}

impl SlackRequest {
    /// An idempotency key for the message itself, wider than `event_id`: the `app_mention` and
    /// `message` events of one message share it (a channel id is unique across workspaces, and a
    /// `ts` within its channel).
    pub fn dedup_key(&self) -> String {
        format!("slack-message:{}:{}", self.channel, self.ts)
    }

    /// The workspace the requester belongs to: what a team allowlist should check.
    pub fn requester_team(&self) -> &str {
        self.user_team.as_deref().unwrap_or(&self.team_id)
    }

    /// errand as Slack renders a mention of it (its display name, clickable) in a reply.
    pub fn slack_mention(&self) -> String {
        format!("<@{}>", self.bot_user_id)
    }
}

/// A callback errand cannot read: answered with 400.
#[derive(Debug, thiserror::Error)]
pub enum SlackPayloadError {
    #[error("the body is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the payload has no `{0}`")]
    Missing(&'static str),
    #[error("the payload's `{0}` has the wrong type")]
    Invalid(&'static str),
}

/// Reads a verified `/slack/events` body.
pub fn parse_event(body: &[u8], context: &ParseContext<'_>) -> Result<SlackEvent, SlackPayloadError> {
    let payload: Value = serde_json::from_slice(body)?;
    if !payload.is_object() {
        return Err(SlackPayloadError::Invalid("body"));
    }
    match string(&payload, "type", "type")?.ok_or(SlackPayloadError::Missing("type"))? {
        "url_verification" => {
            let challenge =
                string(&payload, "challenge", "challenge")?.ok_or(SlackPayloadError::Missing("challenge"))?;
            Ok(SlackEvent::UrlVerification { challenge: challenge.to_owned() })
        }
        "event_callback" => parse_callback(&payload, context),
        other => Ok(SlackEvent::Ignored(SlackIgnoreReason::Callback(other.to_owned()))),
    }
}

/// Which event carried a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    AppMention,
    Message,
}

fn parse_callback(payload: &Value, context: &ParseContext<'_>) -> Result<SlackEvent, SlackPayloadError> {
    let event = payload.get("event").filter(|e| !e.is_null()).ok_or(SlackPayloadError::Missing("event"))?;
    if !event.is_object() {
        return Err(SlackPayloadError::Invalid("event"));
    }
    let carrier = match string(event, "type", "event.type")?.ok_or(SlackPayloadError::Missing("event.type"))? {
        "app_mention" => Carrier::AppMention,
        "message" => Carrier::Message,
        other => return Ok(SlackEvent::Ignored(SlackIgnoreReason::Event(other.to_owned()))),
    };
    let bot_ids = bot_user_ids(payload, context)?;
    let user = string(event, "user", "event.user")?;
    let subtype = string(event, "subtype", "event.subtype")?;
    let bot_id = event.get("bot_id").filter(|b| !b.is_null());
    if let Some(bot_id) = bot_id {
        return Ok(SlackEvent::Ignored(SlackIgnoreReason::Bot(bot_id.as_str().map(str::to_owned))));
    }
    if subtype == Some("bot_message") || user.is_some_and(|u| bot_ids.iter().any(|id| id == u)) {
        return Ok(SlackEvent::Ignored(SlackIgnoreReason::Bot(user.map(str::to_owned))));
    }
    match subtype {
        Some("message_changed") => return Ok(SlackEvent::Ignored(SlackIgnoreReason::Edited)),
        Some("message_deleted") => return Ok(SlackEvent::Ignored(SlackIgnoreReason::Deleted)),
        Some(other) if !PERSON_SUBTYPES.contains(&other) => {
            return Ok(SlackEvent::Ignored(SlackIgnoreReason::Subtype(other.to_owned())));
        }
        _ => {}
    }
    if event.get("edited").is_some_and(|e| !e.is_null()) {
        return Ok(SlackEvent::Ignored(SlackIgnoreReason::Edited));
    }
    let raw_text = string(event, "text", "event.text")?.unwrap_or_default();
    let mentioned = bot_ids
        .iter()
        .find(|id| mentions_user(raw_text, id))
        .cloned()
        // Slack sends an app_mention only when errand was mentioned: with no id to go by, its
        // first mention is errand's.
        .or_else(|| (carrier == Carrier::AppMention && bot_ids.is_empty()).then(|| first_mention(raw_text)).flatten());
    let Some(bot_user_id) = mentioned else {
        return Ok(SlackEvent::Ignored(SlackIgnoreReason::NoMention));
    };
    let channel_type = string(event, "channel_type", "event.channel_type")?;
    // Older payloads have no `channel_type`; a direct message's channel id starts with `D`.
    let direct = channel_type.map_or_else(
        || string(event, "channel", "event.channel").ok().flatten().is_some_and(|c| c.starts_with('D')),
        |t| t == "im",
    );
    if carrier == Carrier::Message && !direct {
        return Ok(SlackEvent::Ignored(SlackIgnoreReason::CoveredByAppMention));
    }

    let required = |key: &str, name: &'static str| -> Result<String, SlackPayloadError> {
        string(event, key, name)?.filter(|s| !s.is_empty()).map(str::to_owned).ok_or(SlackPayloadError::Missing(name))
    };
    let channel = required("channel", "event.channel")?;
    let user = user.filter(|u| !u.is_empty()).ok_or(SlackPayloadError::Missing("event.user"))?.to_owned();
    let ts = required("ts", "event.ts")?;
    let event_id = string(payload, "event_id", "event_id")?
        .filter(|s| !s.is_empty())
        .ok_or(SlackPayloadError::Missing("event_id"))?
        .to_owned();
    let team_id = match string(payload, "team_id", "team_id")?.filter(|s| !s.is_empty()) {
        Some(team) => team.to_owned(),
        None => required("team", "team_id")?,
    };
    let user_team = string(event, "user_team", "event.user_team")?.map(str::to_owned);
    let thread_ts = string(event, "thread_ts", "event.thread_ts")?.filter(|t| !t.is_empty() && *t != ts);

    let name = context.mentions.primary().to_owned();
    let text = plain_text(raw_text, &[bot_user_id.as_str()], &name);
    let Some(parsed) = command::parse_comment(&text, std::slice::from_ref(&name)).into_iter().next() else {
        return Ok(SlackEvent::Ignored(SlackIgnoreReason::NoMention));
    };
    Ok(SlackEvent::Request(Box::new(SlackRequest {
        team_id,
        user_team,
        event_id,
        channel,
        user,
        placement: if thread_ts.is_some() { Placement::InThread } else { Placement::TopLevel },
        thread_ts: thread_ts.map_or_else(|| ts.clone(), str::to_owned),
        ts,
        text,
        bot_user_id,
        mention: parsed.mention,
        command: parsed.command,
    })))
}

/// errand's user ids for this callback: the configured one, else those the payload's
/// `authorizations` mark as bots.
fn bot_user_ids(payload: &Value, context: &ParseContext<'_>) -> Result<Vec<String>, SlackPayloadError> {
    if let Some(id) = context.bot_user_id.filter(|id| !id.is_empty()) {
        return Ok(vec![id.to_owned()]);
    }
    let Some(authorizations) = payload.get("authorizations").filter(|a| !a.is_null()) else {
        return Ok(Vec::new());
    };
    let authorizations = authorizations.as_array().ok_or(SlackPayloadError::Invalid("authorizations"))?;
    Ok(authorizations
        .iter()
        .filter(|a| a.get("is_bot").and_then(Value::as_bool) == Some(true))
        .filter_map(|a| a.get("user_id").and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A string field: `None` when absent or null, an error when present with another type.
fn string<'v>(value: &'v Value, key: &str, name: &'static str) -> Result<Option<&'v str>, SlackPayloadError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SlackPayloadError::Invalid(name)),
    }
}

/// The pieces of Slack markup (`<...>`) in a message's raw text, with their byte ranges and
/// content; literal `<` and `>` arrive escaped, so every `<` opens markup.
fn markup(raw: &str) -> impl Iterator<Item = (std::ops::Range<usize>, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let start = raw[from..].find('<')? + from;
        let end = raw[start..].find('>')? + start;
        from = end + 1;
        Some((start..end + 1, &raw[start + 1..end]))
    })
}

/// Whether the raw text mentions `user` (`<@U123>` or `<@U123|name>`).
fn mentions_user(raw: &str, user: &str) -> bool {
    markup(raw).any(|(_, inner)| inner.strip_prefix('@').is_some_and(|m| m.split('|').next() == Some(user)))
}

/// The first user mentioned in the raw text.
fn first_mention(raw: &str) -> Option<String> {
    markup(raw).find_map(|(_, inner)| {
        let id = inner.strip_prefix('@')?.split('|').next()?;
        (!id.is_empty()).then(|| id.to_owned())
    })
}

/// Slack's message text as plain text: mentions of `bot_ids` become `name`, other people
/// `@label` (or `@U123`), channels `#label`, special mentions (`<!here>`) `@here`, links their
/// URL (or what the person typed, when Slack linked it for them: `<http://github.com/a/b|github.com/a/b>`
/// becomes `github.com/a/b`; a link with other words becomes `words (URL)`), and the escapes
/// `&lt;`, `&gt;`, `&amp;` their characters.
pub fn plain_text(raw: &str, bot_ids: &[&str], name: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut last = 0;
    for (range, inner) in markup(raw) {
        out.push_str(&unescape(&raw[last..range.start]));
        last = range.end;
        let (target, label) = match inner.split_once('|') {
            Some((target, label)) => (target, Some(unescape(label)).filter(|l| !l.is_empty())),
            None => (inner, None),
        };
        if let Some(user) = target.strip_prefix('@') {
            if bot_ids.contains(&user) {
                // `hey<@U0BOT>` still mentions errand; `hey@agent` would read as an address.
                if out.chars().next_back().is_some_and(char::is_alphanumeric) {
                    out.push(' ');
                }
                out.push_str(name);
            } else {
                out.push('@');
                out.push_str(&label.map_or_else(|| user.to_owned(), |l| l.trim_start_matches('@').to_owned()));
            }
        } else if let Some(channel) = target.strip_prefix('#') {
            out.push('#');
            out.push_str(&label.unwrap_or_else(|| channel.to_owned()));
        } else if let Some(special) = target.strip_prefix('!') {
            // `<!here>`, `<!subteam^S123|@team>`, `<!date^1392734382^{date}|Feb 18, 2014>`.
            match label {
                Some(label) => out.push_str(&label),
                None => {
                    out.push('@');
                    out.push_str(special.split('^').next().unwrap_or(special));
                }
            }
        } else {
            let url = unescape(target);
            let typed = url.split_once(':').map_or(url.as_str(), |(_, rest)| rest.trim_start_matches("//"));
            match label {
                Some(label) if label == url || label == typed => out.push_str(&label),
                Some(label) => out.push_str(&format!("{label} ({url})")),
                None => out.push_str(&url),
            }
        }
    }
    out.push_str(&unescape(&raw[last..]));
    out
}

/// Slack's three escapes, undone in one pass (so `&amp;lt;` is `&lt;`).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (replacement, len) = if rest.starts_with("&lt;") {
            ('<', 4)
        } else if rest.starts_with("&gt;") {
            ('>', 4)
        } else if rest.starts_with("&amp;") {
            ('&', 5)
        } else {
            ('&', 1)
        };
        out.push(replacement);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// A verified `/slack/commands` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub team_id: String,
    pub channel_id: String,
    pub user_id: String,
    /// The command as typed, e.g. `/errand`.
    pub command: String,
    /// What follows the command, as Slack sent it (may be empty).
    pub text: String,
    /// Where to answer within 30 minutes (up to five times) without a bot token.
    pub response_url: Option<String>,
    /// Opens a modal within 3 s; errand does not use it yet.
    pub trigger_id: Option<String>,
}

impl SlashCommand {
    /// What the text asks, read like the text after a mention (`/errand fix it` is `@agent fix it`).
    /// A bare `/errand` asks for help. Only the first paragraph counts, as after a mention.
    pub fn parse_command(&self) -> Result<Command, ParseError> {
        let text = plain_text(&self.text, &[], FALLBACK_MENTION);
        if text.trim().is_empty() {
            return Ok(Command::Help);
        }
        let names = [FALLBACK_MENTION.to_owned()];
        let parsed = command::parse_comment(&format!("{FALLBACK_MENTION} {text}"), &names);
        match parsed.into_iter().next() {
            Some(parsed) => parsed.command,
            // Unreachable in practice: the text starts with the mention.
            None => Ok(Command::Task { instruction: text.trim().to_owned(), options: Default::default() }),
        }
    }
}

/// A slash-command body errand cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlashCommandError {
    #[error("the slash command has no `{0}`")]
    Missing(&'static str),
    /// Not a command: Slack checking the URL's certificate (`ssl_check=1`). Answer 200, empty.
    #[error("an ssl_check request, not a command")]
    SslCheck,
}

/// Reads a verified `/slack/commands` body (`application/x-www-form-urlencoded`).
pub fn parse_slash_command(form_body: &[u8]) -> Result<SlashCommand, SlashCommandError> {
    let fields = decode_form(form_body);
    let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if get("ssl_check") == Some("1") {
        return Err(SlashCommandError::SslCheck);
    }
    let required = |key: &'static str| {
        get(key).filter(|v| !v.is_empty()).map(str::to_owned).ok_or(SlashCommandError::Missing(key))
    };
    let optional = |key: &str| get(key).filter(|v| !v.is_empty()).map(str::to_owned);
    Ok(SlashCommand {
        team_id: required("team_id")?,
        channel_id: required("channel_id")?,
        user_id: required("user_id")?,
        command: required("command")?,
        text: get("text").unwrap_or_default().to_owned(),
        response_url: optional("response_url"),
        trigger_id: optional("trigger_id"),
    })
}

/// Decodes `application/x-www-form-urlencoded` as the WHATWG URL standard does: `&`-separated
/// pairs, `+` is a space, `%XX` a byte, a malformed `%` stays literal, invalid UTF-8 becomes
/// U+FFFD, empty pairs are skipped, a pair without `=` has an empty value. Keys repeat as given.
pub fn decode_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::request::command::TaskOptions;

    const APP_MENTION_DOCS: &str = include_str!("../../tests/data/slack/event_callback.app_mention.json");
    const APP_MENTION_BOLT: &str = include_str!("../../tests/data/slack/event_callback.app_mention.bolt-python.json");
    const BOT_MESSAGE: &str =
        include_str!("../../tests/data/slack/event_callback.message.bot_message.shared-channel.java-slack-sdk.json");
    const MESSAGE_REPLIED: &str = include_str!("../../tests/data/slack/event_callback.message.message_replied.json");
    const THREAD_BROADCAST: &str =
        include_str!("../../tests/data/slack/event_callback.message.thread_broadcast.bolt-python.json");
    const THREAD_REPLY: &str =
        include_str!("../../tests/data/slack/event_callback.message.thread_reply.bolt-python.json");
    const REACTION_ADDED: &str =
        include_str!("../../tests/data/slack/event_callback.reaction_added.python-slack-events-api.json");
    const BLOCK_ACTIONS: &str =
        include_str!("../../tests/data/slack/interactivity.block_actions.payload.bolt-python.json");
    const SLASH_HELLO: &[u8] = include_bytes!("../../tests/data/slack/slash_command.hello-world.bolt-python.form.txt");
    const SLASH_WEBHOOK_COLLECT: &[u8] =
        include_bytes!("../../tests/data/slack/slash_command.webhook-collect.form.txt");
    const URL_VERIFICATION_DOCS: &str = include_str!("../../tests/data/slack/url_verification.json");
    const URL_VERIFICATION_SDK: &str =
        include_str!("../../tests/data/slack/url_verification.python-slack-events-api.json");
    const WEB_API_SUBSET: &str = include_str!("../../tests/data/slack/web-api-subset.json");

    /// Every Slack file in tests/data/slack, by name.
    const FIXTURES: [(&str, &[u8]); 13] = [
        ("event_callback.app_mention.json", APP_MENTION_DOCS.as_bytes()),
        ("event_callback.app_mention.bolt-python.json", APP_MENTION_BOLT.as_bytes()),
        ("event_callback.message.bot_message.shared-channel.java-slack-sdk.json", BOT_MESSAGE.as_bytes()),
        ("event_callback.message.message_replied.json", MESSAGE_REPLIED.as_bytes()),
        ("event_callback.message.thread_broadcast.bolt-python.json", THREAD_BROADCAST.as_bytes()),
        ("event_callback.message.thread_reply.bolt-python.json", THREAD_REPLY.as_bytes()),
        ("event_callback.reaction_added.python-slack-events-api.json", REACTION_ADDED.as_bytes()),
        ("interactivity.block_actions.payload.bolt-python.json", BLOCK_ACTIONS.as_bytes()),
        ("slash_command.hello-world.bolt-python.form.txt", SLASH_HELLO),
        ("slash_command.webhook-collect.form.txt", SLASH_WEBHOOK_COLLECT),
        ("url_verification.json", URL_VERIFICATION_DOCS.as_bytes()),
        ("url_verification.python-slack-events-api.json", URL_VERIFICATION_SDK.as_bytes()),
        ("web-api-subset.json", WEB_API_SUBSET.as_bytes()),
    ];

    const BOT: &str = "U0BOT";

    fn agent() -> Mentions {
        Mentions::default()
    }

    fn parse_with(body: &str, bot_user_id: Option<&str>) -> Result<SlackEvent, SlackPayloadError> {
        let mentions = agent();
        parse_event(body.as_bytes(), &ParseContext { bot_user_id, mentions: &mentions })
    }

    fn parse(body: &serde_json::Value) -> Result<SlackEvent, SlackPayloadError> {
        parse_with(&body.to_string(), Some(BOT))
    }

    fn request(event: Result<SlackEvent, SlackPayloadError>) -> SlackRequest {
        match event {
            Ok(SlackEvent::Request(request)) => *request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn ignored(event: Result<SlackEvent, SlackPayloadError>) -> SlackIgnoreReason {
        match event {
            Ok(SlackEvent::Ignored(reason)) => reason,
            other => panic!("expected an ignored event, got {other:?}"),
        }
    }

    fn task(instruction: &str) -> Result<Command, ParseError> {
        Ok(Command::Task { instruction: instruction.to_owned(), options: TaskOptions::default() })
    }

    /// A callback around `event`, shaped like Slack's (fields errand does not read included).
    fn callback(event: serde_json::Value) -> serde_json::Value {
        json!({
            "token": "XXYYZZ", "team_id": "T0TEAM", "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback", "event_id": "Ev0001", "event_time": 1_700_000_000,
            "authorizations": [{"team_id": "T0TEAM", "user_id": BOT, "is_bot": true, "is_enterprise_install": false}]
        })
    }

    fn mention(text: &str) -> serde_json::Value {
        callback(json!({
            "type": "app_mention", "user": "U0ALICE", "text": text,
            "ts": "1700000000.000100", "channel": "C0CHAN", "event_ts": "1700000000.000100",
            "client_msg_id": "x", "blocks": [{"type": "rich_text"}]
        }))
    }

    fn message(text: &str, channel_type: &str) -> serde_json::Value {
        callback(json!({
            "type": "message", "user": "U0ALICE", "text": text,
            "ts": "1700000000.000200", "channel": "C0CHAN", "channel_type": channel_type,
            "event_ts": "1700000000.000200"
        }))
    }

    #[test]
    fn slacks_documented_app_mention_is_a_request() {
        // errand's id from `auth.test`.
        let r = request(parse_with(APP_MENTION_DOCS, Some("U0LAN0Z89")));
        assert_eq!(r.team_id, "T123ABC456");
        assert_eq!(r.event_id, "Ev123ABC456");
        assert_eq!((r.channel.as_str(), r.user.as_str()), ("C123ABC456", "U061F7AUR"));
        assert_eq!((r.ts.as_str(), r.thread_ts.as_str()), ("1515449522.000016", "1515449522.000016"));
        assert_eq!(r.placement, Placement::TopLevel);
        assert_eq!(r.text, "@agent is it everything a river should be?");
        assert_eq!(r.mention, "@agent");
        assert_eq!(r.slack_mention(), "<@U0LAN0Z89>");
        assert_eq!(r.command, task("is it everything a river should be?"));
        assert_eq!(r.dedup_key(), "slack-message:C123ABC456:1515449522.000016");
    }

    #[test]
    fn an_app_mention_is_a_request_even_without_a_known_bot_id() {
        // The docs example's only authorization is not a bot: its first mention is errand.
        let r = request(parse_with(APP_MENTION_DOCS, None));
        assert_eq!(r.bot_user_id, "U0LAN0Z89");
        assert_eq!(r.command, task("is it everything a river should be?"));
        let r = request(parse_with(APP_MENTION_BOLT, None));
        assert_eq!((r.team_id.as_str(), r.user.as_str(), r.bot_user_id.as_str()), ("T111", "W222", "W111"));
        assert_eq!(r.command, task("Hi there!"));
        assert_eq!(request(parse_with(APP_MENTION_BOLT, Some("W111"))).command, task("Hi there!"));
    }

    #[test]
    fn an_app_mention_of_someone_else_than_the_known_bot_is_not_a_request() {
        assert_eq!(ignored(parse_with(APP_MENTION_BOLT, Some("U0OTHER"))), SlackIgnoreReason::NoMention);
    }

    #[test]
    fn the_bot_message_fixture_is_ignored() {
        assert_eq!(ignored(parse_with(BOT_MESSAGE, None)), SlackIgnoreReason::Bot(Some("B123".to_owned())));
        assert_eq!(ignored(parse_with(BOT_MESSAGE, Some(BOT))), SlackIgnoreReason::Bot(Some("B123".to_owned())));
    }

    #[test]
    fn the_other_fixtures_are_ignored_for_their_reason() {
        assert_eq!(ignored(parse_with(MESSAGE_REPLIED, None)), SlackIgnoreReason::Subtype("message_replied".into()));
        assert_eq!(ignored(parse_with(THREAD_BROADCAST, Some(BOT))), SlackIgnoreReason::NoMention);
        assert_eq!(ignored(parse_with(THREAD_REPLY, None)), SlackIgnoreReason::NoMention);
        assert_eq!(ignored(parse_with(REACTION_ADDED, None)), SlackIgnoreReason::Event("reaction_added".into()));
        assert_eq!(ignored(parse_with(BLOCK_ACTIONS, None)), SlackIgnoreReason::Callback("block_actions".into()));
    }

    #[test]
    fn url_verification_yields_the_challenge() {
        assert_eq!(
            parse_with(URL_VERIFICATION_DOCS, None).unwrap(),
            SlackEvent::UrlVerification { challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into() }
        );
        assert_eq!(
            parse_with(URL_VERIFICATION_SDK, None).unwrap(),
            SlackEvent::UrlVerification { challenge: "valid_challenge_token".into() }
        );
        assert!(matches!(parse(&json!({"type": "url_verification"})), Err(SlackPayloadError::Missing("challenge"))));
    }

    #[test]
    fn every_fixture_parses_or_is_a_typed_error() {
        let mentions = agent();
        for bot_user_id in [None, Some(BOT), Some("W111")] {
            let context = ParseContext { bot_user_id, mentions: &mentions };
            for (name, body) in FIXTURES {
                let event = parse_event(body, &context);
                let expected_error = name.ends_with(".form.txt") || name == "web-api-subset.json";
                assert_eq!(event.is_err(), expected_error, "{name}: {event:?}");
                if name.starts_with("event_callback.app_mention") && bot_user_id.is_none() {
                    assert!(matches!(event, Ok(SlackEvent::Request(_))), "{name}: {event:?}");
                }
                let slash = parse_slash_command(body);
                assert_eq!(slash.is_ok(), name.ends_with(".form.txt"), "{name}: {slash:?}");
            }
        }
    }

    #[test]
    fn a_mention_in_a_thread_answers_in_that_thread() {
        let mut payload = mention("<@U0BOT> also handle the empty case");
        payload["event"]["thread_ts"] = json!("1699999999.000050");
        let r = request(parse(&payload));
        assert_eq!(r.placement, Placement::InThread);
        assert_eq!((r.ts.as_str(), r.thread_ts.as_str()), ("1700000000.000100", "1699999999.000050"));
        // A thread's parent carries its own ts as thread_ts: it is a top-level message.
        payload["event"]["thread_ts"] = json!("1700000000.000100");
        assert_eq!(request(parse(&payload)).placement, Placement::TopLevel);
    }

    #[test]
    fn a_channel_message_mentioning_errand_is_left_to_its_app_mention() {
        // Slack sends both events for one message; only the app_mention counts.
        for text in ["<@U0BOT> fix the login test", "<@U0BOT|errand> fix it"] {
            for channel_type in ["channel", "group", "mpim"] {
                let mut payload = message(text, channel_type);
                assert_eq!(ignored(parse(&payload)), SlackIgnoreReason::CoveredByAppMention, "{channel_type}");
                payload["event"]["thread_ts"] = json!("1699999999.000050");
                assert_eq!(ignored(parse(&payload)), SlackIgnoreReason::CoveredByAppMention, "{channel_type}");
            }
        }
    }

    #[test]
    fn both_events_of_one_message_share_the_dedup_key() {
        let mut as_message = message("<@U0BOT> fix it", "im");
        as_message["event"]["ts"] = json!("1700000000.000100");
        let mut as_mention = mention("<@U0BOT> fix it");
        as_mention["event_id"] = json!("Ev0002");
        let (a, b) = (request(parse(&as_message)), request(parse(&as_mention)));
        assert_ne!(a.event_id, b.event_id);
        assert_eq!(a.dedup_key(), b.dedup_key());
    }

    #[test]
    fn a_direct_message_mentioning_errand_is_a_request() {
        let r = request(parse(&message("<@U0BOT> what does `retry_after` do?", "im")));
        assert_eq!(r.command, task("what does `retry_after` do?"));
        assert_eq!(r.placement, Placement::TopLevel);
        assert_eq!(ignored(parse(&message("what does retry_after do?", "im"))), SlackIgnoreReason::NoMention);
    }

    #[test]
    fn a_direct_message_without_a_channel_type_is_known_by_its_channel_id() {
        let mut payload = message("<@U0BOT> fix it", "im");
        payload["event"].as_object_mut().unwrap().remove("channel_type");
        assert_eq!(ignored(parse(&payload)), SlackIgnoreReason::CoveredByAppMention);
        payload["event"]["channel"] = json!("D0DIRECT");
        assert_eq!(request(parse(&payload)).channel, "D0DIRECT");
    }

    #[test]
    fn a_mention_glued_to_a_word_still_counts() {
        assert_eq!(request(parse(&mention("hey<@U0BOT> fix it"))).command, task("fix it"));
    }

    #[test]
    fn messages_without_a_mention_are_ignored() {
        assert_eq!(ignored(parse(&message("the login test is flaky again", "channel"))), SlackIgnoreReason::NoMention);
        assert_eq!(ignored(parse(&message("ask <@U0ALICE> about it", "channel"))), SlackIgnoreReason::NoMention);
    }

    #[test]
    fn bots_are_ignored_whatever_the_event() {
        let mut with_bot_id = mention("<@U0BOT> fix it");
        with_bot_id["event"]["bot_id"] = json!("B0OTHER");
        assert_eq!(ignored(parse(&with_bot_id)), SlackIgnoreReason::Bot(Some("B0OTHER".into())));
        let mut bot_message = message("<@U0BOT> fix it", "im");
        bot_message["event"]["subtype"] = json!("bot_message");
        bot_message["event"].as_object_mut().unwrap().remove("user");
        assert_eq!(ignored(parse(&bot_message)), SlackIgnoreReason::Bot(None));
        let mut own = mention("<@U0BOT> fix it");
        own["event"]["user"] = json!(BOT);
        assert_eq!(ignored(parse(&own)), SlackIgnoreReason::Bot(Some(BOT.into())));
        // Without a configured id, the payload's bot authorization names errand.
        let own = own.to_string();
        assert_eq!(ignored(parse_with(&own, None)), SlackIgnoreReason::Bot(Some(BOT.into())));
    }

    #[test]
    fn edits_and_deletions_are_ignored() {
        let changed = callback(json!({
            "type": "message", "subtype": "message_changed", "hidden": true, "channel": "C0CHAN",
            "message": {"type": "message", "user": "U0ALICE", "text": "<@U0BOT> fix it", "ts": "1.2", "edited": {"user": "U0ALICE", "ts": "1.3"}},
            "previous_message": {"type": "message", "user": "U0ALICE", "text": "fix it", "ts": "1.2"},
            "ts": "1.3", "event_ts": "1.3", "channel_type": "im"
        }));
        assert_eq!(ignored(parse(&changed)), SlackIgnoreReason::Edited);
        let deleted = callback(json!({
            "type": "message", "subtype": "message_deleted", "hidden": true, "channel": "C0CHAN",
            "ts": "1.4", "deleted_ts": "1.2", "event_ts": "1.4", "channel_type": "im"
        }));
        assert_eq!(ignored(parse(&deleted)), SlackIgnoreReason::Deleted);
        let mut edited_mention = mention("<@U0BOT> fix it");
        edited_mention["event"]["edited"] = json!({"user": "U0ALICE", "ts": "1700000001.000000"});
        assert_eq!(ignored(parse(&edited_mention)), SlackIgnoreReason::Edited);
    }

    #[test]
    fn other_subtypes_are_ignored_but_people_writing_are_not() {
        let mut join = message("<@U0BOT> has joined the channel", "channel");
        join["event"]["subtype"] = json!("channel_join");
        assert_eq!(ignored(parse(&join)), SlackIgnoreReason::Subtype("channel_join".into()));
        for subtype in PERSON_SUBTYPES {
            let mut payload = mention("<@U0BOT> fix what the screenshot shows");
            payload["event"]["subtype"] = json!(subtype);
            assert_eq!(request(parse(&payload)).command, task("fix what the screenshot shows"), "{subtype}");
        }
    }

    #[test]
    fn other_events_and_callbacks_are_ignored() {
        let member = callback(json!({"type": "member_joined_channel", "user": "U0ALICE", "channel": "C0CHAN"}));
        assert_eq!(ignored(parse(&member)), SlackIgnoreReason::Event("member_joined_channel".into()));
        // `team_join` carries `user` as an object: still only ignored.
        let team_join = callback(json!({"type": "team_join", "user": {"id": "U0NEW"}}));
        assert_eq!(ignored(parse(&team_join)), SlackIgnoreReason::Event("team_join".into()));
        let limited = json!({"token": "x", "type": "app_rate_limited", "team_id": "T0TEAM", "minute_rate_limited": 1_518_467_820});
        assert_eq!(ignored(parse(&limited)), SlackIgnoreReason::Callback("app_rate_limited".into()));
    }

    #[test]
    fn a_mention_inside_code_or_a_quote_is_not_a_request() {
        assert_eq!(ignored(parse(&mention("```<@U0BOT> fix it```"))), SlackIgnoreReason::NoMention);
        assert_eq!(ignored(parse(&mention("see `<@U0BOT> fix it`"))), SlackIgnoreReason::NoMention);
        // Slack escapes the quote marker.
        assert_eq!(
            ignored(parse(&mention("&gt; <@U0BOT> fix it\nthis is what I asked"))),
            SlackIgnoreReason::NoMention
        );
        let r = request(parse(&mention("&gt; <@U0BOT> fix it\n\n<@U0BOT> fix it properly")));
        assert_eq!(r.command, task("fix it properly"));
    }

    #[test]
    fn a_typed_mention_is_text_not_a_mention() {
        // Someone typing `<@U0BOT>` literally: Slack escapes it, so it never summons errand.
        assert_eq!(ignored(parse(&mention("&lt;@U0BOT&gt; fix it"))), SlackIgnoreReason::NoMention);
    }

    #[test]
    fn commands_read_as_on_github() {
        assert_eq!(request(parse(&mention("<@U0BOT> status"))).command, Ok(Command::Status));
        assert_eq!(request(parse(&mention("<@U0BOT> help"))).command, Ok(Command::Help));
        assert_eq!(request(parse(&mention("hey <@U0BOT>, stop"))).command, Ok(Command::Stop));
        assert_eq!(
            request(parse(&mention("<@U0BOT> --attempts 3 fix the flaky login test"))).command,
            Ok(Command::Task {
                instruction: "fix the flaky login test".into(),
                options: TaskOptions { attempts: Some(3) }
            })
        );
        assert_eq!(
            request(parse(&mention("<@U0BOT> --model x fix it"))).command,
            Err(ParseError::UnknownOption { option: "--model".into() })
        );
        assert_eq!(request(parse(&mention("<@U0BOT>"))).command, task(""));
    }

    #[test]
    fn the_instruction_has_plain_links_and_people() {
        let r = request(parse(&mention(
            "<@U0BOT> fix <https://github.com/acme/webapp/issues/12> with <@U0CAROL|carol> &amp; <@U0DAVE> in <#C0CHAN|dev>",
        )));
        assert_eq!(r.command, task("fix https://github.com/acme/webapp/issues/12 with @carol & @U0DAVE in #dev"));
    }

    #[test]
    fn the_mention_reads_as_the_first_configured_name() {
        let names = Mentions::parse("errand, @agent").unwrap();
        let body = mention("<@U0BOT> fix it").to_string();
        let context = ParseContext { bot_user_id: Some(BOT), mentions: &names };
        let r = request(parse_event(body.as_bytes(), &context));
        assert_eq!((r.mention.as_str(), r.text.as_str()), ("@errand", "@errand fix it"));
    }

    #[test]
    fn a_request_missing_what_it_needs_is_an_error() {
        for (key, field) in [("channel", "event.channel"), ("user", "event.user"), ("ts", "event.ts")] {
            let mut payload = mention("<@U0BOT> fix it");
            payload["event"].as_object_mut().unwrap().remove(key);
            match parse(&payload) {
                Err(SlackPayloadError::Missing(missing)) => assert_eq!(missing, field),
                other => panic!("{key}: {other:?}"),
            }
        }
        // Without a text there is no mention: nothing to do, not a broken payload.
        let mut no_text = mention("<@U0BOT> fix it");
        no_text["event"].as_object_mut().unwrap().remove("text");
        assert_eq!(ignored(parse(&no_text)), SlackIgnoreReason::NoMention);
        let mut no_event_id = mention("<@U0BOT> fix it");
        no_event_id.as_object_mut().unwrap().remove("event_id");
        assert!(matches!(parse(&no_event_id), Err(SlackPayloadError::Missing("event_id"))));
        let mut no_team = mention("<@U0BOT> fix it");
        no_team.as_object_mut().unwrap().remove("team_id");
        assert!(matches!(parse(&no_team), Err(SlackPayloadError::Missing("team_id"))));
        no_team["event"]["team"] = json!("T0EVENT");
        assert_eq!(request(parse(&no_team)).team_id, "T0EVENT");
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        assert!(matches!(parse_with("not json", None), Err(SlackPayloadError::NotJson(_))));
        assert!(matches!(parse_with("[1, 2]", None), Err(SlackPayloadError::Invalid("body"))));
        assert!(matches!(parse_with("{}", None), Err(SlackPayloadError::Missing("type"))));
        assert!(matches!(parse(&json!({"type": 3})), Err(SlackPayloadError::Invalid("type"))));
        assert!(matches!(parse(&json!({"type": "event_callback"})), Err(SlackPayloadError::Missing("event"))));
        assert!(matches!(parse(&callback(json!("x"))), Err(SlackPayloadError::Invalid("event"))));
        assert!(matches!(parse(&callback(json!({"user": "U1"}))), Err(SlackPayloadError::Missing("event.type"))));
        let mut numeric_ts = mention("<@U0BOT> fix it");
        numeric_ts["event"]["ts"] = json!(1_700_000_000.5);
        assert!(matches!(parse(&numeric_ts), Err(SlackPayloadError::Invalid("event.ts"))));
        let mut bad_authorizations = mention("<@U0BOT> fix it");
        bad_authorizations["authorizations"] = json!("all");
        let body = bad_authorizations.to_string();
        assert!(matches!(parse_with(&body, None), Err(SlackPayloadError::Invalid("authorizations"))));
    }

    #[test]
    fn the_requester_team_is_the_users_own_in_a_shared_channel() {
        let mut payload = mention("<@U0BOT> fix it");
        assert_eq!(request(parse(&payload)).requester_team(), "T0TEAM");
        payload["event"]["user_team"] = json!("T0PARTNER");
        assert_eq!(request(parse(&payload)).requester_team(), "T0PARTNER");
    }

    #[test]
    fn plain_text_resolves_slack_markup() {
        let plain = |raw: &str| plain_text(raw, &["U0BOT"], "@agent");
        assert_eq!(plain("<@U0BOT> hi"), "@agent hi");
        assert_eq!(plain("<@U0BOT|errand> hi"), "@agent hi");
        assert_eq!(plain("<@U0ALICE> and <@U0BOB|bob>"), "@U0ALICE and @bob");
        assert_eq!(plain("<#C0CHAN|general> <#C0OTHER>"), "#general #C0OTHER");
        assert_eq!(plain("<!here> <!channel> <!subteam^S0TEAM|@backend>"), "@here @channel @backend");
        assert_eq!(plain("<!date^1392734382^{date}|Feb 18, 2014>"), "Feb 18, 2014");
        assert_eq!(plain("<https://github.com/acme/webapp>"), "https://github.com/acme/webapp");
        assert_eq!(plain("<http://github.com/acme/webapp|github.com/acme/webapp>"), "github.com/acme/webapp");
        assert_eq!(plain("<mailto:a@example.com|a@example.com>"), "a@example.com");
        assert_eq!(plain("<https://example.com/a?b=1&amp;c=2|the docs>"), "the docs (https://example.com/a?b=1&c=2)");
        assert_eq!(plain("a &lt;b&gt; &amp;&amp; c &amp;lt; &copy;"), "a <b> && c &lt; &copy;");
        assert_eq!(plain("unclosed <@U0BOT"), "unclosed <@U0BOT");
        assert_eq!(plain("ünïcödé <@U0BOT> 🙏"), "ünïcödé @agent 🙏");
    }

    #[test]
    fn slash_commands_parse_from_the_form() {
        let c = parse_slash_command(SLASH_HELLO).unwrap();
        assert_eq!(
            c,
            SlashCommand {
                team_id: "T111".into(),
                channel_id: "C111".into(),
                user_id: "W111".into(),
                command: "/hello-world".into(),
                text: "Hi".into(),
                response_url: Some("https://hooks.slack.com/commands/T111/111/xxxxx".into()),
                trigger_id: Some("111.111.xxx".into()),
            }
        );
        assert_eq!(c.parse_command(), task("Hi"));
        let c = parse_slash_command(SLASH_WEBHOOK_COLLECT).unwrap();
        assert_eq!(
            (c.team_id.as_str(), c.channel_id.as_str(), c.user_id.as_str()),
            ("T1DC2JH3J", "G8PSS9T3V", "U2CERLKJA")
        );
        assert_eq!((c.command.as_str(), c.text.as_str()), ("/webhook-collect", ""));
        assert_eq!(
            c.response_url.as_deref(),
            Some("https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN")
        );
        assert_eq!(c.trigger_id.as_deref(), Some("398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"));
        assert_eq!(c.parse_command(), Ok(Command::Help));
    }

    #[test]
    fn slash_command_text_reads_like_a_mention() {
        let command = |text: &str| {
            let body = format!("team_id=T1&channel_id=C1&user_id=U1&command=%2Ferrand&text={text}");
            parse_slash_command(body.as_bytes()).unwrap().parse_command()
        };
        assert_eq!(command("fix+the+flaky+test+in+acme%2Fwebapp"), task("fix the flaky test in acme/webapp"));
        assert_eq!(command("status"), Ok(Command::Status));
        assert_eq!(command("+++"), Ok(Command::Help));
        assert_eq!(
            command("--attempts+2+fix+it"),
            Ok(Command::Task { instruction: "fix it".into(), options: TaskOptions { attempts: Some(2) } })
        );
        assert_eq!(command("fix+%3Chttps%3A%2F%2Fgithub.com%2Facme%2Fapp%3E"), task("fix https://github.com/acme/app"));
    }

    #[test]
    fn a_slash_command_missing_what_it_needs_is_an_error() {
        let full = "team_id=T1&channel_id=C1&user_id=U1&command=%2Ferrand&text=hi";
        for key in ["team_id", "channel_id", "user_id", "command"] {
            let body: Vec<&str> = full.split('&').filter(|pair| !pair.starts_with(key)).collect();
            assert_eq!(parse_slash_command(body.join("&").as_bytes()), Err(SlashCommandError::Missing(key)));
        }
        let c = parse_slash_command(b"team_id=T1&channel_id=C1&user_id=U1&command=%2Ferrand").unwrap();
        assert_eq!((c.text.as_str(), c.response_url, c.trigger_id), ("", None, None));
        assert_eq!(parse_slash_command(b"ssl_check=1&token=x"), Err(SlashCommandError::SslCheck));
        assert_eq!(parse_slash_command(b""), Err(SlashCommandError::Missing("team_id")));
        assert_eq!(parse_slash_command(APP_MENTION_DOCS.as_bytes()), Err(SlashCommandError::Missing("team_id")));
    }

    #[test]
    fn form_decoding_follows_the_url_standard() {
        let pairs = |body: &[u8]| decode_form(body);
        let owned = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(pairs(b"a=1&b=x+y&c=%2Fz"), owned(&[("a", "1"), ("b", "x y"), ("c", "/z")]));
        assert_eq!(pairs(b"&&a&=v&b="), owned(&[("a", ""), ("", "v"), ("b", "")]));
        assert_eq!(pairs(b"p=%zz%4"), owned(&[("p", "%zz%4")]));
        assert_eq!(pairs(b"p=%"), owned(&[("p", "%")]));
        assert_eq!(pairs(b"p=%2b%2B%25"), owned(&[("p", "++%")]));
        assert_eq!(pairs(b"p=a=b"), owned(&[("p", "a=b")]));
        assert_eq!(pairs(b"t=%C3%BCber+%F0%9F%99%8F"), owned(&[("t", "über 🙏")]));
        assert_eq!(pairs(b"t=%FF"), owned(&[("t", "\u{FFFD}")]));
        assert_eq!(pairs(b"k%20ey=v"), owned(&[("k ey", "v")]));
    }

    #[test]
    fn ignore_reasons_describe_themselves() {
        assert_eq!(
            SlackIgnoreReason::Event("reaction_added".into()).describe(),
            "event `reaction_added` is not handled"
        );
        assert_eq!(SlackIgnoreReason::Bot(None).describe(), "message by a bot");
        assert!(SlackIgnoreReason::CoveredByAppMention.describe().contains("app_mention"));
    }
}
