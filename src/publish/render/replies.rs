//! Replies that are the whole answer to a request, in words: `help`, a malformed command, `stop`,
//! `status`, `retry`, a rate limit; and what the Slack edge says without a job (a refusal, "which
//! repository?", a slash command's acknowledgement). GitHub's and Slack's share these words: both
//! show `code` in backticks, and Slack's renderer escapes the rest.

use std::fmt::Write as _;

use super::Renderer;
use crate::chat::resolve::{ALLOWED_CHANNELS_SETTING, ALLOWED_USERS_SETTING, DEFAULT_REPOS_SETTING};
use crate::job::{Job, JobState, ReplyTarget, RepoName};
use crate::request::command::{ATTEMPTS_EXPECTED, COMMANDS, OptionName, ParseError};
use crate::request::{JobBrief, RateLimitScope, Reply};

/// What the Slack edge answers without a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackNotice<'a> {
    /// The allowlist refuses the requester (a Slack user id).
    NotAllowed { user: &'a str },
    /// errand cannot tell which repository to work in.
    WhichRepository { configured: &'a [RepoName], mention: &'a str },
    /// A slash command with a command that acts on a thread's jobs.
    ThreadCommandInSlash { mention: &'a str, command: &'a str },
    /// A slash command was queued.
    OnIt { repo: &'a RepoName },
    /// A slash command over a rate limit.
    TooMuchWork,
    /// A slash command that could not be queued.
    CouldNotQueue,
    /// `help` as a slash command.
    Help { mention: &'a str },
    /// A malformed slash command.
    Malformed { error: &'a ParseError, mention: &'a str },
}

impl Renderer {
    /// The words of a reply job, addressed with the name the person used (`mention`).
    pub fn reply_text(&self, job: &Job, reply: &Reply, mention: &str) -> String {
        let on = thread_noun(job);
        match reply {
            Reply::Help => help(mention),
            Reply::Malformed { error } => parse_error(error, mention),
            Reply::UseAttemptOnPullRequest => format!(
                "`{mention} use attempt N` works on a pull request errand opened from several attempts: write it there."
            ),
            Reply::QueueUnreachable { command } => {
                format!("errand could not reach its queue to `{command}` just now. Ask again in a minute.")
            }
            Reply::Stopping { jobs } if jobs.is_empty() => {
                format!("there is nothing to stop: no job is queued or running on this {on}.")
            }
            Reply::Stopping { jobs } => {
                let mut text = String::from("stopping:\n");
                for job in jobs {
                    let _ = writeln!(text, "- job `{}` ({})", job.id, describe(job));
                }
                text.push_str("\nEach job's own comment says when it has stopped.");
                text
            }
            Reply::Status { open, last } => status(open, last.as_ref(), on, mention),
            Reply::NothingToRetry => {
                format!("there is no earlier job on this {on} to retry. Ask with `{mention} <what to do>`.")
            }
            Reply::RetryWhenEnded { job } => format!(
                "job `{}` has not ended yet ({}). Wait for it, or `{mention} stop` it first.",
                job.id,
                describe(job)
            ),
            Reply::RateLimited { scope, limit, window_secs, retry_after_secs } => {
                rate_limited(*scope, *limit, *window_secs, *retry_after_secs)
            }
        }
    }
}

/// What the Slack edge says, in Slack's words (mentions as `<@U…>`).
pub fn slack_notice(notice: &SlackNotice<'_>) -> String {
    match notice {
        SlackNotice::NotAllowed { user } => format!(
            "Sorry <@{user}>, I can't take requests here yet: in Slack I only work for the channels and people on errand's allowlist. \
             Please ask whoever runs errand for your team to add this channel (`{ALLOWED_CHANNELS_SETTING}`) or you (`{ALLOWED_USERS_SETTING}`)."
        ),
        SlackNotice::WhichRepository { configured, mention } => which_repository(configured, mention),
        SlackNotice::ThreadCommandInSlash { mention, command } => {
            format!("`{mention} {command}` acts on a thread's jobs: mention me with it in the job's thread instead.")
        }
        SlackNotice::OnIt { repo } => format!("On it: working in *{repo}*. I'll answer in a thread in this channel."),
        SlackNotice::TooMuchWork => {
            "You have asked for a lot of work in a short time: please try again in a minute.".to_owned()
        }
        SlackNotice::CouldNotQueue => "errand could not queue this just now. Please try again in a minute.".to_owned(),
        SlackNotice::Help { mention } => help(mention),
        SlackNotice::Malformed { error, mention } => parse_error(error, mention),
    }
}

/// The answer to `help`, from the commands the parser knows.
fn help(mention: &str) -> String {
    let mut text = String::from(
        "**errand** runs a coding agent on a request and answers with a pull request that carries the evidence (the checks it ran, their exit codes and output).\n\n",
    );
    for (usage, meaning) in COMMANDS {
        let _ =
            writeln!(text, "- `{}`: {}", usage.replace("{mention}", mention), meaning.replace("{mention}", mention));
    }
    let _ = write!(
        text,
        "\nOn a pull request (a review comment on a line, or the conversation) the work is pushed to the pull request's own branch and errand answers where you asked; a review with several `{mention}` comments is one job that addresses them all. \
         Requests on one issue or pull request run one at a time, in order. Only people with write access to the repository can start work. \
         The repository's `.errand.toml` (on the default branch, or the pull request's base) sets the sandbox image, the agent and the checks."
    );
    text
}

/// What a person reads when their command cannot be understood; it always ends by saying how to
/// get help, addressed with the name they used.
fn parse_error(error: &ParseError, mention: &str) -> String {
    let what = match error {
        ParseError::UnknownOption { option } => {
            format!("I don't know the option `{option}`. The only task option is `--attempts N`.")
        }
        ParseError::MissingOptionValue { option } => {
            format!("The option `{option}` needs a value, for example `{option} 3`.")
        }
        ParseError::InvalidOptionValue { option: OptionName::Attempts, value } => {
            format!("The option `--attempts` needs {ATTEMPTS_EXPECTED}, but got `{value}`.")
        }
        ParseError::InvalidOptionValue { option: OptionName::UseAttempt, value } => {
            format!("`use attempt` needs {ATTEMPTS_EXPECTED}, but got `{value}`.")
        }
    };
    format!("{what}\n\nWrite `{mention} help` to see what I can do.")
}

fn status(open: &[JobBrief], last: Option<&JobBrief>, on: &str, mention: &str) -> String {
    if open.is_empty() {
        return match last {
            Some(last) => format!("no job is running here. The last one, `{}`, {}.", last.id, describe(last)),
            None => format!("errand has no jobs on this {on} yet. Ask with `{mention} <what to do>`."),
        };
    }
    let mut text = String::from("jobs on this thread, oldest first:\n");
    for job in open {
        let _ = writeln!(text, "- job `{}`, asked by @{}: {}", job.id, job.requested_by, describe(job));
    }
    text
}

/// A job's state in words.
fn describe(job: &JobBrief) -> String {
    let mut text = match (&job.state, job.position) {
        (JobState::Queued { .. }, Some(p)) => format!("queued, position {p}"),
        (JobState::Queued { retry_reason: Some(_) }, None) => "waiting to be retried".to_owned(),
        (JobState::Queued { retry_reason: None }, None) => "queued".to_owned(),
        (JobState::Waiting { behind }, _) => format!("waiting for job {behind}"),
        (JobState::Running, _) => format!("running, delivery {}", job.deliveries),
        (JobState::Succeeded, _) => "succeeded".to_owned(),
        (JobState::Failed { .. } | JobState::Dead { .. }, _) => "failed".to_owned(),
        (JobState::Cancelled { .. }, _) => "was cancelled".to_owned(),
    };
    if let Some(pull) = &job.pull {
        let _ = write!(text, " ({})", pull.url);
    }
    if let Some(reason) = job.state.failure() {
        let _ = write!(text, ": {}", reason.lines().next().unwrap_or_default());
    }
    if job.stopping {
        text.push_str(", stopping");
    }
    text
}

/// The reply a requester reads when they hit a limit.
fn rate_limited(scope: RateLimitScope, limit: u64, window_secs: u64, retry_after_secs: u64) -> String {
    let whose = match scope {
        RateLimitScope::Requester => "you have",
        RateLimitScope::Repository => "this repository has",
    };
    let requests = if limit == 1 { "request" } else { "requests" };
    format!(
        "I did not start this request: {whose} reached the limit of {limit} {requests} per {}. Please try again in {}.",
        seconds_in_words(window_secs),
        seconds_in_words(retry_after_secs),
    )
}

/// A wait in words a person reads at a glance: whole seconds up to two minutes, else minutes.
fn seconds_in_words(seconds: u64) -> String {
    match seconds {
        0 | 1 => "1 second".to_owned(),
        60 => "minute".to_owned(),
        s if s <= 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

/// The reply when errand cannot tell which repository a Slack request is for. `mention` is how
/// people address errand (`<@BOTID>`, which Slack shows as its name).
fn which_repository(configured: &[RepoName], mention: &str) -> String {
    let example = configured.first().map_or_else(|| "owner/name".to_owned(), ToString::to_string);
    let mut text = format!(
        "Which repository should I work in? Mention me again and name it, for example:\n\
         >{mention} fix the flaky login test in {example}\n\
         or paste a link to the repository, issue or pull request."
    );
    if configured.is_empty() {
        let _ = write!(
            text,
            "\nThis channel has no default repository; an administrator can set one with `{DEFAULT_REPOS_SETTING}` (`CHANNEL=owner/name`)."
        );
    } else {
        let list: Vec<String> = configured.iter().map(|r| format!("`{r}`")).collect();
        let _ = write!(text, "\nRepositories set up for Slack: {}.", list.join(", "));
    }
    text
}

/// What the thread a job was asked in is, for "on this …".
fn thread_noun(job: &Job) -> &'static str {
    match &job.reply {
        ReplyTarget::Slack { .. } => "thread",
        ReplyTarget::GithubReview { .. } => "pull request",
        ReplyTarget::GithubIssue { .. } if job.follow_up.is_some() => "pull request",
        ReplyTarget::GithubIssue { .. } => "issue",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_reply_says_which_limit_and_when_to_try_again() {
        assert_eq!(
            rate_limited(RateLimitScope::Requester, 10, 60, 42),
            "I did not start this request: you have reached the limit of 10 requests per minute. \
             Please try again in 42 seconds."
        );
        let text = rate_limited(RateLimitScope::Repository, 60, 3600, 3599);
        assert!(text.contains("this repository has") && text.ends_with("60 minutes."), "{text}");
    }

    #[test]
    fn a_parse_error_message_ends_with_how_to_get_help() {
        let errors = [
            ParseError::UnknownOption { option: "--model".to_owned() },
            ParseError::MissingOptionValue { option: OptionName::Attempts },
            ParseError::InvalidOptionValue { option: OptionName::Attempts, value: "0".to_owned() },
        ];
        for error in &errors {
            let message = parse_error(error, "@agent");
            assert!(message.ends_with("Write `@agent help` to see what I can do."), "{message}");
        }
        assert_eq!(
            parse_error(&errors[0], "@errand"),
            "I don't know the option `--model`. The only task option is `--attempts N`.\n\n\
             Write `@errand help` to see what I can do."
        );
    }

    #[test]
    fn help_lists_every_command_with_the_name_used() {
        let text = help("@bot");
        for (usage, _) in COMMANDS {
            assert!(text.contains(&format!("`{}`", usage.replace("{mention}", "@bot"))), "{usage}: {text}");
        }
        assert!(text.starts_with("**errand** runs a coding agent"), "{text}");
    }

    #[test]
    fn the_slack_refusal_is_polite_and_says_who_to_ask() {
        let text = slack_notice(&SlackNotice::NotAllowed { user: "U0BOB" });
        assert!(text.starts_with("Sorry <@U0BOB>,"), "{text}");
        assert!(text.contains("ask whoever runs errand"), "{text}");
        assert!(text.contains(ALLOWED_CHANNELS_SETTING) && text.contains(ALLOWED_USERS_SETTING), "{text}");
    }

    #[test]
    fn the_which_repository_question_lists_the_configured_repositories() {
        let configured: Vec<RepoName> =
            ["acme/api", "acme/webapp"].iter().map(|r| r.parse().expect("a repo")).collect();
        let text = slack_notice(&SlackNotice::WhichRepository { configured: &configured, mention: "<@U0BOT>" });
        assert_eq!(
            text,
            "Which repository should I work in? Mention me again and name it, for example:\n\
             ><@U0BOT> fix the flaky login test in acme/api\n\
             or paste a link to the repository, issue or pull request.\n\
             Repositories set up for Slack: `acme/api`, `acme/webapp`."
        );
        let none = slack_notice(&SlackNotice::WhichRepository { configured: &[], mention: "<@U0BOT>" });
        assert!(none.contains("in owner/name") && none.contains(DEFAULT_REPOS_SETTING), "{none}");
    }
}
