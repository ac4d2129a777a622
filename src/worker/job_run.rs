//! One delivery of one job, from permission check to published result, and how it settles in
//! the queue: finished, retried later, dead-lettered or handed back.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Inner;
use super::review;
use crate::chat::thread::thread_context;
use crate::config::{AgentConfig, DEFAULT_BRANCH_PREFIX, REPO_CONFIG_FILE, RepoConfig};
use crate::forge::RepoInfo;
use crate::forge::github::{PullInfo, Reactable};
use crate::forge::{ForgeError, RepoClient};
use crate::job::FollowUp;
use crate::job::{JobId, JobKind, JobRecord, JobState, JobUpdate, PullRequestRef, ReplyTarget};
use crate::publish::render::{AttemptRow, Pushed};
use crate::publish::{Progress, PublishError};
use crate::queue::Delivery;
use crate::rollout::ranking::{self, Score};
use crate::rollout::{AgentEnd, Plan, RolloutError, summary_title};

/// Permissions that may ask errand for work.
const WRITERS: [&str; 3] = ["admin", "maintain", "write"];

/// The longest wait between two deliveries of a job that keeps hitting passing failures.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How long a job waits before it looks again whether the earlier job of its thread has ended.
const THREAD_WAIT: Duration = Duration::from_secs(2);

/// How a delivery ended, when it ended on its own.
pub(super) enum Ended {
    /// Terminal (not dead: `settle` decides that), and the requester has been told.
    Done { state: JobState },
    /// An earlier job of the same thread, `behind`, has not ended: back to the queue, not counted.
    Wait { behind: JobId },
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

impl From<PublishError> for JobError {
    fn from(e: PublishError) -> Self {
        Self::Retry(e.to_string())
    }
}

pub(super) struct JobRun<'a> {
    pub worker: &'a Inner,
    pub delivery: &'a Delivery,
    /// Fired to stop the rollout: shutdown, a lost lease, or `@agent stop`.
    pub cancel: &'a CancellationToken,
    /// Fired on shutdown or a lost lease only: then nothing may be published.
    pub halted: &'a CancellationToken,
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
            // Asked from Slack about a repository the App is not on: say so there (on GitHub,
            // a webhook always names its installation).
            Err(ForgeError::NotInstalled { repo }) if job.reply.is_slack() => {
                let reason = format!(
                    "errand is not installed on `{repo}`, or that repository does not exist. Install errand's GitHub App on it, or name another repository."
                );
                self.fence().await?;
                let failed = Progress::Failed { reason: reason.clone(), hint: String::new() };
                w.publisher.show(None, self.record(), &failed).await?;
                return Ok(Ended::Done { state: JobState::Failed { reason } });
            }
            Err(e) => return Err(e.into()),
        };
        let max = w.queue.settings().max_deliveries;
        if self.delivery.attempt > max {
            let last_error = match &self.delivery.claimed_from {
                JobState::Queued { retry_reason: Some(e) } => format!("; the last error was: {e}"),
                _ => String::new(),
            };
            let reason = format!("errand tried this job {max} times and gave up{last_error}.");
            self.tell_failure(&gh, &reason).await?;
            return Ok(Ended::Done { state: JobState::Failed { reason } });
        }
        if let JobKind::Reply { text } = &job.kind {
            w.publisher.reply(Some(&gh), self.record(), text).await?;
            return Ok(Ended::Done { state: JobState::Succeeded });
        }
        if let Some(by) = &self.record().cancel_requested_by {
            return self.end_cancelled(&gh, by).await;
        }
        if let Some(ended) = self.wait_for_earlier_job(&gh).await? {
            return Ok(ended);
        }
        w.publisher.acknowledge(Some(&gh), self.record()).await?;
        // A job reclaimed from a dead worker may have left its container behind.
        if let Err(e) = w.rollout.sandbox().remove_leftovers(Some(&job.id)).await {
            tracing::warn!(job = %job.id, error = format!("{e:#}"), "could not remove leftover containers");
        }

        // On GitHub the requester needs write access; in Slack the allowlist the ingress
        // checked is who may ask.
        let permission =
            if job.reply.is_slack() { "write".to_owned() } else { gh.permission(&job.requested_by).await? };
        if !WRITERS.contains(&permission.as_str()) {
            let refused = Progress::Refused { user: job.requested_by.clone(), permission: permission.clone() };
            self.show(&gh, &refused).await?;
            let reason = format!("@{} has `{permission}` permission; errand needs write", job.requested_by);
            return Ok(Ended::Done { state: JobState::Failed { reason } });
        }

        let repo = match gh.repository().await {
            Ok(repo) => repo,
            Err(ForgeError::Status { status, message }) => {
                let reason = format!("errand cannot read {} (GitHub answered {status}: {message}).", job.repo);
                return self.fail(&gh, reason).await;
            }
            Err(e) => return Err(e.into()),
        };
        let place = match self.follow_up().await {
            None => Place::NewBranch { base: repo.default_branch.clone() },
            Some(follow_up) => match self.follow_up_place(&gh, follow_up.pull).await? {
                Ok(place) => place,
                Err(reason) => return self.fail(&gh, reason).await,
            },
        };
        // The configuration comes from the base branch: a pull request cannot change how errand
        // runs on it.
        let config_branch = place.config_branch();
        let config = match gh.file(REPO_CONFIG_FILE, config_branch).await? {
            Some(text) => match RepoConfig::parse(&text) {
                Ok(config) => config,
                Err(e) => {
                    let reason =
                        format!("`{REPO_CONFIG_FILE}` on `{config_branch}` is invalid, {e}. Fix it and ask again.");
                    return self.fail(&gh, reason).await;
                }
            },
            None => RepoConfig::detected(&gh.root_names(config_branch).await?),
        };
        if let JobKind::UseAttempt { attempt } = job.kind {
            return self.use_attempt(&gh, &repo, &place, &config, attempt).await;
        }
        let review = match (&job.reply, &place) {
            (ReplyTarget::GithubReview { pull, review_id, comment_id, .. }, _) => {
                review::gather(&gh, *pull, *review_id, *comment_id, &w.publisher.renderer.mention).await?
            }
            _ => review::Review::default(),
        };
        for note in review.notes.iter().filter(|n| Some(n.comment.id) != job.reply.asking_comment()) {
            gh.react(Reactable::ReviewComment(note.comment.id), "eyes").await?;
        }
        let mut context = review.task_context(place.pull());
        context.push_str(&self.slack_context().await?);

        let (attempts, capped) = config.attempts(job.attempts, w.settings.max_attempts);
        let step = match attempts {
            1 => "the agent is working in a sandbox".to_owned(),
            n => format!("{n} attempts are running side by side, each in its own sandbox"),
        };
        self.show(&gh, &Progress::Running { step }).await?;
        let token = gh.git_token().await?;
        let plans: Vec<Plan> = (1..=attempts)
            .map(|k| Plan {
                job,
                config: &config,
                clone_url: &repo.clone_url,
                base_branch: place.work_branch(),
                context: &context,
                attempt: (attempts > 1).then_some(k),
                git_token: token.as_ref(),
            })
            .collect();
        let mut outcomes = Vec::with_capacity(plans.len());
        for ran in futures::future::join_all(plans.iter().map(|plan| w.rollout.run(plan, self.cancel))).await {
            match ran {
                Ok(outcome) => outcomes.push(outcome),
                Err(RolloutError::Abort(reason)) => return self.fail(&gh, reason).await,
                Err(RolloutError::Transient(e)) => return Err(JobError::Retry(format!("{e:#}"))),
            }
        }
        let scores: Vec<Score> = outcomes.iter().map(Score::of).collect();
        let order = ranking::rank(&scores);
        let best = order[0];
        let outcome = &outcomes[best];
        tracing::info!(job = %job.id, attempts, best = best + 1, mirror = outcome.mirror.describe(), agent = ?outcome.agent_end, baseline = ?outcome.baseline.iter().map(|c| (c.name.as_str(), c.report.exit_code)).collect::<Vec<_>>(), checks = ?outcome.checks.iter().map(|c| (c.name.as_str(), c.report.exit_code)).collect::<Vec<_>>(), "rollout finished");
        if self.cancel.is_cancelled() {
            // Lease lost, shutting down or cancelled: the caller decides; nothing is published.
            return Err(JobError::Retry("stopped before the end".into()));
        }

        if outcome.agent_end != AgentEnd::Finished {
            let timeout = w.rollout.attempt_timeout(&config);
            let reason = w.publisher.renderer.agent_failure(outcome, timeout);
            self.tell_failure(&gh, &reason).await?;
            let short = reason.lines().next().unwrap_or_default().to_owned();
            return Ok(Ended::Done { state: JobState::Failed { reason: short } });
        }
        if !outcome.files_with_secrets.is_empty() {
            return self.fail(&gh, w.publisher.renderer.secret_in_change(&outcome.files_with_secrets)).await;
        }
        let (Some(commit), Some(dir)) = (&outcome.commit, outcome.git_dirs()) else {
            let answer = w.publisher.renderer.answer(outcome);
            self.show(&gh, &Progress::Answered { answer }).await?;
            return Ok(Ended::Done { state: JobState::Succeeded });
        };

        let renderer = &w.publisher.renderer;
        let git = w.rollout.mirrors().git();
        let token = gh.git_token().await?;
        // Branch names are pushed and shown: one holding a secret errand knows is not used.
        let prefix = match config.branch_prefix() {
            prefix if renderer.redactor.redact(prefix) == prefix => prefix,
            _ => DEFAULT_BRANCH_PREFIX,
        };
        let work_name = match &place {
            Place::NewBranch { .. } => match job.reply.issue() {
                Some(issue) => format!("{prefix}issue-{issue}-{}", job.id.short()),
                None => format!("{prefix}slack-{}", job.id.short()),
            },
            Place::PullBranch { pull } | Place::StackedOn { pull } => {
                format!("{prefix}pr-{}-{}", pull.number, job.id.short())
            }
        };
        // With several attempts, the others' work is pushed to branches of their own, so people
        // can look at it (the table in the pull request says where).
        let mut attempt_rows = Vec::new();
        if attempts > 1 {
            for (i, (attempt, score)) in outcomes.iter().zip(&scores).enumerate() {
                let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
                // The chosen one too, so that `use attempt N` can come back to it.
                // Never an attempt whose change holds a secret.
                let pushable = attempt.commit.is_some() && attempt.files_with_secrets.is_empty();
                let branch = match (pushable, attempt.git_dirs()) {
                    (true, Some(attempt_dir)) => {
                        let branch = format!("{work_name}-a{number}");
                        self.fence().await?;
                        git.push(attempt_dir, &repo.clone_url, token.as_ref(), &branch)
                            .await
                            .map_err(|e| JobError::Retry(format!("{e:#}")))?;
                        Some(branch)
                    }
                    _ => None,
                };
                attempt_rows.push(AttemptRow {
                    number,
                    score: *score,
                    duration: attempt.duration,
                    branch,
                    chosen: i == best,
                });
            }
        }
        let attempts_section = renderer.attempts_section(&attempt_rows, capped.then_some((job.attempts, attempts)));
        if let Place::PullBranch { pull } = &place {
            self.fence().await?;
            if let Err(e) = git.push_fast_forward(dir, &repo.clone_url, token.as_ref(), &pull.head.branch).await {
                // The branch moved while the agent worked: run again on its new head.
                return Err(JobError::Retry(format!("{e:#}")));
            }
            let pull_ref = PullRequestRef { number: pull.number, url: pull.html_url.clone() };
            self.fence().await?;
            let latest = gh.pull(pull.number).await?;
            let body = renderer.replace_testing(latest.body.as_deref().unwrap_or_default(), outcome);
            gh.update_pull_body(pull.number, &body).await?;
            self.record_pull(&pull_ref).await;
            let pushed = Pushed {
                pull: pull_ref,
                branch: pull.head.branch.clone(),
                commit: commit.clone(),
                title: summary_title(outcome.summary.as_deref()),
                diffstat: outcome.diffstat.clone(),
                checks: outcome
                    .checks
                    .iter()
                    .map(|c| (c.passed(), c.name.clone(), c.command.clone(), c.report.exit_code.to_string()))
                    .collect(),
                attempts: attempts_section.clone(),
            };
            self.show(&gh, &Progress::Pushed(Box::new(pushed.clone()))).await?;
            let others = review.other_threads(&job.reply);
            if !others.is_empty() {
                self.fence().await?;
                w.publisher.answer_threads(&gh, self.record(), &others, &renderer.thread_answer(&pushed)).await?;
            }
            return Ok(Ended::Done { state: JobState::Succeeded });
        }

        let (branch, base, closes) = match &place {
            Place::NewBranch { base } => (work_name, base.clone(), job.reply.issue()),
            Place::StackedOn { pull } => (work_name, pull.head.branch.clone(), None),
            Place::PullBranch { .. } => unreachable!("pushed above"),
        };
        self.fence().await?;
        git.push(dir, &repo.clone_url, token.as_ref(), &branch).await.map_err(|e| JobError::Retry(format!("{e:#}")))?;
        self.fence().await?;
        let pull = gh
            .open_pull_once(
                &renderer.pull_title(job, outcome),
                &branch,
                &base,
                &renderer.pull_body(job, outcome, closes, &attempts_section),
            )
            .await?;
        self.record_pull(&pull).await;
        let passed = outcome.checks.iter().filter(|c| c.passed()).count();
        let done = Progress::PullRequest {
            pull,
            passed,
            total: outcome.checks.len(),
            checks: outcome
                .checks
                .iter()
                .map(|c| (c.passed(), c.name.clone(), c.command.clone(), c.report.exit_code.to_string()))
                .collect(),
            title: Some(renderer.pull_title(job, outcome)),
        };
        self.show(&gh, &done).await?;
        Ok(Ended::Done { state: JobState::Succeeded })
    }

    /// `use attempt N` on a pull request errand made from several attempts: runs the checks on
    /// that attempt's branch, then puts its commit in the pull request (errand's own branch, so
    /// it may be replaced) with the Testing section and the ★ of the attempts table updated.
    async fn use_attempt(
        &self,
        gh: &RepoClient,
        repo: &RepoInfo,
        place: &Place,
        config: &RepoConfig,
        attempt: u32,
    ) -> Result<Ended, JobError> {
        let w = self.worker;
        let renderer = &w.publisher.renderer;
        let Place::PullBranch { pull } = place else {
            return self
                .fail(gh, "errand can only switch attempts on a pull request whose branch it may push to.".into())
                .await;
        };
        let head = &pull.head.branch;
        let chosen = format!("{head}-a{attempt}");
        if !head.starts_with(config.branch_prefix()) || !gh.branch_exists(&chosen).await? {
            let reason = format!(
                "this pull request has no attempt {attempt}: errand keeps each attempt of a request that ran several on a branch named `{head}-aN`."
            );
            return self.fail(gh, reason).await;
        }
        self.show(gh, &Progress::Running { step: format!("running the checks on attempt {attempt}") }).await?;
        // The attempt's change is already made: the checks run on it, and no agent runs.
        let checks_only = RepoConfig {
            agent: AgentConfig { command: Some("true".into()), ..AgentConfig::default() },
            baseline_checks: Some(false),
            ..config.clone()
        };
        let token = gh.git_token().await?;
        let plan = Plan {
            job: &self.record().job,
            config: &checks_only,
            clone_url: &repo.clone_url,
            base_branch: &chosen,
            context: "",
            attempt: None,
            git_token: token.as_ref(),
        };
        let outcome = match w.rollout.run(&plan, self.cancel).await {
            Ok(outcome) => outcome,
            Err(RolloutError::Abort(reason)) => return self.fail(gh, reason).await,
            Err(RolloutError::Transient(e)) => return Err(JobError::Retry(format!("{e:#}"))),
        };
        if self.cancel.is_cancelled() {
            return Err(JobError::Retry("stopped before the end".into()));
        }
        let Some(dir) = outcome.git_dirs() else {
            return Err(JobError::Retry("the attempt's checkout is gone".into()));
        };
        self.fence().await?;
        w.rollout
            .mirrors()
            .git()
            .push(dir, &repo.clone_url, token.as_ref(), head)
            .await
            .map_err(|e| JobError::Retry(format!("{e:#}")))?;
        self.fence().await?;
        let latest = gh.pull(pull.number).await?;
        let body = renderer.replace_testing(latest.body.as_deref().unwrap_or_default(), &outcome);
        gh.update_pull_body(pull.number, &renderer.choose_attempt(&body, attempt)).await?;
        let pull_ref = PullRequestRef { number: pull.number, url: pull.html_url.clone() };
        self.record_pull(&pull_ref).await;
        let pushed = Pushed {
            pull: pull_ref,
            branch: head.clone(),
            commit: outcome.base_commit.clone(),
            title: Some(format!("Now attempt {attempt} (from `{chosen}`)")),
            diffstat: String::new(),
            checks: outcome
                .checks
                .iter()
                .map(|c| (c.passed(), c.name.clone(), c.command.clone(), c.report.exit_code.to_string()))
                .collect(),
            attempts: String::new(),
        };
        self.show(gh, &Progress::Pushed(Box::new(pushed))).await?;
        Ok(Ended::Done { state: JobState::Succeeded })
    }

    /// The pull request the job adds to: the one it was asked on, or, for a later request in a
    /// Slack thread, the one the thread's earlier job opened or added to.
    async fn follow_up(&self) -> Option<FollowUp> {
        let job = &self.record().job;
        if job.follow_up.is_some() {
            return job.follow_up;
        }
        let earlier = job.continues.as_ref()?;
        let record = self.worker.queue.get(earlier).await.ok().flatten()?;
        record.pull_request.map(|pull| FollowUp { pull: pull.number }).or(record.job.follow_up)
    }

    /// A Slack request's thread, as context for the agent (empty for GitHub jobs).
    async fn slack_context(&self) -> Result<String, JobError> {
        let job = &self.record().job;
        let (ReplyTarget::Slack { channel, ts, thread_ts: Some(thread_ts), .. }, Some(api)) =
            (&job.reply, self.worker.publisher.slack())
        else {
            return Ok(String::new());
        };
        let messages = api.thread(channel, thread_ts).await.map_err(|e| JobError::Retry(e.to_string()))?;
        let me = api.identity().await.ok();
        Ok(thread_context(&messages, ts.as_deref(), me))
    }

    async fn record_pull(&self, pull: &PullRequestRef) {
        let id = &self.record().job.id;
        let update = JobUpdate { pull_request: Some(pull.clone()), ..JobUpdate::default() };
        if let Err(e) = self.worker.queue.update(id, update).await {
            tracing::warn!(job = %id, error = format!("{e:#}"), "could not record the pull request");
        }
    }

    /// Where a follow-up on pull request `number` can put its work, or why it cannot.
    async fn follow_up_place(&self, gh: &RepoClient, number: u64) -> Result<Result<Place, String>, JobError> {
        let job = &self.record().job;
        let pull = match gh.pull(number).await {
            Ok(pull) => pull,
            Err(ForgeError::Status { status: 404, .. }) => {
                return Ok(Err(format!("errand cannot find pull request #{number} in {}.", job.repo)));
            }
            Err(e) => return Err(e.into()),
        };
        if pull.state != "open" {
            let state = if pull.merged { "merged" } else { "closed" };
            return Ok(Err(format!(
                "pull request #{number} is {state}; errand only adds to open pull requests. Ask on an issue to start new work."
            )));
        }
        let head_repo = pull.head.repo.as_ref().map(|r| r.full_name.as_str());
        if head_repo.is_none_or(|name| !name.eq_ignore_ascii_case(&job.repo.to_string())) {
            let from = head_repo.map_or("a fork that no longer exists".to_owned(), |name| format!("the fork `{name}`"));
            return Ok(Err(format!(
                "pull request #{number} comes from {from}, and errand can only push to branches of `{}`. Push the branch to `{}` and ask again there, or ask on an issue for a new pull request.",
                job.repo, job.repo
            )));
        }
        if gh.branch_protected(&pull.head.branch).await? {
            tracing::info!(job = %job.id, branch = pull.head.branch, "the pull request's branch is protected: opening a pull request against it");
            return Ok(Ok(Place::StackedOn { pull: Box::new(pull) }));
        }
        Ok(Ok(Place::PullBranch { pull: Box::new(pull) }))
    }

    /// Tasks of one issue or pull request run one at a time, in order: while an earlier one has
    /// not ended, this one goes back to the queue (its tracking comment says why, once).
    async fn wait_for_earlier_job(&self, gh: &RepoClient) -> Result<Option<Ended>, JobError> {
        let job = &self.record().job;
        let Some(thread) = job.thread() else { return Ok(None) };
        let open = self
            .worker
            .queue
            .open_in_thread(&thread)
            .await
            .map_err(|e| JobError::Retry(format!("reading the thread's jobs: {e:#}")))?;
        // Ids sort by creation, so this is the oldest job of the thread that is still open.
        let Some(earlier) = open.iter().map(|r| &r.job.id).filter(|id| **id < job.id).min() else {
            return Ok(None);
        };
        let waited_already = matches!(&self.delivery.claimed_from, JobState::Waiting { behind } if behind == earlier);
        if !waited_already {
            self.show(gh, &Progress::Waiting { behind: earlier.clone() }).await?;
        }
        Ok(Some(Ended::Wait { behind: earlier.clone() }))
    }

    /// Ends the job as cancelled, saying who stopped it.
    pub async fn end_cancelled(&self, gh: &RepoClient, by: &str) -> Result<Ended, JobError> {
        self.show(gh, &Progress::Cancelled { by: by.to_owned() }).await?;
        Ok(Ended::Done { state: JobState::Cancelled { by: by.to_owned() } })
    }

    async fn fail(&self, gh: &RepoClient, reason: String) -> Result<Ended, JobError> {
        self.tell_failure(gh, &reason).await?;
        Ok(Ended::Done { state: JobState::Failed { reason } })
    }

    async fn tell_failure(&self, gh: &RepoClient, reason: &str) -> Result<(), JobError> {
        let renderer = &self.worker.publisher.renderer;
        let failed = Progress::Failed { reason: reason.to_owned(), hint: renderer.retry_hint() };
        self.show(gh, &failed).await
    }

    /// Edits the tracking comment, if this delivery still holds the job.
    async fn show(&self, gh: &RepoClient, progress: &Progress) -> Result<(), JobError> {
        self.fence().await?;
        Ok(self.worker.publisher.show(Some(gh), self.record(), progress).await?)
    }

    /// Makes sure this delivery still holds the job just before an effect people see (a push, a
    /// pull request, a tracking comment edit). A worker that was frozen or cut off past its lease
    /// wakes up to a job another worker has reclaimed, possibly finished, and maybe with its own
    /// containers removed under it (which looks like a failed step): it must not overwrite that
    /// worker's branch, pull request or comment. The lease keeper notices only every third of the
    /// lease, so the lease is renewed here, which also tells whether it is still ours. Whatever
    /// this returns, `settle` decides; a lost lease is never settled by this delivery.
    async fn fence(&self) -> Result<(), JobError> {
        if self.halted.is_cancelled() {
            return Err(JobError::Retry("stopped before the end".into()));
        }
        // A Redis restart must not throw away a finished rollout: the lease is asked again until
        // the queue answers (within a bound).
        let renewed = super::through_queue_outage(
            &self.worker.queue,
            &self.record().job.id,
            "confirming the lease before publishing",
            self.halted,
            || self.worker.queue.renew(self.delivery),
        )
        .await;
        match renewed {
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

/// Where a job's work goes.
enum Place {
    /// A new branch from the default branch, and a new pull request.
    NewBranch { base: String },
    /// A commit on the pull request's own branch.
    PullBranch { pull: Box<PullInfo> },
    /// The pull request's branch is protected: a new pull request into it.
    StackedOn { pull: Box<PullInfo> },
}

impl Place {
    /// Where `.errand.toml` is read: the default branch, or the pull request's base.
    fn config_branch(&self) -> &str {
        match self {
            Self::NewBranch { base } => base,
            Self::PullBranch { pull } | Self::StackedOn { pull } => &pull.base.branch,
        }
    }

    /// The branch the agent's work starts from.
    fn work_branch(&self) -> &str {
        match self {
            Self::NewBranch { base } => base,
            Self::PullBranch { pull } | Self::StackedOn { pull } => &pull.head.branch,
        }
    }

    fn pull(&self) -> Option<&PullInfo> {
        match self {
            Self::NewBranch { .. } => None,
            Self::PullBranch { pull } | Self::StackedOn { pull } => Some(pull),
        }
    }
}

/// Records how the delivery ended in the queue.
/// A Redis restart while it settles is waited out (within a bound, and not past `stop`): a job
/// that published its result but could not record it would run again.
pub(super) async fn settle(
    worker: &Inner,
    delivery: &Delivery,
    ended: Result<Ended, JobError>,
    stopped: Option<Stopped>,
    stop: &CancellationToken,
) {
    let queue = &worker.queue;
    let id = &delivery.record.job.id;
    // What the queue records, the job API shows: it passes the same redaction as comments.
    let redact = |text: &str| worker.publisher.renderer.redactor.redact(text);
    let result = match (ended, stopped) {
        (_, Some(Stopped::LeaseLost)) => Ok(()),
        (Ok(Ended::Wait { behind }), _) => {
            super::through_queue_outage(queue, id, "deferring the job", stop, || {
                queue.defer(delivery, THREAD_WAIT, &behind)
            })
            .await
        }
        (Ok(Ended::Done { state }), _) => {
            let state = state.redacted(redact);
            if delivery.attempt > queue.settings().max_deliveries {
                super::through_queue_outage(queue, id, "dead-lettering the job", stop, || {
                    queue.dead_letter(delivery, state.failure().unwrap_or("gave up"))
                })
                .await
            } else {
                super::through_queue_outage(queue, id, "recording the job's end", stop, || {
                    queue.finish(delivery, state.clone())
                })
                .await
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
            super::through_queue_outage(queue, id, "putting the job back for a retry", stop, || {
                queue.retry_later(delivery, delay, &reason)
            })
            .await
        }
    };
    if let Err(e) = result {
        // The lease runs out and another delivery settles the job.
        tracing::error!(job = %id, error = format!("{e:#}"), "could not settle the job in the queue");
    }
}
