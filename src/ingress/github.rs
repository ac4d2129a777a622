//! GitHub webhook payloads turned into our own event: a ping, a trigger (a comment, review or
//! issue change that asks errand for something), or a reason to ignore the delivery.
//!
//! The structs here are our own and lenient: every field is optional and unknown fields are
//! ignored, because real deliveries and GitHub's strict schema disagree (tests/data/SOURCES.md,
//! "Findings"). What an event needs is checked by hand and a missing piece is a typed error.
//!
//! Handled: `issue_comment` (`created`, and `edited` when the edit adds a command),
//! `pull_request_review_comment` (likewise), `pull_request_review` `submitted` (when the review's
//! own text asks), and `issues` `assigned`/`labeled` when errand is configured to take those.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::config::Mentions;
use crate::job::RepoName;
use crate::request::command;
use crate::request::ids::{CommentId, GithubItem, IssueNumber, ReviewId};
use crate::request::{GithubSubject, ReviewComment, Trigger};

/// What errand needs to know to read a delivery: the names that summon it and its own login.
#[derive(Debug, Clone, Default)]
pub struct ParseContext<'a> {
    pub mentions: &'a Mentions,
    /// errand's own login (a GitHub App's is `name[bot]`); its comments never trigger a job.
    pub bot_login: Option<&'a str>,
    /// Assigning an issue to this login starts a task (off when `None`).
    pub assignee: Option<&'a str>,
    /// Adding this label to an issue starts a task (off when `None`).
    pub label: Option<&'a str>,
}

/// A verified GitHub delivery, in our terms.
#[derive(Debug, Clone, PartialEq)]
pub enum GithubEvent {
    /// GitHub checking the hook after it was created.
    Ping { zen: Option<String>, hook_id: Option<u64> },
    /// A request addressed to errand.
    Trigger(Box<Trigger>),
    /// Anything else, with the reason (for the delivery log and ours).
    Ignored(IgnoreReason),
}

/// Why a delivery starts nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// An event errand does not subscribe to (or does not handle).
    Event(String),
    /// A handled event with an action that starts nothing (e.g. `issue_comment` `deleted`).
    Action { event: &'static str, action: String },
    /// The comment was written by a bot (errand itself included): never answer bots.
    BotAuthor(String),
    /// The comment does not mention errand outside code and quotes.
    NoMention,
    /// An edit that adds no command the previous text did not have.
    NoNewCommand,
    /// An assignment or label that is not errand's (or errand takes none).
    NotForErrand,
}

impl IgnoreReason {
    /// A short explanation for the webhook response (shown in GitHub's delivery log).
    pub fn describe(&self) -> String {
        match self {
            Self::Event(event) => format!("event `{event}` is not handled"),
            Self::Action { event, action } => format!("`{event}` action `{action}` is not handled"),
            Self::BotAuthor(login) => format!("comment by bot `{login}`"),
            Self::NoMention => "no mention outside code and quotes".to_owned(),
            Self::NoNewCommand => "the edit adds no new command".to_owned(),
            Self::NotForErrand => "the assignment or label is not errand's".to_owned(),
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
        ISSUE_COMMENT => parse_issue_comment(serde_json::from_slice(body)?, context),
        REVIEW_COMMENT => parse_review_comment(serde_json::from_slice(body)?, context),
        REVIEW => parse_review(serde_json::from_slice(body)?, context),
        ISSUES => parse_issues(serde_json::from_slice(body)?, context),
        other => {
            // Still a 400 when it is not JSON: a sender that gets that wrong should hear it.
            serde_json::from_slice::<IgnoredAny>(body)?;
            Ok(GithubEvent::Ignored(IgnoreReason::Event(other.to_owned())))
        }
    }
}

const ISSUE_COMMENT: &str = "issue_comment";
const REVIEW_COMMENT: &str = "pull_request_review_comment";
const REVIEW: &str = "pull_request_review";
const ISSUES: &str = "issues";

/// The parts of a comment-like request every event shares.
struct Asked<'p> {
    event: &'static str,
    author: Option<&'p UserPayload>,
    body: Option<&'p str>,
    /// The text before an edit, when the delivery is an edit.
    previous: Option<&'p str>,
    repository: Option<&'p RepositoryPayload>,
}

/// The first new command of a comment, or why there is none; checks the author and repository.
fn read_request(
    asked: &Asked<'_>,
    context: &ParseContext<'_>,
) -> Result<Result<(RepoName, String, command::Parsed), IgnoreReason>, PayloadError> {
    let event = asked.event;
    let missing = |field| PayloadError::Missing { event, field };
    let body = asked.body.ok_or(missing("comment.body"))?;
    let author = asked.author.ok_or(missing("comment.user"))?;
    let login = author.login.clone().ok_or(missing("comment.user.login"))?;
    let repo = repo_of(event, asked.repository)?;
    if is_bot(&login, author.kind.as_deref(), context.bot_login) {
        return Ok(Err(IgnoreReason::BotAuthor(login)));
    }
    let parsed = match asked.previous {
        Some(previous) => {
            let Some(first) = command::new_requests(previous, body, context.mentions.names()).into_iter().next() else {
                return Ok(Err(IgnoreReason::NoNewCommand));
            };
            first
        }
        None => {
            let Some(first) = command::parse_comment(body, context.mentions.names()).into_iter().next() else {
                return Ok(Err(IgnoreReason::NoMention));
            };
            first
        }
    };
    Ok(Ok((repo, login, parsed)))
}

fn repo_of(event: &'static str, repository: Option<&RepositoryPayload>) -> Result<RepoName, PayloadError> {
    let full_name = repository
        .and_then(|r| r.full_name.as_deref())
        .ok_or(PayloadError::Missing { event, field: "repository.full_name" })?;
    full_name.parse().map_err(|_| PayloadError::Invalid { event, field: "repository.full_name" })
}

/// `created` runs the comment's command; `edited` runs only a command the edit added.
fn comment_action(event: &'static str, action: Option<String>) -> Result<Result<bool, IgnoreReason>, PayloadError> {
    match action.as_deref() {
        None => Err(PayloadError::Missing { event, field: "action" }),
        Some("created") => Ok(Ok(false)),
        Some("edited") => Ok(Ok(true)),
        Some(other) => Ok(Err(IgnoreReason::Action { event, action: other.to_owned() })),
    }
}

/// What `issue_comment` and `pull_request_review_comment` deliveries share, read and checked.
struct CommentRequest {
    login: String,
    parsed: command::Parsed,
    comment: CommentPayload,
    comment_id: CommentId,
    /// The issue or pull request the comment is on, and the link to the comment.
    subject: GithubSubject,
    url: String,
    edited: bool,
}

/// Reads a comment delivery: `created` runs the comment's request, `edited` only one it added.
/// `on` names the payload's issue or pull request field, for errors.
fn read_comment_event(
    event: &'static str,
    on: [&'static str; 2],
    payload: CommentEventPayload,
    context: &ParseContext<'_>,
) -> Result<Result<CommentRequest, IgnoreReason>, PayloadError> {
    let missing = |field| PayloadError::Missing { event, field };
    let edited = match comment_action(event, payload.action)? {
        Ok(edited) => edited,
        Err(reason) => return Ok(Err(reason)),
    };
    let comment = payload.comment.ok_or(missing("comment"))?;
    let comment_id = CommentId(comment.id.ok_or(missing("comment.id"))?);
    let issue = payload.issue.ok_or(missing(on[0]))?;
    let number = IssueNumber(issue.number.ok_or(missing(on[1]))?);
    // A review comment is always on a pull request; an issue comment says so.
    let item = match event == REVIEW_COMMENT || issue.pull_request.is_some() {
        true => GithubItem::PullRequest(number),
        false => GithubItem::Issue(number),
    };
    let previous = payload.changes.as_ref().and_then(|c| c.body.as_ref()).and_then(|b| b.from.as_deref());
    if edited && previous.is_none() {
        // An edit of something else than the text (GitHub sends none today) adds no command.
        return Ok(Err(IgnoreReason::NoNewCommand));
    }
    let asked = Asked {
        event,
        author: comment.user.as_ref(),
        body: comment.body.as_deref(),
        previous,
        repository: payload.repository.as_ref(),
    };
    let (repo, login, parsed) = match read_request(&asked, context)? {
        Ok(request) => request,
        Err(reason) => return Ok(Err(reason)),
    };
    let url = comment.html_url.clone().or(issue.html_url).unwrap_or_default();
    let installation_id = payload.installation.and_then(|i| i.id);
    let subject = subject(repo, installation_id, item, issue.title, issue.body);
    Ok(Ok(CommentRequest { login, parsed, comment, comment_id, subject, url, edited }))
}

/// The issue or pull request a delivery is about.
fn subject(
    repo: RepoName,
    installation_id: Option<u64>,
    item: GithubItem,
    title: Option<String>,
    body: Option<String>,
) -> GithubSubject {
    GithubSubject { repo, installation_id, item, title: title.unwrap_or_default(), body: body.unwrap_or_default() }
}

fn parse_issue_comment(payload: CommentEventPayload, context: &ParseContext<'_>) -> Result<GithubEvent, PayloadError> {
    let request = match read_comment_event(ISSUE_COMMENT, ["issue", "issue.number"], payload, context)? {
        Ok(request) => request,
        Err(reason) => return Ok(GithubEvent::Ignored(reason)),
    };
    let CommentRequest { login, parsed, comment_id, subject, url, .. } = request;
    Ok(GithubEvent::Trigger(Box::new(Trigger::issue_comment(subject, login, comment_id, url, parsed))))
}

fn parse_review_comment(payload: CommentEventPayload, context: &ParseContext<'_>) -> Result<GithubEvent, PayloadError> {
    let request = match read_comment_event(REVIEW_COMMENT, ["pull_request", "pull_request.number"], payload, context)? {
        Ok(request) => request,
        Err(reason) => return Ok(GithubEvent::Ignored(reason)),
    };
    let CommentRequest { login, parsed, comment, comment_id, subject, url, edited } = request;
    let comment = ReviewComment {
        id: comment_id,
        in_reply_to: comment.in_reply_to_id.map(CommentId),
        review: comment.pull_request_review_id.map(ReviewId),
        edited,
    };
    Ok(GithubEvent::Trigger(Box::new(Trigger::review_comment(subject, login, comment, url, parsed))))
}

fn parse_review(payload: ReviewPayload, context: &ParseContext<'_>) -> Result<GithubEvent, PayloadError> {
    let missing = |field| PayloadError::Missing { event: REVIEW, field };
    let action = payload.action.ok_or(missing("action"))?;
    if action != "submitted" {
        return Ok(GithubEvent::Ignored(IgnoreReason::Action { event: REVIEW, action }));
    }
    let review = payload.review.ok_or(missing("review"))?;
    let review_id = ReviewId(review.id.ok_or(missing("review.id"))?);
    let pull = payload.pull_request.ok_or(missing("pull_request"))?;
    let number = IssueNumber(pull.number.ok_or(missing("pull_request.number"))?);
    // A review without text asks nothing by itself; its comments arrive as their own events.
    let body = review.body.unwrap_or_default();
    let asked = Asked {
        event: REVIEW,
        author: review.user.as_ref(),
        body: Some(&body),
        previous: None,
        repository: payload.repository.as_ref(),
    };
    let (repo, login, parsed) = match read_request(&asked, context)? {
        Ok(request) => request,
        Err(reason) => return Ok(GithubEvent::Ignored(reason)),
    };
    let url = review.html_url.or(pull.html_url).unwrap_or_default();
    let installation_id = payload.installation.and_then(|i| i.id);
    let subject = subject(repo, installation_id, GithubItem::PullRequest(number), pull.title, pull.body);
    Ok(GithubEvent::Trigger(Box::new(Trigger::review(subject, login, review_id, url, parsed))))
}

fn parse_issues(payload: IssuesPayload, context: &ParseContext<'_>) -> Result<GithubEvent, PayloadError> {
    let missing = |field| PayloadError::Missing { event: ISSUES, field };
    let action = payload.action.ok_or(missing("action"))?;
    let for_errand = match action.as_str() {
        "assigned" => context.assignee.is_some_and(|own| {
            payload.assignee.as_ref().and_then(|a| a.login.as_deref()).is_some_and(|l| l.eq_ignore_ascii_case(own))
        }),
        "labeled" => context
            .label
            .is_some_and(|own| payload.label.as_ref().and_then(|l| l.name.as_deref()).is_some_and(|n| n == own)),
        _ => return Ok(GithubEvent::Ignored(IgnoreReason::Action { event: ISSUES, action })),
    };
    if !for_errand {
        return Ok(GithubEvent::Ignored(IgnoreReason::NotForErrand));
    }
    let issue = payload.issue.ok_or(missing("issue"))?;
    let number = IssueNumber(issue.number.ok_or(missing("issue.number"))?);
    let sender = payload.sender.ok_or(missing("sender"))?;
    let login = sender.login.clone().ok_or(missing("sender.login"))?;
    let repo = repo_of(ISSUES, payload.repository.as_ref())?;
    if is_bot(&login, sender.kind.as_deref(), context.bot_login) {
        return Ok(GithubEvent::Ignored(IgnoreReason::BotAuthor(login)));
    }
    let url = issue.html_url.unwrap_or_default();
    let installation_id = payload.installation.and_then(|i| i.id);
    let subject = subject(repo, installation_id, GithubItem::Issue(number), issue.title, issue.body);
    Ok(GithubEvent::Trigger(Box::new(Trigger::issue_for_errand(
        subject,
        login,
        url,
        context.mentions.primary().to_owned(),
    ))))
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

/// `issue_comment` and `pull_request_review_comment`: a comment on an issue (`issue`) or on a pull
/// request's diff (`pull_request`, read into the same field).
#[derive(Deserialize)]
struct CommentEventPayload {
    action: Option<String>,
    comment: Option<CommentPayload>,
    changes: Option<ChangesPayload>,
    #[serde(alias = "pull_request")]
    issue: Option<IssuePayload>,
    repository: Option<RepositoryPayload>,
    installation: Option<InstallationPayload>,
}

#[derive(Deserialize)]
struct ReviewPayload {
    action: Option<String>,
    review: Option<CommentPayload>,
    pull_request: Option<IssuePayload>,
    repository: Option<RepositoryPayload>,
    installation: Option<InstallationPayload>,
}

#[derive(Deserialize)]
struct IssuesPayload {
    action: Option<String>,
    issue: Option<IssuePayload>,
    assignee: Option<UserPayload>,
    label: Option<LabelPayload>,
    sender: Option<UserPayload>,
    repository: Option<RepositoryPayload>,
    installation: Option<InstallationPayload>,
}

/// A comment, a review comment or a review: the fields errand reads are the same.
#[derive(Deserialize)]
struct CommentPayload {
    id: Option<u64>,
    body: Option<String>,
    html_url: Option<String>,
    user: Option<UserPayload>,
    /// Review comments: the thread's first comment, when this one is a reply.
    in_reply_to_id: Option<u64>,
    /// Review comments: the review the comment belongs to.
    pull_request_review_id: Option<u64>,
}

#[derive(Deserialize)]
struct ChangesPayload {
    body: Option<ChangedText>,
}

#[derive(Deserialize)]
struct ChangedText {
    from: Option<String>,
}

#[derive(Deserialize)]
struct UserPayload {
    login: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct LabelPayload {
    name: Option<String>,
}

/// An issue, or a pull request (whose payload has the same fields errand reads).
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
    use crate::job::{FollowUp, ReplyTarget, Source};
    use crate::request::command::{Command, TaskOptions};

    fn mentions() -> Mentions {
        Mentions::default()
    }

    fn parse(event: &str, body: &serde_json::Value) -> Result<GithubEvent, PayloadError> {
        let mentions = mentions();
        let context = ParseContext {
            mentions: &mentions,
            bot_login: Some("errand-app[bot]"),
            assignee: Some("errand-bot"),
            label: Some("errand"),
        };
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
        assert_eq!(trigger.about, Some(GithubItem::Issue(IssueNumber(7))));
        assert!(!trigger.on_pull_request());
        assert_eq!(trigger.body, "");
        assert_eq!(
            trigger.asked.command,
            Ok(Command::Task { instruction: "fix the loop".to_owned(), options: TaskOptions::default() })
        );
        let job = trigger.task_job("fix the loop", &TaskOptions::default());
        assert_eq!(
            job.reply,
            ReplyTarget::GithubIssue { issue: IssueNumber(7), comment_id: Some(CommentId(3_000_000_001)) }
        );
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
        let own = ParseContext { mentions: &mentions(), bot_login: Some("errand-app"), ..ParseContext::default() };
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
    fn deleted_comments_are_ignored() {
        let mut payload = comment("@agent fix", "octocat", "User");
        payload["action"] = json!("deleted");
        assert!(matches!(parse("issue_comment", &payload), Ok(GithubEvent::Ignored(IgnoreReason::Action { .. }))));
    }

    #[test]
    fn an_edit_runs_only_a_command_it_added() {
        let edited = |before: &str, after: &str| {
            let mut payload = comment(after, "octocat", "User");
            payload["action"] = json!("edited");
            payload["changes"] = json!({"body": {"from": before}});
            parse("issue_comment", &payload)
        };
        assert_eq!(
            edited("@agent fix it", "@agent fix it, thanks").map(|e| trigger(Ok(e)).asked.command).unwrap(),
            Ok(Command::Task { instruction: "fix it, thanks".into(), options: TaskOptions::default() })
        );
        assert_eq!(
            edited("Thanks!", "Thanks! @agent status").map(|e| trigger(Ok(e)).asked.command).unwrap(),
            Ok(Command::Status)
        );
        assert_eq!(
            edited("@agent fix it\n\ntypo", "@agent fix it\n\ntypo fixed").unwrap(),
            GithubEvent::Ignored(IgnoreReason::NoNewCommand)
        );
        assert_eq!(
            edited("@agent fix it", "```\n@agent fix it\n```").unwrap(),
            GithubEvent::Ignored(IgnoreReason::NoNewCommand)
        );
        let mut no_changes = comment("@agent fix", "octocat", "User");
        no_changes["action"] = json!("edited");
        assert_eq!(parse("issue_comment", &no_changes).unwrap(), GithubEvent::Ignored(IgnoreReason::NoNewCommand));
    }

    fn review_comment(body: &str, reply_to: Option<u64>) -> serde_json::Value {
        json!({
            "action": "created",
            "comment": {
                "id": 6_000_000_002u64, "body": body, "pull_request_review_id": 6_000_000_001u64,
                "in_reply_to_id": reply_to, "path": "src/lib.rs", "line": 3,
                "html_url": "https://github.com/acme/app/pull/9#discussion_r6000000002",
                "user": {"login": "octocat", "type": "User"}
            },
            "pull_request": {"number": 9, "title": "Add retries", "body": "Adds retries.", "head": {"ref": "errand/issue-1-abc"}},
            "repository": {"full_name": "acme/app"},
            "installation": {"id": 42}
        })
    }

    #[test]
    fn a_review_comment_is_a_follow_up_answered_in_its_thread() {
        let t = trigger(parse("pull_request_review_comment", &review_comment("@agent rename this", None)));
        assert_eq!(
            (t.about, t.on_pull_request(), t.source),
            (Some(GithubItem::PullRequest(IssueNumber(9))), true, Source::GithubReviewComment)
        );
        assert_eq!(
            t.reply,
            ReplyTarget::GithubReview {
                pull: IssueNumber(9),
                review_id: Some(ReviewId(6_000_000_001)),
                comment_id: Some(CommentId(6_000_000_002)),
                thread_id: Some(CommentId(6_000_000_002))
            }
        );
        assert_eq!(t.dedup_key.as_deref(), Some("github-review:acme/app:6000000001"));
        let job = t.task_job("rename this", &TaskOptions { attempts: Some(2) });
        assert_eq!((job.follow_up, job.attempts), (Some(FollowUp { pull: IssueNumber(9) }), Some(2)));
        assert_eq!(job.thread().as_ref().map(|t| t.as_str()), Some("github:acme/app#9"));

        let reply = trigger(parse("pull_request_review_comment", &review_comment("@agent also here", Some(5))));
        assert!(matches!(reply.reply, ReplyTarget::GithubReview { thread_id: Some(CommentId(5)), .. }));
    }

    #[test]
    fn a_review_asks_only_through_its_own_text() {
        let review = |body: &str| {
            json!({
                "action": "submitted",
                "review": {"id": 6_000_000_001u64, "body": body, "user": {"login": "octocat", "type": "User"}, "html_url": "https://github.com/acme/app/pull/9#pullrequestreview-1"},
                "pull_request": {"number": 9, "title": "Add retries"},
                "repository": {"full_name": "acme/app"}
            })
        };
        let t = trigger(parse("pull_request_review", &review("@agent address these")));
        assert_eq!(t.dedup_key.as_deref(), Some("github-review:acme/app:6000000001"));
        assert!(matches!(t.reply, ReplyTarget::GithubReview { comment_id: None, review_id: Some(_), .. }));
        assert_eq!(
            parse("pull_request_review", &review("LGTM")).unwrap(),
            GithubEvent::Ignored(IgnoreReason::NoMention)
        );
        let mut dismissed = review("@agent x");
        dismissed["action"] = json!("dismissed");
        assert!(matches!(
            parse("pull_request_review", &dismissed),
            Ok(GithubEvent::Ignored(IgnoreReason::Action { .. }))
        ));
    }

    #[test]
    fn assigning_or_labelling_starts_a_task_only_when_configured() {
        let issues = |action: &str, extra: serde_json::Value| {
            let mut payload = json!({
                "action": action,
                "issue": {"number": 4, "title": "Crash on empty input", "body": "Steps..."},
                "sender": {"login": "maintainer", "type": "User"},
                "repository": {"full_name": "acme/app"}
            });
            for (k, v) in extra.as_object().unwrap() {
                payload[k] = v.clone();
            }
            parse("issues", &payload)
        };
        let t = trigger(issues("assigned", json!({"assignee": {"login": "errand-bot"}})));
        assert_eq!((t.source, t.requested_by.as_str()), (Source::GithubIssue, "maintainer"));
        assert_eq!(t.reply, ReplyTarget::GithubIssue { issue: IssueNumber(4), comment_id: None });
        assert!(matches!(t.asked.command, Ok(Command::Task { ref instruction, .. }) if instruction.is_empty()));
        assert!(matches!(issues("labeled", json!({"label": {"name": "errand"}})), Ok(GithubEvent::Trigger(_))));
        for (action, extra) in
            [("assigned", json!({"assignee": {"login": "someone"}})), ("labeled", json!({"label": {"name": "bug"}}))]
        {
            assert_eq!(issues(action, extra).unwrap(), GithubEvent::Ignored(IgnoreReason::NotForErrand));
        }
        let off = ParseContext { mentions: &mentions(), ..ParseContext::default() };
        let body = json!({"action": "labeled", "label": {"name": "errand"}, "issue": {"number": 4}, "sender": {"login": "m"}, "repository": {"full_name": "acme/app"}}).to_string();
        assert_eq!(
            parse_event("issues", body.as_bytes(), &off).unwrap(),
            GithubEvent::Ignored(IgnoreReason::NotForErrand)
        );
    }

    #[test]
    fn other_events_are_ignored_but_must_be_json() {
        assert_eq!(parse("push", &json!({})).unwrap(), GithubEvent::Ignored(IgnoreReason::Event("push".to_owned())));
        let context = ParseContext::default();
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
