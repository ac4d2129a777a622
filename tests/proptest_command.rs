//! Property tests of the comment parser (`command::parse_comment`): it never panics, whatever the
//! text; a mention inside a fenced code block or a quote never yields a command; and prose around
//! a comment without mentions changes nothing. Case counts are bounded so CI stays fast.

use errand::request::command::{Command, ParseError, parse_comment};
use proptest::prelude::*;

fn agent() -> Vec<String> {
    vec!["@agent".to_owned()]
}

fn commands(body: &str) -> Vec<Result<Command, ParseError>> {
    parse_comment(body, &agent()).into_iter().map(|parsed| parsed.command).collect()
}

/// Markdown-ish text: the pieces the parser treats specially, glued together at random.
fn markdown() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "@agent",
        "@Agent",
        "@agentx",
        "agent",
        "@",
        "fix",
        " the bug",
        " ",
        "  ",
        "    ",
        "\n",
        "\n\n",
        "\r\n",
        "\t",
        "`",
        "``",
        "```",
        "````",
        "~~~",
        "> ",
        ">",
        "<!--",
        "-->",
        "- ",
        "1. ",
        "# ",
        "--attempts",
        " 3",
        "=0",
        "--",
        "help",
        "stop",
        ":",
        ",",
        ".",
        "!",
        "\\",
        "é",
        "😀",
        "/",
        "email@agent.com",
    ]);
    prop::collection::vec(pieces, 0..60).prop_map(|pieces| pieces.concat())
}

/// A text of the pieces, or any string at all.
fn any_comment() -> impl Strategy<Value = String> {
    prop_oneof![markdown(), any::<String>()]
}

/// Prose that can never start a request or open a block: letters, spaces and sentence punctuation.
fn plain() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z ,.]{0,40}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parsing_never_panics_and_names_only_configured_mentions(body in any_comment()) {
        for parsed in parse_comment(&body, &["@agent".to_owned(), "bot".to_owned()]) {
            prop_assert!(parsed.mention == "@agent" || parsed.mention == "bot", "{:?}", parsed.mention);
        }
    }

    #[test]
    fn a_mention_in_a_fenced_code_block_never_yields_a_command(
        before in plain(),
        inside in markdown().prop_filter("no fence inside", |t| !t.contains("```") && !t.contains("~~~") && !t.contains("<!--")),
        after in plain(),
        fence in prop::sample::select(vec!["```", "````", "~~~", "```rust", "  ```"]),
    ) {
        let close = fence.trim().trim_end_matches("rust");
        let body = format!("{before}\n\n{fence}\n{inside}\n@agent fix this\n{close}\n\n{after}");
        prop_assert!(commands(&body).is_empty(), "{body:?}: {:?}", commands(&body));
    }

    #[test]
    fn a_quoted_comment_never_yields_a_command(body in any_comment()) {
        // Quoting a request (GitHub's "Quote reply") must never repeat it.
        let quoted: String = body.split('\n').map(|line| format!("> {line}\n")).collect();
        prop_assert!(commands(&quoted).is_empty(), "{quoted:?}: {:?}", commands(&quoted));
    }

    #[test]
    fn prose_paragraphs_around_a_comment_change_nothing(body in any_comment(), before in plain(), after in plain()) {
        let expected = commands(&body);
        prop_assert_eq!(commands(&format!("{before}\n\n{body}")), expected.clone());
        prop_assert_eq!(commands(&format!("{body}\n\n{after}")), expected);
    }

    #[test]
    fn the_configured_names_case_and_at_sign_do_not_matter(body in any_comment()) {
        let expected = commands(&body);
        for names in [["@AGENT"], ["agent"], [" @Agent "]] {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let got: Vec<_> = parse_comment(&body, &names).into_iter().map(|p| p.command).collect();
            prop_assert_eq!(&got, &expected, "{:?}", names);
        }
    }

    #[test]
    fn a_task_instruction_is_trimmed_and_holds_no_blank_line(body in any_comment()) {
        for command in commands(&body) {
            if let Ok(Command::Task { instruction, .. }) = command {
                prop_assert_eq!(instruction.trim(), instruction.as_str());
                prop_assert!(!instruction.contains("\n\n"), "{:?}", instruction);
            }
        }
    }
}

#[test]
fn a_huge_comment_full_of_mentions_is_parsed() {
    // One mention per paragraph: each is a command, all the way to the end.
    let body = "@agent fix it\n\n".repeat(50_000);
    assert_eq!(commands(&body).len(), 50_000);
    // One paragraph full of mentions is one command.
    let body = "@agent ".repeat(100_000);
    assert_eq!(commands(&body).len(), 1);
    // Backtick runs that never close, and comments that never end.
    let body = format!("{} @agent fix", (1..300).map(|n| "`".repeat(n) + " x ").collect::<String>());
    assert_eq!(commands(&body).len(), 1);
    assert!(commands(&"<!-- @agent ".repeat(50_000)).is_empty());
}

#[test]
fn a_quoted_html_comment_does_not_unquote_the_text_after_it() {
    let quoted = "> <!--\n> \n> --> @agent fix\n";
    assert!(commands(quoted).is_empty(), "{:?}", commands(quoted));
}
