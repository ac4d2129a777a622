//! The pure parser for what a comment asks of errand: no I/O, tested on its own.
//!
//! A comment summons errand by mentioning one of the configured names (`@agent` by default) in
//! prose: mentions inside fenced code blocks (```` ``` ```` and `~~~`), inline code spans, `>`
//! quotes (with their lazy continuation lines) and HTML comments are not requests, so quoting a
//! previous request or pasting a log that contains one never starts a job.
//!
//! Decisions:
//! - A command is the text after a mention to the end of its paragraph (a blank line, a fence, a
//!   quote, a list item or a heading ends a paragraph). Later mentions in the same paragraph are
//!   part of that text (`@agent fix this, thanks @agent!` is one command).
//! - Each paragraph with a mention yields one [`Parsed`]; [`parse_comment`] returns them in order.
//!   One comment is one request: the ingress acts on the first and ignores the rest, so a comment
//!   that repeats the mention in a P.S. does not start a second job.
//! - An empty instruction (`@agent` alone) is a task: "work on this issue".
//! - `help`, `stop`, `status` and `retry` are commands only when they are the whole text
//!   (`@agent stop` stops; `@agent stop using unwrap here` is a task).

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The largest `--attempts` a comment may ask for; the repository's own maximum may be lower.
pub const MAX_ATTEMPTS_OPTION: u32 = 10;

/// What `--attempts` takes, in the words of the error message; must agree with the maximum.
pub const ATTEMPTS_EXPECTED: &str = "a whole number from 1 to 10";

/// What a comment asks errand to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Work on something: the instruction, or the issue itself when the instruction is empty.
    Task { instruction: String, options: TaskOptions },
    /// Explain what errand understands.
    Help,
    /// Cancel the running job of this thread.
    Stop,
    /// Report the state of this thread's job.
    Status,
    /// Run this thread's last job again.
    Retry,
    /// On a pull request made from several attempts: put attempt N's change in it instead.
    UseAttempt(u32),
}

impl Command {
    /// The command's name as users write it, for logs and replies.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Task { .. } => "task",
            Self::Help => "help",
            Self::Stop => "stop",
            Self::Status => "status",
            Self::Retry => "retry",
            Self::UseAttempt(_) => "use attempt",
        }
    }
}

/// Options written before a task's instruction (`@agent --attempts 3 fix the flaky test`) or as
/// its last words (`@agent fix the flaky test --attempts 3`, or `x3`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOptions {
    /// How many independent attempts to run (`--attempts N`); `None` means the repository default.
    pub attempts: Option<u32>,
}

/// A command that was addressed to errand but cannot be understood. Kept in a reply job, so it
/// is data; rendering says it in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ParseError {
    #[error("unknown option `{option}`")]
    UnknownOption { option: String },
    #[error("option `{option}` needs a value")]
    MissingOptionValue { option: OptionName },
    #[error("option `{option}` got `{value}`, expected {ATTEMPTS_EXPECTED}")]
    InvalidOptionValue { option: OptionName, value: String },
}

/// An option errand knows. Both take [`ATTEMPTS_EXPECTED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionName {
    /// `--attempts N`
    Attempts,
    /// `use attempt N`
    UseAttempt,
}

impl OptionName {
    /// As people write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attempts => "--attempts",
            Self::UseAttempt => "use attempt",
        }
    }
}

impl std::fmt::Display for OptionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The commands as `help` lists them: how each is written (`{mention}` stands for the name the
/// person used) and what it does. Rendering lays them out.
pub const COMMANDS: [(&str, &str); 6] = [
    (
        "{mention} <what to do>",
        "work on this issue; for example `{mention} fix the failing test`. `{mention}` alone works on the issue as written.",
    ),
    ("{mention} status", "the state of this thread's jobs and their place in the queue."),
    ("{mention} stop", "cancel this thread's queued or running jobs."),
    ("{mention} retry", "run this thread's last job again."),
    ("{mention} use attempt N", "on a pull request errand made from several attempts: put attempt N's change in it."),
    ("{mention} help", "this message."),
];

/// One mention of errand in a comment and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The configured name that was mentioned, as configured (e.g. `@agent`).
    pub mention: String,
    /// The command, or why the text after the mention is not one.
    pub command: Result<Command, ParseError>,
}

/// Finds the commands addressed to any of `mentions` (e.g. `["@agent"]`; matched
/// case-insensitively, the leading `@` optional in the configuration) in a comment's Markdown.
pub fn parse_comment(body: &str, mentions: &[String]) -> Vec<Parsed> {
    let names: Vec<&str> =
        mentions.iter().map(|m| m.trim().trim_start_matches('@')).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Vec::new();
    }
    let masked = mask_html_comments(body);
    let mut found = Vec::new();
    for paragraph in paragraphs(&masked, body) {
        let masked_paragraph = mask_code_spans(&masked[paragraph.clone()]);
        let Some((at, name)) = first_mention(&masked_paragraph, &names) else {
            continue;
        };
        let after = paragraph.start + at + 1 + name.len();
        let text = body[after..paragraph.end].replace("\r\n", "\n");
        let mention = mentions
            .iter()
            .find(|m| m.trim().trim_start_matches('@') == name)
            .map_or_else(|| format!("@{name}"), |m| m.trim().to_owned());
        found.push(Parsed { mention, command: parse_command(&text) });
    }
    found
}

/// The requests of an edited comment that its previous text did not have, in order: an edit that
/// fixes a typo elsewhere runs nothing again; one that adds (or changes) a request runs it.
pub fn new_requests(previous: &str, current: &str, mentions: &[String]) -> Vec<Parsed> {
    let mut before = parse_comment(previous, mentions);
    let mut added = Vec::new();
    for request in parse_comment(current, mentions) {
        match before.iter().position(|old| *old == request) {
            Some(index) => {
                before.remove(index);
            }
            None => added.push(request),
        }
    }
    added
}

/// "Not mine", "mine", or "mine but malformed": what each command parser says about a text.
enum Claim {
    NotMine,
    Mine(Command),
    Malformed(ParseError),
}

/// Parses the text after a mention. The word commands go first; a task takes anything.
fn parse_command(text: &str) -> Result<Command, ParseError> {
    let text = text.trim().trim_start_matches([':', ',']).trim();
    let parsers: [fn(&str) -> Claim; 6] = [
        |t| parse_word(t, "help", Command::Help),
        |t| parse_word(t, "stop", Command::Stop),
        |t| parse_word(t, "status", Command::Status),
        |t| parse_word(t, "retry", Command::Retry),
        parse_use_attempt,
        parse_task,
    ];
    for parser in parsers {
        match parser(text) {
            Claim::NotMine => continue,
            Claim::Mine(command) => return Ok(command),
            Claim::Malformed(error) => return Err(error),
        }
    }
    unreachable!("the task parser claims every text")
}

/// A one-word command: the word alone, in any case, optionally followed by `.` or `!`.
fn parse_word(text: &str, word: &str, command: Command) -> Claim {
    if text.trim_end_matches(['.', '!']).eq_ignore_ascii_case(word) { Claim::Mine(command) } else { Claim::NotMine }
}

/// `use attempt N`, optionally followed by `instead`, in any case; a number out of range is
/// malformed (so is no number: `use attempt` alone asks for nothing).
fn parse_use_attempt(text: &str) -> Claim {
    let words: Vec<&str> = text.trim_end_matches(['.', '!']).split_whitespace().collect();
    let (value, rest) = match words.as_slice() {
        [u, a, value, rest @ ..] if u.eq_ignore_ascii_case("use") && a.eq_ignore_ascii_case("attempt") => {
            (*value, rest)
        }
        _ => return Claim::NotMine,
    };
    if !matches!(rest, [] | [_]) || rest.first().is_some_and(|w| !w.eq_ignore_ascii_case("instead")) {
        return Claim::NotMine;
    }
    match attempts_value(value.trim_start_matches('#')) {
        Ok(n) => Claim::Mine(Command::UseAttempt(n)),
        Err(_) => {
            Claim::Malformed(ParseError::InvalidOptionValue { option: OptionName::UseAttempt, value: value.to_owned() })
        }
    }
}

/// A task: leading `--options`, then the instruction (possibly empty).
fn parse_task(text: &str) -> Claim {
    let mut options = TaskOptions::default();
    let mut rest = text;
    let mut ended_options = false;
    while let Some(token) = rest.split_whitespace().next().filter(|t| t.starts_with("--")) {
        rest = rest.trim_start()[token.len()..].trim_start();
        let (name, inline_value) = match token.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (token, None),
        };
        match name {
            // `--` ends the options, so an instruction may itself start (or end) with `--`.
            "--" => {
                ended_options = true;
                break;
            }
            "--help" => return Claim::Mine(Command::Help),
            "--attempts" => {
                let value = match inline_value {
                    Some(value) => value,
                    None => match rest.split_whitespace().next() {
                        Some(value) if !value.starts_with("--") => {
                            rest = rest.trim_start()[value.len()..].trim_start();
                            value
                        }
                        _ => return Claim::Malformed(ParseError::MissingOptionValue { option: OptionName::Attempts }),
                    },
                };
                match attempts_value(value) {
                    Ok(n) => options.attempts = Some(n),
                    Err(error) => return Claim::Malformed(error),
                }
            }
            _ => return Claim::Malformed(ParseError::UnknownOption { option: name.to_owned() }),
        }
    }
    let mut instruction = rest.trim();
    if !ended_options
        && options.attempts.is_none()
        && let Some((kept, value)) = trailing_attempts(instruction)
    {
        match attempts_value(value) {
            Ok(n) => {
                options.attempts = Some(n);
                instruction = kept;
            }
            Err(error) => return Claim::Malformed(error),
        }
    }
    Claim::Mine(Command::Task { instruction: instruction.to_owned(), options })
}

/// `--attempts N`, `--attempts=N` or `xN` as the last words of an instruction (`@agent fix this
/// --attempts 4`, `@agent fix this x4`): the instruction before them and the value.
fn trailing_attempts(text: &str) -> Option<(&str, &str)> {
    let (before, last) = text.rsplit_once(char::is_whitespace)?;
    if let Some(value) = last.strip_prefix("--attempts=") {
        return Some((before.trim_end(), value));
    }
    if let Some(count) =
        last.strip_prefix(['x', '×']).filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some((before.trim_end(), count));
    }
    let (before_option, option) = before.trim_end().rsplit_once(char::is_whitespace)?;
    (option == "--attempts").then(|| (before_option.trim_end(), last))
}

fn attempts_value(value: &str) -> Result<u32, ParseError> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_ATTEMPTS_OPTION).contains(&n) => Ok(n),
        _ => Err(ParseError::InvalidOptionValue { option: OptionName::Attempts, value: value.to_owned() }),
    }
}

/// The first mention of any name in `text` (already masked), as the byte offset of its `@` and
/// the name.
fn first_mention<'n>(text: &str, names: &[&'n str]) -> Option<(usize, &'n str)> {
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices('@') {
        let before = text[..at].chars().next_back();
        // `email@agent.com`, `foo/@agent`: an `@` glued to a word is not a mention.
        if before.is_some_and(|c| c.is_alphanumeric() || "_-.+@/`\\".contains(c)) {
            continue;
        }
        for &name in names {
            let end = at + 1 + name.len();
            if end > bytes.len() || !bytes[at + 1..end].eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
            if ends_a_name(&text[end..]) {
                return Some((at, name));
            }
        }
    }
    None
}

/// Whether a login may end where `rest` begins: `@agentx`, `@agent-bot`, `@agent_2`,
/// `@agent/team` and `@agent.com` name someone (or something) else; `@agent.` ends a sentence.
fn ends_a_name(rest: &str) -> bool {
    let mut chars = rest.chars();
    match chars.next() {
        None => true,
        Some(c) if c.is_alphanumeric() || "-_/".contains(c) => false,
        Some('.') => !chars.next().is_some_and(char::is_alphanumeric),
        Some(_) => true,
    }
}

/// Replaces everything inside `<!-- ... -->` with spaces (keeping line breaks), so offsets stay
/// the same and hidden text is never a request.
fn mask_html_comments(body: &str) -> String {
    let mut masked = body.to_owned();
    let mut from = 0;
    while let Some(start) = body[from..].find("<!--").map(|i| i + from) {
        let end = body[start + 4..].find("-->").map_or(body.len(), |i| start + 4 + i + 3);
        blank(&mut masked, start..end);
        from = end;
    }
    masked
}

/// Overwrites a byte range with spaces, keeping line breaks. The range holds whole characters,
/// and every replaced byte becomes one ASCII space, so the text stays valid UTF-8 and offsets
/// into it still match the original.
fn blank(text: &mut String, range: Range<usize>) {
    let replaced: String = text[range.clone()].bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
    text.replace_range(range, &replaced);
}

/// Replaces inline code spans with spaces. A run of N backticks opens a span that the next run
/// of exactly N backticks closes; an unclosed run is literal text (CommonMark).
fn mask_code_spans(paragraph: &str) -> String {
    let mut masked = paragraph.to_owned();
    let bytes = paragraph.as_bytes();
    let run_at = |i: usize| bytes[i..].iter().take_while(|&&b| b == b'`').count();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'`' => {
                let open = run_at(i);
                let mut j = i + open;
                let mut close = None;
                while j < bytes.len() {
                    if bytes[j] == b'`' {
                        let run = run_at(j);
                        if run == open {
                            close = Some(j + run);
                            break;
                        }
                        j += run;
                    } else {
                        j += 1;
                    }
                }
                match close {
                    Some(end) => {
                        blank(&mut masked, i..end);
                        i = end;
                    }
                    None => i += open,
                }
            }
            _ => i += 1,
        }
    }
    masked
}

/// How a line of Markdown takes part in finding requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Blank,
    /// Inside or delimiting a fenced code block, or a quote: never a request.
    Hidden,
    /// Prose that starts a new paragraph (a list item or heading).
    Start,
    /// Prose that continues the current paragraph, if there is one.
    Text,
}

/// The byte ranges (into `body`) of the prose paragraphs: lines that are not in a fenced code
/// block or a quote, grouped until a blank line, a fence, a quote, a list item or a heading.
/// `body` has its HTML comments masked; `original` is the same text unmasked: a line that only
/// the masking made blank is hidden, not blank, so a comment inside a quote does not end the quote
/// (`> <!--\n> \n> --> @agent fix` stays quoted).
fn paragraphs(body: &str, original: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut current: Option<Range<usize>> = None;
    let mut fence: Option<(u8, usize)> = None;
    let mut in_quote = false;
    let mut offset = 0;
    for raw in body.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let end = start + line.len();
        let kind = if line.trim().is_empty() && !original[start..end].trim().is_empty() {
            Line::Hidden
        } else {
            classify(line, &mut fence, &mut in_quote)
        };
        match kind {
            Line::Text if current.is_some() => {
                if let Some(paragraph) = current.as_mut() {
                    paragraph.end = end;
                }
            }
            Line::Text | Line::Start => {
                found.extend(current.take());
                current = Some(start..end);
            }
            Line::Blank | Line::Hidden => found.extend(current.take()),
        }
    }
    found.extend(current);
    found
}

/// Classifies one line, tracking whether a fenced block or a quote is open.
fn classify(line: &str, fence: &mut Option<(u8, usize)>, in_quote: &mut bool) -> Line {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let content = line.trim_start_matches(' ');
    if let Some((marker, len)) = *fence {
        let run = content.bytes().take_while(|&b| b == marker).count();
        if indent <= 3 && run >= len && content[run..].trim().is_empty() {
            *fence = None;
        }
        return Line::Hidden;
    }
    if content.trim().is_empty() {
        *in_quote = false;
        return Line::Blank;
    }
    if indent <= 3 {
        if let Some(marker) = content.bytes().next().filter(|b| *b == b'`' || *b == b'~') {
            let run = content.bytes().take_while(|&b| b == marker).count();
            // A backtick fence's info string may not contain backticks (else it is a code span).
            if run >= 3 && !(marker == b'`' && content[run..].contains('`')) {
                *fence = Some((marker, run));
                *in_quote = false;
                return Line::Hidden;
            }
        }
        if content.starts_with('>') {
            *in_quote = true;
            return Line::Hidden;
        }
    }
    // A line right after a quote's text, without its own `>`, still belongs to the quote
    // ("lazy continuation"); it takes a blank line to leave it.
    if *in_quote {
        return Line::Hidden;
    }
    if indent <= 3 && starts_block(content) { Line::Start } else { Line::Text }
}

/// Whether a line opens a list item or a heading, which end the paragraph before them.
fn starts_block(content: &str) -> bool {
    let bullet = ["- ", "* ", "+ "].iter().any(|b| content.starts_with(b));
    let digits = content.bytes().take_while(u8::is_ascii_digit).count();
    let numbered =
        (1..=9).contains(&digits) && (content[digits..].starts_with(". ") || content[digits..].starts_with(") "));
    let heading = content.starts_with('#') && {
        let hashes = content.bytes().take_while(|&b| b == b'#').count();
        hashes <= 6 && content[hashes..].starts_with(' ')
    };
    bullet || numbered || heading
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Vec<String> {
        vec!["@agent".to_owned()]
    }

    fn task(instruction: &str) -> Result<Command, ParseError> {
        Ok(Command::Task { instruction: instruction.to_owned(), options: TaskOptions::default() })
    }

    /// The commands of a comment addressed to `@agent`.
    fn commands(body: &str) -> Vec<Result<Command, ParseError>> {
        parse_comment(body, &agent()).into_iter().map(|p| p.command).collect()
    }

    #[test]
    fn a_mention_at_the_start_is_a_task() {
        assert_eq!(commands("@agent fix the login redirect"), [task("fix the login redirect")]);
    }

    #[test]
    fn a_mention_in_the_middle_takes_the_text_after_it() {
        assert_eq!(commands("Could you @agent add a test for this?"), [task("add a test for this?")]);
    }

    #[test]
    fn a_mention_alone_is_a_task_with_an_empty_instruction() {
        assert_eq!(commands("@agent"), [task("")]);
        assert_eq!(commands("  @agent  \n"), [task("")]);
        assert_eq!(commands("@agent:"), [task("")]);
    }

    #[test]
    fn a_colon_or_comma_after_the_mention_is_dropped() {
        assert_eq!(commands("@agent: fix it"), [task("fix it")]);
        assert_eq!(commands("@agent, please fix it"), [task("please fix it")]);
    }

    #[test]
    fn mentions_are_case_insensitive() {
        assert_eq!(commands("@Agent fix it"), [task("fix it")]);
        assert_eq!(commands("@AGENT fix it"), [task("fix it")]);
    }

    #[test]
    fn a_longer_login_is_someone_else() {
        assert!(commands("@agentic please review").is_empty());
        assert!(commands("@agentx fix").is_empty());
        assert!(commands("@agent-reviewer fix").is_empty());
        assert!(commands("@agent_2 fix").is_empty());
        assert!(commands("@agent/maintainers fix").is_empty());
    }

    #[test]
    fn an_email_address_is_not_a_mention() {
        assert!(commands("write to email@agent.com about it").is_empty());
        assert!(commands("see @agent.com").is_empty());
    }

    #[test]
    fn punctuation_after_the_mention_ends_the_name() {
        assert_eq!(commands("Thanks, (@agent) fix it"), [task(") fix it")]);
        assert_eq!(commands("ping @agent."), [task(".")]);
        assert_eq!(commands("@agent! fix it"), [task("! fix it")]);
    }

    #[test]
    fn the_instruction_runs_to_the_end_of_the_paragraph() {
        let body = "@agent rename the config loader\nand update its callers\n\nUnrelated: nice work.";
        assert_eq!(commands(body), [task("rename the config loader\nand update its callers")]);
    }

    #[test]
    fn crlf_bodies_parse_like_lf_bodies() {
        let body = "Hi\r\n\r\n@agent rename the loader\r\nand its callers\r\n\r\nThanks";
        assert_eq!(commands(body), [task("rename the loader\nand its callers")]);
    }

    #[test]
    fn a_mention_inside_a_fenced_code_block_is_ignored() {
        assert!(commands("```\n@agent fix this\n```").is_empty());
        assert!(commands("~~~sh\necho @agent fix this\n~~~").is_empty());
        assert!(commands("````\n```\n@agent still inside\n```\n````").is_empty());
    }

    #[test]
    fn text_after_a_closed_fence_is_prose_again() {
        assert_eq!(commands("```\nlog line\n```\n@agent fix the log"), [task("fix the log")]);
    }

    #[test]
    fn an_unclosed_fence_hides_the_rest_of_the_comment() {
        assert!(commands("```\nlog\n@agent fix").is_empty());
    }

    #[test]
    fn a_fence_ends_the_instruction() {
        assert_eq!(commands("@agent apply this\n```diff\n-a\n+b\n```"), [task("apply this")]);
    }

    #[test]
    fn a_mention_inside_inline_code_is_ignored() {
        assert!(commands("Write `@agent fix this` to summon the bot").is_empty());
        assert!(commands("Use ``@agent `x` `` in a comment").is_empty());
    }

    #[test]
    fn inline_code_in_the_instruction_is_kept() {
        assert_eq!(commands("@agent rename `foo` to `bar`"), [task("rename `foo` to `bar`")]);
    }

    #[test]
    fn an_unclosed_backtick_is_literal() {
        assert_eq!(commands("a ` b @agent fix"), [task("fix")]);
    }

    #[test]
    fn an_inline_code_span_may_cross_lines() {
        assert!(commands("see `this\n@agent fix` here").is_empty());
    }

    #[test]
    fn a_mention_inside_a_quote_is_ignored() {
        assert!(commands("> @agent fix the login\n\nI agree with this.").is_empty());
        assert!(commands("   > > @agent nested").is_empty());
    }

    #[test]
    fn a_lazy_quote_continuation_is_still_quoted() {
        assert!(commands("> earlier you wrote\n@agent fix this").is_empty());
        assert_eq!(commands("> earlier\n\n@agent fix this"), [task("fix this")]);
    }

    #[test]
    fn replying_below_a_quoted_request_is_a_request() {
        let body = "> @agent fix the login\n\n@agent fix the logout instead";
        assert_eq!(commands(body), [task("fix the logout instead")]);
    }

    #[test]
    fn a_mention_inside_an_html_comment_is_ignored() {
        assert!(commands("<!-- @agent fix -->\nHello").is_empty());
        // A comment across the lines of a quote does not end the quote.
        assert!(commands("> <!--\n> \n> --> @agent fix\n").is_empty());
        assert_eq!(commands("<!--\n\n-->\n@agent fix"), [task("fix")]);
        assert_eq!(commands("<!-- note -->\n@agent fix"), [task("fix")]);
    }

    #[test]
    fn a_later_mention_in_the_same_paragraph_is_part_of_the_text() {
        assert_eq!(commands("@agent fix the bug, thanks @agent!"), [task("fix the bug, thanks @agent!")]);
    }

    #[test]
    fn each_paragraph_with_a_mention_is_one_command() {
        let body = "@agent fix the bug\n\nAlso @agent status";
        assert_eq!(commands(body), [task("fix the bug"), Ok(Command::Status)]);
    }

    #[test]
    fn list_items_are_separate_commands() {
        let body = "- @agent fix a\n- @agent fix b";
        assert_eq!(commands(body), [task("fix a"), task("fix b")]);
    }

    #[test]
    fn several_configured_names_are_recognised() {
        let names = vec!["@agent".to_owned(), "errand".to_owned()];
        let parsed = parse_comment("@errand fix it", &names);
        assert_eq!(parsed, [Parsed { mention: "errand".to_owned(), command: task("fix it") }]);
        assert_eq!(parse_comment("@Agent fix it", &names)[0].mention, "@agent");
    }

    #[test]
    fn no_configured_names_means_no_commands() {
        assert!(parse_comment("@agent fix", &[]).is_empty());
        assert!(parse_comment("@agent fix", &["@".to_owned()]).is_empty());
    }

    #[test]
    fn unicode_around_and_after_the_mention_is_kept() {
        assert_eq!(commands("Bitte @agent repariere die Übersetzung 🙏"), [task("repariere die Übersetzung 🙏")]);
        assert_eq!(commands("日本語 @agent 翻訳を直して"), [task("翻訳を直して")]);
        assert!(commands("@agenté fix").is_empty());
        assert!(commands("é@agent fix").is_empty());
        assert!(commands("`é @agent ü` ok").is_empty());
    }

    #[test]
    fn word_commands_are_recognised_alone() {
        assert_eq!(commands("@agent help"), [Ok(Command::Help)]);
        assert_eq!(commands("@agent STOP!"), [Ok(Command::Stop)]);
        assert_eq!(commands("@agent status."), [Ok(Command::Status)]);
        assert_eq!(commands("@agent retry"), [Ok(Command::Retry)]);
        assert_eq!(commands("@agent --help"), [Ok(Command::Help)]);
    }

    #[test]
    fn a_word_command_followed_by_more_text_is_a_task() {
        assert_eq!(commands("@agent stop using unwrap here"), [task("stop using unwrap here")]);
        assert_eq!(commands("@agent help me fix the docs"), [task("help me fix the docs")]);
    }

    #[test]
    fn the_attempts_option_is_parsed_before_the_instruction() {
        let expected =
            Command::Task { instruction: "fix the flaky test".to_owned(), options: TaskOptions { attempts: Some(3) } };
        assert_eq!(commands("@agent --attempts 3 fix the flaky test"), [Ok(expected.clone())]);
        assert_eq!(commands("@agent --attempts=3 fix the flaky test"), [Ok(expected)]);
    }

    #[test]
    fn the_attempts_option_may_also_end_the_instruction() {
        let expected =
            Command::Task { instruction: "fix the flaky test".to_owned(), options: TaskOptions { attempts: Some(4) } };
        for text in [
            "@agent fix the flaky test --attempts 4",
            "@agent fix the flaky test --attempts=4",
            "@agent fix the flaky test x4",
            "@agent fix the flaky test ×4",
        ] {
            assert_eq!(commands(text), [Ok(expected.clone())], "{text}");
        }
        assert_eq!(commands("@agent resize the logo to 640x4"), [task("resize the logo to 640x4")]);
        assert_eq!(commands("@agent double the x"), [task("double the x")]);
        assert_eq!(commands("@agent -- fix the x4"), [task("fix the x4")]);
        assert!(
            matches!(&commands("@agent fix it x40")[..], [Err(ParseError::InvalidOptionValue { value, .. })] if value == "40")
        );
    }

    #[test]
    fn use_attempt_names_an_attempt_by_number() {
        for text in ["@agent use attempt 3", "@agent use attempt 3 instead", "@agent Use Attempt #3 instead."] {
            assert_eq!(commands(text), [Ok(Command::UseAttempt(3))], "{text}");
        }
        assert!(matches!(&commands("@agent use attempt 0")[..], [Err(ParseError::InvalidOptionValue { .. })]));
        assert_eq!(commands("@agent use attempt 3 but rename it"), [task("use attempt 3 but rename it")]);
        assert_eq!(commands("@agent use a map here"), [task("use a map here")]);
    }

    #[test]
    fn a_double_dash_ends_the_options() {
        assert_eq!(commands("@agent -- --attempts is broken"), [task("--attempts is broken")]);
    }

    #[test]
    fn an_unknown_option_is_malformed() {
        assert_eq!(
            commands("@agent --model gpt fix it"),
            [Err(ParseError::UnknownOption { option: "--model".to_owned() })]
        );
    }

    #[test]
    fn a_bad_attempts_value_is_malformed() {
        assert_eq!(
            commands("@agent --attempts"),
            [Err(ParseError::MissingOptionValue { option: OptionName::Attempts })]
        );
        assert_eq!(
            commands("@agent --attempts --help"),
            [Err(ParseError::MissingOptionValue { option: OptionName::Attempts })]
        );
        for bad in ["0", "11", "three", "-1"] {
            let parsed = commands(&format!("@agent --attempts {bad} fix"));
            assert!(
                matches!(&parsed[..], [Err(ParseError::InvalidOptionValue { value, .. })] if value == bad),
                "{bad}: {parsed:?}"
            );
        }
    }

    #[test]
    fn the_attempts_message_names_the_real_maximum() {
        assert!(ATTEMPTS_EXPECTED.ends_with(&format!("to {MAX_ATTEMPTS_OPTION}")));
    }

    #[test]
    fn headings_start_a_new_paragraph() {
        assert_eq!(commands("@agent fix it\n## Details\nmore"), [task("fix it")]);
    }
}
