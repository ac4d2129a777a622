//! What an attempt yields: how the agent ended, its summary, the checks before and after, and
//! the commit. This is the evidence errand publishes.

use std::time::Duration;

use super::environment::EnvironmentState;
use super::workspace::Workspace;
use crate::agents::AgentTranscript;
use crate::forge::git::MirrorState;
use crate::sandbox::Refusal;
/// One sandbox step as it ran: the sandbox's own account of it.
pub use crate::sandbox::StepOutput as StepReport;

/// A file errand reads back from the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxFile {
    /// `$ERRAND_SUMMARY_FILE`.
    Summary,
    /// A preset CLI's event stream.
    EventStream,
}

/// Something the sandbox left that errand would not use, for the job's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxNote {
    /// A file errand reads back was not a regular file it could read: ignored.
    Ignored { file: SandboxFile, why: Refusal },
    /// A `.git` below the top of the work tree (a nested repository, or a `.git` file pointing
    /// elsewhere): removed, and not part of the change.
    RemovedGit { path: String },
}

/// A step that never started because the attempt's time had run out.
pub fn skipped_for_time() -> StepReport {
    StepReport {
        exit_code: -1,
        duration: Duration::ZERO,
        output_tail: String::new(),
        timed_out: true,
        oom_killed: false,
        cancelled: false,
        disk_exceeded: None,
    }
}

/// How the agent's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentEnd {
    /// Exit code 0.
    Finished,
    Failed {
        exit_code: i64,
    },
    TimedOut,
    OutOfMemory,
    /// It wrote more than its disk bound and was stopped.
    DiskFull {
        limit_bytes: u64,
    },
    Cancelled,
    /// Setup failed, so the agent never ran.
    NotRun,
}

impl AgentEnd {
    pub fn of(report: &StepReport) -> Self {
        if report.cancelled {
            Self::Cancelled
        } else if report.timed_out {
            Self::TimedOut
        } else if let Some(limit_bytes) = report.disk_exceeded {
            Self::DiskFull { limit_bytes }
        } else if report.oom_killed {
            Self::OutOfMemory
        } else if report.exit_code == 0 {
            Self::Finished
        } else {
            Self::Failed { exit_code: report.exit_code }
        }
    }
}

/// A check (or setup command) with its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: String,
    pub command: String,
    pub report: StepReport,
}

impl CheckResult {
    pub fn from_report(name: &str, command: &str, report: StepReport) -> Self {
        Self { name: name.to_owned(), command: command.to_owned(), report }
    }

    pub fn passed(&self) -> bool {
        self.report.exit_code == 0
            && !self.report.timed_out
            && !self.report.oom_killed
            && self.report.disk_exceeded.is_none()
    }
}

/// Everything one attempt produced.
#[derive(Debug)]
pub struct Outcome {
    /// The setup commands as they ran; none when the environment was cached (or there is no setup).
    pub setup: Vec<CheckResult>,
    /// The checks as they were before the agent ran.
    pub baseline: Vec<CheckResult>,
    pub agent: Option<StepReport>,
    pub agent_end: AgentEnd,
    /// What the agent wrote to `$ERRAND_SUMMARY_FILE`.
    pub summary: Option<String>,
    /// The checks after the agent: the evidence.
    pub checks: Vec<CheckResult>,
    pub base_commit: String,
    /// The commit holding the agent's changes; `None` when it changed nothing.
    pub commit: Option<String>,
    pub diffstat: String,
    /// Files of the commit that hold a secret this process knows: the commit is never pushed.
    pub files_with_secrets: Vec<String>,
    /// What the sandbox left that errand ignored or removed.
    pub notes: Vec<SandboxNote>,
    pub mirror: MirrorState,
    /// Where the steps started from: the repository's image, or an environment built or reused.
    pub environment: EnvironmentState,
    pub duration: Duration,
    /// Set when the checks were detected (no `.errand.toml`): the file they were detected from.
    pub detected_from: Option<String>,
    /// What a preset agent's event stream says it ran.
    pub transcript: Option<AgentTranscript>,
    /// The workspace holding the commit, removed when the outcome is dropped.
    pub(crate) workspace: Option<Workspace>,
}

impl Outcome {
    pub(super) fn setup_failed(
        setup: Vec<CheckResult>,
        base_commit: String,
        mirror: MirrorState,
        duration: Duration,
    ) -> Self {
        Self {
            setup,
            baseline: Vec::new(),
            agent: None,
            agent_end: AgentEnd::NotRun,
            summary: None,
            checks: Vec::new(),
            base_commit,
            commit: None,
            diffstat: String::new(),
            files_with_secrets: Vec::new(),
            notes: Vec::new(),
            mirror,
            environment: EnvironmentState::None,
            duration,
            detected_from: None,
            transcript: None,
            workspace: None,
        }
    }

    /// errand's git directory holding `commit`, for pushing it.
    pub fn git_dirs(&self) -> Option<&crate::forge::git::CheckoutDirs> {
        self.workspace.as_ref().map(Workspace::git_dirs)
    }
}
