//! Slack end to end: signed Events API callbacks and slash commands into the real ingress, the
//! real worker running the agent in Docker, the fake GitHub (as an App: the installation is
//! looked up for each Slack job) and the fake Slack holding what people in the channel see.

mod support;

use std::time::Duration;

use errand::job::{JobRecord, JobStatus, ReplyTarget, Source};
use support::fake_slack::{BOT_USER_ID, FakeSlackMessage, TEAM_ID};
use support::wait::wait_until;
use support::world::{
    REPO, SLACK_ALLOWED_USER, SLACK_CHANNEL, SLACK_DEFAULT_CHANNEL, SLACK_OTHER_CHANNEL, World, errand_toml,
    slack_app_mention,
};

/// Answers a question with a summary and no change; otherwise fixes the calculator, and for a
/// request about the empty case proves it was given the thread (the first request's words).
const SLACK_AGENT: &str = r#"case "$ERRAND_TASK" in
  *leak*) printf 'Tokens\n\nxoxb-0000000001-errand-test-token and ghp_0123456789abcdefghijklmnopqrstuvwxyzAB\n' > "$ERRAND_SUMMARY_FILE" ;;
  *why*) printf 'Because add() subtracts its second argument instead of adding it.\n' > "$ERRAND_SUMMARY_FILE" ;;
  *empty*) grep -q 'fix the add function' "$ERRAND_TASK_FILE" && printf 'add0() { echo 0; }\n' >> calc.sh && printf 'Handle the empty case\n\nadd0 answers 0.\n' > "$ERRAND_SUMMARY_FILE" ;;
  *) sed -i 's/\$1 - \$2/$1 + $2/' calc.sh && printf 'Make add() add\n\nIt subtracted.\n' > "$ERRAND_SUMMARY_FILE" ;;
esac"#;

/// A token shape errand redacts wherever it appears.
const LEAKED_GITHUB_TOKEN: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";

/// A person who is not on the allowlist.
const STRANGER: &str = "U0MALLORY";

/// How long errand's reply in a thread may take to appear.
const REPLY_BOUND: Duration = Duration::from_secs(20);

async fn world() -> World {
    World::start_with_slack(&errand_toml(SLACK_AGENT, "2m")).await
}

fn mention(text: &str) -> String {
    format!("<@{BOT_USER_ID}> {text}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// errand's replies in a thread (the bot's messages after the first).
fn errands_replies(world: &World, channel: &str, thread_ts: &str) -> Vec<FakeSlackMessage> {
    world.fake_slack().replies(channel, thread_ts).into_iter().filter(|m| m.bot).collect()
}

fn slack_jobs(jobs: &[JobRecord]) -> Vec<&JobRecord> {
    jobs.iter().filter(|j| j.job.source == Source::Slack).collect()
}

#[tokio::test]
async fn a_mention_gets_a_threaded_acknowledgement_then_the_pull_request_with_its_checks_and_a_retry_makes_no_second_job()
 {
    let world = world().await;
    let text = mention(&format!("fix the add function in {REPO}"));
    let (ts, body, status) = world.slack_mention(SLACK_CHANNEL, SLACK_ALLOWED_USER, &text, None).await;
    assert_eq!(status, 200);

    // At once: 👀 on the message and "On it" in its thread, before any worker ran.
    let ack = wait_until("the acknowledgement is in the thread", REPLY_BOUND, async || {
        errands_replies(&world, SLACK_CHANNEL, &ts).into_iter().next()
    })
    .await;
    assert!(ack.text.contains("On it"), "{}", ack.text);
    assert!(ack.text.contains(REPO), "{}", ack.text);
    let jobs = world.jobs().await;
    let slack = slack_jobs(&jobs);
    assert_eq!(slack.len(), 1, "one job: {jobs:#?}");
    let job = slack[0].clone();
    assert!(ack.text.contains(job.job.id.as_str()), "the reply names the job: {}", ack.text);
    assert!(world.fake_slack().reactions(SLACK_CHANNEL, &ts).contains(&"eyes".to_owned()));
    assert!(
        world
            .fake_slack()
            .messages(SLACK_CHANNEL)
            .iter()
            .filter(|m| m.bot)
            .all(|m| m.thread_ts.as_deref() == Some(&ts)),
        "nothing is posted in the channel itself"
    );

    // Slack retries the same event: no second job.
    assert_eq!(world.post_slack("/slack/events", &body, Some(1), now()).await, 200);
    assert_eq!(slack_jobs(&world.jobs().await).len(), 1, "the retry made no second job");

    assert_eq!(world.drain().await, 1);
    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "one pull request");
    let pull = &pulls[0];
    assert!(pull.head.starts_with("errand/slack-"), "{}", pull.head);
    assert!(pull.body.contains("https://app.slack.com/client/"), "the PR links the Slack thread: {}", pull.body);
    assert!(pull.body.contains(SLACK_CHANNEL), "{}", pull.body);

    let replies = errands_replies(&world, SLACK_CHANNEL, &ts);
    assert_eq!(replies.len(), 1, "one reply, edited in place: {replies:#?}");
    let done = &replies[0];
    assert!(done.edits >= 2, "queued → running → done edits the same reply: {done:?}");
    assert!(done.text.contains(&pull.html_url), "the final reply links the PR: {}", done.text);
    assert!(done.text.contains("✅ *test*"), "the checks with ✅/❌: {}", done.text);
    assert!(done.text.contains("Make add() add"), "the summary: {}", done.text);
    let reactions = world.fake_slack().reactions(SLACK_CHANNEL, &ts);
    assert!(reactions.contains(&"white_check_mark".to_owned()), "{reactions:?}");

    let record = world.queue.get(&job.job.id).await.unwrap().unwrap();
    assert_eq!(record.state.status(), JobStatus::Succeeded);
    assert!(matches!(record.job.reply, ReplyTarget::Slack { .. }));
}

#[tokio::test]
async fn a_question_gets_an_answer_in_the_thread_and_no_pull_request() {
    let world = world().await;
    let text = mention("why does the add test fail?");
    let (ts, _, status) = world.slack_mention(SLACK_DEFAULT_CHANNEL, SLACK_ALLOWED_USER, &text, None).await;
    assert_eq!(status, 200);
    assert_eq!(world.drain().await, 1);

    assert!(world.github.pull_requests(REPO).is_empty(), "no pull request for a question");
    let replies = errands_replies(&world, SLACK_DEFAULT_CHANNEL, &ts);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(replies[0].text.contains("Because add() subtracts"), "{}", replies[0].text);
    assert!(world.fake_slack().reactions(SLACK_DEFAULT_CHANNEL, &ts).contains(&"white_check_mark".to_owned()));
}

#[tokio::test]
async fn a_later_mention_in_the_thread_continues_on_the_same_branch_with_the_thread_as_context() {
    let world = world().await;
    let first = mention(&format!("fix the add function in {REPO}"));
    let (ts, _, _) = world.slack_mention(SLACK_CHANNEL, SLACK_ALLOWED_USER, &first, None).await;
    assert_eq!(world.drain().await, 1);
    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1);
    let branch = pulls[0].head.clone();
    let before = world.github.branch_log(REPO, &branch);

    // No repository named this time: the thread's earlier job says where.
    let later = mention("also handle the empty case");
    let (later_ts, _, status) = world.slack_mention(SLACK_CHANNEL, SLACK_ALLOWED_USER, &later, Some(&ts)).await;
    assert_eq!(status, 200);
    assert_eq!(world.drain().await, 1);

    assert_eq!(world.github.pull_requests(REPO).len(), 1, "no second pull request");
    let after = world.github.branch_log(REPO, &branch);
    assert_eq!(after.len(), before.len() + 1, "one more commit on the same branch: {after:?}");
    assert_eq!(after[0], "Handle the empty case", "the agent saw the thread (its grep passed)");
    let calc = world.github.file_at(REPO, &branch, "calc.sh").expect("calc.sh");
    assert!(calc.contains("add0()"), "{calc}");

    let replies = errands_replies(&world, SLACK_CHANNEL, &ts);
    assert_eq!(replies.len(), 2, "one reply per request in the thread: {replies:#?}");
    assert!(replies[1].text.contains(&format!("`{branch}`")), "{}", replies[1].text);
    assert!(world.fake_slack().reactions(SLACK_CHANNEL, &later_ts).contains(&"white_check_mark".to_owned()));
}

#[tokio::test]
async fn messages_from_bots_and_edits_start_nothing() {
    let world = world().await;
    let ts = world.fake_slack().add_message(SLACK_CHANNEL, SLACK_ALLOWED_USER, "hi", None);
    // errand's own message, and another bot's.
    let mut own: serde_json::Value = serde_json::from_slice(&slack_app_mention(
        SLACK_CHANNEL,
        BOT_USER_ID,
        &mention("fix it in acme/calculator"),
        &ts,
        None,
    ))
    .unwrap();
    assert_eq!(world.post_slack("/slack/events", &serde_json::to_vec(&own).unwrap(), None, now()).await, 200);
    own["event"]["user"] = "U0OTHER".into();
    own["event"]["bot_id"] = "B0OTHERBOT".into();
    own["event_id"] = "Ev0OTHERBOT".into();
    assert_eq!(world.post_slack("/slack/events", &serde_json::to_vec(&own).unwrap(), None, now()).await, 200);
    own["event"].as_object_mut().unwrap().remove("bot_id");
    own["event"]["edited"] = serde_json::json!({ "user": "U0OTHER", "ts": "1.2" });
    own["event_id"] = "Ev0EDITED".into();
    assert_eq!(world.post_slack("/slack/events", &serde_json::to_vec(&own).unwrap(), None, now()).await, 200);

    assert!(world.jobs().await.is_empty(), "no job");
    assert_eq!(world.queue.outstanding().await.unwrap(), 0);
    assert!(world.fake_slack().requests_for("chat.postMessage").is_empty(), "nothing posted");
}

#[tokio::test]
async fn someone_outside_the_allowlist_gets_a_polite_refusal_in_the_thread_once() {
    let world = world().await;
    let text = mention(&format!("fix the add function in {REPO}"));
    let (ts, body, status) = world.slack_mention(SLACK_OTHER_CHANNEL, STRANGER, &text, None).await;
    assert_eq!(status, 200);
    let refusal = wait_until("the refusal is in the thread", REPLY_BOUND, async || {
        errands_replies(&world, SLACK_OTHER_CHANNEL, &ts).into_iter().next()
    })
    .await;
    assert!(refusal.text.contains(&format!("Sorry <@{STRANGER}>")), "{}", refusal.text);
    assert!(refusal.text.contains("ERRAND_SLACK_ALLOWED_CHANNELS"), "{}", refusal.text);
    // A retried event is refused again without a second note.
    assert_eq!(world.post_slack("/slack/events", &body, Some(1), now()).await, 200);
    assert!(world.jobs().await.is_empty(), "no job");
    let mut again = world.fake_slack().requests_for("chat.postMessage").len();
    for _ in 0..50 {
        tokio::task::yield_now().await;
        again = world.fake_slack().requests_for("chat.postMessage").len();
    }
    assert_eq!(again, 1, "one note for the message");
}

#[tokio::test]
async fn a_request_without_a_repository_gets_the_question_back() {
    let world = world().await;
    let (ts, _, status) =
        world.slack_mention(SLACK_CHANNEL, SLACK_ALLOWED_USER, &mention("fix the flaky login test"), None).await;
    assert_eq!(status, 200);
    let question = wait_until("the question is in the thread", REPLY_BOUND, async || {
        errands_replies(&world, SLACK_CHANNEL, &ts).into_iter().next()
    })
    .await;
    assert!(question.text.contains("Which repository"), "{}", question.text);
    assert!(question.text.contains(REPO), "the configured repositories are listed: {}", question.text);
    assert!(world.jobs().await.is_empty(), "no job until the repository is known");
}

#[tokio::test]
async fn forged_and_stale_requests_stop_at_the_edge_with_401() {
    let world = world().await;
    let ts = world.fake_slack().add_message(SLACK_CHANNEL, SLACK_ALLOWED_USER, "x", None);
    let body = slack_app_mention(SLACK_CHANNEL, SLACK_ALLOWED_USER, &mention("fix it in acme/calculator"), &ts, None);
    // Signed six minutes ago: outside Slack's five-minute window.
    assert_eq!(world.post_slack("/slack/events", &body, None, now() - 360).await, 401);
    // A valid signature over another body.
    let answer = world
        .http
        .post(format!("{}/slack/events", world.ingress_url))
        .header("X-Slack-Request-Timestamp", now().to_string())
        .header("X-Slack-Signature", "v0=0000000000000000000000000000000000000000000000000000000000000000")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    let unsigned =
        world.http.post(format!("{}/slack/commands", world.ingress_url)).body("text=x").send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert!(world.jobs().await.is_empty());
    // Malformed but signed: 400.
    assert_eq!(world.post_slack("/slack/events", b"{not json", None, now()).await, 400);
}

#[tokio::test]
async fn every_recorded_slack_payload_is_answered_without_a_server_error() {
    let world = world().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/slack");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let route = if name.starts_with("slash_command") {
            "/slack/commands"
        } else if name.starts_with("event_callback")
            || name.starts_with("url_verification")
            || name.starts_with("interactivity")
        {
            "/slack/events"
        } else {
            continue;
        };
        let body = std::fs::read(&path).unwrap();
        let (status, answer) = world.post_slack_answer(route, body.trim_ascii_end(), None, now()).await;
        assert!(status < 500, "{name}: {status} {answer}");
        if name.starts_with("url_verification") {
            assert_eq!(status, 200, "{name}");
            assert!(answer["challenge"].is_string(), "{name}: {answer}");
        }
        seen += 1;
    }
    assert!(seen >= 11, "read the fixtures ({seen})");
}

#[tokio::test]
async fn a_slash_command_is_acknowledged_at_once_and_answered_in_a_thread_errand_starts() {
    let world = world().await;
    let form = format!(
        "token=x&team_id={TEAM_ID}&team_domain=acme&channel_id={SLACK_CHANNEL}&channel_name=dev&user_id={SLACK_ALLOWED_USER}&user_name=alice&command=%2Ferrand&text=fix+the+add+function+in+acme%2Fcalculator&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=111.222.abc"
    );
    let (status, answer) = world.post_slack_answer("/slack/commands", form.as_bytes(), None, now()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");
    assert!(answer["text"].as_str().unwrap().contains("On it"), "{answer}");

    assert_eq!(world.drain().await, 1);
    let started: Vec<FakeSlackMessage> =
        world.fake_slack().messages(SLACK_CHANNEL).into_iter().filter(|m| m.bot && m.thread_ts.is_none()).collect();
    assert_eq!(started.len(), 1, "errand started one thread: {started:#?}");
    assert!(started[0].text.contains("fix the add function"), "{}", started[0].text);
    let replies = errands_replies(&world, SLACK_CHANNEL, &started[0].ts);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1);
    assert!(replies[0].text.contains(&pulls[0].html_url), "{}", replies[0].text);
}

#[tokio::test]
async fn a_repository_errand_is_not_installed_on_gets_a_clear_reply() {
    let world = world().await;
    let text = mention("fix the add function in acme/elsewhere");
    let (ts, _, status) = world.slack_mention(SLACK_CHANNEL, SLACK_ALLOWED_USER, &text, None).await;
    assert_eq!(status, 200);
    assert_eq!(world.drain().await, 1);
    let replies = errands_replies(&world, SLACK_CHANNEL, &ts);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(replies[0].text.contains("not installed on `acme/elsewhere`"), "{}", replies[0].text);
    assert!(world.fake_slack().reactions(SLACK_CHANNEL, &ts).contains(&"x".to_owned()));
    let jobs = world.jobs().await;
    assert_eq!(jobs[0].state.status(), JobStatus::Failed);
}

#[tokio::test]
async fn secrets_in_what_the_agent_says_never_reach_slack() {
    let world = world().await;
    let text = mention("leak the tokens please");
    let (ts, _, _) = world.slack_mention(SLACK_DEFAULT_CHANNEL, SLACK_ALLOWED_USER, &text, None).await;
    assert_eq!(world.drain().await, 1);
    let replies = errands_replies(&world, SLACK_DEFAULT_CHANNEL, &ts);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(replies[0].text.contains("Tokens"), "the answer was posted: {}", replies[0].text);
    for request in world.fake_slack().requests() {
        let sent = request.args.to_string();
        assert!(!sent.contains(support::fake_slack::BOT_TOKEN), "the bot token reached Slack: {sent}");
        assert!(!sent.contains(LEAKED_GITHUB_TOKEN), "a GitHub token reached Slack: {sent}");
    }
}

#[tokio::test]
async fn stop_in_the_thread_cancels_its_queued_job_and_says_so_there() {
    let world = world().await;
    let text = mention(&format!("fix the add function in {REPO}"));
    let (ts, _, _) = world.slack_mention(SLACK_CHANNEL, SLACK_ALLOWED_USER, &text, None).await;
    let (stop_ts, _, status) = world.slack_mention(SLACK_CHANNEL, "U0BOB", &mention("stop"), Some(&ts)).await;
    assert_eq!(status, 200, "Bob is in an allowed channel");
    world.drain().await;

    assert!(world.github.pull_requests(REPO).is_empty(), "the stopped job opened nothing");
    let replies = errands_replies(&world, SLACK_CHANNEL, &ts);
    assert_eq!(
        replies.iter().filter(|m| m.text.contains("<@U0BOB> stopping:")).count(),
        1,
        "the stop is answered once in the thread, though the acknowledger and the worker both reach it: {replies:#?}"
    );
    assert!(replies.iter().any(|m| m.text.contains("🛑 *Cancelled* by <@U0BOB>")), "{replies:#?}");
    assert!(world.fake_slack().reactions(SLACK_CHANNEL, &ts).contains(&"octagonal_sign".to_owned()));
    assert!(world.fake_slack().reactions(SLACK_CHANNEL, &stop_ts).contains(&"eyes".to_owned()));
    let jobs = world.jobs().await;
    assert!(jobs.iter().any(|j| j.state.status() == JobStatus::Cancelled), "{jobs:#?}");
}
