//! The text errand posts in a Slack thread, in Slack's mrkdwn: the reply it edits as the job
//! moves, and the plain answers (help, status, errors). The same states as the GitHub tracking
//! comment, said for Slack: `*bold*`, `<url|text>` links, `<@U…>` mentions, and everything that
//! came from people, agents or repositories escaped, so it cannot form mentions or links.

use std::fmt::Write as _;

use super::{CheckRow, Progress, Renderer};
use crate::chat::api::escape;
use crate::job::{Job, JobId, ReplyTarget};

/// The text that lets errand find its own reply in a thread again after a crash (Slack has no
/// hidden markers; the job id is unique, and only errand's own messages are searched).
pub fn slack_marker(id: &JobId) -> String {
    format!("errand job {id}")
}

/// The reaction the asking message gets when the job ends in this state; `None` while it runs.
pub fn final_reaction(progress: &Progress) -> Option<&'static str> {
    match progress {
        Progress::PullRequest { .. } | Progress::Answered { .. } | Progress::Pushed(_) => Some("white_check_mark"),
        Progress::Failed { .. } | Progress::Refused { .. } => Some("x"),
        Progress::Cancelled { .. } => Some("octagonal_sign"),
        Progress::Queued { .. }
        | Progress::Running { .. }
        | Progress::CheckingAttempt { .. }
        | Progress::Retrying { .. }
        | Progress::Waiting { .. } => None,
    }
}

impl Renderer {
    /// errand's reply in the thread, edited in place as the job moves.
    pub fn slack_message(&self, job: &Job, progress: &Progress) -> String {
        let text = |s: &str| escape(&self.redactor.redact(s));
        let status = match progress {
            Progress::Queued { position } => {
                let place = position.map(|p| format!(" (position {p} in the queue)")).unwrap_or_default();
                format!("👀 On it: queued{place} to work in *{}*.", escape(&job.repo.to_string()))
            }
            Progress::Running { .. } | Progress::CheckingAttempt { .. } => {
                format!("🏃 *Running* in *{}*: {}.", escape(&job.repo.to_string()), super::running_step(progress))
            }
            Progress::Retrying { reason } => {
                format!("⏳ *Waiting to retry*: {}. errand will try again shortly.", text(reason))
            }
            Progress::PullRequest { pull, checks, title } => {
                let (passed, total) = (checks.iter().filter(|c| c.passed).count(), checks.len());
                let mut out = format!("✅ *Done*: opened <{}|pull request #{}>", pull.url, pull.number);
                if total > 0 {
                    let _ = write!(out, " ({passed}/{total} checks passed)");
                }
                out.push('.');
                if let Some(title) = title {
                    let _ = write!(out, "\n>{}", text(title));
                }
                out.push_str(&self.slack_checks(checks));
                out.push_str("\nIts description has the evidence: the commands errand ran, exit codes and output.");
                out
            }
            Progress::Answered { answer } => format!("💬 {}", text(answer.trim())),
            Progress::Refused { user, permission } => format!(
                "🚫 *Not run*: {} has `{}` permission on the repository; errand needs write.",
                escape(user),
                escape(permission)
            ),
            Progress::Failed { reason, .. } => format!(
                "❌ *Failed*: {}\nTo try again, mention me in this thread with `retry`, or say what to do differently.",
                text(reason)
            ),
            Progress::Waiting { behind } => {
                format!("⏳ *Waiting* for job `{behind}` in this thread to end: requests in one thread run in order.")
            }
            Progress::Cancelled { by } => format!("🛑 *Cancelled* by {}.", self.slack_person(job, by)),
            Progress::Pushed(pushed) => {
                let short = &pushed.commit[..pushed.commit.len().min(7)];
                let mut out = format!(
                    "✅ *Done*: pushed `{short}` to `{}` (<{}|pull request #{}>).",
                    escape(&pushed.branch),
                    pushed.pull.url,
                    pushed.pull.number
                );
                if let Some(title) = &pushed.title {
                    let _ = write!(out, "\n>{}", text(title));
                }
                out.push_str(&self.slack_checks(&pushed.checks));
                out
            }
        };
        format!("{status}\n{}", self.slack_footer(job))
    }

    /// A reply that is the whole answer (help, status, a malformed command, a rate limit).
    pub fn slack_reply(&self, job: &Job, text: &str) -> String {
        format!("<@{}> {}\n{}", escape(&job.requested_by), escape(&self.redactor.redact(text)), self.slack_footer(job))
    }

    /// The message a slash command's thread starts with (errand's own: a command leaves none).
    pub fn slack_thread_start(&self, job: &Job) -> String {
        format!(
            "<@{}> asked me: {}",
            escape(&job.requested_by),
            escape(&self.redactor.redact(job.task.instruction.trim()))
        )
    }

    fn slack_checks(&self, checks: &[CheckRow]) -> String {
        if checks.is_empty() {
            return "\nNo checks are configured, so errand ran none.".to_owned();
        }
        let mut out = String::new();
        for check in checks {
            let _ = write!(
                out,
                "\n{} *{}* `{}`: exit {}",
                if check.passed { "✅" } else { "❌" },
                escape(&check.name),
                escape(&check.command.replace('`', "'")),
                check.exit_code
            );
        }
        out
    }

    /// Who did something, as Slack shows people: a mention of the Slack user id for a job from
    /// Slack (its requester and whoever stopped it are Slack users), else the name as written.
    fn slack_person(&self, job: &Job, who: &str) -> String {
        if matches!(job.reply, ReplyTarget::Slack { .. }) { format!("<@{}>", escape(who)) } else { escape(who) }
    }

    fn slack_footer(&self, job: &Job) -> String {
        let id = match &self.public_url {
            Some(base) => format!("<{}/api/jobs/{}|{}>", base.trim_end_matches('/'), job.id, slack_marker(&job.id)),
            None => slack_marker(&job.id),
        };
        format!("_{id} · {} · asked by <@{}>_", escape(&job.repo.to_string()), escape(&job.requested_by))
    }
}
