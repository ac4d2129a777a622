//! One delivery of one job, as named steps in the order they happen:
//!
//! 1. **admit**: is there work (a reply, a cancelled or waiting job ends here), and may the
//!    requester ask for it; the job is acknowledged.
//! 2. **place**: where the work goes: a new branch, a pull request's own branch, or a new pull
//!    request into a protected one.
//! 3. **configure**: `.errand.toml` from the base branch.
//! 4. **attempt**: the rollouts, side by side.
//! 5. **choose**: the best attempt by its evidence; an agent that failed, a change that holds a
//!    secret, or no change at all ends here.
//! 6. **deliver**: publishing pushes, opens or updates the pull request, and answers.
//!
//! Each step ends the run early with an [`Ended`] or a [`Failure`]; `settle` records the end in
//! the queue.

use tokio_util::sync::CancellationToken;

use super::Inner;
use super::failure::Failure;
use super::review::{self, Review};
use crate::config::{AgentConfig, REPO_CONFIG_FILE, RepoConfig};
use crate::forge::github::Reactable;
use crate::forge::{ForgeError, RepoClient, RepoInfo};
use crate::job::{FollowUp, Job, JobId, JobKind, JobRecord, JobState, ReplyTarget};
use crate::publish::delivery::{Change, Deliverer, Fence, Halted, Place, branch_prefix};
use crate::publish::render::Reason;
use crate::publish::{Conversation, Progress};
use crate::queue::Delivery;
use crate::rollout::ranking::{self, Score};
use crate::rollout::{AgentEnd, Outcome, Plan};

/// Permissions that may ask errand for work.
const WRITERS: [&str; 3] = ["admin", "maintain", "write"];

/// How a delivery ended, when it ended on its own.
pub(super) enum Ended {
    /// Terminal (not dead: `settle` decides that), and the requester has been told.
    Done { state: JobState },
    /// An earlier job of the same thread, `behind`, has not ended: back to the queue, not counted.
    Wait { behind: JobId },
}

impl Ended {
    fn succeeded() -> Self {
        Self::Done { state: JobState::Succeeded }
    }

    /// Failed; the job keeps the first line of `reason` (what people read in full in the thread).
    fn failed(reason: &str) -> Self {
        Self::Done { state: JobState::Failed { reason: reason.lines().next().unwrap_or_default().to_owned() } }
    }
}

/// What the steps after `configure` work with.
#[derive(Clone, Copy)]
struct Work<'a> {
    gh: &'a RepoClient,
    conversation: &'a Conversation<'a>,
    repo: &'a RepoInfo,
    place: &'a Place,
    config: &'a RepoConfig,
}

/// What admission decided.
enum Admission {
    /// Work to do, on this repository.
    Go(Box<RepoClient>),
    /// Nothing more to do.
    End(Ended),
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

    fn job(&self) -> &Job {
        &self.record().job
    }

    /// Runs the job's steps in its conversation; an abort is told there.
    pub async fn run(&self) -> Result<Ended, Failure> {
        let conversation = self.worker.publisher.conversation(self.job()).await?;
        match self.steps(&conversation).await {
            Err(Failure::Abort(reason)) => self.tell(&conversation, &reason).await,
            other => other,
        }
    }

    async fn steps(&self, conversation: &Conversation<'_>) -> Result<Ended, Failure> {
        let gh = match self.admit(conversation).await? {
            Admission::Go(gh) => *gh,
            Admission::End(ended) => return Ok(ended),
        };
        let repo = self.repository(&gh).await?;
        let place = self.place(&gh, &repo).await?;
        let config = self.configure(&gh, &place).await?;
        let work = Work { gh: &gh, conversation, repo: &repo, place: &place, config: &config };
        if let JobKind::UseAttempt { attempt } = self.job().kind {
            return self.use_attempt(&work, attempt).await;
        }
        let review = self.review(&gh).await?;
        let attempts = self.attempt(&work, &review).await?;
        self.choose_and_deliver(&work, attempts, &review).await
    }

    /// Ends a reply, a job given up on, cancelled or waiting behind an earlier one; acknowledges
    /// the others and checks that the requester may ask.
    async fn admit(&self, conversation: &Conversation<'_>) -> Result<Admission, Failure> {
        let (record, job) = (self.record(), self.job());
        let max = self.worker.queue.settings().max_deliveries;
        if self.delivery.attempt > max {
            let last_error = match &self.delivery.claimed_from {
                JobState::Queued { retry_reason } => retry_reason.clone(),
                _ => None,
            };
            return Err(Failure::Abort(Reason::GaveUp { tries: max, last_error }));
        }
        if let JobKind::Reply { reply, mention } = &job.kind {
            conversation.reply(record, reply, mention).await?;
            return Ok(Admission::End(Ended::succeeded()));
        }
        if let Some(by) = &record.cancel_requested_by {
            return self.end_cancelled(conversation, by).await.map(Admission::End);
        }
        if let Some(ended) = self.wait_for_earlier_job(conversation).await? {
            return Ok(Admission::End(ended));
        }
        conversation.acknowledge(record).await?;
        // A job reclaimed from a dead worker may have left its container behind.
        if let Err(e) = self.worker.rollout.sandbox().remove_leftovers(Some(&job.id)).await {
            tracing::warn!(job = %job.id, error = format!("{e:#}"), "could not remove leftover containers");
        }
        let gh = match self.worker.github.for_repo(&job.repo, job.installation_id).await {
            Ok(gh) => gh,
            Err(ForgeError::NotInstalled { repo }) => return Err(Failure::Abort(Reason::NotInstalled { repo })),
            Err(e) => return Err(e.into()),
        };
        let permission = conversation.permission(&gh, &job.requested_by).await?;
        if !WRITERS.contains(&permission.as_str()) {
            tracing::info!(job = %job.id, requester = job.requested_by, permission, "requester may not ask");
            let refused = Progress::Refused { user: job.requested_by.clone(), permission: permission.clone() };
            self.show(conversation, &refused).await?;
            let reason = self.worker.publisher.renderer.refusal_note(&job.requested_by, &permission);
            return Ok(Admission::End(Ended::Done { state: JobState::Failed { reason } }));
        }
        Ok(Admission::Go(Box::new(gh)))
    }

    /// The repository's clone URL and default branch.
    async fn repository(&self, gh: &RepoClient) -> Result<RepoInfo, Failure> {
        match gh.repository().await {
            Ok(repo) => Ok(repo),
            Err(ForgeError::Status { status, message }) => {
                let repo = self.job().repo.clone();
                Err(Failure::Abort(Reason::UnreadableRepository { repo, status, message }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Where the work goes: a new branch from the default branch, or the pull request it adds to.
    async fn place(&self, gh: &RepoClient, repo: &RepoInfo) -> Result<Place, Failure> {
        let Some(follow_up) = self.follow_up().await else {
            return Ok(Place::NewBranch { base: repo.default_branch.clone() });
        };
        let job = self.job();
        let number = follow_up.pull;
        let pull = match gh.pull(number.get()).await {
            Ok(pull) => pull,
            Err(ForgeError::Status { status: 404, .. }) => {
                return Err(Failure::Abort(Reason::NoSuchPullRequest { repo: job.repo.clone(), number }));
            }
            Err(e) => return Err(e.into()),
        };
        if pull.state != "open" {
            return Err(Failure::Abort(Reason::PullRequestClosed { number, merged: pull.merged }));
        }
        let head_repo = pull.head.repo.as_ref().map(|r| r.full_name.clone());
        if head_repo.as_deref().is_none_or(|name| !name.eq_ignore_ascii_case(&job.repo.to_string())) {
            return Err(Failure::Abort(Reason::PullRequestFromFork {
                repo: job.repo.clone(),
                number,
                fork: head_repo,
            }));
        }
        if gh.branch_protected(&pull.head.branch).await? {
            tracing::info!(job = %job.id, branch = pull.head.branch, "the pull request's branch is protected: opening a pull request against it");
            return Ok(Place::StackedOn { pull: Box::new(pull) });
        }
        Ok(Place::PullBranch { pull: Box::new(pull) })
    }

    /// The pull request the job adds to: the one it was asked on, or, for a later request in a
    /// Slack thread, the one the thread's earlier job opened or added to.
    async fn follow_up(&self) -> Option<FollowUp> {
        let job = self.job();
        if job.follow_up.is_some() {
            return job.follow_up;
        }
        let earlier = job.continues.as_ref()?;
        let record = self.worker.queue.get(earlier).await.ok().flatten()?;
        let pull = record.pull_request.map(|pull| FollowUp { pull: crate::request::ids::IssueNumber(pull.number) });
        pull.or(record.job.follow_up)
    }

    /// `.errand.toml` from the base branch (a pull request cannot change how errand runs on it),
    /// or what errand detects without one.
    async fn configure(&self, gh: &RepoClient, place: &Place) -> Result<RepoConfig, Failure> {
        let branch = place.config_branch();
        match gh.file(REPO_CONFIG_FILE, branch).await? {
            Some(text) => RepoConfig::parse(&text)
                .map_err(|error| Failure::Abort(Reason::InvalidConfig { branch: branch.to_owned(), error })),
            None => Ok(RepoConfig::detected(&gh.root_names(branch).await?)),
        }
    }

    /// A review's comments that ask, each reacted to (the asking one was, on acknowledgement).
    async fn review(&self, gh: &RepoClient) -> Result<Review, Failure> {
        let job = self.job();
        let ReplyTarget::GithubReview { pull, review_id, comment_id, .. } = &job.reply else {
            return Ok(Review::default());
        };
        let mention = &self.worker.publisher.renderer.mention;
        let review = review::gather(gh, *pull, *review_id, *comment_id, mention).await?;
        for note in review.notes.iter().filter(|n| Some(n.comment.id) != job.reply.asking_comment().map(|c| c.get())) {
            gh.react(Reactable::ReviewComment(note.comment.id), "eyes").await?;
        }
        Ok(review)
    }

    /// Runs the attempts side by side, each in its own sandboxes and working tree.
    async fn attempt(&self, work: &Work<'_>, review: &Review) -> Result<Vec<Outcome>, Failure> {
        let Work { gh, conversation, repo, place, config } = *work;
        let (job, w) = (self.job(), self.worker);
        let mut context = review.task_context(place.pull());
        context.push_str(&conversation.context().await?);
        let (attempts, _) = config.attempts(job.attempts, w.settings.max_attempts);
        self.show(conversation, &Progress::Running { attempts }).await?;
        let token = gh.git_token().await?;
        let plans: Vec<Plan> = (1..=attempts)
            .map(|k| Plan {
                job,
                config,
                clone_url: &repo.clone_url,
                base_branch: place.work_branch(),
                context: &context,
                attempt: (attempts > 1).then_some(k),
                git_token: token.as_ref(),
            })
            .collect();
        let mut outcomes = Vec::with_capacity(plans.len());
        for ran in futures::future::join_all(plans.iter().map(|plan| w.rollout.run(plan, self.cancel))).await {
            outcomes.push(ran?);
        }
        if self.cancel.is_cancelled() {
            // Lease lost, shutting down or cancelled: the caller decides; nothing is published.
            return Err(Failure::Stopped);
        }
        Ok(outcomes)
    }

    /// Ranks the attempts and delivers the best, unless its agent failed, its change holds a
    /// secret, or it changed nothing (then its summary is the answer).
    async fn choose_and_deliver(
        &self,
        work: &Work<'_>,
        outcomes: Vec<Outcome>,
        review: &Review,
    ) -> Result<Ended, Failure> {
        let Work { gh, conversation, repo, place, config } = *work;
        let (job, renderer) = (self.job(), &self.worker.publisher.renderer);
        let scores: Vec<Score> = outcomes.iter().map(Score::of).collect();
        let best = ranking::rank(&scores)[0];
        let outcome = &outcomes[best];
        tracing::info!(job = %job.id, attempts = outcomes.len(), best = best + 1, mirror = outcome.mirror.describe(), agent = ?outcome.agent_end, checks = ?outcome.checks.iter().map(|c| (c.name.as_str(), c.report.exit_code)).collect::<Vec<_>>(), "rollout finished");
        if outcome.agent_end != AgentEnd::Finished {
            let reason = renderer.agent_failure(outcome, self.worker.rollout.attempt_timeout(config));
            self.show(conversation, &Progress::Failed { reason: reason.clone(), hint: renderer.retry_hint() }).await?;
            return Ok(Ended::failed(&reason));
        }
        if !outcome.files_with_secrets.is_empty() {
            return Err(Failure::Abort(Reason::SecretInChange { files: outcome.files_with_secrets.clone() }));
        }
        if outcome.commit.is_none() {
            self.show(conversation, &Progress::Answered { answer: renderer.answer(outcome) }).await?;
            return Ok(Ended::succeeded());
        }
        let (_, capped) = config.attempts(job.attempts, self.worker.settings.max_attempts);
        let attempts: Vec<(Outcome, Score)> = outcomes.into_iter().zip(scores).collect();
        let other_threads = review.other_threads(&job.reply);
        let change = Change {
            record: self.record(),
            clone_url: &repo.clone_url,
            place,
            branch_prefix: branch_prefix(config.branch_prefix(), &renderer.redactor),
            attempts: &attempts,
            best,
            capped: capped.then_some((job.attempts, attempts.len() as u32)),
            other_threads: &other_threads,
        };
        let token = gh.git_token().await?;
        self.deliverer(gh, conversation, token.as_ref()).deliver(&change).await?;
        Ok(Ended::succeeded())
    }

    /// `use attempt N` on a pull request errand made from several attempts: the checks run on
    /// that attempt's branch (no agent), then publishing puts its commit in the pull request.
    async fn use_attempt(&self, work: &Work<'_>, attempt: u32) -> Result<Ended, Failure> {
        let Work { gh, conversation, repo, place, config } = *work;
        let Place::PullBranch { pull } = place else {
            return Err(Failure::Abort(Reason::AttemptsNeedTheirPullRequest));
        };
        let head = &pull.head.branch;
        let chosen = format!("{head}-a{attempt}");
        if !head.starts_with(config.branch_prefix()) || !gh.branch_exists(&chosen).await? {
            return Err(Failure::Abort(Reason::NoSuchAttempt { attempt, head: head.clone() }));
        }
        self.show(conversation, &Progress::CheckingAttempt { attempt }).await?;
        // The attempt's change is already made: the checks run on it, and no agent runs.
        let checks_only = RepoConfig {
            agent: AgentConfig { command: Some("true".into()), ..AgentConfig::default() },
            baseline_checks: Some(false),
            ..config.clone()
        };
        let token = gh.git_token().await?;
        let plan = Plan {
            job: self.job(),
            config: &checks_only,
            clone_url: &repo.clone_url,
            base_branch: &chosen,
            context: "",
            attempt: None,
            git_token: token.as_ref(),
        };
        let checked = self.worker.rollout.run(&plan, self.cancel).await?;
        if self.cancel.is_cancelled() {
            return Err(Failure::Stopped);
        }
        let deliverer = self.deliverer(gh, conversation, token.as_ref());
        deliverer.use_attempt(self.record(), &repo.clone_url, pull, attempt, &checked).await?;
        Ok(Ended::succeeded())
    }

    fn deliverer<'d>(
        &'d self,
        gh: &'d RepoClient,
        conversation: &'d Conversation<'d>,
        token: Option<&'d secrecy::SecretString>,
    ) -> Deliverer<'d, Self> {
        Deliverer { gh, git: self.worker.rollout.mirrors().git(), conversation, fence: self, token }
    }

    /// Tasks of one issue or pull request run one at a time, in order: while an earlier one has
    /// not ended, this one goes back to the queue (its tracking comment says why, once).
    async fn wait_for_earlier_job(&self, conversation: &Conversation<'_>) -> Result<Option<Ended>, Failure> {
        let job = self.job();
        let Some(thread) = job.thread() else { return Ok(None) };
        let open = self.worker.queue.open_in_thread(&thread).await.map_err(Failure::Retry)?;
        // Ids sort by creation, so this is the oldest job of the thread that is still open.
        let Some(earlier) = open.iter().map(|r| &r.job.id).filter(|id| **id < job.id).min() else {
            return Ok(None);
        };
        // Said once per earlier job: the delivery before this one may have waited for it already.
        let waited_already = matches!(&self.delivery.claimed_from, JobState::Waiting { behind } if behind == earlier);
        if !waited_already {
            self.show(conversation, &Progress::Waiting { behind: earlier.clone() }).await?;
        }
        Ok(Some(Ended::Wait { behind: earlier.clone() }))
    }

    /// Ends the job as cancelled, saying who stopped it.
    pub async fn end_cancelled(&self, conversation: &Conversation<'_>, by: &str) -> Result<Ended, Failure> {
        self.show(conversation, &Progress::Cancelled { by: by.to_owned() }).await?;
        Ok(Ended::Done { state: JobState::Cancelled { by: by.to_owned() } })
    }

    /// Tells the requester why the job stops here, and ends it failed.
    async fn tell(&self, conversation: &Conversation<'_>, reason: &Reason) -> Result<Ended, Failure> {
        let renderer = &self.worker.publisher.renderer;
        let reason = renderer.reason(reason);
        self.show(conversation, &Progress::Failed { reason: reason.clone(), hint: renderer.retry_hint() }).await?;
        Ok(Ended::failed(&reason))
    }

    /// Edits the tracking comment, if this delivery still holds the job.
    async fn show(&self, conversation: &Conversation<'_>, progress: &Progress) -> Result<(), Failure> {
        self.fence().await?;
        Ok(conversation.show(self.record(), progress).await?)
    }

    /// Makes sure this delivery still holds the job just before an effect people see (a push, a
    /// pull request, a tracking comment edit). A worker that was frozen or cut off past its lease
    /// wakes up to a job another worker has reclaimed, possibly finished, and maybe with its own
    /// containers removed under it (which looks like a failed step): it must not overwrite that
    /// worker's branch, pull request or comment. The lease keeper notices only every third of the
    /// lease, so the lease is renewed here, which also tells whether it is still ours. Whatever
    /// this returns, `settle` decides; a lost lease is never settled by this delivery.
    async fn fence(&self) -> Result<(), Failure> {
        if self.halted.is_cancelled() {
            return Err(Failure::Stopped);
        }
        // A Redis restart must not throw away a finished rollout: the lease is asked again until
        // the queue answers (within a bound).
        let renewed = super::through_queue_outage(
            &self.worker.queue,
            &self.job().id,
            "confirming the lease before publishing",
            self.halted,
            || self.worker.queue.renew(self.delivery),
        )
        .await;
        match renewed {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(job = %self.job().id, "lease lost: another worker has this job; publishing nothing");
                self.lease_lost.cancel();
                Err(Failure::Stopped)
            }
            // Unconfirmed is not ours: the lease runs out and another delivery publishes.
            Err(e) => Err(Failure::Retry(e.context("could not confirm the lease before publishing"))),
        }
    }
}

impl Fence for JobRun<'_> {
    async fn confirm(&self) -> Result<(), Halted> {
        self.fence().await.map_err(|_| Halted)
    }
}
