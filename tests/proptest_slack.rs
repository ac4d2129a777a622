//! Property tests of Slack request parsing (`chat::events`): arbitrary bytes, arbitrary JSON
//! values in every field of an `app_mention` callback, JSON nested 10,000 levels deep, huge and
//! mention-packed texts, and arbitrary slash-command forms. Each is read into a request or a
//! typed error, never a panic. Case counts are bounded so CI stays fast.

use errand::chat::events::{ParseContext, SlackEvent, parse_event, parse_slash_command};
use errand::config::Mentions;
use proptest::prelude::*;
use serde_json::{Value, json};

const BOT: &str = "U0ERRANDBOT";

fn parse(body: &[u8]) -> Result<SlackEvent, errand::chat::events::SlackPayloadError> {
    let mentions = Mentions::default();
    parse_event(body, &ParseContext { bot_user_id: Some(BOT), mentions: &mentions })
}

/// A valid `app_mention` callback asking errand to fix something.
fn app_mention(text: &str) -> Value {
    json!({
        "type": "event_callback",
        "team_id": "T1",
        "event_id": "Ev1",
        "event": {
            "type": "app_mention",
            "user": "U1",
            "text": text,
            "ts": "1700000000.000100",
            "channel": "C1",
            "event_ts": "1700000000.000100"
        }
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        Just(Value::from(format!("<@{BOT}> fix"))),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Where in the callback an arbitrary value is put.
const POINTERS: [&str; 11] = [
    "",
    "/type",
    "/team_id",
    "/event_id",
    "/event",
    "/event/type",
    "/event/user",
    "/event/text",
    "/event/ts",
    "/event/thread_ts",
    "/event/channel",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_a_request_or_a_typed_error(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body);
        let _ = parse_slash_command(&body);
    }

    #[test]
    fn any_value_in_any_field_is_a_request_or_a_typed_error(at in 0..POINTERS.len(), value in any_json()) {
        let mut payload = app_mention(&format!("<@{BOT}> fix the login test in acme/webapp"));
        match payload.pointer_mut(POINTERS[at]) {
            Some(slot) => *slot = value,
            None => payload["event"]["thread_ts"] = value,
        }
        let _ = parse(&serde_json::to_vec(&payload).unwrap());
    }

    #[test]
    fn any_text_after_the_mention_is_read(text in ".{0,300}") {
        let payload = app_mention(&format!("<@{BOT}> {text}"));
        let parsed = parse(&serde_json::to_vec(&payload).unwrap());
        prop_assert!(parsed.is_ok(), "a well-formed callback is never an error: {parsed:?}");
    }

    #[test]
    fn any_slash_command_form_is_read_or_refused(text in ".{0,200}", extra in "[a-z_=&%+0-9]{0,60}") {
        let form = format!("team_id=T1&channel_id=C1&user_id=U1&command=%2Ferrand&text={}&{extra}", text.replace('&', "%26"));
        if let Ok(command) = parse_slash_command(form.as_bytes()) {
            let _ = command.parse_command();
        }
    }
}

#[test]
fn json_nested_ten_thousand_levels_deep_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = format!(r#"{{"type":"event_callback","event":{deep}}}"#);
    assert!(parse(body.as_bytes()).is_err());
}

#[test]
fn a_huge_text_full_of_mentions_is_one_request() {
    let text = format!("<@{BOT}> fix {}", format!("<@{BOT}> ").repeat(20_000));
    let parsed = parse(&serde_json::to_vec(&app_mention(&text)).unwrap()).expect("read");
    assert!(matches!(parsed, SlackEvent::Request(_)), "{parsed:?}");
}
