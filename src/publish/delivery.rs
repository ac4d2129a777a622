//! Delivering a change where it goes: each attempt of a best-of-N job on a branch of its own, the
//! chosen one on the pull request's own branch (a fast-forward, for a follow-up) or on a new
//! branch with a new pull request (`Closes #N`); the Testing section and the attempts table in
//! the pull request's body; then the final state in the conversation. The worker decides what to
//! deliver; this module does it, confirming before each effect that the job is still this
//! delivery's ([`Fence`]).

use std::future::Future;

use secrecy::SecretString;

use super::render::{AttemptRow, Attempts, CheckRow, Progress, Pushed};
use super::{Conversation, PublishError};
use crate::config::DEFAULT_BRANCH_PREFIX;
use crate::forge::git::{CheckoutDirs, Git};
use crate::forge::github::PullInfo;
use crate::forge::{ForgeError, RepoClient};
use crate::job::{Job, JobRecord, PullRequestRef};
use crate::rollout::Outcome;
use crate::rollout::ranking::Score;

/// Where a job's work goes.
#[derive(Debug)]
pub enum Place {
    /// A new branch from the default branch, and a new pull request.
    NewBranch { base: String },
    /// A commit on the pull request's own branch.
    PullBranch { pull: Box<PullInfo> },
    /// The pull request's branch is protected: a new pull request into it.
    StackedOn { pull: Box<PullInfo> },
}

impl Place {
    /// Where `.errand.toml` is read: the default branch, or the pull request's base.
    pub fn config_branch(&self) -> &str {
        match self {
            Self::NewBranch { base } => base,
            Self::PullBranch { pull } | Self::StackedOn { pull } => &pull.base.branch,
        }
    }

    /// The branch the agent's work starts from.
    pub fn work_branch(&self) -> &str {
        match self {
            Self::NewBranch { base } => base,
            Self::PullBranch { pull } | Self::StackedOn { pull } => &pull.head.branch,
        }
    }

    pub fn pull(&self) -> Option<&PullInfo> {
        match self {
            Self::NewBranch { .. } => None,
            Self::PullBranch { pull } | Self::StackedOn { pull } => Some(pull),
        }
    }
}

/// Confirms, right before each effect people see (a push, a pull request, a comment edit), that
/// the job is still this delivery's; see the worker's lease.
pub trait Fence {
    fn confirm(&self) -> impl Future<Output = Result<(), Halted>>;
}

/// The job is no longer this delivery's to publish (its lease is lost, or the worker stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halted;

/// Why a delivery did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("stopped before the end")]
    Halted,
    /// git could not push (the branch moved, the forge failed): the job runs again.
    #[error("pushing failed: {0:#}")]
    Push(anyhow::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl From<Halted> for DeliveryError {
    fn from(_: Halted) -> Self {
        Self::Halted
    }
}

impl From<ForgeError> for DeliveryError {
    fn from(error: ForgeError) -> Self {
        Self::Publish(PublishError::Github(error))
    }
}

/// A change the worker chose, with everything needed to deliver it.
pub struct Change<'a> {
    pub record: &'a JobRecord,
    pub clone_url: &'a str,
    pub place: &'a Place,
    /// Of errand's branches, from `.errand.toml`.
    pub branch_prefix: &'a str,
    /// Every attempt, in order, with its score; `best` is the chosen one.
    pub attempts: &'a [(Outcome, Score)],
    pub best: usize,
    /// (asked, ran) when the request asked for more attempts than allowed.
    pub capped: Option<(Option<u32>, u32)>,
    /// The review threads, besides the conversation's own, that get a short answer.
    pub other_threads: &'a [crate::request::ids::CommentId],
}

/// The tools a delivery works with: the repository's GitHub client, git, the conversation, the
/// fence, and the token git pushes with.
pub struct Deliverer<'a, F> {
    pub gh: &'a RepoClient,
    pub git: &'a Git,
    pub conversation: &'a Conversation<'a>,
    pub fence: &'a F,
    pub token: Option<&'a SecretString>,
}

impl<F: Fence> Deliverer<'_, F> {
    /// Delivers the chosen attempt of `change` (which changed something): attempt branches, the
    /// push, the pull request, the final state.
    pub async fn deliver(&self, change: &Change<'_>) -> Result<(), DeliveryError> {
        let (outcome, _) = &change.attempts[change.best];
        let dirs = outcome.git_dirs().ok_or_else(|| DeliveryError::Push(anyhow::anyhow!("the checkout is gone")))?;
        let work_branch = work_branch_name(change);
        let attempts = self.push_attempts(change, &work_branch).await?;
        match change.place {
            Place::PullBranch { pull } => self.add_to_pull(change, pull, dirs, attempts).await,
            Place::NewBranch { base } => self.open_pull(change, dirs, work_branch, base.clone(), attempts).await,
            Place::StackedOn { pull } => {
                let base = pull.head.branch.clone();
                self.open_pull(change, dirs, work_branch, base, attempts).await
            }
        }
    }

    /// Puts attempt `attempt`'s change (on `<head>-a<attempt>`) in the pull request instead of
    /// the chosen one, with the Testing section of `checked` (its checks, run again) and the ★
    /// moved in the attempts table.
    pub async fn use_attempt(
        &self,
        record: &JobRecord,
        clone_url: &str,
        pull: &PullInfo,
        attempt: u32,
        checked: &Outcome,
    ) -> Result<(), DeliveryError> {
        let dirs = checked.git_dirs().ok_or_else(|| DeliveryError::Push(anyhow::anyhow!("the checkout is gone")))?;
        let head = &pull.head.branch;
        self.fence.confirm().await?;
        self.git.push(dirs, clone_url, self.token, head).await.map_err(DeliveryError::Push)?;
        self.fence.confirm().await?;
        let latest = self.gh.pull(pull.number).await?;
        let renderer = self.conversation.renderer();
        let body = renderer.replace_testing(latest.body.as_deref().unwrap_or_default(), checked);
        self.gh.update_pull_body(pull.number, &renderer.choose_attempt(&body, attempt)).await?;
        let pull_ref = PullRequestRef { number: pull.number, url: pull.html_url.clone() };
        self.conversation.record_pull(record, &pull_ref).await;
        let pushed = Pushed {
            pull: pull_ref,
            branch: head.clone(),
            commit: checked.base_commit.clone(),
            title: Some(renderer.attempt_in_use(attempt, head)),
            diffstat: String::new(),
            checks: checked.checks.iter().map(CheckRow::of).collect(),
            attempts: None,
        };
        self.show(record, &Progress::Pushed(Box::new(pushed))).await
    }

    /// With several attempts, each one that changed something (the chosen one too, so that `use
    /// attempt N` can come back to it) is pushed to `<work branch>-a<N>`: people can look at it,
    /// and the table in the pull request says where. A change holding a secret is never pushed.
    async fn push_attempts(&self, change: &Change<'_>, work_branch: &str) -> Result<Option<Attempts>, DeliveryError> {
        if change.attempts.len() < 2 {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(change.attempts.len());
        for (i, (attempt, score)) in change.attempts.iter().enumerate() {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let pushable = attempt.commit.is_some() && attempt.files_with_secrets.is_empty();
            let branch = match attempt.git_dirs().filter(|_| pushable) {
                Some(dirs) => {
                    let branch = format!("{work_branch}-a{number}");
                    self.fence.confirm().await?;
                    self.git.push(dirs, change.clone_url, self.token, &branch).await.map_err(DeliveryError::Push)?;
                    Some(branch)
                }
                None => None,
            };
            rows.push(AttemptRow {
                number,
                score: *score,
                duration: attempt.duration,
                branch,
                chosen: i == change.best,
            });
        }
        Ok(Some(Attempts { rows, capped: change.capped }))
    }

    /// A follow-up: one more commit on the pull request's own branch, only as a fast-forward (if
    /// the branch moved while the agent worked, the push is refused and the job runs again on the
    /// new head); the Testing section replaced; the answer where it was asked.
    async fn add_to_pull(
        &self,
        change: &Change<'_>,
        pull: &PullInfo,
        dirs: &CheckoutDirs,
        attempts: Option<Attempts>,
    ) -> Result<(), DeliveryError> {
        let (outcome, _) = &change.attempts[change.best];
        self.fence.confirm().await?;
        self.git
            .push_fast_forward(dirs, change.clone_url, self.token, &pull.head.branch)
            .await
            .map_err(DeliveryError::Push)?;
        self.fence.confirm().await?;
        let latest = self.gh.pull(pull.number).await?;
        let renderer = self.conversation.renderer();
        let body = renderer.replace_testing(latest.body.as_deref().unwrap_or_default(), outcome);
        self.gh.update_pull_body(pull.number, &body).await?;
        let pull_ref = PullRequestRef { number: pull.number, url: pull.html_url.clone() };
        self.conversation.record_pull(change.record, &pull_ref).await;
        let pushed = Pushed {
            pull: pull_ref,
            branch: pull.head.branch.clone(),
            commit: outcome.commit.clone().unwrap_or_default(),
            title: crate::rollout::summary_title(outcome.summary.as_deref()),
            diffstat: outcome.diffstat.clone(),
            checks: outcome.checks.iter().map(CheckRow::of).collect(),
            attempts,
        };
        self.show(change.record, &Progress::Pushed(Box::new(pushed.clone()))).await?;
        if !change.other_threads.is_empty() {
            self.fence.confirm().await?;
            self.conversation.answer_other_threads(change.record, change.other_threads, &pushed).await?;
        }
        Ok(())
    }

    /// A new branch from `base` and a pull request into it (`Closes #N` for an issue).
    async fn open_pull(
        &self,
        change: &Change<'_>,
        dirs: &CheckoutDirs,
        branch: String,
        base: String,
        attempts: Option<Attempts>,
    ) -> Result<(), DeliveryError> {
        let (outcome, _) = &change.attempts[change.best];
        let job = &change.record.job;
        let closes = match change.place {
            Place::NewBranch { .. } => job.reply.issue(),
            Place::PullBranch { .. } | Place::StackedOn { .. } => None,
        };
        self.fence.confirm().await?;
        self.git.push(dirs, change.clone_url, self.token, &branch).await.map_err(DeliveryError::Push)?;
        self.fence.confirm().await?;
        let renderer = self.conversation.renderer();
        let title = renderer.pull_title(job, outcome);
        let body = renderer.pull_body(job, outcome, closes, attempts.as_ref());
        let pull = self.gh.open_pull_once(&title, &branch, &base, &body).await?;
        self.conversation.record_pull(change.record, &pull).await;
        let checks: Vec<CheckRow> = outcome.checks.iter().map(CheckRow::of).collect();
        let done = Progress::PullRequest { pull, checks, title: Some(title) };
        self.show(change.record, &done).await
    }

    async fn show(&self, record: &JobRecord, progress: &Progress) -> Result<(), DeliveryError> {
        self.fence.confirm().await?;
        Ok(self.conversation.show(record, progress).await?)
    }
}

/// The branch a job's change is pushed to: `<prefix>issue-N-<job>`, `<prefix>slack-<job>`, or
/// `<prefix>pr-N-<job>` for work on a pull request.
fn work_branch_name(change: &Change<'_>) -> String {
    let job: &Job = &change.record.job;
    let prefix = change.branch_prefix;
    match change.place {
        Place::NewBranch { .. } => match job.reply.issue() {
            Some(issue) => format!("{prefix}issue-{issue}-{}", job.id.short()),
            None => format!("{prefix}slack-{}", job.id.short()),
        },
        Place::PullBranch { pull } | Place::StackedOn { pull } => {
            format!("{prefix}pr-{}-{}", pull.number, job.id.short())
        }
    }
}

/// The prefix of errand's branches: the repository's, unless it holds a secret errand knows
/// (branch names are pushed and shown).
pub fn branch_prefix<'a>(configured: &'a str, redactor: &crate::secrets::Redactor) -> &'a str {
    if redactor.redact(configured) == configured { configured } else { DEFAULT_BRANCH_PREFIX }
}
