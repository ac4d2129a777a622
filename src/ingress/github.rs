//! GitHub webhook payloads turned into our own event: a ping, a trigger (a comment that asks
//! errand for something), or a reason to ignore the delivery.
//!
//! The structs here are our own and lenient: every field is optional and unknown fields are
//! ignored, because real deliveries and GitHub's strict schema disagree (tests/data/SOURCES.md,
//! "Findings"). What an event needs is checked by hand and a missing piece is a typed error.

use chrono::Utc;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::command::{self, Command, ParseError};
use crate::job::{Job, JobId, JobKind, ReplyTarget, RepoName, Source, Task};

/// What errand needs to know to read a delivery: the names that summon it and its own login.
#[derive(Debug, Clone)]
pub struct ParseContext<'a> {
    pub mentions: &'a [String],
    /// errand's own login (a GitHub App's is `name[bot]`); its comments never trigger a job.
    pub bot_login: Option<&'a str>,
}

/// A verified GitHub delivery, in our terms.
#[derive(Debug, Clone, PartialEq)]
pub enum GithubEvent {
    /// GitHub checking the hook after it was created.
    Ping { zen: Option<String>, hook_id: Option<u64> },
    /// A comment that addresses errand.
    Trigger(Box<Trigger>),
    /// Anything else, with the reason (for the delivery log and ours).
    Ignored(IgnoreReason),
}

/// Why a delivery starts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// An event errand does not subscribe to (or does not handle yet).
    Event(String),
    /// A handled event with an action that starts nothing (e.g. `issue_comment` `deleted`).
    Action { event: &'static str, action: String },
    /// The comment was written by a bot (errand itself included): never answer bots.
    BotAuthor(String),
    /// The comment does not mention errand outside code and quotes.
    NoMention,
}

impl IgnoreReason {
    /// A short explanation for the webhook response (shown in GitHub's delivery log).
    pub fn describe(&self) -> String {
        match self {
            Self::Event(event) => format!("event `{event}` is not handled"),
            Self::Action { event, action } => format!("`{event}` action `{action}` is not handled"),
            Self::BotAuthor(login) => format!("comment by bot `{login}`"),
            Self::NoMention => "no mention outside code and quotes".to_owned(),
        }
    }
}

/// A comment that asks errand for something, with everything needed to build a job from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub repo: RepoName,
    pub source: Source,
    pub requested_by: String,
    pub installation_id: Option<u64>,
    /// The issue or pull request number.
    pub issue: u64,
    pub comment_id: u64,
    pub comment_url: String,
    pub title: String,
    pub issue_body: String,
    /// The name the requester used (e.g. `@agent`), to address replies such as help.
    pub mention: String,
    /// The first command of the comment (later ones are ignored: one comment, one request).
    pub command: Result<Command, ParseError>,
}

impl Trigger {
    /// The job for a task command. The task's options are not part of a job yet.
    pub fn task_job(&self, instruction: &str) -> Job {
        self.job(instruction, JobKind::Task)
    }

    /// A job that only answers in the thread with `text`.
    pub fn reply_job(&self, text: String) -> Job {
        self.job("", JobKind::Reply { text })
    }

    fn job(&self, instruction: &str, kind: JobKind) -> Job {
        Job {
            id: JobId::generate(),
            repo: self.repo.clone(),
            source: self.source,
            requested_by: self.requested_by.clone(),
            created_at: Utc::now(),
            installation_id: self.installation_id,
            task: Task {
                instruction: instruction.to_owned(),
                title: self.title.clone(),
                body: self.issue_body.clone(),
                url: self.comment_url.clone(),
            },
            reply: ReplyTarget::GithubIssue { issue: self.issue, comment_id: self.comment_id },
            kind,
        }
    }
}

/// A delivery errand cannot read: answered with 400.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a JSON payload of this event: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the `{event}` payload has no `{field}`")]
    Missing { event: &'static str, field: &'static str },
    #[error("the `{event}` payload has an invalid `{field}`")]
    Invalid { event: &'static str, field: &'static str },
    #[error("the body nests JSON deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
}

/// How deep a payload's JSON may nest. GitHub's payloads nest about 5 levels; serde_json refuses
/// more than 128 when it builds our structs, but skips ignored values without a limit, so the
/// limit is checked on the bytes first, for every event alike.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `body` opens more than `limit` arrays or objects inside each other, outside strings.
fn nests_deeper_than(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Reads a verified delivery given its `X-GitHub-Event` header.
pub fn parse_event(event: &str, body: &[u8], context: &ParseContext<'_>) -> Result<GithubEvent, PayloadError> {
    if nests_deeper_than(body, MAX_JSON_DEPTH) {
        return Err(PayloadError::TooDeep);
    }
    match event {
        "ping" => {
            let ping: PingPayload = serde_json::from_slice(body)?;
            Ok(GithubEvent::Ping { zen: ping.zen, hook_id: ping.hook_id })
        }
        "issue_comment" => parse_issue_comment(serde_json::from_slice(body)?, context),
        other => {
            // Still a 400 when it is not JSON: a sender that gets that wrong should hear it.
            serde_json::from_slice::<IgnoredAny>(body)?;
            Ok(GithubEvent::Ignored(IgnoreReason::Event(other.to_owned())))
        }
    }
}

const ISSUE_COMMENT: &str = "issue_comment";

fn parse_issue_comment(payload: IssueCommentPayload, context: &ParseContext<'_>) -> Result<GithubEvent, PayloadError> {
    let missing = |field| PayloadError::Missing { event: ISSUE_COMMENT, field };
    let action = payload.action.ok_or(missing("action"))?;
    if action != "created" {
        // Edits would need the previous text to run only new commands; not handled yet.
        return Ok(GithubEvent::Ignored(IgnoreReason::Action { event: ISSUE_COMMENT, action }));
    }
    let comment = payload.comment.ok_or(missing("comment"))?;
    let body = comment.body.ok_or(missing("comment.body"))?;
    let comment_id = comment.id.ok_or(missing("comment.id"))?;
    let author = comment.user.ok_or(missing("comment.user"))?;
    let login = author.login.ok_or(missing("comment.user.login"))?;
    let issue = payload.issue.ok_or(missing("issue"))?;
    let number = issue.number.ok_or(missing("issue.number"))?;
    let full_name = payload.repository.and_then(|r| r.full_name).ok_or(missing("repository.full_name"))?;
    let repo: RepoName =
        full_name.parse().map_err(|_| PayloadError::Invalid { event: ISSUE_COMMENT, field: "repository.full_name" })?;

    if is_bot(&login, author.kind.as_deref(), context.bot_login) {
        return Ok(GithubEvent::Ignored(IgnoreReason::BotAuthor(login)));
    }
    let Some(first) = command::parse_comment(&body, context.mentions).into_iter().next() else {
        return Ok(GithubEvent::Ignored(IgnoreReason::NoMention));
    };
    let source =
        if issue.pull_request.is_some() { Source::GithubPullRequestComment } else { Source::GithubIssueComment };
    Ok(GithubEvent::Trigger(Box::new(Trigger {
        repo,
        source,
        requested_by: login,
        installation_id: payload.installation.and_then(|i| i.id),
        issue: number,
        comment_id,
        comment_url: comment.html_url.or(issue.html_url).unwrap_or_default(),
        title: issue.title.unwrap_or_default(),
        issue_body: issue.body.unwrap_or_default(),
        mention: first.mention,
        command: first.command,
    })))
}

/// Whether a comment's author is a bot: GitHub says so, the login has the `[bot]` suffix of an
/// App, or it is errand's own configured login.
fn is_bot(login: &str, kind: Option<&str>, bot_login: Option<&str>) -> bool {
    let own = bot_login.is_some_and(|own| {
        let own = own.trim_start_matches('@');
        login.eq_ignore_ascii_case(own) || login.eq_ignore_ascii_case(&format!("{own}[bot]"))
    });
    own || kind.is_some_and(|k| k.eq_ignore_ascii_case("bot")) || login.to_ascii_lowercase().ends_with("[bot]")
}

#[derive(Deserialize)]
struct PingPayload {
    zen: Option<String>,
    hook_id: Option<u64>,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    action: Option<String>,
    comment: Option<CommentPayload>,
    issue: Option<IssuePayload>,
    repository: Option<RepositoryPayload>,
    installation: Option<InstallationPayload>,
}

#[derive(Deserialize)]
struct CommentPayload {
    id: Option<u64>,
    body: Option<String>,
    html_url: Option<String>,
    user: Option<UserPayload>,
}

#[derive(Deserialize)]
struct UserPayload {
    login: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct IssuePayload {
    number: Option<u64>,
    title: Option<String>,
    body: Option<String>,
    html_url: Option<String>,
    /// Present (an object of links) when the issue is a pull request.
    pull_request: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RepositoryPayload {
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct InstallationPayload {
    id: Option<u64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::command::TaskOptions;

    fn mentions() -> Vec<String> {
        vec!["@agent".to_owned()]
    }

    fn parse(event: &str, body: &serde_json::Value) -> Result<GithubEvent, PayloadError> {
        let mentions = mentions();
        let context = ParseContext { mentions: &mentions, bot_login: Some("errand-app[bot]") };
        parse_event(event, body.to_string().as_bytes(), &context)
    }

    fn comment(body: &str, login: &str, kind: &str) -> serde_json::Value {
        json!({
            "action": "created",
            "comment": {
                "id": 3_000_000_001u64, "body": body,
                "html_url": "https://github.com/acme/app/issues/7#issuecomment-3000000001",
                "user": {"login": login, "type": kind, "id": 1},
                "unknown_field": [1, 2, 3]
            },
            "issue": {"number": 7, "title": "Login redirect loops", "body": null},
            "repository": {"full_name": "acme/app"},
            "installation": {"id": 42, "node_id": "x"}
        })
    }

    fn trigger(event: Result<GithubEvent, PayloadError>) -> Trigger {
        match event {
            Ok(GithubEvent::Trigger(trigger)) => *trigger,
            other => panic!("expected a trigger, got {other:?}"),
        }
    }

    #[test]
    fn an_issue_comment_mentioning_errand_is_a_trigger() {
        let trigger = trigger(parse("issue_comment", &comment("@agent fix the loop", "octocat", "User")));
        assert_eq!(trigger.repo.to_string(), "acme/app");
        assert_eq!(trigger.source, Source::GithubIssueComment);
        assert_eq!(trigger.requested_by, "octocat");
        assert_eq!(trigger.installation_id, Some(42));
        assert_eq!((trigger.issue, trigger.comment_id), (7, 3_000_000_001));
        assert_eq!(trigger.issue_body, "");
        assert_eq!(
            trigger.command,
            Ok(Command::Task { instruction: "fix the loop".to_owned(), options: TaskOptions::default() })
        );
        let job = trigger.task_job("fix the loop");
        assert_eq!(job.reply, ReplyTarget::GithubIssue { issue: 7, comment_id: 3_000_000_001 });
        assert_eq!(job.task.url, "https://github.com/acme/app/issues/7#issuecomment-3000000001");
        assert_eq!(job.task.title, "Login redirect loops");
    }

    #[test]
    fn a_comment_on_a_pull_request_has_the_pull_request_source() {
        let mut payload = comment("@agent fix", "octocat", "User");
        payload["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/acme/app/pulls/7"});
        assert_eq!(trigger(parse("issue_comment", &payload)).source, Source::GithubPullRequestComment);
    }

    #[test]
    fn bots_are_ignored() {
        for (login, kind) in [("renovate[bot]", "Bot"), ("someapp", "Bot"), ("x[bot]", "User"), ("errand-app[bot]", "")]
        {
            let event = parse("issue_comment", &comment("@agent fix", login, kind)).unwrap();
            assert_eq!(event, GithubEvent::Ignored(IgnoreReason::BotAuthor(login.to_owned())), "{login}");
        }
        let own = ParseContext { mentions: &mentions(), bot_login: Some("errand-app") };
        let body = comment("@agent fix", "errand-app", "User").to_string();
        assert!(matches!(
            parse_event("issue_comment", body.as_bytes(), &own),
            Ok(GithubEvent::Ignored(IgnoreReason::BotAuthor(_)))
        ));
    }

    #[test]
    fn a_comment_without_a_mention_is_ignored() {
        let event = parse("issue_comment", &comment("```\n@agent fix\n```", "octocat", "User")).unwrap();
        assert_eq!(event, GithubEvent::Ignored(IgnoreReason::NoMention));
    }

    #[test]
    fn edited_and_deleted_comments_are_ignored() {
        let mut payload = comment("@agent fix", "octocat", "User");
        payload["action"] = json!("edited");
        assert!(matches!(parse("issue_comment", &payload), Ok(GithubEvent::Ignored(IgnoreReason::Action { .. }))));
    }

    #[test]
    fn other_events_are_ignored_but_must_be_json() {
        assert_eq!(parse("push", &json!({})).unwrap(), GithubEvent::Ignored(IgnoreReason::Event("push".to_owned())));
        let context = ParseContext { mentions: &[], bot_login: None };
        assert!(matches!(parse_event("push", b"not json", &context), Err(PayloadError::NotJson(_))));
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(deep(MAX_JSON_DEPTH).as_bytes(), MAX_JSON_DEPTH));
        assert!(nests_deeper_than(deep(MAX_JSON_DEPTH + 1).as_bytes(), MAX_JSON_DEPTH));
        let in_string = json!({ "comment": { "body": "[[[[{{{{\\\"[[[[".repeat(100) } }).to_string();
        assert!(!nests_deeper_than(in_string.as_bytes(), 3));
        assert!(parse("push", &serde_json::from_str::<serde_json::Value>(&deep(60)).unwrap()).is_ok());
    }

    #[test]
    fn a_ping_is_a_ping() {
        let event = parse("ping", &json!({"zen": "Keep it logically awesome.", "hook_id": 1})).unwrap();
        assert_eq!(event, GithubEvent::Ping { zen: Some("Keep it logically awesome.".to_owned()), hook_id: Some(1) });
    }

    #[test]
    fn a_created_comment_missing_what_it_needs_is_an_error() {
        for (pointer, field) in [
            ("comment", "comment"),
            ("comment/body", "comment.body"),
            ("issue/number", "issue.number"),
            ("repository", "repository.full_name"),
        ] {
            let mut payload = comment("@agent fix", "octocat", "User");
            let (parent, key) = pointer.rsplit_once('/').map_or(("", pointer), |(p, k)| (p, k));
            let parent =
                if parent.is_empty() { &mut payload } else { payload.pointer_mut(&format!("/{parent}")).unwrap() };
            parent.as_object_mut().unwrap().remove(key);
            match parse("issue_comment", &payload) {
                Err(PayloadError::Missing { field: missing, .. }) => assert_eq!(missing, field),
                other => panic!("{pointer}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_string_id_or_bad_repository_name_is_an_error() {
        let mut payload = comment("@agent fix", "octocat", "User");
        payload["comment"]["id"] = json!("12");
        assert!(matches!(parse("issue_comment", &payload), Err(PayloadError::NotJson(_))));
        let mut payload = comment("@agent fix", "octocat", "User");
        payload["repository"]["full_name"] = json!("../etc");
        assert!(matches!(parse("issue_comment", &payload), Err(PayloadError::Invalid { .. })));
    }
}
