//! The Slack Web API client: errand's replies in a request's thread (post, edit, react) and the
//! thread read back, over slack-morphism, with Slack's rate limits waited out within a bound.
//!
//! Slack ids are plain `&str` on the way in (a channel id such as `C0123ABCD`, a message `ts` such
//! as `1712345678.000200`, a thread's `thread_ts`, which is its first message's `ts`); a message
//! errand posts comes back as a [`MessageTs`] to edit later.
//!
//! Text is Slack mrkdwn and is passed through as given: callers format it, and run whatever came
//! from people or agents through [`escape`] first.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::secrets::Redactor;

/// Slack's Web API, used when `ERRAND_SLACK_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// How often one call is sent again after Slack answered 429, each time after its `Retry-After`.
/// Besides these retries, slack-morphism's rate control spaces the `chat.postMessage` calls of one
/// client at least 1 s apart (a limit built into slack-morphism, for all channels together), so
/// errand's posts from one process go out one a second; its per-tier limits apply only to tokens
/// that name a team, which errand's do not.
const MAX_RATE_LIMIT_RETRIES: usize = 3;

/// The longest one call may take, rate-limit waits and retries included. slack-morphism sleeps
/// through any `Retry-After` (its `max_delay_timeout` setting is never read) and its HTTP client
/// has no timeout of its own, so this is what keeps a worker from hanging on Slack; a call cut
/// off here is transient and the job is tried again later.
const CALL_DEADLINE: Duration = Duration::from_secs(90);

/// Messages per `conversations.replies` page: Slack recommends no more than 200.
const THREAD_PAGE_SIZE: u16 = 200;

/// Pages read from one thread before errand stops (with a warning) and uses what it has.
const MAX_THREAD_PAGES: usize = 25;

/// Slack `error` codes that mean "try again later" rather than "this will never work".
const TRANSIENT_CODES: [&str; 6] =
    ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"];

type Connector = SlackClientHyperHttpsConnector;

/// The `ts` of a message errand posted: its id within the channel, needed to edit it or react.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct MessageTs(String);

impl MessageTs {
    pub fn new(ts: impl Into<String>) -> MessageTs {
        MessageTs(ts.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MessageTs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MessageTs {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for MessageTs {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for MessageTs {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// One message of a thread, as `conversations.replies` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMessage {
    /// The author's user id; for a bot's message, the bot user's id (when Slack gives it).
    pub user: Option<String>,
    /// Set when a bot or app posted the message.
    pub bot_id: Option<String>,
    /// The message's mrkdwn text (empty for a message made only of blocks or files).
    pub text: String,
    pub ts: String,
}

/// Who the bot token belongs to (`auth.test`), to tell errand's own messages from others'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot user's id (`U…`): the `user` of the messages errand posts.
    pub user_id: String,
    /// The bot's id (`B…`): the `bot_id` of the messages errand posts.
    pub bot_id: Option<String>,
    pub team_id: String,
}

/// Why a Slack call did not succeed. `Display` is a one-line message for logs: the method and
/// what Slack said, never the token or a response body.
#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    /// Slack answered `ok: false` with this `error` code (`channel_not_found`, `invalid_auth`,
    /// `message_not_found`, `msg_too_long`, ...).
    #[error("Slack {method} failed: {code}")]
    Api { method: &'static str, code: String },
    /// Slack still answered 429 after the retries.
    #[error("Slack {method} is still rate limited after {MAX_RATE_LIMIT_RETRIES} retries{}", retry_hint(*.retry_after))]
    RateLimited { method: &'static str, retry_after: Option<Duration> },
    /// An HTTP status other than 200 and 429.
    #[error("Slack {method} answered HTTP {status}")]
    Http { method: &'static str, status: u16 },
    /// Slack could not be reached, or the connection broke.
    #[error("could not reach Slack for {method}: {detail}")]
    Transport { method: &'static str, detail: String },
    /// The call, rate-limit waits included, took longer than the deadline.
    #[error("Slack {method} did not finish within {}s", deadline.as_secs())]
    TimedOut { method: &'static str, deadline: Duration },
    /// Slack's answer could not be read (it does not match what slack-morphism expects).
    #[error("Slack {method} gave an answer errand cannot read: {detail}")]
    Protocol { method: &'static str, detail: String },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default()
}

impl SlackApiError {
    /// Whether trying again later may succeed (rate limits, Slack outages, network trouble,
    /// time-outs). The rest is permanent: a bad token, a missing scope, an unknown channel or
    /// message, a text Slack refuses; retrying will not help.
    pub fn is_transient(&self) -> bool {
        match self {
            SlackApiError::Api { code, .. } => TRANSIENT_CODES.contains(&code.as_str()),
            SlackApiError::Http { status, .. } => *status >= 500 || *status == 408,
            SlackApiError::RateLimited { .. } | SlackApiError::Transport { .. } | SlackApiError::TimedOut { .. } => {
                true
            }
            SlackApiError::Protocol { .. } => false,
        }
    }

    /// Slack's `error` code, when Slack answered `ok: false`.
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackApiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The Web API method that failed, e.g. `chat.postMessage`.
    pub fn method(&self) -> &'static str {
        match self {
            SlackApiError::Api { method, .. }
            | SlackApiError::RateLimited { method, .. }
            | SlackApiError::Http { method, .. }
            | SlackApiError::Transport { method, .. }
            | SlackApiError::TimedOut { method, .. }
            | SlackApiError::Protocol { method, .. } => method,
        }
    }

    fn from_client(method: &'static str, error: SlackClientError) -> SlackApiError {
        // The `Display` of slack-morphism's errors carries whole response bodies; keep only the
        // parts that say what went wrong.
        match error {
            SlackClientError::ApiError(e) => SlackApiError::Api { method, code: e.code },
            SlackClientError::RateLimitError(e) => SlackApiError::RateLimited { method, retry_after: e.retry_after },
            SlackClientError::HttpError(e) => SlackApiError::Http { method, status: e.status_code.as_u16() },
            SlackClientError::HttpProtocolError(e) => {
                let detail =
                    e.cause.as_deref().map_or_else(|| "connection failed".to_owned(), |cause| error_chain(cause));
                SlackApiError::Transport { method, detail }
            }
            SlackClientError::SystemError(e) => {
                let detail = match (e.message, e.cause.as_deref()) {
                    (Some(message), Some(cause)) => format!("{message}: {}", error_chain(cause)),
                    (Some(message), None) => message,
                    (None, Some(cause)) => error_chain(cause),
                    (None, None) => "system error".to_owned(),
                };
                SlackApiError::Transport { method, detail }
            }
            SlackClientError::EndOfStream(_) => {
                SlackApiError::Transport { method, detail: "the connection closed early".to_owned() }
            }
            SlackClientError::ProtocolError(e) => SlackApiError::Protocol { method, detail: e.json_error.to_string() },
            SlackClientError::SocketModeProtocolError(e) => SlackApiError::Protocol { method, detail: e.message },
        }
    }
}

/// An error and its sources on one line (hyper's own message is only "client error (Connect)").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Escapes text for Slack mrkdwn: `&`, `<` and `>` become `&amp;`, `&lt;` and `&gt;`, so that
/// text from people, agents or repositories cannot form links, mentions (`<!channel>`) or
/// markup of its own. Use it on what is embedded, not on the formatting around it.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// errand's Slack Web API client: a bot token and Slack's base URL. Cheap to clone.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackClient<Connector>>,
    bot_token: SecretString,
    api_url: String,
    thread_page_size: u16,
    /// `auth.test`, asked once, when errand first needs to know its own messages.
    identity: Arc<tokio::sync::OnceCell<BotIdentity>>,
    /// Every text errand posts passes it here, at the edge.
    redactor: Redactor,
}

impl fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackApi").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

impl SlackApi {
    /// A client for the Web API at `api_url` ([`DEFAULT_API_URL`], or e.g.
    /// `http://127.0.0.1:PORT/api` for a fake). TLS uses rustls with ring and the platform's root
    /// certificates, whatever crypto provider the process installed; plain `http` is accepted
    /// (slack-morphism's own connector refuses it) because tests and local proxies need it.
    pub fn new(bot_token: SecretString, api_url: &str) -> anyhow::Result<SlackApi> {
        let api_url = api_url.trim_end_matches('/').to_owned();
        let parsed: http::Uri =
            api_url.parse().map_err(|e| anyhow::anyhow!("the Slack API URL {api_url:?} is not a URL: {e}"))?;
        match (parsed.scheme_str(), parsed.host()) {
            (Some("https"), Some(_)) => {}
            (Some("http"), Some(_)) => {
                tracing::warn!(api_url, "the Slack API URL is plain http: the bot token is sent unencrypted")
            }
            _ => anyhow::bail!("the Slack API URL {api_url:?} must be an http or https URL"),
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| anyhow::anyhow!("loading the platform's root certificates for Slack: {e}"))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let rate_control = SlackApiRateControlConfig::new().with_max_retries(MAX_RATE_LIMIT_RETRIES);
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_rate_control(rate_control)
            .with_slack_api_url(&api_url);
        Ok(SlackApi {
            client: Arc::new(SlackClient::new(connector)),
            bot_token,
            api_url,
            thread_page_size: THREAD_PAGE_SIZE,
            identity: Arc::new(tokio::sync::OnceCell::new()),
            redactor: Redactor::default(),
        })
    }

    /// Redacts every text posted to Slack with `redactor` (the process's secrets).
    pub fn with_redactor(self, redactor: Redactor) -> SlackApi {
        SlackApi { redactor, ..self }
    }

    /// Reads threads `size` messages per request (Slack allows up to 1000). For tests of
    /// pagination; errand uses 200.
    pub fn with_thread_page_size(mut self, size: u16) -> SlackApi {
        self.thread_page_size = size.clamp(1, 1000);
        self
    }

    /// The base URL calls go to, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// slack-morphism wants the token as a plain string; it is made for each call and dropped
    /// after it, so the only long-lived copy stays a `SecretString`.
    fn token(&self) -> SlackApiToken {
        SlackApiToken::new(SlackApiTokenValue::new(self.bot_token.expose_secret().to_owned()))
            .with_token_type(SlackApiTokenType::Bot)
    }

    /// Posts `text` as a reply in the thread `thread_ts` of `channel_id`; returns the new
    /// message's `ts`.
    pub async fn post_in_thread(
        &self,
        channel_id: &str,
        thread_ts: &str,
        text: &str,
    ) -> Result<MessageTs, SlackApiError> {
        let token = self.token();
        let session = self.client.open_session(&token);
        let request = SlackApiChatPostMessageRequest::new(
            SlackChannelId::new(channel_id.to_owned()),
            SlackMessageContent::new().with_text(self.redactor.redact(text)),
        )
        .with_thread_ts(SlackTs::new(thread_ts.to_owned()));
        let response = settle("chat.postMessage", session.chat_post_message(&request)).await?;
        Ok(MessageTs(response.ts.0))
    }

    /// Posts `text` as a message of its own in `channel_id` (the start of a thread errand opens for
    /// a slash command); returns its `ts`.
    pub async fn post_in_channel(&self, channel_id: &str, text: &str) -> Result<MessageTs, SlackApiError> {
        let token = self.token();
        let session = self.client.open_session(&token);
        let request = SlackApiChatPostMessageRequest::new(
            SlackChannelId::new(channel_id.to_owned()),
            SlackMessageContent::new().with_text(self.redactor.redact(text)),
        );
        let response = settle("chat.postMessage", session.chat_post_message(&request)).await?;
        Ok(MessageTs(response.ts.0))
    }

    /// Replaces the text of errand's message `ts` in `channel_id`.
    pub async fn update(&self, channel_id: &str, ts: &str, text: &str) -> Result<(), SlackApiError> {
        let token = self.token();
        let session = self.client.open_session(&token);
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel_id.to_owned()),
            SlackMessageContent::new().with_text(self.redactor.redact(text)),
            SlackTs::new(ts.to_owned()),
        );
        settle("chat.update", session.chat_update(&request)).await?;
        Ok(())
    }

    /// Adds the reaction `name` (an emoji name without colons, e.g. `eyes`) to message `ts`. A
    /// reaction errand already made counts as done.
    pub async fn react(&self, channel_id: &str, ts: &str, name: &str) -> Result<(), SlackApiError> {
        let token = self.token();
        let session = self.client.open_session(&token);
        let request = SlackApiReactionsAddRequest::new(
            SlackChannelId::new(channel_id.to_owned()),
            SlackReactionName::new(name.trim_matches(':').to_owned()),
            SlackTs::new(ts.to_owned()),
        );
        match settle("reactions.add", session.reactions_add(&request)).await {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("already_reacted") => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The messages of the thread `thread_ts` in `channel_id`, oldest first: the message that
    /// started it, then the replies (people's and bots'). Follows Slack's pagination up to
    /// [`MAX_THREAD_PAGES`] pages; beyond that it logs a warning and returns what it read.
    pub async fn thread(&self, channel_id: &str, thread_ts: &str) -> Result<Vec<ThreadMessage>, SlackApiError> {
        let mut messages = Vec::new();
        self.each_thread_page(channel_id, thread_ts, |page| {
            messages.extend(page);
            false
        })
        .await?;
        Ok(messages)
    }

    /// The `ts` of the first message errand's bot posted in the thread whose text contains
    /// `marker`, if there is one. A job that runs again after a crash finds its reply this way
    /// and edits it instead of posting a second one.
    pub async fn find_own_reply(
        &self,
        channel_id: &str,
        thread_ts: &str,
        marker: &str,
    ) -> Result<Option<MessageTs>, SlackApiError> {
        let me = self.identity().await?;
        let mut found = None;
        self.each_thread_page(channel_id, thread_ts, |page| {
            found = page.into_iter().find(|m| is_from(m, me) && m.text.contains(marker)).map(|m| MessageTs(m.ts));
            found.is_some()
        })
        .await?;
        Ok(found)
    }

    /// Posts `text` in the thread unless errand already has a reply there containing `marker`
    /// (see [`SlackApi::find_own_reply`]); then that reply gets `text` instead. Returns the
    /// reply's `ts` either way. `text` must contain `marker`, or the next call will not find it.
    pub async fn post_in_thread_once(
        &self,
        channel_id: &str,
        thread_ts: &str,
        text: &str,
        marker: &str,
    ) -> Result<MessageTs, SlackApiError> {
        debug_assert!(text.contains(marker), "the reply must carry its marker to be found again");
        match self.find_own_reply(channel_id, thread_ts, marker).await? {
            Some(ts) => {
                self.update(channel_id, ts.as_str(), text).await?;
                Ok(ts)
            }
            None => self.post_in_thread(channel_id, thread_ts, text).await,
        }
    }

    /// Who the bot token belongs to (`auth.test`), asked once per client.
    pub async fn identity(&self) -> Result<&BotIdentity, SlackApiError> {
        self.identity
            .get_or_try_init(|| async {
                let token = self.token();
                let session = self.client.open_session(&token);
                let response = settle("auth.test", session.auth_test()).await?;
                Ok(BotIdentity {
                    user_id: response.user_id.0,
                    bot_id: response.bot_id.map(|id| id.0),
                    team_id: response.team_id.0,
                })
            })
            .await
    }

    /// Reads the thread page by page, handing each page to `visit` until it returns true (done)
    /// or the pages run out. A `ts` seen on an earlier page is dropped: errand does not rely on
    /// whether Slack repeats the thread's first message on every page.
    async fn each_thread_page(
        &self,
        channel_id: &str,
        thread_ts: &str,
        mut visit: impl FnMut(Vec<ThreadMessage>) -> bool,
    ) -> Result<(), SlackApiError> {
        let token = self.token();
        let session = self.client.open_session(&token);
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<SlackCursorId> = None;
        for _ in 0..MAX_THREAD_PAGES {
            let request = SlackApiConversationsRepliesRequest::new(
                SlackChannelId::new(channel_id.to_owned()),
                SlackTs::new(thread_ts.to_owned()),
            )
            .with_limit(self.thread_page_size)
            .opt_cursor(cursor.take());
            let response = settle("conversations.replies", session.conversations_replies(&request)).await?;
            let page: Vec<ThreadMessage> = response
                .messages
                .into_iter()
                .filter(|m| seen.insert(m.origin.ts.0.clone()))
                .map(|m| ThreadMessage {
                    user: m.sender.user.map(|u| u.0),
                    bot_id: m.sender.bot_id.map(|b| b.0),
                    text: m.content.text.unwrap_or_default(),
                    ts: m.origin.ts.0,
                })
                .collect();
            if visit(page) {
                return Ok(());
            }
            match response.response_metadata.and_then(|meta| meta.next_cursor) {
                Some(next) if !next.0.is_empty() => cursor = Some(next),
                _ => return Ok(()),
            }
        }
        tracing::warn!(
            channel_id,
            thread_ts,
            pages = MAX_THREAD_PAGES,
            "the Slack thread is longer than errand reads; using its first pages"
        );
        Ok(())
    }
}

/// Whether errand's bot posted the message.
fn is_from(message: &ThreadMessage, me: &BotIdentity) -> bool {
    let by_bot = me.bot_id.is_some() && message.bot_id == me.bot_id;
    by_bot || message.user.as_deref() == Some(me.user_id.as_str())
}

/// Awaits one slack-morphism call within [`CALL_DEADLINE`] and types its failure.
async fn settle<T>(
    method: &'static str,
    call: impl Future<Output = Result<T, SlackClientError>>,
) -> Result<T, SlackApiError> {
    match tokio::time::timeout(CALL_DEADLINE, call).await {
        Ok(result) => result.map_err(|error| SlackApiError::from_client(method, error)),
        Err(_) => Err(SlackApiError::TimedOut { method, deadline: CALL_DEADLINE }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_turns_the_three_mrkdwn_control_characters_into_entities() {
        assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
        assert_eq!(
            escape("<!channel> <@U123|bob> <https://x|y>"),
            "&lt;!channel&gt; &lt;@U123|bob&gt; &lt;https://x|y&gt;"
        );
    }

    #[test]
    fn escape_leaves_everything_else_alone() {
        let text = "*bold* _it_ `code` ~strike~ > quote? 'é' \"q\" #1 :eyes:";
        assert_eq!(escape(text), text.replace('>', "&gt;"));
        assert_eq!(escape(""), "");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn escape_escapes_an_existing_entity_again() {
        // The caller's text is taken literally: "&amp;" typed by a person must show as "&amp;".
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn errors_say_whether_a_retry_can_help() {
        let api = |code: &str| SlackApiError::Api { method: "chat.postMessage", code: code.to_owned() };
        assert!(api("ratelimited").is_transient());
        assert!(api("internal_error").is_transient());
        assert!(!api("invalid_auth").is_transient());
        assert!(!api("channel_not_found").is_transient());
        assert!(SlackApiError::Http { method: "chat.update", status: 503 }.is_transient());
        assert!(!SlackApiError::Http { method: "chat.update", status: 404 }.is_transient());
        assert!(SlackApiError::RateLimited { method: "chat.update", retry_after: None }.is_transient());
        assert!(SlackApiError::TimedOut { method: "chat.update", deadline: CALL_DEADLINE }.is_transient());
        assert!(!SlackApiError::Protocol { method: "chat.update", detail: String::new() }.is_transient());
    }

    #[test]
    fn error_messages_name_the_method_and_what_slack_said() {
        let error = SlackApiError::Api { method: "reactions.add", code: "invalid_name".to_owned() };
        assert_eq!(error.to_string(), "Slack reactions.add failed: invalid_name");
        let error =
            SlackApiError::RateLimited { method: "chat.postMessage", retry_after: Some(Duration::from_secs(30)) };
        assert_eq!(error.to_string(), "Slack chat.postMessage is still rate limited after 3 retries (retry after 30s)");
    }

    #[test]
    fn the_client_is_debug_printed_without_its_token() {
        let api = SlackApi::new(SecretString::from("xoxb-very-secret"), "http://127.0.0.1:9/api/").expect("a client");
        assert_eq!(api.api_url(), "http://127.0.0.1:9/api");
        let printed = format!("{api:?}");
        assert!(!printed.contains("very-secret"), "{printed}");
    }

    #[test]
    fn the_api_url_must_be_http_or_https() {
        assert!(SlackApi::new(SecretString::from("xoxb-t"), "ftp://slack.example/api").is_err());
        assert!(SlackApi::new(SecretString::from("xoxb-t"), "not a url").is_err());
    }
}
