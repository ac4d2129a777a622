//! A request to errand from any source, in our own types: one constructor per source, so the
//! fields a job is made of are written out once.

use chrono::Utc;

use super::command::{Command, ParseError, Parsed, TaskOptions};
use super::ids::{CommentId, GithubItem, IssueNumber, MessageTs, ReviewId, SlackChannel, SlackTeam, ThreadKey};
use super::reply::Reply;
use crate::job::{FollowUp, Job, JobId, JobKind, ReplyTarget, RepoName, Source, Task};

/// The longest title a Slack request gets (its first line).
const MAX_SLACK_TITLE_CHARS: usize = 80;

/// A request: who asked, where, about what, and what they asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub repo: RepoName,
    pub source: Source,
    /// The GitHub login, or the Slack user id, of the person who asked.
    pub requested_by: String,
    /// The GitHub App installation that delivered the request, when one did.
    pub installation_id: Option<u64>,
    /// The issue or pull request it was asked on, or that a Slack message linked.
    pub about: Option<GithubItem>,
    /// Where errand answers.
    pub reply: ReplyTarget,
    /// A link to what asked, and the title and text of what it is about.
    pub url: String,
    pub title: String,
    pub body: String,
    /// The name the person used (e.g. `@agent`) and the command they wrote after it.
    pub asked: Parsed,
    /// An idempotency key wider than the delivery (every event of one review is one job; a
    /// Slack message is one job however often Slack sends it).
    pub dedup_key: Option<String>,
    /// The earlier task of the same Slack thread, whose work a new task continues.
    pub continues: Option<JobId>,
}

/// An issue or pull request as a webhook describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubSubject {
    pub repo: RepoName,
    pub installation_id: Option<u64>,
    pub item: GithubItem,
    pub title: String,
    pub body: String,
}

/// A review comment that asked: answered in its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewComment {
    pub id: CommentId,
    /// The first comment of its thread, when it is a reply (GitHub takes no replies to replies).
    pub in_reply_to: Option<CommentId>,
    /// The review it belongs to; every event of one review is one job.
    pub review: Option<ReviewId>,
    /// An edit is a request of its own, not another event of the review.
    pub edited: bool,
}

/// Where in Slack a request was made, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackPlace {
    pub team: SlackTeam,
    pub channel: SlackChannel,
    pub user: String,
}

/// The repository a Slack request works in, and the issue or pull request it linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackTarget {
    pub repo: RepoName,
    pub item: Option<GithubItem>,
}

/// A Slack message that asked: errand reacts on it and answers in its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackMessage {
    pub place: SlackPlace,
    pub ts: MessageTs,
    pub thread_ts: MessageTs,
    /// The message's own idempotency key (Slack resends events it did not see answered).
    pub dedup_key: String,
}

impl Trigger {
    /// A comment on an issue, or in a pull request's conversation.
    pub fn issue_comment(on: GithubSubject, author: String, comment: CommentId, url: String, asked: Parsed) -> Self {
        let source = match on.item {
            GithubItem::PullRequest(_) => Source::GithubPullRequestComment,
            GithubItem::Issue(_) => Source::GithubIssueComment,
        };
        let reply = ReplyTarget::GithubIssue { issue: on.item.number(), comment_id: Some(comment) };
        Self::on_github(on, source, author, reply, url, asked, None)
    }

    /// A comment on a line of a pull request: answered in its review thread.
    pub fn review_comment(
        on: GithubSubject,
        author: String,
        comment: ReviewComment,
        url: String,
        asked: Parsed,
    ) -> Self {
        let reply = ReplyTarget::GithubReview {
            pull: on.item.number(),
            review_id: comment.review,
            comment_id: Some(comment.id),
            thread_id: Some(comment.in_reply_to.unwrap_or(comment.id)),
        };
        let dedup_key = review_key(&on.repo, comment.review.filter(|_| !comment.edited));
        Self::on_github(on, Source::GithubReviewComment, author, reply, url, asked, dedup_key)
    }

    /// A submitted review whose own text asks: answered in the pull request's conversation.
    pub fn review(on: GithubSubject, author: String, review: ReviewId, url: String, asked: Parsed) -> Self {
        let reply = ReplyTarget::GithubReview {
            pull: on.item.number(),
            review_id: Some(review),
            comment_id: None,
            thread_id: None,
        };
        let dedup_key = review_key(&on.repo, Some(review));
        Self::on_github(on, Source::GithubReviewComment, author, reply, url, asked, dedup_key)
    }

    /// An issue assigned to errand or given errand's label: the issue itself is the task.
    pub fn issue_for_errand(on: GithubSubject, author: String, url: String, mention: String) -> Self {
        let reply = ReplyTarget::GithubIssue { issue: on.item.number(), comment_id: None };
        let asked = Parsed {
            mention,
            command: Ok(Command::Task { instruction: String::new(), options: TaskOptions::default() }),
        };
        Self::on_github(on, Source::GithubIssue, author, reply, url, asked, None)
    }

    fn on_github(
        on: GithubSubject,
        source: Source,
        requested_by: String,
        reply: ReplyTarget,
        url: String,
        asked: Parsed,
        dedup_key: Option<String>,
    ) -> Self {
        Self {
            repo: on.repo,
            source,
            requested_by,
            installation_id: on.installation_id,
            about: Some(on.item),
            reply,
            url,
            title: on.title,
            body: on.body,
            asked,
            dedup_key,
            continues: None,
        }
    }

    /// A mention in a Slack channel or thread; a reply in a thread continues the thread's earlier
    /// task (`continues`).
    pub fn slack_message(message: SlackMessage, target: SlackTarget, asked: Parsed, continues: Option<JobId>) -> Self {
        let SlackPlace { team, channel, user } = message.place;
        let url = slack_thread_link(&team, &channel, &message.thread_ts);
        let reply = ReplyTarget::Slack {
            team,
            channel,
            ts: Some(message.ts),
            thread_ts: Some(message.thread_ts),
            issue: linked_issue(target.item),
        };
        Self { continues, ..Self::from_slack(user, target, reply, url, asked, Some(message.dedup_key)) }
    }

    /// `/errand <task>`: there is no message to answer under, so errand starts a thread of its own.
    /// `invocation` is Slack's `trigger_id`, unique to the command.
    pub fn slash_command(place: SlackPlace, target: SlackTarget, asked: Parsed, invocation: Option<&str>) -> Self {
        let SlackPlace { team, channel, user } = place;
        let url = format!("https://app.slack.com/client/{team}/{channel}");
        let reply = ReplyTarget::Slack { team, channel, ts: None, thread_ts: None, issue: linked_issue(target.item) };
        let dedup_key = invocation.map(|id| format!("slack-command:{id}"));
        Self::from_slack(user, target, reply, url, asked, dedup_key)
    }

    fn from_slack(
        requested_by: String,
        target: SlackTarget,
        reply: ReplyTarget,
        url: String,
        asked: Parsed,
        dedup_key: Option<String>,
    ) -> Self {
        let title = match &asked.command {
            Ok(Command::Task { instruction, .. }) => slack_title(instruction),
            _ => slack_title(""),
        };
        Self {
            repo: target.repo,
            source: Source::Slack,
            requested_by,
            installation_id: None,
            about: target.item,
            reply,
            url,
            title,
            body: String::new(),
            asked,
            dedup_key,
            continues: None,
        }
    }

    /// Whether it was asked on (or linked) a pull request: tasks then work on its branch.
    pub fn on_pull_request(&self) -> bool {
        self.about.is_some_and(GithubItem::is_pull_request)
    }

    /// The command, or why the text is not one.
    pub fn command(&self) -> Result<&Command, &ParseError> {
        self.asked.command.as_ref()
    }

    /// The thread the request was made in, as [`Job::thread`] names it; `None` for a slash
    /// command, which has no thread until errand starts one.
    pub fn thread(&self) -> Option<ThreadKey> {
        self.reply.conversation(&self.repo)
    }

    /// The job for a task command.
    pub fn task_job(&self, instruction: &str, options: &TaskOptions) -> Job {
        Job { attempts: options.attempts, ..self.job(instruction, JobKind::Task) }
    }

    /// A job that puts another attempt in the pull request it was asked on.
    pub fn use_attempt_job(&self, attempt: u32) -> Job {
        self.job("", JobKind::UseAttempt { attempt })
    }

    /// A job that only answers in the thread.
    pub fn reply_job(&self, reply: Reply) -> Job {
        self.job("", JobKind::Reply { reply, mention: self.asked.mention.clone() })
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
                body: self.body.clone(),
                url: self.url.clone(),
            },
            reply: self.reply.clone(),
            kind,
            follow_up: self.about.filter(|item| item.is_pull_request()).map(|item| FollowUp { pull: item.number() }),
            attempts: None,
            continues: self.continues.clone(),
        }
    }
}

/// Every event of one review (its comments, its submission) is one job.
fn review_key(repo: &RepoName, review: Option<ReviewId>) -> Option<String> {
    review.map(|id| format!("github-review:{repo}:{}", id.get()))
}

/// The issue a Slack request linked: its pull request closes it.
fn linked_issue(item: Option<GithubItem>) -> Option<IssueNumber> {
    match item {
        Some(GithubItem::Issue(number)) => Some(number),
        _ => None,
    }
}

/// A link that opens a Slack thread.
fn slack_thread_link(team: &SlackTeam, channel: &SlackChannel, thread_ts: &MessageTs) -> String {
    format!("https://app.slack.com/client/{team}/{channel}/thread/{channel}-{thread_ts}")
}

/// A Slack request's title: the first line of its instruction, cut short.
fn slack_title(instruction: &str) -> String {
    let line = instruction.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("Request from Slack");
    let mut title: String = line.chars().take(MAX_SLACK_TITLE_CHARS).collect();
    if line.chars().count() > MAX_SLACK_TITLE_CHARS {
        title.push('…');
    }
    title
}
