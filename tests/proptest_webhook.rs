//! Property tests of webhook parsing (`ingress::github::parse_event`): arbitrary bytes, arbitrary
//! JSON values in every field, JSON nested 10,000 levels deep (refused as too deep before any
//! parser sees it, never a stack overflow) and huge comments. Case counts are bounded so CI stays fast.

use errand::config::Mentions;
use errand::ingress::github::{GithubEvent, ParseContext, PayloadError, parse_event};
use proptest::prelude::*;
use serde_json::{Value, json};

const EVENTS: [&str; 4] = ["issue_comment", "ping", "push", "pull_request"];

fn parse(event: &str, body: &[u8]) -> Result<GithubEvent, PayloadError> {
    let mentions = Mentions::default();
    parse_event(
        event,
        body,
        &ParseContext { mentions: &mentions, bot_login: Some("errand[bot]"), ..ParseContext::default() },
    )
}

/// A valid `issue_comment` delivery that mentions errand.
fn comment(body: &str) -> Value {
    json!({
        "action": "created",
        "comment": {"id": 1, "body": body, "html_url": "https://github.com/a/b/issues/1#c", "user": {"login": "octocat", "type": "User"}},
        "issue": {"number": 1, "title": "t", "body": "b"},
        "repository": {"full_name": "acme/app"},
        "installation": {"id": 2}
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        Just(Value::from("@agent fix")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Where in an `issue_comment` payload an arbitrary value is put.
const POINTERS: [&str; 12] = [
    "",
    "/action",
    "/comment",
    "/comment/id",
    "/comment/body",
    "/comment/user",
    "/comment/user/login",
    "/issue",
    "/issue/number",
    "/issue/pull_request",
    "/repository/full_name",
    "/installation/id",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), event in prop::sample::select(EVENTS.to_vec())) {
        let _ = parse(event, &body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json(), event in prop::sample::select(EVENTS.to_vec())) {
        let _ = parse(event, value.to_string().as_bytes());
    }

    #[test]
    fn an_arbitrary_value_in_any_field_is_a_trigger_an_ignore_or_a_400(value in any_json(), pointer in prop::sample::select(POINTERS.to_vec())) {
        let mut payload = comment("@agent fix it");
        match payload.pointer_mut(pointer) {
            Some(slot) => *slot = value.clone(),
            None => return Ok(()),
        }
        if let Ok(GithubEvent::Trigger(trigger)) = parse("issue_comment", payload.to_string().as_bytes()) {
            // Only a field the trigger does not need may hold something else and still trigger.
            prop_assert!(["/installation/id", "/issue/pull_request"].contains(&pointer) || value == payload.pointer(pointer).cloned().unwrap_or_default(), "{pointer}: {value}");
            prop_assert_eq!(trigger.repo.to_string(), "acme/app");
        }
    }
}

/// `depth` levels of nested arrays or objects.
fn nested(depth: usize, object: bool) -> String {
    if object {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    } else {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }
}

#[test]
fn json_nested_ten_thousand_levels_deep_is_an_error_not_a_stack_overflow() {
    // Run on a thread with a small stack, as a request is: an overflow aborts the whole process.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            for object in [false, true] {
                let deep = nested(10_000, object);
                for event in EVENTS {
                    assert!(matches!(parse(event, deep.as_bytes()), Err(PayloadError::TooDeep)), "{event}");
                }
                // Deep inside fields that are read, and fields that are skipped.
                for pointer in ["/unknown", "/comment/extra", "/issue/pull_request", "/comment/body"] {
                    let body = comment("@agent fix").to_string();
                    let (field, parent) = pointer.rsplit_once('/').map(|(p, f)| (f, p)).unwrap();
                    let marker = format!("\"{field}\":");
                    let payload = if parent.is_empty() {
                        body.replacen('{', &format!("{{{marker}{deep},"), 1)
                    } else {
                        let parent_key = parent.rsplit('/').next().unwrap();
                        body.replacen(
                            &format!("\"{parent_key}\":{{"),
                            &format!("\"{parent_key}\":{{{marker}{deep},"),
                            1,
                        )
                    };
                    assert!(payload.len() > deep.len(), "{pointer}: the nesting was not inserted");
                    assert!(
                        matches!(parse("issue_comment", payload.as_bytes()), Err(PayloadError::TooDeep)),
                        "{pointer}"
                    );
                }
            }
        })
        .expect("a thread")
        .join()
        .expect("no panic, no overflow");
}

#[test]
fn a_huge_comment_is_read() {
    let body = format!("@agent fix this {}", "and this ".repeat(500_000));
    let Ok(GithubEvent::Trigger(trigger)) = parse("issue_comment", comment(&body).to_string().as_bytes()) else {
        panic!("a trigger")
    };
    assert!(matches!(trigger.asked.command, Ok(errand::request::command::Command::Task { .. })));
    let many = "@agent go\n\n".repeat(100_000);
    assert!(matches!(parse("issue_comment", comment(&many).to_string().as_bytes()), Ok(GithubEvent::Trigger(_))));
}
