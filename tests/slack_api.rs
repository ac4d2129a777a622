//! errand's Slack Web API client against the fake Slack: the real slack-morphism client over HTTP,
//! so what is checked here is what errand sends and how it reads Slack's answers.

// The module alone, not `mod support`: it stands on its own, and this test should not wait for
// the rest of the support code to build.
#[path = "support/fake_slack.rs"]
mod fake_slack;

use std::time::Duration;

use errand::chat::api::{SlackApi, SlackApiError, ThreadMessage};
use fake_slack::{BOT_ID, BOT_TOKEN, BOT_USER_ID, FakeSlack};
use secrecy::SecretString;

const CHANNEL: &str = "C0ERRANDQA";
const ALICE: &str = "U0ALICE";
const BOB: &str = "U0BOB";

/// A fake Slack with one channel in which Alice asked for something; returns its `ts`.
async fn world() -> (FakeSlack, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let slack = FakeSlack::start().await;
    slack.add_channel(CHANNEL);
    let request = slack.add_message(CHANNEL, ALICE, "<@U0ERRANDBOT> please fix the flaky test", None);
    (slack, request)
}

fn client(slack: &FakeSlack) -> SlackApi {
    SlackApi::new(SecretString::from(slack.bot_token()), &slack.api_url()).expect("a Slack client")
}

#[tokio::test]
async fn a_reply_posted_in_a_thread_shows_up_in_that_thread_as_the_bot() {
    let (slack, request) = world().await;

    let ts = client(&slack).post_in_thread(CHANNEL, &request, "On it :eyes:").await.expect("posted");

    let thread = slack.thread(CHANNEL, &request);
    assert_eq!(thread.len(), 2, "{thread:#?}");
    let reply = &thread[1];
    assert_eq!(ts, reply.ts.as_str());
    assert_eq!(reply.thread_ts.as_deref(), Some(request.as_str()));
    assert_eq!((reply.user.as_str(), reply.bot), (BOT_USER_ID, true));
    assert_eq!(reply.text, "On it :eyes:");
    assert!(reply.ts > request, "ts values increase: {} after {request}", reply.ts);

    let sent = slack.requests_for("chat.postMessage");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].authorization.as_deref(), Some(format!("Bearer {BOT_TOKEN}").as_str()));
    assert_eq!(sent[0].args["thread_ts"], request.as_str());
}

#[tokio::test]
async fn an_update_edits_the_reply_in_place_and_slack_keeps_the_earlier_texts() {
    let (slack, request) = world().await;
    let api = client(&slack);
    let ts = api.post_in_thread(CHANNEL, &request, "Working…").await.expect("posted");

    api.update(CHANNEL, ts.as_str(), "Working… tests pass").await.expect("first edit");
    api.update(CHANNEL, ts.as_str(), "Done: <https://github.com/acme/calc/pull/7|#7>").await.expect("second edit");

    let replies = slack.replies(CHANNEL, &request);
    assert_eq!(replies.len(), 1, "edits post nothing new: {replies:#?}");
    assert_eq!(replies[0].ts, ts.as_str());
    assert_eq!(replies[0].text, "Done: <https://github.com/acme/calc/pull/7|#7>");
    assert_eq!(replies[0].edits, 2);
    assert_eq!(replies[0].history, ["Working…", "Working… tests pass"]);
}

#[tokio::test]
async fn updating_a_message_that_is_gone_is_a_permanent_error_with_slacks_code() {
    let (slack, request) = world().await;

    let error = client(&slack).update(CHANNEL, "1700000000.000001", "text").await.expect_err("no such message");

    assert_eq!(error.code(), Some("message_not_found"));
    assert!(!error.is_transient());
    assert_eq!(error.to_string(), "Slack chat.update failed: message_not_found");
    assert!(slack.replies(CHANNEL, &request).is_empty());
}

#[tokio::test]
async fn reacting_twice_succeeds_and_leaves_one_reaction() {
    let (slack, request) = world().await;
    let api = client(&slack);

    api.react(CHANNEL, &request, "eyes").await.expect("first reaction");
    api.react(CHANNEL, &request, ":eyes:").await.expect("the same reaction again counts as done");

    assert_eq!(slack.reactions(CHANNEL, &request), ["eyes"]);
    let answers: Vec<Option<String>> = slack.requests_for("reactions.add").into_iter().map(|r| r.error).collect();
    assert_eq!(answers, [None, Some("already_reacted".to_owned())]);
}

#[tokio::test]
async fn the_thread_comes_back_in_order_with_people_and_the_bot_across_pages() {
    let (slack, request) = world().await;
    let api = client(&slack).with_thread_page_size(3);
    slack.add_message(CHANNEL, BOB, "unrelated, in the channel", None);
    let mut expected = vec![(Some(ALICE), None, "<@U0ERRANDBOT> please fix the flaky test".to_owned())];
    for round in 1..=3 {
        let text = format!("detail {round}");
        slack.add_message(CHANNEL, if round % 2 == 0 { BOB } else { ALICE }, &text, Some(&request));
        expected.push((Some(if round % 2 == 0 { BOB } else { ALICE }), None, text));
        let answer = format!("answer {round}");
        api.post_in_thread(CHANNEL, &request, &answer).await.expect("posted");
        expected.push((Some(BOT_USER_ID), Some(BOT_ID), answer));
    }

    let thread = api.thread(CHANNEL, &request).await.expect("the thread");

    let got: Vec<(Option<&str>, Option<&str>, String)> =
        thread.iter().map(|m| (m.user.as_deref(), m.bot_id.as_deref(), m.text.clone())).collect();
    assert_eq!(got, expected);
    let held: Vec<String> = slack.thread(CHANNEL, &request).into_iter().map(|m| m.ts).collect();
    assert_eq!(thread.iter().map(|m| m.ts.clone()).collect::<Vec<_>>(), held);
    let pages = slack.requests_for("conversations.replies");
    assert_eq!(pages.len(), 3, "7 messages at 3 a page");
    assert!(pages.iter().all(|p| p.status == 200 && p.error.is_none()));
    assert!(pages[1].args["cursor"].as_str().is_some_and(|c| !c.is_empty()), "{:?}", pages[1].args);
}

#[tokio::test]
async fn a_thread_without_replies_is_just_its_first_message() {
    let (slack, request) = world().await;

    let thread = client(&slack).thread(CHANNEL, &request).await.expect("the thread");

    assert_eq!(
        thread,
        [ThreadMessage {
            user: Some(ALICE.to_owned()),
            bot_id: None,
            text: "<@U0ERRANDBOT> please fix the flaky test".to_owned(),
            ts: request.clone(),
        }]
    );
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_reply_is_posted_once() {
    let (slack, request) = world().await;
    slack.rate_limit_next("chat.postMessage", 1, 1);

    let ts = client(&slack).post_in_thread(CHANNEL, &request, "On it").await.expect("posted after the wait");

    let sent = slack.requests_for("chat.postMessage");
    assert_eq!(sent.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
    let waited = sent[1].at.duration_since(sent[0].at);
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 was honoured, but the retry came after {waited:?}");
    assert!(waited < Duration::from_secs(5), "the retry came after {waited:?}");
    let replies = slack.replies(CHANNEL, &request);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0].ts, ts.as_str());
}

#[tokio::test]
async fn retry_after_is_honoured_where_slack_morphism_does_not_space_calls_itself() {
    // slack-morphism spaces chat.postMessage calls 1 s apart on its own, which would hide an
    // ignored Retry-After in the test above; chat.update has no such limit.
    let (slack, request) = world().await;
    let api = client(&slack);
    let ts = api.post_in_thread(CHANNEL, &request, "Working…").await.expect("posted");
    slack.rate_limit_next("chat.update", 1, 1);

    api.update(CHANNEL, ts.as_str(), "Done").await.expect("edited after the wait");

    let sent = slack.requests_for("chat.update");
    assert_eq!(sent.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
    let waited = sent[1].at.duration_since(sent[0].at);
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 was honoured, but the retry came after {waited:?}");
    assert_eq!(slack.replies(CHANNEL, &request)[0].history, ["Working…"]);
}

#[tokio::test]
async fn a_rate_limit_that_outlasts_the_retries_is_a_transient_error() {
    let (slack, request) = world().await;
    slack.rate_limit_next("reactions.add", 10, 0);

    let error = client(&slack).react(CHANNEL, &request, "eyes").await.expect_err("still rate limited");

    assert!(matches!(error, SlackApiError::RateLimited { .. }), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(slack.requests_for("reactions.add").len(), 4, "the first try and three retries");
    assert!(slack.reactions(CHANNEL, &request).is_empty());
}

#[tokio::test]
async fn posting_once_twice_posts_one_reply_and_edits_it_the_second_time() {
    let (slack, request) = world().await;
    let api = client(&slack);
    let marker = "errand-job 0190b6f2";
    // A person quoting the marker does not make the reply errand's.
    slack.add_message(CHANNEL, BOB, &format!("what is {marker}?"), Some(&request));

    let first = api.post_in_thread_once(CHANNEL, &request, &format!("Queued ({marker})"), marker).await.expect("first");
    let again =
        api.post_in_thread_once(CHANNEL, &request, &format!("Running ({marker})"), marker).await.expect("second");

    assert_eq!(first, again);
    let bot_replies: Vec<_> = slack.replies(CHANNEL, &request).into_iter().filter(|m| m.bot).collect();
    assert_eq!(bot_replies.len(), 1, "{bot_replies:#?}");
    assert_eq!(bot_replies[0].text, format!("Running ({marker})"));
    assert_eq!(slack.requests_for("chat.postMessage").len(), 1);
    assert_eq!(slack.requests_for("auth.test").len(), 1, "who errand is is asked once");
    assert_eq!(api.find_own_reply(CHANNEL, &request, marker).await.expect("found"), Some(first));
    assert_eq!(api.find_own_reply(CHANNEL, &request, "errand-job other").await.expect("looked"), None);
}

#[tokio::test]
async fn a_wrong_token_is_a_permanent_error_that_does_not_show_the_token() {
    let (slack, request) = world().await;
    let api = SlackApi::new(SecretString::from("xoxb-wrong-token-1234"), &slack.api_url()).expect("a client");

    let error = api.post_in_thread(CHANNEL, &request, "On it").await.expect_err("refused");

    assert_eq!(error.code(), Some("invalid_auth"));
    assert!(!error.is_transient());
    assert!(!format!("{error} {error:?}").contains("wrong-token"), "{error:?}");
    assert!(slack.replies(CHANNEL, &request).is_empty());
}

#[tokio::test]
async fn an_unknown_channel_is_a_permanent_error() {
    let (slack, request) = world().await;

    let error = client(&slack).post_in_thread("C0NOWHERE", &request, "On it").await.expect_err("no such channel");

    assert_eq!(error.code(), Some("channel_not_found"));
    assert!(!error.is_transient());
}

#[tokio::test]
async fn slack_in_trouble_or_out_of_reach_is_a_transient_error() {
    let (slack, request) = world().await;
    let api = client(&slack);

    slack.http_error_next("chat.postMessage", 1, 503);
    let error = api.post_in_thread(CHANNEL, &request, "On it").await.expect_err("a 503");
    assert!(matches!(error, SlackApiError::Http { status: 503, .. }), "{error:?}");
    assert!(error.is_transient());

    slack.fail_next("reactions.add", "internal_error");
    let error = api.react(CHANNEL, &request, "eyes").await.expect_err("internal_error");
    assert!(error.is_transient(), "{error:?}");

    slack.stop();
    let error = api.post_in_thread(CHANNEL, &request, "On it").await.expect_err("nobody listening");
    assert!(matches!(error, SlackApiError::Transport { .. }), "{error:?}");
    assert!(error.is_transient());
    assert!(error.to_string().starts_with("could not reach Slack for chat.postMessage: "), "{error}");
}
