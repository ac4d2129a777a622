//! Follow-ups on pull requests and the conversation commands, end to end: signed review and
//! comment webhooks into the real ingress, the real worker running the agent in Docker, and the
//! fake GitHub holding what a reviewer would see (commits on the branch, replies in threads).

mod support;

use std::time::Duration;

use errand::job::{JobRecord, JobStatus};
use serde_json::Value;
use support::docker;
use support::wait::wait_until;
use support::world::{REPO, World, errand_toml};

/// Fixes the calculator (once), and leaves a trace of every request so each run changes files:
/// the task file it was given, and the request's line appended to `requests.txt`.
const RECORDING_AGENT: &str = "sed -i 's/\\$1 - \\$2/$1 + $2/' calc.sh && cp \"$ERRAND_TASK_FILE\" last-task.md && printf '%s\\n' \"$ERRAND_TASK\" >> requests.txt && printf 'Did: %s\\n' \"$ERRAND_TASK\" > \"$ERRAND_SUMMARY_FILE\"";

/// The bot's login in token mode, the author of what errand posts.
const BOT: &str = "errand-bot";

async fn world() -> World {
    World::start(&errand_toml(RECORDING_AGENT, "2m")).await
}

async fn deliver(world: &World, event: &str, delivery: &str, payload: &Value) -> u16 {
    let body = serde_json::to_vec(payload).expect("JSON");
    world.deliver(event, delivery, &body, support::world::WEBHOOK_SECRET).await
}

/// Runs the spine once: issue #1 → errand's pull request; returns its number and branch.
async fn errands_pull_request(world: &World) -> (u64, String) {
    assert_eq!(world.comment(1, "octocat", "@agent fix this", "delivery-first").await, 202);
    assert_eq!(world.drain().await, 1);
    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "the first job opened one pull request");
    (pulls[0].number, pulls[0].head.clone())
}

fn by_status(jobs: &[JobRecord], status: JobStatus) -> usize {
    jobs.iter().filter(|j| j.state.status() == status).count()
}

#[tokio::test]
async fn a_review_comment_on_errands_pull_request_adds_a_commit_to_its_branch_and_replies_in_the_thread() {
    let world = world().await;
    let (pull, branch) = errands_pull_request(&world).await;
    let before = world.github.branch_log(REPO, &branch);

    let (_, comments) =
        world.github.add_review(REPO, pull, "octocat", "", &[("calc.sh", 1, "@agent rename add to sum")]);
    let payload = world.github.review_comment_webhook(REPO, pull, comments[0]);
    assert_eq!(deliver(&world, "pull_request_review_comment", "delivery-review", &payload).await, 202);
    assert_eq!(world.drain().await, 1);

    assert_eq!(world.github.pull_requests(REPO).len(), 1, "no new pull request");
    let after = world.github.branch_log(REPO, &branch);
    assert_eq!(after.len(), before.len() + 1, "one new commit on the same branch: {after:?}");
    assert_eq!(after[0], "Did: rename add to sum");
    let task = world.github.file_at(REPO, &branch, "last-task.md").expect("the agent's task file");
    assert!(task.contains("## Review comments to address"), "{task}");
    assert!(task.contains("On `calc.sh` line 1, @octocat wrote"), "{task}");
    assert!(task.contains("@@"), "the diff hunk reached the agent: {task}");

    let replies: Vec<_> =
        world.github.review_comments(REPO, pull).into_iter().filter(|c| c.in_reply_to == Some(comments[0])).collect();
    assert_eq!(replies.len(), 1, "one reply in the thread: {replies:#?}");
    assert_eq!(replies[0].author, BOT);
    assert!(replies[0].body.contains("✅ **Done**: pushed `"), "{}", replies[0].body);
    assert!(replies[0].body.contains(&format!("to `{branch}`")), "{}", replies[0].body);
    assert!(replies[0].body.contains("| ✅ | test | `sh test.sh` | 0 |"), "{}", replies[0].body);
    assert_eq!(world.github.review_comment_reactions(REPO, comments[0]), ["eyes"]);
    assert!(world.github.comments(REPO, pull).is_empty(), "nothing was posted in the conversation");

    let body = &world.github.pull_requests(REPO)[0].body;
    assert_eq!(body.matches("<!-- errand:testing -->").count(), 1, "the Testing section is replaced: {body}");
    let jobs = world.jobs().await;
    assert_eq!((jobs.len(), by_status(&jobs, JobStatus::Succeeded)), (2, 2));
}

#[tokio::test]
async fn a_comment_in_the_pull_requests_conversation_adds_a_commit_and_answers_there() {
    let world = world().await;
    let (pull, branch) = errands_pull_request(&world).await;

    assert_eq!(world.comment(pull, "octocat", "@agent the lint step fails, fix it", "delivery-conv").await, 202);
    assert_eq!(world.drain().await, 1);

    assert_eq!(world.github.pull_requests(REPO).len(), 1);
    assert_eq!(world.github.branch_log(REPO, &branch)[0], "Did: the lint step fails, fix it");
    let answers: Vec<_> = world.github.comments(REPO, pull).into_iter().filter(|c| c.author == BOT).collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(answers[0].body.contains("✅ **Done**: pushed `"), "{}", answers[0].body);
}

#[tokio::test]
async fn a_review_with_three_requests_is_one_job_that_answers_in_each_thread() {
    let world = world().await;
    let (pull, branch) = errands_pull_request(&world).await;
    let asks = [
        ("calc.sh", 1, "@agent rename add"),
        ("test.sh", 2, "@agent check 0 + 0"),
        ("test.sh", 3, "@agent quote $got"),
    ];
    let (review, comments) = world.github.add_review(REPO, pull, "octocat", "", &asks);

    // GitHub sends one event per comment and one for the review; all of it is one job.
    for (i, comment) in comments.iter().enumerate() {
        let payload = world.github.review_comment_webhook(REPO, pull, *comment);
        let status = deliver(&world, "pull_request_review_comment", &format!("delivery-c{i}"), &payload).await;
        assert_eq!(status, if i == 0 { 202 } else { 200 }, "comment {i}");
    }
    let payload = world.github.review_webhook(REPO, pull, review);
    assert_eq!(deliver(&world, "pull_request_review", "delivery-review", &payload).await, 200);
    assert_eq!(world.drain().await, 1, "one job");

    assert_eq!(world.github.branch_log(REPO, &branch).len(), 3, "the spine's commit, its base, and one more");
    let task = world.github.file_at(REPO, &branch, "last-task.md").expect("the task file");
    for (path, line, ask) in asks {
        assert!(task.contains(&format!("On `{path}` line {line}, @octocat wrote\n\n> {ask}")), "{task}");
    }
    let all = world.github.review_comments(REPO, pull);
    for comment in &comments {
        let replies: Vec<_> = all.iter().filter(|c| c.in_reply_to == Some(*comment) && c.author == BOT).collect();
        assert_eq!(replies.len(), 1, "one reply in the thread of {comment}: {all:#?}");
        assert_eq!(world.github.review_comment_reactions(REPO, *comment), ["eyes"]);
    }
    assert_eq!(world.github.pull_requests(REPO).len(), 1);
}

#[tokio::test]
async fn a_pull_request_from_a_fork_gets_a_clear_answer_and_nothing_is_pushed() {
    let world = world().await;
    let pull = world.github.add_fork_pull(
        REPO,
        "stranger/calculator",
        "patch-1",
        "main",
        "Faster add",
        "stranger",
        &[("calc.sh", "add() { echo 5; }\n")],
    );
    let branches = world.github.branches(REPO);

    assert_eq!(world.comment(pull, "octocat", "@agent tidy this up", "delivery-fork").await, 202);
    assert_eq!(world.drain().await, 1);

    assert_eq!(world.github.branches(REPO), branches, "nothing was pushed");
    assert!(world.github.pull_requests(REPO).iter().all(|p| p.number == pull), "no new pull request");
    let answer = world.github.comments(REPO, pull).into_iter().find(|c| c.author == BOT).expect("an answer");
    assert!(answer.body.contains("❌ **Failed**"), "{}", answer.body);
    assert!(answer.body.contains("comes from the fork `stranger/calculator`"), "{}", answer.body);
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Failed);
}

#[tokio::test]
async fn stop_cancels_a_running_job_within_seconds_and_removes_its_container() {
    let world = World::start(&errand_toml("sleep 300", "10m")).await;
    let docker = docker::docker().await;
    assert_eq!(world.comment(1, "octocat", "@agent take your time", "delivery-slow").await, 202);
    let job = world.jobs().await[0].job.id.clone();
    let worker = world.worker.clone();
    let running = tokio::spawn(async move { worker.run_next_job(Duration::from_secs(5)).await });
    wait_until("the agent's container has started", Duration::from_secs(60), async || {
        (!docker::containers_of_job(&docker, &job).await.is_empty()).then_some(())
    })
    .await;

    let asked = tokio::time::Instant::now();
    assert_eq!(world.comment(1, "octocat", "@agent stop", "delivery-stop").await, 202);
    tokio::time::timeout(Duration::from_secs(20), running).await.expect("the job stopped in time").unwrap().unwrap();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    assert!(docker::containers_of_job(&docker, &job).await.is_empty(), "the container is gone");
    world.drain().await;

    let record = world.jobs().await.into_iter().find(|j| j.job.id == job).expect("the job");
    assert_eq!(record.state.status(), JobStatus::Cancelled);
    let comments = world.github.comments(REPO, 1);
    let tracking = comments.iter().find(|c| c.body.contains(job.as_str())).expect("the tracking comment");
    assert!(tracking.body.contains("🛑 **Cancelled** by @octocat"), "{}", tracking.body);
    let reply = comments.iter().find(|c| c.body.starts_with("@octocat stopping")).expect("an answer to stop");
    assert!(reply.body.contains(job.as_str()), "{}", reply.body);
    assert!(world.github.pull_requests(REPO).is_empty());
}

#[tokio::test]
async fn retry_runs_the_last_job_again_and_status_reports_it() {
    // The first run fails: the repository's agent is broken. Once it is fixed on the default
    // branch, `retry` runs the same request again.
    let world = World::start(&errand_toml("echo 'agent: no model configured' >&2; exit 3", "2m")).await;
    assert_eq!(world.comment(1, "octocat", "@agent fix this", "delivery-1").await, 202);
    world.drain().await;
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Failed);

    assert_eq!(world.comment(1, "octocat", "@agent status", "delivery-status").await, 202);
    world.drain().await;
    let status = world.github.comments(REPO, 1).into_iter().find(|c| c.body.starts_with("@octocat no job is running"));
    let status = status.expect("a status answer");
    assert!(status.body.contains("failed: the agent exited with code 3"), "{}", status.body);

    let fixed = errand_toml(RECORDING_AGENT, "2m");
    world.github.add_branch(REPO, "main", "main", &[(".errand.toml", &fixed)], "Configure the agent");
    assert_eq!(world.comment(1, "octocat", "@agent retry", "delivery-retry").await, 202);
    assert_eq!(world.drain().await, 1);

    let jobs = world.jobs().await;
    let retried = jobs.iter().find(|j| j.state.status() == JobStatus::Succeeded).expect("the retry succeeded");
    assert_eq!(retried.job.task.instruction, "fix this", "the same request");
    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1);
    assert_eq!(world.github.file_at(REPO, &pulls[0].head, "requests.txt").as_deref(), Some("fix this\n"));
}

#[tokio::test]
async fn status_answers_at_once_with_the_queue_position_and_retry_waits_for_the_running_job() {
    let world = world().await;
    assert_eq!(world.comment(1, "octocat", "@agent fix this", "delivery-1").await, 202);
    // No worker has run: the acknowledger answers status by itself.
    assert_eq!(world.comment(1, "visitor", "@agent status", "delivery-status").await, 202);
    assert_eq!(world.comment(1, "octocat", "@agent retry", "delivery-retry").await, 202);
    let answers = wait_until("status and retry are answered without a worker", Duration::from_secs(20), async || {
        let answers: Vec<_> =
            world.github.comments(REPO, 1).into_iter().filter(|c| c.body.starts_with('@') && c.author == BOT).collect();
        (answers.len() == 2).then_some(answers)
    })
    .await;
    let status = answers.iter().find(|c| c.body.starts_with("@visitor")).expect("the status answer");
    assert!(status.body.contains("asked by @octocat: queued, position 1"), "{}", status.body);
    let retry = answers.iter().find(|c| c.body.starts_with("@octocat")).expect("the retry answer");
    assert!(retry.body.contains("has not ended yet (queued"), "{}", retry.body);
    world.drain().await;
    assert_eq!(world.github.pull_requests(REPO).len(), 1, "retry added no second run");
}

#[tokio::test]
async fn an_edit_that_adds_a_command_runs_it_once_and_other_edits_run_nothing() {
    let world = world().await;
    let comment = world.github.add_issue_comment(REPO, 1, "octocat", "Thanks for the report.");
    let w = &world;
    let edit = |new: &str, delivery: &str| {
        let previous = w.github.edit_issue_comment(REPO, comment, new);
        let payload = w.github.issue_comment_edited_webhook(REPO, 1, comment, &previous);
        let delivery = delivery.to_owned();
        async move { deliver(w, "issue_comment", &delivery, &payload).await }
    };
    assert_eq!(edit("Thanks for the report. @agent fix this", "delivery-edit-1").await, 202);
    assert_eq!(edit("Thanks for the report! @agent fix this", "delivery-edit-2").await, 200);
    assert_eq!(edit("Thanks for the report! @agent fix this\n\n```\n@agent stop\n```", "delivery-edit-3").await, 200);
    world.drain().await;
    assert_eq!(world.jobs().await.len(), 1, "one job for three edits");
    assert_eq!(world.github.pull_requests(REPO).len(), 1);
}

#[tokio::test]
async fn two_requests_on_one_pull_request_run_one_at_a_time_in_order() {
    // Each run takes a moment, so two workers would overlap if nothing kept them apart.
    let slow = format!("sleep 2; {RECORDING_AGENT}");
    let world = World::start(&errand_toml(&slow, "2m")).await;
    let (pull, branch) = errands_pull_request(&world).await;

    assert_eq!(world.comment(pull, "octocat", "@agent first change", "delivery-a").await, 202);
    assert_eq!(world.comment(pull, "octocat", "@agent second change", "delivery-b").await, 202);
    // Two workers claim at once: the second job must wait for the first.
    let (a, b) = (world.worker.clone(), world.worker.clone());
    let (ran_a, ran_b) = tokio::join!(a.run_next_job(Duration::from_secs(5)), b.run_next_job(Duration::from_secs(5)));
    assert!(ran_a.unwrap().is_some() && ran_b.unwrap().is_some());
    world.drain().await;

    let log = world.github.branch_log(REPO, &branch);
    assert_eq!(log[..2], ["Did: second change", "Did: first change"], "in order, on one branch: {log:?}");
    assert_eq!(
        world.github.file_at(REPO, &branch, "requests.txt").as_deref(),
        Some("fix this\nfirst change\nsecond change\n")
    );
    let second = world.github.comments(REPO, pull).into_iter().find(|c| c.body.contains("Did: second change"));
    let second = second.expect("the second job's answer");
    assert!(second.history.iter().any(|h| h.contains("⏳ **Waiting** for job")), "{:#?}", second.history);
    let jobs = world.jobs().await;
    assert_eq!(by_status(&jobs, JobStatus::Succeeded), 3);
    assert!(jobs.iter().all(|j| j.deliveries == 1), "waiting is not a delivery: {jobs:#?}");
}

#[tokio::test]
async fn a_job_that_keeps_finding_the_earlier_job_open_says_it_waits_once() {
    let world = world().await;
    assert_eq!(world.comment(1, "octocat", "@agent first change", "delivery-a").await, 202);
    assert_eq!(world.comment(1, "octocat", "@agent second change", "delivery-b").await, 202);
    // Another worker holds the first job for as long as the second keeps coming back.
    let held = world.queue.claim("another-worker", Duration::ZERO).await.unwrap().expect("the first job");
    for _ in 0..3 {
        let ran = world.worker.run_next_job(Duration::from_secs(5)).await.expect("the worker runs");
        assert!(ran.is_some_and(|id| id != held.record.job.id), "the second job came back");
    }
    world.queue.retry_later(&held, Duration::ZERO, "the other worker stopped").await.unwrap();
    assert_eq!(world.drain().await, 2, "the first job, then the second");

    let jobs = world.jobs().await;
    assert_eq!(by_status(&jobs, JobStatus::Succeeded), 2);
    let second = jobs.iter().find(|j| j.job.task.instruction == "second change").expect("the second job");
    assert_eq!(second.deliveries, 1, "waiting is not a delivery");
    let tracking = world.github.comments(REPO, 1).into_iter().find(|c| Some(c.id) == second.tracking_comment_id);
    let tracking = tracking.expect("the second job's tracking comment");
    let waiting = tracking.history.iter().filter(|h| h.contains("⏳ **Waiting** for job")).count();
    assert_eq!(waiting, 1, "{:#?}", tracking.history);
}

#[tokio::test]
async fn on_a_colleagues_pull_request_errand_pushes_to_its_branch_unless_the_branch_is_protected() {
    let world = world().await;
    world.github.add_branch(REPO, "feature", "main", &[("notes.md", "draft\n")], "Start a feature");
    let open = world.github.add_pull(REPO, "feature", "main", "A feature", "Mine.", "octocat");
    world.github.add_branch(REPO, "release", "main", &[("notes.md", "frozen\n")], "Cut a release");
    world.github.protect_branch(REPO, "release");
    let protected = world.github.add_pull(REPO, "release", "main", "Release", "Frozen.", "octocat");

    assert_eq!(world.comment(open, "octocat", "@agent tidy the notes", "delivery-open").await, 202);
    assert_eq!(world.comment(protected, "octocat", "@agent tidy the notes", "delivery-protected").await, 202);
    assert_eq!(world.drain().await, 2);

    assert_eq!(world.github.branch_log(REPO, "feature")[0], "Did: tidy the notes", "pushed to the colleague's branch");
    assert_eq!(world.github.branch_log(REPO, "release")[0], "Cut a release", "a protected branch is left alone");
    let pulls = world.github.pull_requests(REPO);
    let stacked = pulls.iter().find(|p| p.base == "release").expect("a pull request into the protected branch");
    assert!(stacked.head.starts_with(&format!("errand/pr-{protected}-")), "{}", stacked.head);
    assert!(
        stacked.body.contains(&format!("Follow-up to #{protected}, whose branch is protected.")),
        "{}",
        stacked.body
    );
    let answer = world.github.comments(REPO, protected).into_iter().find(|c| c.author == BOT).expect("an answer");
    assert!(answer.body.contains(&format!("/pull/{}", stacked.number)), "{}", answer.body);
}

#[tokio::test]
async fn labelling_an_issue_with_the_configured_label_starts_a_task_on_it() {
    let world = world().await;
    let labeled = |label: &str| {
        serde_json::json!({
            "action": "labeled",
            "label": {"name": label},
            "issue": {"number": 1, "title": "add() returns the wrong sum", "body": "`add 2 3` prints -1.",
                      "html_url": "https://github.com/acme/calculator/issues/1"},
            "sender": {"login": "octocat", "type": "User"},
            "repository": {"full_name": REPO},
            "installation": {"id": 42}
        })
    };
    assert_eq!(deliver(&world, "issues", "delivery-bug", &labeled("bug")).await, 200, "another label starts nothing");
    assert_eq!(deliver(&world, "issues", "delivery-label", &labeled(support::world::TRIGGER_LABEL)).await, 202);
    assert_eq!(world.drain().await, 1);

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].body.contains("Closes #1"), "{}", pulls[0].body);
    assert_eq!(world.github.issue_reactions(REPO, 1), ["eyes"], "👀 on the issue itself");
    let task = world.github.file_at(REPO, &pulls[0].head, "last-task.md").expect("the task file");
    assert!(task.contains("Resolve the issue below."), "{task}");
}

#[tokio::test]
async fn a_pull_request_cannot_change_how_errand_runs_on_it() {
    let world = world().await;
    // The pull request's own `.errand.toml` names another agent; errand reads the base branch's.
    let hostile = errand_toml("echo owned > owned.txt", "2m");
    world.github.add_branch(REPO, "hostile", "main", &[(".errand.toml", &hostile)], "Swap the agent");
    let pull = world.github.add_pull(REPO, "hostile", "main", "Harmless", "Nothing to see.", "octocat");

    assert_eq!(world.comment(pull, "octocat", "@agent tidy up", "delivery-hostile").await, 202);
    assert_eq!(world.drain().await, 1);

    assert_eq!(world.github.branch_log(REPO, "hostile")[0], "Did: tidy up", "the base branch's agent ran");
    assert_eq!(world.github.file_at(REPO, "hostile", "owned.txt"), None, "the pull request's agent never ran");
}
