//! The text people read: the tracking comment in each of its states, the pull request body with
//! its Testing section, answers and failures. Every user-facing message is built here, on purpose,
//! never from an internal error's `Display`.

mod reasons;
mod replies;
pub mod slack;

use std::fmt::Write as _;
use std::time::Duration;

use crate::agents::{self, AgentTranscript};
use crate::job::{Job, JobId, PullRequestRef, Source};
use crate::request::ids::IssueNumber;
use crate::rollout::ranking::Score;
use crate::rollout::{AgentEnd, CheckResult, Outcome, SandboxFile, SandboxNote, summary_title};

pub use self::reasons::Reason;
pub use self::replies::{SlackNotice, slack_notice};
use crate::secrets::Redactor;

/// Lines of output shown per check.
const TAIL_LINES: usize = 30;

/// The hidden marker that lets errand find its own tracking comment again after a crash.
pub fn tracking_marker(id: &JobId) -> String {
    format!("<!-- errand:job:{id} -->")
}

/// Where a job stands, as its tracking comment shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Queued {
        position: Option<usize>,
    },
    /// The agent is working: in one sandbox, or in `attempts` side by side.
    Running {
        attempts: u32,
    },
    /// `use attempt N`: the checks run on that attempt's branch.
    CheckingAttempt {
        attempt: u32,
    },
    /// Waiting to be tried again after a passing failure.
    Retrying {
        reason: String,
    },
    PullRequest {
        pull: PullRequestRef,
        /// Each check after the agent.
        checks: Vec<CheckRow>,
        /// The change in one line (the pull request's title).
        title: Option<String>,
    },
    /// The agent changed nothing: its summary is the answer.
    Answered {
        answer: String,
    },
    /// The requester may not ask errand to work on this repository.
    Refused {
        user: String,
        permission: String,
    },
    Failed {
        reason: String,
        hint: String,
    },
    /// Waiting for an earlier job of the same issue or pull request to end.
    Waiting {
        behind: JobId,
    },
    /// Stopped on request.
    Cancelled {
        by: String,
    },
    /// A follow-up pushed a commit to the pull request's own branch.
    Pushed(Box<Pushed>),
}

/// What a follow-up pushed, for the reply where it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub pull: PullRequestRef,
    pub branch: String,
    pub commit: String,
    pub title: Option<String>,
    pub diffstat: String,
    /// Each check after the agent.
    pub checks: Vec<CheckRow>,
    /// The attempts, when several ran.
    pub attempts: Option<Attempts>,
}

/// A check after the agent, as a row people read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    pub passed: bool,
    pub name: String,
    pub command: String,
    pub exit_code: i64,
}

impl CheckRow {
    pub fn of(check: &CheckResult) -> Self {
        Self {
            passed: check.passed(),
            name: check.name.clone(),
            command: check.command.clone(),
            exit_code: check.report.exit_code,
        }
    }
}

/// The attempts of a best-of-N job, for its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts {
    pub rows: Vec<AttemptRow>,
    /// (asked, ran) when the request asked for more attempts than allowed.
    pub capped: Option<(Option<u32>, u32)>,
}

/// One attempt of a best-of-N job, for the attempts table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub number: u32,
    pub score: Score,
    pub duration: Duration,
    /// Where its work was pushed, when it is not the chosen one and changed something.
    pub branch: Option<String>,
    pub chosen: bool,
}

/// The markers around the Testing section errand keeps up to date in a pull request's body.
const TESTING_START: &str = "<!-- errand:testing -->";
const TESTING_END: &str = "<!-- /errand:testing -->";

/// Builds what errand posts, with the names and links of this installation.
#[derive(Debug, Clone)]
pub struct Renderer {
    /// The mention that summons errand, e.g. `@agent`, for hints.
    pub mention: String,
    /// Base URL of job pages, when errand has a public address.
    pub public_url: Option<String>,
    pub redactor: Redactor,
}

impl Renderer {
    fn job_ref(&self, id: &JobId) -> String {
        match &self.public_url {
            Some(base) => format!("[`{id}`]({}/api/jobs/{id})", base.trim_end_matches('/')),
            None => format!("`{id}`"),
        }
    }

    /// The tracking comment, edited in place as the job moves.
    pub fn tracking_comment(&self, job: &Job, progress: &Progress) -> String {
        let status = match progress {
            Progress::Queued { position: Some(p) } => format!("⏳ **Queued** (position {p} in the queue)."),
            Progress::Queued { position: None } => "⏳ **Queued**.".to_owned(),
            Progress::Running { .. } | Progress::CheckingAttempt { .. } => {
                format!("🏃 **Running**: {}.", running_step(progress))
            }
            Progress::Retrying { reason } => {
                format!("⏳ **Waiting to retry**: {}. errand will try again shortly.", self.redactor.redact(reason))
            }
            Progress::PullRequest { pull, checks, .. } => {
                let (passed, total) = (checks.iter().filter(|c| c.passed).count(), checks.len());
                let checks = if total == 0 {
                    "no checks configured".to_owned()
                } else {
                    format!("{} {passed}/{total} checks passed", if passed == total { "✅" } else { "❌" })
                };
                format!("✅ **Done**: opened {} ({checks}). See its **Testing** section for the evidence.", pull.url)
            }
            Progress::Answered { answer } => format!(
                "💬 **Answer**\n\n{}\n\n_The agent changed no files, so there is no pull request._",
                self.redactor.redact(answer.trim())
            ),
            Progress::Refused { user, permission } => format!(
                "🚫 **Not run**: @{user}, errand only takes requests from people with write access to this repository (yours is `{permission}`). Ask a maintainer to repeat the request."
            ),
            Progress::Failed { reason, hint } => {
                format!("❌ **Failed**: {}\n\n{hint}", self.redactor.redact(reason))
            }
            Progress::Waiting { behind } => format!(
                "⏳ **Waiting** for job {} on this thread to end: requests on one issue or pull request run one at a time, in order.",
                self.job_ref(behind)
            ),
            Progress::Cancelled { by } => {
                format!("🛑 **Cancelled** by @{by}. Comment `{} retry` to run it again.", self.mention)
            }
            Progress::Pushed(pushed) => self.pushed(pushed),
        };
        format!(
            "{status}\n\n<sub>errand job {} · requested by @{}</sub>\n{}",
            self.job_ref(&job.id),
            job.requested_by,
            tracking_marker(&job.id)
        )
    }

    /// A reply that is the whole answer, addressed to the requester, with the job's marker.
    pub fn github_reply(&self, job: &Job, text: &str) -> String {
        format!("@{} {}\n{}", job.requested_by, self.redactor.redact(text), tracking_marker(&job.id))
    }

    /// The one-line title of a pull request switched to another attempt (`use attempt N`).
    pub fn attempt_in_use(&self, attempt: u32, head: &str) -> String {
        format!("Now attempt {attempt} (from `{head}-a{attempt}`)")
    }

    /// What the job API keeps of a refusal: who was refused and why.
    pub fn refusal_note(&self, user: &str, permission: &str) -> String {
        format!("@{user} has `{permission}` permission; errand needs write")
    }

    /// The retry hint that ends every failure.
    pub fn retry_hint(&self) -> String {
        format!("To try again, comment `{0} retry`, or `{0} <what to do>` to ask differently.", self.mention)
    }

    fn pushed(&self, pushed: &Pushed) -> String {
        let short = &pushed.commit[..pushed.commit.len().min(7)];
        let mut text = format!("✅ **Done**: pushed `{short}` to `{}` ({}).", pushed.branch, pushed.pull.url);
        if let Some(title) = &pushed.title {
            let _ = write!(text, "\n\n> {}", self.redactor.redact(title));
        }
        if !pushed.diffstat.trim().is_empty() {
            let _ = write!(text, "\n\n{}", self.code_block(&pushed.diffstat));
        }
        if pushed.checks.is_empty() {
            text.push_str("\nNo checks are configured, so errand ran none.");
        } else {
            text.push_str("\n| | check | command | exit code |\n|---|---|---|---|\n");
            for check in &pushed.checks {
                let _ = writeln!(
                    text,
                    "| {} | {} | `{}` | {} |",
                    if check.passed { "✅" } else { "❌" },
                    check.name,
                    check.command.replace('|', "\\|").replace('`', "'"),
                    check.exit_code
                );
            }
            text.push_str("\nThe pull request's **Testing** section has the output.");
        }
        if let Some(attempts) = &pushed.attempts {
            let _ = write!(text, "\n\n{}", self.attempts_section(attempts).trim_end());
        }
        text
    }

    /// The attempts of a best-of-N job: how each did and where to see it, the chosen one marked,
    /// and the rule that chose it. Empty for a job with one attempt. `capped` is (asked, ran) when
    /// the request asked for more attempts than allowed.
    pub fn attempts_section(&self, attempts: &Attempts) -> String {
        let Attempts { rows, capped } = attempts;
        if rows.len() < 2 {
            return String::new();
        }
        let mut out = format!(
            "## Attempts\n\nerrand ran {} attempts side by side and kept the best by evidence: all checks pass, then more checks pass, then the agent finished, then a change was made, then the smaller diff; ties go to the lower number.\n\n| | attempt | checks passed | files, lines changed | duration | where |\n|---|---|---|---|---|---|\n",
            rows.len()
        );
        for row in rows {
            let s = &row.score;
            let checks = if s.agent_finished {
                format!("{}/{}", s.checks_passed, s.checks_total)
            } else {
                "agent failed".to_owned()
            };
            let change = if s.changed {
                let files = if s.files_changed == 1 { "file" } else { "files" };
                let lines = if s.lines_changed == 1 { "line" } else { "lines" };
                format!("{} {files}, {} {lines}", s.files_changed, s.lines_changed)
            } else {
                "none".to_owned()
            };
            let place = match &row.branch {
                Some(branch) => format!("`{branch}`"),
                None => "not pushed (no change)".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {checks} | {change} | {} | {place} |",
                if row.chosen { "★" } else { "" },
                row.number,
                human(row.duration)
            );
        }
        let _ = write!(
            out,
            "\n★ is the attempt in this pull request. To use another, comment `{} use attempt N` here.\n",
            self.mention
        );
        if let Some((asked, ran)) = capped {
            let asked = asked.map_or_else(|| "more".to_owned(), |n| n.to_string());
            let _ = write!(out, "\nYou asked for {asked} attempts; this repository and worker allow {ran}.\n");
        }
        out
    }

    /// A pull request body whose attempts table marks `attempt` as the one in the pull request.
    pub fn choose_attempt(&self, body: &str, attempt: u32) -> String {
        let chosen_row = format!("|  | {attempt} |");
        let lines: Vec<String> = body
            .lines()
            .map(|line| {
                if let Some(rest) = line.strip_prefix("| ★ | ") {
                    format!("|  | {rest}")
                } else if line.starts_with(&chosen_row) {
                    format!("| ★ | {}", &line["|  | ".len()..])
                } else {
                    line.to_owned()
                }
            })
            .collect();
        let mut out = lines.join("\n");
        if body.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    /// The short answer in the other review threads one job addressed.
    pub fn thread_answer(&self, pushed: &Pushed) -> String {
        let short = &pushed.commit[..pushed.commit.len().min(7)];
        let passed = pushed.checks.iter().filter(|c| c.passed).count();
        let total = pushed.checks.len();
        let checks = if total == 0 {
            "no checks configured".to_owned()
        } else {
            format!("{} {passed}/{total} checks passed", if passed == total { "✅" } else { "❌" })
        };
        format!("Addressed in `{short}` on `{}` ({checks}).", pushed.branch)
    }

    /// The Testing section between markers, so a later follow-up can replace it in place.
    pub fn testing_block(&self, outcome: &Outcome) -> String {
        format!("{TESTING_START}\n{}{TESTING_END}\n", self.testing_section(outcome))
    }

    /// A pull request body with its Testing section replaced by the latest run's (appended when
    /// the body has none, e.g. a pull request a person opened).
    pub fn replace_testing(&self, body: &str, outcome: &Outcome) -> String {
        let block = self.testing_block(outcome);
        if let Some(start) = body.find(TESTING_START)
            && let Some(end) = body[start..].find(TESTING_END).map(|e| start + e + TESTING_END.len())
        {
            let end = if body[end..].starts_with('\n') { end + 1 } else { end };
            return format!("{}{block}{}", &body[..start], &body[end..]);
        }
        format!("{}\n\n## Testing (errand)\n\n{block}", body.trim_end())
    }

    /// Why an agent run counts as failed, in words.
    pub fn agent_failure(&self, outcome: &Outcome, timeout: Duration) -> String {
        let mut reason = match outcome.agent_end {
            AgentEnd::TimedOut => format!("the agent ran out of time ({}).", human(timeout)),
            AgentEnd::OutOfMemory => "the agent ran out of memory and was stopped.".to_owned(),
            AgentEnd::DiskFull { limit_bytes } => {
                format!("the agent wrote more than {} MB to disk and was stopped.", megabytes(limit_bytes))
            }
            AgentEnd::Failed { exit_code } => format!("the agent exited with code {exit_code}."),
            AgentEnd::Cancelled => "the job was cancelled.".to_owned(),
            AgentEnd::NotRun => match outcome.setup.iter().find(|s| !s.passed()) {
                Some(s) => match s.report.disk_exceeded {
                    Some(limit) => format!(
                        "setup command `{}` wrote more than {} MB to disk and was stopped.",
                        s.command,
                        megabytes(limit)
                    ),
                    None => format!("setup command `{}` failed with exit code {}.", s.command, s.report.exit_code),
                },
                None => "the agent did not run.".to_owned(),
            },
            AgentEnd::Finished => "the agent finished.".to_owned(),
        };
        reason.push_str(&self.sandbox_notes(&outcome.notes));
        let tail = outcome
            .agent
            .as_ref()
            .map(|a| a.output_tail.as_str())
            .or_else(|| outcome.setup.iter().find(|s| !s.passed()).map(|s| s.report.output_tail.as_str()))
            .unwrap_or_default();
        if !tail.trim().is_empty() {
            let _ = write!(
                reason,
                "\n\n<details><summary>Last lines of its output</summary>\n\n{}\n</details>",
                self.code_block(tail)
            );
        }
        reason
    }

    /// The answer of an agent that changed nothing: its summary, and what errand ignored.
    pub fn answer(&self, outcome: &Outcome) -> String {
        let mut answer = outcome
            .summary
            .clone()
            .unwrap_or_else(|| "The agent finished without changing any files and left no summary.".to_owned());
        answer.push_str(&self.sandbox_notes(&outcome.notes));
        answer
    }

    /// Why a change was not pushed: it holds a secret errand knows. Names the files, never the
    /// secret.
    pub fn secret_in_change(&self, files: &[String]) -> String {
        let files: Vec<String> = files.iter().map(|f| format!("`{}`", f.replace('`', "'"))).collect();
        format!(
            "the agent's change holds a secret that errand knows (a token or key of this installation), in {}; nothing was pushed. Ask again without it, and rotate the secret if the agent could have sent it elsewhere.",
            files.join(", ")
        )
    }

    /// What errand ignored or removed of what the sandbox left, one line each; empty when nothing.
    pub fn sandbox_notes(&self, notes: &[SandboxNote]) -> String {
        let mut out = String::new();
        for note in notes {
            let line = match note {
                SandboxNote::Ignored { file, why } => {
                    let file = match file {
                        SandboxFile::Summary => "the summary (`$ERRAND_SUMMARY_FILE`)",
                        SandboxFile::EventStream => "the agent's event stream",
                    };
                    format!("{file} was {why}; ignored.")
                }
                SandboxNote::RemovedGit { path } => {
                    format!(
                        "`{}` (a git repository inside the work tree) was removed; it is not part of the change.",
                        path.replace('`', "'")
                    )
                }
            };
            let _ = write!(out, "\n\n⚠️ {line}");
        }
        out
    }

    /// The pull request's title: the agent's summary title, or the issue's.
    pub fn pull_title(&self, job: &Job, outcome: &Outcome) -> String {
        let title = summary_title(outcome.summary.as_deref()).unwrap_or_else(|| format!("Fix: {}", job.task.title));
        self.redactor.redact(&title)
    }

    /// The pull request body: summary, changes, the Testing section, and where the request came
    /// from.
    pub fn pull_body(
        &self,
        job: &Job,
        outcome: &Outcome,
        closes: Option<IssueNumber>,
        attempts: Option<&Attempts>,
    ) -> String {
        let mut body = String::new();
        let summary = outcome
            .summary
            .as_deref()
            .map(|s| s.lines().skip(1).collect::<Vec<_>>().join("\n").trim().to_owned())
            .filter(|rest| !rest.is_empty());
        match summary {
            Some(rest) => body.push_str(&self.redactor.redact(&rest)),
            None => body.push_str("The agent left no summary beyond its title."),
        }
        body.push_str(&self.sandbox_notes(&outcome.notes));
        match (closes, job.follow_up) {
            (Some(issue), _) => {
                let _ = write!(body, "\n\nCloses #{issue}");
            }
            (None, Some(follow_up)) => {
                let _ = write!(body, "\n\nFollow-up to #{}, whose branch is protected.", follow_up.pull);
            }
            (None, None) => {}
        }
        let _ = write!(body, "\n\n## Changes\n\n{}", self.code_block(&outcome.diffstat));
        body.push_str("\n## Testing\n\n");
        body.push_str(&self.testing_block(outcome));
        if let Some(attempts) = attempts {
            let _ = write!(body, "\n{}", self.attempts_section(attempts));
        }
        let who = match job.source {
            Source::Slack => format!("Slack user `{}`", job.requested_by),
            _ => format!("@{}", job.requested_by),
        };
        let _ = write!(
            body,
            "\n---\n<sub>Requested by {who} in {url} · errand job {job_ref} · agent finished in {took}</sub>\n",
            url = job.task.url,
            job_ref = self.job_ref(&job.id),
            took = human(outcome.agent.as_ref().map_or(Duration::ZERO, |a| a.duration)),
        );
        body
    }

    /// Each check errand ran after the agent: command, ✅/❌, exit code, duration, the result
    /// before the agent, and the last lines of output.
    pub fn testing_section(&self, outcome: &Outcome) -> String {
        if outcome.checks.is_empty() {
            return "No checks are configured, so errand ran none. Add a `[checks]` section to `.errand.toml` so pull requests carry evidence.\n".to_owned();
        }
        let mut out = String::new();
        if let Some(file) = &outcome.detected_from {
            let commands: Vec<String> = outcome.checks.iter().map(|c| format!("`{}`", c.command)).collect();
            let _ = write!(
                out,
                "This repository has no `.errand.toml`, so errand detected its checks from `{file}`: {}. Add a `[checks]` section to choose them.\n\n",
                commands.join(", ")
            );
        }
        out.push_str(&outcome.environment.testing_note());
        if let Some(transcript) = outcome.transcript.as_ref().filter(|t| !t.commands.is_empty()) {
            out.push_str(&self.agent_runs(transcript));
        }
        out.push_str(
            "errand ran these checks in the sandbox after the agent stopped:\n\n| | check | command | exit code | duration | before the agent |\n|---|---|---|---|---|---|\n",
        );
        for check in &outcome.checks {
            let before = outcome
                .baseline
                .iter()
                .find(|b| b.name == check.name)
                .map_or("not run".to_owned(), |b| format!("{} exit {}", mark(b), b.report.exit_code));
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} | {before} |",
                mark(check),
                check.name,
                check.command.replace('|', "\\|").replace('`', "'"),
                exit_text(check),
                human(check.report.duration),
            );
        }
        out.push('\n');
        if let Some(transcript) = &outcome.transcript {
            for check in &outcome.checks {
                let Some(run) = transcript.last_run(&check.command) else { continue };
                let theirs = run.exit_code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit {c}"));
                if agents::contradiction(run, &check.command, check.report.exit_code) {
                    let _ = writeln!(
                        out,
                        "⚠️ **Contradicted**: the agent's own last run of `{}` ended with {theirs}, but errand's re-run ended with exit {}. errand's re-run is the evidence.\n",
                        check.command.replace('`', "'"),
                        check.report.exit_code
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "The agent's own last run of `{}` ({theirs}) agrees with errand's re-run.\n",
                        check.command.replace('`', "'")
                    );
                }
            }
        }
        for check in &outcome.checks {
            let _ = write!(
                out,
                "<details><summary>{} <code>{}</code>: last lines of output</summary>\n\n{}\n</details>\n\n",
                mark(check),
                html_escape(&check.name),
                self.code_block(&check.report.output_tail)
            );
        }
        out
    }

    /// The commands the agent says it ran (from its CLI's event stream), with their exit codes and
    /// a few lines of output: cited, not trusted; errand's own re-run follows.
    fn agent_runs(&self, transcript: &AgentTranscript) -> String {
        const SHOWN: usize = 15;
        let commands = &transcript.commands;
        let skipped = commands.len().saturating_sub(SHOWN);
        let mut out = String::from("**The agent's own runs**, as its event stream reports them");
        if skipped > 0 {
            let _ = write!(out, " (the last {SHOWN} of {})", commands.len());
        }
        out.push_str(":\n\n| exit code | command | last lines of output |\n|---|---|---|\n");
        for command in &commands[skipped..] {
            let exit = command.exit_code.map_or_else(|| "?".to_owned(), |c| c.to_string());
            let output = self
                .redactor
                .redact(&command.output.join(" ⏎ "))
                .replace('|', "\\|")
                .replace('`', "'")
                .replace('<', "&lt;");
            let script = self.redactor.redact(&command.script()).replace('|', "\\|").replace('`', "'");
            let _ = writeln!(out, "| {exit} | `{script}` | {output} |");
        }
        out.push('\n');
        out
    }

    /// A fenced block of (redacted) output, keeping only its last lines; the fence is longer than
    /// any backtick run inside, so output cannot break out of it.
    fn code_block(&self, text: &str) -> String {
        let text = self.redactor.redact(text);
        let lines: Vec<&str> = text.lines().collect();
        let kept = &lines[lines.len().saturating_sub(TAIL_LINES)..];
        let body = if kept.is_empty() { "(no output)".to_owned() } else { kept.join("\n") };
        let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        format!("{fence}text\n{body}\n{fence}\n")
    }
}

/// What a running job is doing, in words (GitHub and Slack alike).
pub fn running_step(progress: &Progress) -> String {
    match progress {
        Progress::Running { attempts: 1 } => "the agent is working in a sandbox".to_owned(),
        Progress::Running { attempts } => {
            format!("{attempts} attempts are running side by side, each in its own sandbox")
        }
        Progress::CheckingAttempt { attempt } => format!("running the checks on attempt {attempt}"),
        _ => String::new(),
    }
}

fn mark(check: &CheckResult) -> &'static str {
    if check.passed() { "✅" } else { "❌" }
}

fn exit_text(check: &CheckResult) -> String {
    if check.report.timed_out {
        "timed out".to_owned()
    } else if check.report.oom_killed {
        format!("{} (out of memory)", check.report.exit_code)
    } else if let Some(limit) = check.report.disk_exceeded {
        format!("{} (wrote more than {} MB to disk)", check.report.exit_code, megabytes(limit))
    } else {
        check.report.exit_code.to_string()
    }
}

/// A disk bound in the megabytes (MiB) it was configured in.
fn megabytes(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A duration as people write it: `850ms`, `4.2s`, `3m 05s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone as _;

    use super::*;
    use crate::forge::git::MirrorState;
    use crate::job::{ReplyTarget, Source, Task};
    use crate::request::ids::{CommentId, IssueNumber};
    use crate::rollout::StepReport;

    fn job() -> Job {
        Job {
            id: "0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4".parse().unwrap(),
            repo: "acme/calculator".parse().unwrap(),
            source: Source::GithubIssueComment,
            requested_by: "octocat".into(),
            created_at: chrono::Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(),
            installation_id: Some(42),
            task: Task {
                instruction: "fix this".into(),
                title: "add() returns the wrong sum".into(),
                body: "`add 2 3` prints -1.".into(),
                url: "https://github.com/acme/calculator/issues/1#issuecomment-5000000001".into(),
            },
            reply: ReplyTarget::GithubIssue { issue: IssueNumber(1), comment_id: Some(CommentId(5_000_000_001)) },
            kind: Default::default(),
            follow_up: None,
            attempts: None,
            continues: None,
        }
    }

    fn step(exit_code: i64, ms: u64, output: &str) -> StepReport {
        StepReport {
            exit_code,
            duration: Duration::from_millis(ms),
            output_tail: output.into(),
            timed_out: false,
            oom_killed: false,
            cancelled: false,
            disk_exceeded: None,
        }
    }

    fn check_row(passed: bool) -> CheckRow {
        CheckRow { passed, name: "test".into(), command: "sh test.sh".into(), exit_code: i64::from(!passed) }
    }

    fn renderer() -> Renderer {
        Renderer {
            mention: "@agent".into(),
            public_url: Some("https://errand.example.com".into()),
            redactor: Redactor::new(["s3cr3t-token-value".to_owned()]),
        }
    }

    fn outcome(after: StepReport) -> Outcome {
        Outcome {
            setup: Vec::new(),
            baseline: vec![CheckResult::from_report("test", "sh test.sh", step(1, 40, "FAIL: add 2 3 = -1, want 5"))],
            agent: Some(step(0, 12_300, "edited calc.sh")),
            agent_end: AgentEnd::Finished,
            summary: Some("Make add() add\n\nadd() subtracted; it adds now. Token: s3cr3t-token-value".into()),
            checks: vec![CheckResult::from_report("test", "sh test.sh", after)],
            base_commit: "a".repeat(40),
            commit: Some("b".repeat(40)),
            diffstat: " calc.sh | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n".into(),
            files_with_secrets: Vec::new(),
            notes: Vec::new(),
            mirror: MirrorState::Fetched,
            environment: crate::rollout::EnvironmentState::None,
            detected_from: None,
            transcript: None,
            duration: Duration::from_secs(14),
            workspace: None,
        }
    }

    #[test]
    fn what_the_sandbox_left_and_errand_ignored_is_said_in_the_answer() {
        let mut answered = outcome(step(0, 35, "ok"));
        answered.summary = None;
        answered.notes = vec![
            SandboxNote::Ignored { file: SandboxFile::Summary, why: crate::sandbox::Refusal::Symlink },
            SandboxNote::Ignored {
                file: SandboxFile::EventStream,
                why: crate::sandbox::Refusal::NotRegular { kind: "FIFO" },
            },
            SandboxNote::RemovedGit { path: "vendor/.git".into() },
        ];
        let answer = renderer().answer(&answered);
        assert!(answer.starts_with("The agent finished without changing any files and left no summary."), "{answer}");
        assert!(answer.contains("the summary (`$ERRAND_SUMMARY_FILE`) was a symbolic link; ignored."), "{answer}");
        assert!(answer.contains("the agent's event stream was a FIFO, not a regular file; ignored."), "{answer}");
        assert!(answer.contains("`vendor/.git` (a git repository inside the work tree) was removed"), "{answer}");
    }

    #[test]
    fn a_change_holding_a_secret_is_told_by_its_files_never_the_secret() {
        let text = renderer().secret_in_change(&["config/keys.txt".into(), "a`b".into()]);
        assert!(text.contains("in `config/keys.txt`, `a'b`; nothing was pushed"), "{text}");
    }

    #[test]
    fn the_pull_request_title_is_redacted() {
        let mut leaky = outcome(step(0, 35, "ok"));
        leaky.summary = Some("Add s3cr3t-token-value and ghp_0123456789abcdefghijABCDEFGHIJ\n".into());
        assert_eq!(renderer().pull_title(&job(), &leaky), "Add [redacted] and [redacted]");
    }

    #[test]
    fn the_pull_request_body_carries_the_evidence() {
        let body = renderer().pull_body(&job(), &outcome(step(0, 35, "ok: add 2 3 = 5")), Some(IssueNumber(1)), None);
        insta::assert_snapshot!(body);
    }

    #[test]
    fn output_cannot_break_out_of_its_code_block() {
        let out = renderer().code_block("```\n# not a heading\n````");
        assert!(out.starts_with("`````text\n"), "{out}");
    }

    #[test]
    fn only_the_last_lines_of_long_output_are_shown() {
        let long: String = (1..=500).map(|i| format!("line {i}\n")).collect();
        let out = renderer().code_block(&long);
        assert!(out.contains("line 500") && out.contains("line 471") && !out.contains("line 470\n"), "{out}");
    }

    #[test]
    fn tracking_comments_in_each_state() {
        let r = renderer();
        let pull = PullRequestRef { number: 7, url: "https://github.com/acme/calculator/pull/7".into() };
        let states = [
            Progress::Queued { position: Some(2) },
            Progress::Running { attempts: 1 },
            Progress::PullRequest { pull: pull.clone(), checks: vec![check_row(true)], title: None },
            Progress::Answered { answer: "It subtracts.".into() },
            Progress::Refused { user: "visitor".into(), permission: "read".into() },
            Progress::Failed { reason: "the agent exited with code 3.".into(), hint: r.retry_hint() },
            Progress::Waiting { behind: "0193a1b2c3d4e5f6a7b8c9d0e1f2a3b0".parse().unwrap() },
            Progress::Cancelled { by: "octocat".into() },
            Progress::Pushed(Box::new(Pushed {
                pull: pull.clone(),
                branch: "errand/issue-1-e1f2a3b4".into(),
                commit: "4f2a9c1d0e".into(),
                title: Some("Rename retries to max_retries".into()),
                diffstat: " src/lib.rs | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n".into(),
                checks: vec![check_row(true)],
                attempts: None,
            })),
        ];
        let all: Vec<String> = states.iter().map(|p| r.tracking_comment(&job(), p)).collect();
        insta::assert_snapshot!(all.join("\n\n----\n\n"));
    }

    #[test]
    fn an_agent_run_that_errands_re_run_contradicts_is_shown_as_such() {
        let mut claimed = outcome(step(1, 35, "FAIL: add 2 3 = -1, want 5"));
        claimed.transcript = Some(AgentTranscript {
            commands: vec![agents::AgentCommand {
                command: "sh test.sh".into(),
                exit_code: Some(0),
                output: vec!["ok: add 2 3 = 5".into()],
            }],
            final_message: None,
        });
        let section = renderer().testing_section(&claimed);
        assert!(section.contains("| 0 | `sh test.sh` | ok: add 2 3 = 5 |"), "{section}");
        assert!(
            section.contains("⚠️ **Contradicted**: the agent's own last run of `sh test.sh` ended with exit 0, but errand's re-run ended with exit 1."),
            "{section}"
        );
    }

    #[test]
    fn detected_checks_are_named_with_the_file_they_came_from() {
        let mut detected = outcome(step(0, 35, "ok"));
        detected.detected_from = Some("Cargo.toml".into());
        let section = renderer().testing_section(&detected);
        assert!(
            section.starts_with(
                "This repository has no `.errand.toml`, so errand detected its checks from `Cargo.toml`: `sh test.sh`."
            ),
            "{section}"
        );
        assert!(!renderer().testing_section(&outcome(step(0, 35, "ok"))).contains("detected"));
    }

    #[test]
    fn a_follow_up_replaces_the_testing_section_in_place() {
        let r = renderer();
        let first = r.pull_body(&job(), &outcome(step(1, 35, "FAIL: add")), Some(IssueNumber(1)), None);
        let second = r.replace_testing(&first, &outcome(step(0, 35, "ok: add 2 3 = 5")));
        assert!(second.contains("ok: add 2 3 = 5") && !second.contains("FAIL: add"), "{second}");
        assert_eq!(second.matches("<!-- errand:testing -->").count(), 1);
        assert!(second.ends_with(first.rsplit("<!-- /errand:testing -->").next().unwrap()), "the rest is kept");
        let theirs = r.replace_testing("A person's own description.", &outcome(step(0, 35, "ok")));
        assert!(theirs.starts_with("A person's own description.\n\n## Testing (errand)\n\n<!-- errand:testing -->"));
        assert_eq!(r.replace_testing(&theirs, &outcome(step(0, 35, "ok"))), theirs);
    }

    #[test]
    fn the_attempts_table_says_when_a_request_was_cut_down() {
        let score = Score {
            checks_passed: 1,
            checks_total: 1,
            agent_finished: true,
            changed: true,
            files_changed: 1,
            lines_changed: 1,
            holds_secret: false,
        };
        let row = |number, chosen| AttemptRow { number, score, duration: Duration::from_secs(2), branch: None, chosen };
        let r = renderer();
        assert_eq!(
            r.attempts_section(&Attempts { rows: vec![row(1, true)], capped: None }),
            "",
            "one attempt has no table"
        );
        let section =
            r.attempts_section(&Attempts { rows: vec![row(1, true), row(2, false)], capped: Some((Some(8), 2)) });
        assert!(section.contains("| ★ | 1 | 1/1 | 1 file, 1 line | 2.0s | not pushed (no change) |"), "{section}");
        assert!(section.contains("|  | 2 | 1/1 | 1 file, 1 line | 2.0s | not pushed (no change) |"), "{section}");
        assert!(section.ends_with("You asked for 8 attempts; this repository and worker allow 2.\n"), "{section}");
        let switched = r.choose_attempt(&section, 2);
        assert!(switched.contains("|  | 1 | 1/1 |") && switched.contains("| ★ | 2 | 1/1 |"), "{switched}");
        assert!(switched.ends_with('\n'));
    }

    #[test]
    fn a_step_stopped_for_its_disk_bound_is_told_plainly() {
        let over = StepReport { exit_code: 137, disk_exceeded: Some(64 << 20), ..step(137, 2_100, "wrote") };
        let mut agent_stopped = outcome(step(0, 35, "ok"));
        agent_stopped.agent_end = AgentEnd::of(&over);
        agent_stopped.agent = Some(over.clone());
        let reason = renderer().agent_failure(&agent_stopped, Duration::from_secs(60));
        assert!(reason.starts_with("the agent wrote more than 64 MB to disk and was stopped.\n\n"), "{reason}");

        let check_stopped = outcome(over);
        assert!(!check_stopped.checks[0].passed());
        let section = renderer().testing_section(&check_stopped);
        assert!(section.contains("| ❌ | test | `sh test.sh` | 137 (wrote more than 64 MB to disk) |"), "{section}");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human(Duration::from_secs(185)), "3m 05s");
    }
}
