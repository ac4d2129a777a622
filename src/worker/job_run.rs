//! One delivery of one job, from permission check to published result, and how it settles in
//! the queue: finished, retried later, dead-lettered or handed back.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::config::{REPO_CONFIG_FILE, RepoConfig};
use crate::forge::{ForgeError, RepoClient};
use crate::job::{JobKind, JobRecord, JobStatus, JobUpdate, ReplyTarget};
use crate::publish::Progress;
use crate::queue::Delivery;
use crate::rollout::{AgentEnd, Plan, RolloutError};

/// Permissions that may ask errand for work.
const WRITERS: [&str; 3] = ["admin", "maintain", "write"];

/// The longest wait between two deliveries of a job that keeps hitting passing failures.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How a delivery ended, when it ended on its own.
pub(super) enum Ended {
    /// Terminal, and the requester has been told.
    Done { status: JobStatus, error: Option<String> },
}

/// Why a delivery stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    /// Another worker reclaimed the job: leave it alone.
    LeaseLost,
    /// This worker is shutting down: hand the job back.
    ShuttingDown,
}

/// Why a delivery could not end.
pub(super) enum JobError {
    /// A passing failure (GitHub or the engine hiccuped): run the job again later.
    Retry(String),
}

impl From<ForgeError> for JobError {
    fn from(e: ForgeError) -> Self {
        Self::Retry(e.to_string())
    }
}

pub(super) struct JobRun<'a> {
    pub worker: &'a Inner,
    pub delivery: &'a Delivery,
    pub cancel: &'a CancellationToken,
    /// Fired when this delivery learns that another worker holds the job.
    pub lease_lost: &'a CancellationToken,
}

impl JobRun<'_> {
    fn record(&self) -> &JobRecord {
        &self.delivery.record
    }

    pub async fn run(&self) -> Result<Ended, JobError> {
        let job = &self.record().job;
        let w = self.worker;
        let gh = match w.github.for_repo(&job.repo, job.installation_id).await {
            Ok(gh) => gh,
            Err(e) => return Err(e.into()),
        };
        let max = w.queue.settings().max_deliveries;
        if self.delivery.attempt > max {
            let reason = format!(
                "errand tried this job {} times and gave up{}.",
                max,
                self.record().error.as_deref().map(|e| format!("; the last error was: {e}")).unwrap_or_default()
            );
            self.tell_failure(&gh, &reason).await?;
            return Ok(Ended::Done { status: JobStatus::Failed, error: Some(reason) });
        }
        if let JobKind::Reply { text } = &job.kind {
            w.publisher.reply(&gh, self.record(), text).await?;
            return Ok(Ended::Done { status: JobStatus::Succeeded, error: None });
        }
        w.publisher.acknowledge(&gh, self.record()).await?;
        // A job reclaimed from a dead worker may have left its container behind.
        if let Err(e) = w.rollout.sandbox().remove_leftovers(Some(&job.id)).await {
            tracing::warn!(job = %job.id, error = format!("{e:#}"), "could not remove leftover containers");
        }

        let permission = gh.permission(&job.requested_by).await?;
        if !WRITERS.contains(&permission.as_str()) {
            let refused = Progress::Refused { user: job.requested_by.clone(), permission: permission.clone() };
            self.show(&gh, &refused).await?;
            let error = format!("@{} has `{permission}` permission; errand needs write", job.requested_by);
            return Ok(Ended::Done { status: JobStatus::Failed, error: Some(error) });
        }

        let repo = match gh.repository().await {
            Ok(repo) => repo,
            Err(ForgeError::Status { status, message }) => {
                let reason = format!("errand cannot read {} (GitHub answered {status}: {message}).", job.repo);
                self.tell_failure(&gh, &reason).await?;
                return Ok(Ended::Done { status: JobStatus::Failed, error: Some(reason) });
            }
            Err(e) => return Err(e.into()),
        };
        let config = match gh.file(REPO_CONFIG_FILE, &repo.default_branch).await? {
            Some(text) => match RepoConfig::parse(&text) {
                Ok(config) => config,
                Err(e) => {
                    let reason = format!(
                        "`{REPO_CONFIG_FILE}` on `{}` is invalid, {e}. Fix it and ask again.",
                        repo.default_branch
                    );
                    self.tell_failure(&gh, &reason).await?;
                    return Ok(Ended::Done { status: JobStatus::Failed, error: Some(reason) });
                }
            },
            None => RepoConfig::detected(&gh.root_names(&repo.default_branch).await?),
        };

        let running = Progress::Running { step: "the agent is working in a sandbox".into() };
        self.show(&gh, &running).await?;
        let token = gh.git_token().await?;
        let plan = Plan {
            job,
            config: &config,
            clone_url: &repo.clone_url,
            base_branch: &repo.default_branch,
            git_token: token.as_ref(),
        };
        let outcome = match w.rollout.run(&plan, self.cancel).await {
            Ok(outcome) => outcome,
            Err(RolloutError::Abort(reason)) => {
                self.tell_failure(&gh, &reason).await?;
                return Ok(Ended::Done { status: JobStatus::Failed, error: Some(reason) });
            }
            Err(RolloutError::Transient(e)) => return Err(JobError::Retry(format!("{e:#}"))),
        };
        tracing::info!(job = %job.id, mirror = outcome.mirror.describe(), agent = ?outcome.agent_end, baseline = ?outcome.baseline.iter().map(|c| (c.name.as_str(), c.report.exit_code)).collect::<Vec<_>>(), checks = ?outcome.checks.iter().map(|c| (c.name.as_str(), c.report.exit_code)).collect::<Vec<_>>(), "rollout finished");
        if self.cancel.is_cancelled() {
            // Lease lost or shutting down: `settle` decides; nothing is published.
            return Err(JobError::Retry("stopped before the end".into()));
        }

        if outcome.agent_end != AgentEnd::Finished {
            let timeout = config.timeout.unwrap_or(w.rollout_timeout());
            let reason = w.publisher.renderer.agent_failure(&outcome, timeout);
            self.tell_failure(&gh, &reason).await?;
            let short = reason.lines().next().unwrap_or_default().to_owned();
            return Ok(Ended::Done { status: JobStatus::Failed, error: Some(short) });
        }
        let (Some(_commit), Some(dir)) = (&outcome.commit, outcome.repo_dir()) else {
            let answer = outcome
                .summary
                .clone()
                .unwrap_or_else(|| "The agent finished without changing any files and left no summary.".into());
            self.show(&gh, &Progress::Answered { answer }).await?;
            return Ok(Ended::Done { status: JobStatus::Succeeded, error: None });
        };

        let ReplyTarget::GithubIssue { issue, .. } = job.reply;
        let branch = format!("{}issue-{issue}-{}", config.branch_prefix(), job.id.short());
        let token = gh.git_token().await?;
        self.fence().await?;
        w.rollout
            .mirrors()
            .git()
            .push(dir, &repo.clone_url, token.as_ref(), &branch)
            .await
            .map_err(|e| JobError::Retry(format!("{e:#}")))?;
        let renderer = &w.publisher.renderer;
        self.fence().await?;
        let pull = gh
            .open_pull_once(
                &renderer.pull_title(job, &outcome),
                &branch,
                &repo.default_branch,
                &renderer.pull_body(job, &outcome, issue),
            )
            .await?;
        let update = JobUpdate { pull_request: Some(pull.clone()), ..JobUpdate::default() };
        if let Err(e) = w.queue.update(&job.id, update).await {
            tracing::warn!(job = %job.id, error = format!("{e:#}"), "could not record the pull request");
        }
        let passed = outcome.checks.iter().filter(|c| c.passed()).count();
        let done = Progress::PullRequest { pull, passed, total: outcome.checks.len() };
        self.show(&gh, &done).await?;
        Ok(Ended::Done { status: JobStatus::Succeeded, error: None })
    }

    async fn tell_failure(&self, gh: &RepoClient, reason: &str) -> Result<(), JobError> {
        let renderer = &self.worker.publisher.renderer;
        let failed = Progress::Failed { reason: reason.to_owned(), hint: renderer.retry_hint() };
        self.show(gh, &failed).await
    }

    /// Edits the tracking comment, if this delivery still holds the job.
    async fn show(&self, gh: &RepoClient, progress: &Progress) -> Result<(), JobError> {
        self.fence().await?;
        Ok(self.worker.publisher.show(gh, self.record(), progress).await?)
    }

    /// Makes sure this delivery still holds the job just before an effect people see (a push, a
    /// pull request, a tracking comment edit). A worker that was frozen or cut off past its lease
    /// wakes up to a job another worker has reclaimed, possibly finished, and maybe with its own
    /// containers removed under it (which looks like a failed step): it must not overwrite that
    /// worker's branch, pull request or comment. The lease keeper notices only every third of the
    /// lease, so the lease is renewed here, which also tells whether it is still ours. Whatever
    /// this returns, `settle` decides; a lost lease is never settled by this delivery.
    async fn fence(&self) -> Result<(), JobError> {
        if self.cancel.is_cancelled() {
            return Err(JobError::Retry("stopped before the end".into()));
        }
        match self.worker.queue.renew(self.delivery).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(job = %self.record().job.id, "lease lost: another worker has this job; publishing nothing");
                self.lease_lost.cancel();
                Err(JobError::Retry("lease lost".into()))
            }
            // Unconfirmed is not ours: the lease runs out and another delivery publishes.
            Err(e) => Err(JobError::Retry(format!("could not confirm the lease before publishing: {e:#}"))),
        }
    }
}

/// Records how the delivery ended in the queue.
pub(super) async fn settle(
    worker: &Inner,
    delivery: &Delivery,
    ended: Result<Ended, JobError>,
    stopped: Option<Stopped>,
) {
    let queue = &worker.queue;
    let id = &delivery.record.job.id;
    // What the queue records, the job API shows: it passes the same redaction as comments.
    let redact = |text: &str| worker.publisher.renderer.redactor.redact(text);
    let result = match (ended, stopped) {
        (_, Some(Stopped::LeaseLost)) => Ok(()),
        (Ok(Ended::Done { status, error }), _) => {
            let error = error.map(|e| redact(&e));
            if delivery.attempt > queue.settings().max_deliveries {
                queue.dead_letter(delivery, error.as_deref().unwrap_or("gave up")).await
            } else {
                queue.finish(delivery, status, error).await
            }
        }
        (Err(_), Some(Stopped::ShuttingDown)) => {
            tracing::info!(job = %id, "handing the job back");
            queue.retry_later(delivery, Duration::ZERO, "handed back by a stopping worker").await
        }
        (Err(JobError::Retry(reason)), None) => {
            let delay = (worker.settings.retry_delay * 2u32.saturating_pow(delivery.attempt.saturating_sub(1)))
                .min(MAX_RETRY_DELAY);
            let reason = redact(&reason);
            tracing::warn!(job = %id, reason, ?delay, "job will be retried");
            // `retry_later` records the reason, and only while this delivery holds the lease: a
            // separate update would write into the record of a job another worker may hold.
            queue.retry_later(delivery, delay, &reason).await
        }
    };
    if let Err(e) = result {
        // The lease runs out and another delivery settles the job.
        tracing::error!(job = %id, error = format!("{e:#}"), "could not settle the job in the queue");
    }
}

impl Inner {
    fn rollout_timeout(&self) -> Duration {
        self.rollout.default_timeout()
    }
}
