//! What an agent says it did, read from its CLI's event stream: the shell commands it ran (with
//! exit codes and last lines of output) and its final message. Claims to cite beside errand's own
//! checks, never evidence on their own (AGENT-CLIS.md §5.3).
//!
//! Pure: no I/O. Lenient: a line that is not JSON (a truncated last line, a log line), an event
//! or item errand does not know, or a field of an unexpected type is skipped, never an error.
//! Bounded: at most [`MAX_COMMANDS`] commands, [`OUTPUT_LINES`] lines of output each, and every
//! string cut to a fixed length, whatever the stream holds.

use std::collections::HashMap;

use serde_json::Value;

/// The event streams errand can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventFormat {
    /// `codex exec --json`: one `ThreadEvent` per line (AGENT-CLIS.md §1, "JSONL events").
    CodexJson,
    /// `claude -p --output-format stream-json --verbose`: one message per line (AGENT-CLIS.md §2,
    /// "stream-json events").
    ClaudeStreamJson,
}

/// How many commands a transcript keeps: the last ones, since those back the agent's final claim.
pub const MAX_COMMANDS: usize = 200;
/// How many lines of a command's output are kept: its last ones.
pub const OUTPUT_LINES: usize = 5;
/// Longer output lines are cut (one "line" of minified output can be megabytes).
const MAX_LINE_CHARS: usize = 300;
/// Longer commands (heredocs, generated scripts) are cut.
const MAX_COMMAND_CHARS: usize = 2000;
/// The same bound errand puts on a summary file (64 KiB).
const MAX_MESSAGE_CHARS: usize = 64 * 1024;

/// What an agent's event stream says it did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentTranscript {
    /// The shell commands it ran, in order (at most the last [`MAX_COMMANDS`]).
    pub commands: Vec<AgentCommand>,
    /// Its final message, when the run ended with one that is not an error.
    pub final_message: Option<String>,
}

/// One shell command the agent ran, as it recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    /// As recorded, wrapper and all (Codex: `/bin/bash -lc 'sh test.sh'`).
    pub command: String,
    /// `None` when the stream does not say: the command was cut off, declined or killed, or its
    /// result never arrived.
    pub exit_code: Option<i64>,
    /// The last lines of its output (at most [`OUTPUT_LINES`]).
    pub output: Vec<String>,
}

impl AgentCommand {
    /// The script the command ran: Codex records commands in the shell that ran them
    /// (`/bin/bash -lc 'sh test.sh'`), and this is `sh test.sh` then; otherwise the command.
    pub fn script(&self) -> String {
        unwrap_shell(&self.command).unwrap_or_else(|| self.command.clone())
    }
}

impl AgentTranscript {
    /// The agent's last run of `command` (the same command as [`contradiction`] means it).
    pub fn last_run(&self, command: &str) -> Option<&AgentCommand> {
        self.commands.iter().rev().find(|agent| same_command(agent, command))
    }
}

/// Reads an event stream. Never fails: what cannot be read is skipped.
pub fn parse_events(format: EventFormat, text: &str) -> AgentTranscript {
    let mut reader = Reader::default();
    for line in text.lines() {
        // A truncated last line (the agent was killed mid-write) does not parse, and is skipped.
        let Ok(event) = serde_json::from_str::<Value>(line) else { continue };
        match format {
            EventFormat::CodexJson => reader.codex_event(&event),
            EventFormat::ClaudeStreamJson => reader.claude_event(&event),
        }
    }
    reader.finish()
}

/// Whether the agent's own run of a check contradicts errand's run of it: the same command, and
/// one run passed (exit code 0) while the other failed (any other exit code).
///
/// The rule:
/// - The same command: errand's check equals the agent's script ([`AgentCommand::script`], the
///   command out of Codex's `<shell> -lc '...'` wrapper), or that script less a leading
///   `cd /workspace && ` (agents often say where they are). Both sides are compared with their
///   whitespace normalised: trimmed, and every run of spaces, tabs or newlines one space. Nothing
///   looser: `sh test.sh | tail` or `sh test.sh -v` is another command, whose result says
///   nothing about `sh test.sh`.
/// - An agent's run without an exit code claims nothing, so it contradicts nothing.
///
/// Pass the agent's *last* run of the command ([`AgentTranscript::last_run`]): a first run that
/// failed before the agent fixed the code is the normal course of work, not a contradiction.
pub fn contradiction(agent: &AgentCommand, errand_check_command: &str, errand_exit_code: i64) -> bool {
    let Some(agent_exit_code) = agent.exit_code else { return false };
    same_command(agent, errand_check_command) && (agent_exit_code == 0) != (errand_exit_code == 0)
}

fn same_command(agent: &AgentCommand, command: &str) -> bool {
    let script = normalise_whitespace(&agent.script());
    let command = normalise_whitespace(command);
    script == command || script.strip_prefix("cd /workspace && ") == Some(command.as_str())
}

fn normalise_whitespace(command: &str) -> String {
    command.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The script of `<shell> -c '<script>'` (or `-lc`) when the command is exactly that, with the
/// script one shell word (quoted as a POSIX shell would read it); `None` for anything else.
fn unwrap_shell(command: &str) -> Option<String> {
    let command = command.trim_start();
    let (shell, rest) = command.split_once(char::is_whitespace)?;
    let name = shell.rsplit('/').next().unwrap_or(shell);
    if !matches!(name, "sh" | "bash" | "zsh" | "dash" | "ash" | "ksh") {
        return None;
    }
    let (flag, word) = rest.trim_start().split_once(char::is_whitespace)?;
    if !matches!(flag, "-c" | "-lc") {
        return None;
    }
    single_shell_word(word.trim())
}

/// Reads `text` as exactly one POSIX shell word: single quotes, double quotes (where a backslash
/// escapes `$`, `` ` ``, `"`, `\` and a newline) and backslashes outside quotes. `None` when it is
/// more than one word or a quote is left open.
fn single_shell_word(text: &str) -> Option<String> {
    let mut word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => word.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        '\n' => {}
                        c @ ('$' | '`' | '"' | '\\') => word.push(c),
                        c => {
                            word.push('\\');
                            word.push(c);
                        }
                    },
                    c => word.push(c),
                }
            },
            '\\' => word.push(chars.next()?),
            c if c.is_whitespace() => return None,
            c => word.push(c),
        }
    }
    (!word.is_empty()).then_some(word)
}

/// Collects commands and the final message across the lines of one stream.
#[derive(Default)]
struct Reader {
    commands: Vec<AgentCommand>,
    /// Where the command of a Codex item id or a Claude `tool_use` id sits in `commands`.
    by_id: HashMap<String, usize>,
    final_message: Option<String>,
}

impl Reader {
    /// Codex: commands are `command_execution` items. `item.started` announces one (exit code
    /// `null`) and `item.completed` gives its `exit_code` and `aggregated_output`; a command that
    /// only started (the run was cut off) is kept without an exit code. The final message is the
    /// last completed `agent_message`, unless the turn then failed: Codex itself leaves the
    /// `--output-last-message` file alone after `turn.failed` (openai/codex
    /// `codex-rs/exec/src/event_processor_with_jsonl_output_tests.rs`).
    fn codex_event(&mut self, event: &Value) {
        let item = event.get("item");
        match str_field(event, "type") {
            Some("item.started") => {
                if let Some(item) = item.filter(|item| codex_item_type(item) == Some("command_execution")) {
                    self.codex_command(item, false);
                }
            }
            Some("item.completed") => {
                let Some(item) = item else { return };
                match codex_item_type(item) {
                    Some("command_execution") => self.codex_command(item, true),
                    // `assistant_message` is what the first `--json` (openai/codex PR #4525) called it.
                    Some("agent_message" | "assistant_message") => {
                        if let Some(text) = str_field(item, "text").and_then(message) {
                            self.final_message = Some(text);
                        }
                    }
                    _ => {}
                }
            }
            Some("turn.failed") => self.final_message = None,
            _ => {}
        }
    }

    fn codex_command(&mut self, item: &Value, completed: bool) {
        let Some(command) = str_field(item, "command") else { return };
        let id = str_field(item, "id");
        if !completed {
            // Without an id, its completion could not be told apart from another command.
            if let Some(id) = id {
                self.record(
                    Some(id),
                    AgentCommand { command: cut(command, MAX_COMMAND_CHARS), exit_code: None, output: Vec::new() },
                );
            }
            return;
        }
        let output = str_field(item, "aggregated_output").map(last_lines).unwrap_or_default();
        let exit_code = item.get("exit_code").and_then(Value::as_i64);
        self.record(id, AgentCommand { command: cut(command, MAX_COMMAND_CHARS), exit_code, output });
    }

    /// Claude Code: commands are `tool_use` blocks named `Bash` inside `assistant` messages,
    /// joined by id with the `tool_result` block (inside a `user` message) of the same
    /// `tool_use_id`. There is no exit code field: a result starting `Exit code N` says N, and
    /// otherwise `is_error: false` means 0 and `is_error: true` means unknown. The final message
    /// is the `result` of a `result` event that is not an error and not empty; a later spurious
    /// error result (anthropics/claude-code#16768) does not take it away, and an empty `success`
    /// (#40432) gives none.
    fn claude_event(&mut self, event: &Value) {
        let blocks = || {
            event
                .get("message")
                .and_then(|message| message.get("content"))
                .and_then(Value::as_array)
                .map(|blocks| blocks.as_slice())
                .unwrap_or_default()
        };
        match str_field(event, "type") {
            Some("assistant") => {
                for block in blocks() {
                    if str_field(block, "type") != Some("tool_use") || str_field(block, "name") != Some("Bash") {
                        continue;
                    }
                    let Some(command) = block.get("input").and_then(|input| str_field(input, "command")) else {
                        continue;
                    };
                    let command =
                        AgentCommand { command: cut(command, MAX_COMMAND_CHARS), exit_code: None, output: Vec::new() };
                    self.record(str_field(block, "id"), command);
                }
            }
            Some("user") => {
                for block in blocks() {
                    if str_field(block, "type") != Some("tool_result") {
                        continue;
                    }
                    // Results of other tools (Edit, Read) have no Bash `tool_use` to join.
                    let Some(&index) = str_field(block, "tool_use_id").and_then(|id| self.by_id.get(id)) else {
                        continue;
                    };
                    let is_error = block.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                    let (exit_code, output) = claude_result(&tool_result_text(block), is_error);
                    let command = &mut self.commands[index];
                    command.exit_code = exit_code;
                    command.output = output;
                }
            }
            Some("result") => {
                let is_error = event.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                let success = matches!(str_field(event, "subtype"), None | Some("success"));
                if let Some(text) = str_field(event, "result").filter(|_| success && !is_error) {
                    // An empty `result` (a run that stopped at a tool call) leaves an earlier one.
                    if let Some(text) = message(text) {
                        self.final_message = Some(text);
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds a command, or replaces the one recorded under the same id.
    fn record(&mut self, id: Option<&str>, command: AgentCommand) {
        if let Some(&index) = id.and_then(|id| self.by_id.get(id)) {
            self.commands[index] = command;
            return;
        }
        if let Some(id) = id {
            self.by_id.insert(id.to_owned(), self.commands.len());
        }
        self.commands.push(command);
        // Bounded while reading, not only at the end: drop the oldest half when twice the limit is
        // reached (ids pointing at dropped commands go with them).
        if self.commands.len() >= 2 * MAX_COMMANDS {
            let dropped = self.commands.len() - MAX_COMMANDS;
            self.commands.drain(..dropped);
            self.by_id.retain(|_, index| *index >= dropped);
            self.by_id.values_mut().for_each(|index| *index -= dropped);
        }
    }

    fn finish(mut self) -> AgentTranscript {
        let extra = self.commands.len().saturating_sub(MAX_COMMANDS);
        self.commands.drain(..extra);
        AgentTranscript { commands: self.commands, final_message: self.final_message }
    }
}

/// A Codex item's type; the first `--json` called the field `item_type` (openai/codex PR #4525).
fn codex_item_type(item: &Value) -> Option<&str> {
    str_field(item, "type").or_else(|| str_field(item, "item_type"))
}

/// The text of a `tool_result`: a string, or an array of `{"type": "text", "text": ...}` blocks.
fn tool_result_text(block: &Value) -> String {
    match block.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|part| str_field(part, "text")).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// The exit code and output lines of a Bash `tool_result`.
fn claude_result(text: &str, is_error: bool) -> (Option<i64>, Vec<String>) {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    match first.trim().strip_prefix("Exit code ").and_then(|code| code.trim().parse::<i64>().ok()) {
        Some(code) => (Some(code), last_lines(rest)),
        None => ((!is_error).then_some(0), last_lines(text)),
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A final message, trimmed and bounded; `None` when empty.
fn message(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| cut(text, MAX_MESSAGE_CHARS))
}

/// The last [`OUTPUT_LINES`] lines of `text`, trailing blank lines left out, each bounded.
fn last_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(OUTPUT_LINES)..].iter().map(|line| cut(line, MAX_LINE_CHARS)).collect()
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}\u{2026}", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEX: &str = include_str!("../../tests/data/agents/codex.jsonl");
    const CLAUDE: &str = include_str!("../../tests/data/agents/claude.stream.jsonl");
    const FINAL_MESSAGE: &str = "Make add() add its arguments\n\n`add()` in `calc.sh` computed `$1 - $2`; it now computes `$1 + $2`. `sh test.sh` passes (`ok: add 2 3 = 5`).";

    /// One Codex `item.completed` line of a `command_execution`.
    fn codex_command_event(id: &str, command: &str, output: &str, exit_code: Option<i64>) -> String {
        let item = serde_json::json!({
            "id": id, "type": "command_execution", "command": command,
            "aggregated_output": output, "exit_code": exit_code,
        });
        serde_json::json!({"type": "item.completed", "item": item}).to_string()
    }

    fn command(command: &str, exit_code: Option<i64>, output: &[&str]) -> AgentCommand {
        AgentCommand { command: command.into(), exit_code, output: output.iter().map(|l| l.to_string()).collect() }
    }

    #[test]
    fn a_codex_stream_yields_its_commands_exit_codes_output_and_last_message() {
        let transcript = parse_events(EventFormat::CodexJson, CODEX);

        assert_eq!(
            transcript.commands,
            [
                command("/bin/bash -lc 'sh test.sh'", Some(1), &["FAIL: add 2 3 = -1, want 5"]),
                command("/bin/bash -lc 'cat calc.sh'", Some(0), &["add() { echo $(( $1 - $2 )); }"]),
                command("/bin/bash -lc 'sh test.sh'", Some(0), &["ok: add 2 3 = 5"]),
            ]
        );
        let scripts: Vec<String> = transcript.commands.iter().map(AgentCommand::script).collect();
        assert_eq!(scripts, ["sh test.sh", "cat calc.sh", "sh test.sh"]);
        assert_eq!(transcript.final_message.as_deref(), Some(FINAL_MESSAGE));
    }

    #[test]
    fn a_claude_stream_joins_bash_calls_with_their_results_and_takes_the_result_as_final_message() {
        let transcript = parse_events(EventFormat::ClaudeStreamJson, CLAUDE);

        // The Edit tool call is not a command.
        assert_eq!(
            transcript.commands,
            [
                command("sh test.sh", Some(1), &["FAIL: add 2 3 = -1, want 5"]),
                command("cat calc.sh", Some(0), &["add() { echo $(( $1 - $2 )); }"]),
                command("cd /workspace && sh test.sh", Some(0), &["ok: add 2 3 = 5"]),
            ]
        );
        assert_eq!(transcript.final_message.as_deref(), Some(FINAL_MESSAGE));
    }

    #[test]
    fn a_stream_read_with_the_other_format_yields_nothing() {
        assert_eq!(parse_events(EventFormat::ClaudeStreamJson, CODEX), AgentTranscript::default());
        assert_eq!(parse_events(EventFormat::CodexJson, CLAUDE), AgentTranscript::default());
    }

    #[test]
    fn a_truncated_last_line_and_garbage_lines_are_skipped() {
        for (format, text) in [(EventFormat::CodexJson, CODEX), (EventFormat::ClaudeStreamJson, CLAUDE)] {
            let whole = parse_events(format, text);
            let noisy = format!("Reading prompt from stdin...\nnot json\n42\n[]\n{{}}\n\n{text}{{\"type\":\"item.comp");
            assert_eq!(parse_events(format, &noisy), whole, "{format:?}");
            // Cut anywhere, even inside a multi-byte character's line, it still parses.
            for end in (0..text.len()).filter(|&end| text.is_char_boundary(end)).step_by(7) {
                let _ = parse_events(format, &text[..end]);
            }
        }
    }

    #[test]
    fn fields_of_unexpected_types_are_skipped_not_fatal() {
        let codex = r#"{"type":"item.completed","item":{"id":"a","type":"command_execution","command":["sh","x"],"exit_code":0}}
{"type":"item.completed","item":{"id":"b","type":"command_execution","command":"make","exit_code":"two","aggregated_output":7}}
{"type":"item.completed","item":{"id":"c","type":"agent_message","text":{"nested":true}}}
{"type":"item.completed","item":"not an object"}
{"type":["item.completed"]}"#;
        let transcript = parse_events(EventFormat::CodexJson, codex);
        assert_eq!(transcript.commands, [command("make", None, &[])]);
        assert_eq!(transcript.final_message, None);

        let claude = r#"{"type":"assistant","message":{"content":"just text"}}
{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":42}}]}}
{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t2","name":"Bash","input":{"command":"ls"}}]}}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t2","content":{"odd":1},"is_error":"yes"}]}}
{"type":"result","subtype":"success","is_error":false,"result":null}"#;
        let transcript = parse_events(EventFormat::ClaudeStreamJson, claude);
        assert_eq!(transcript.commands, [command("ls", Some(0), &[])]);
        assert_eq!(transcript.final_message, None);
    }

    #[test]
    fn codex_commands_that_never_completed_are_kept_without_an_exit_code() {
        let text = r#"{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"sleep 600","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"git push","aggregated_output":"","exit_code":null,"status":"declined"}}"#;
        let transcript = parse_events(EventFormat::CodexJson, text);
        assert_eq!(transcript.commands, [command("sleep 600", None, &[]), command("git push", None, &[])]);
    }

    #[test]
    fn the_first_codex_event_names_and_a_failed_turn_are_understood() {
        let text = r#"{"type":"item.completed","item":{"id":"item_0","item_type":"command_execution","command":"true","aggregated_output":"","exit_code":0}}
{"type":"item.completed","item":{"id":"item_1","item_type":"assistant_message","text":"Done."}}"#;
        let transcript = parse_events(EventFormat::CodexJson, text);
        assert_eq!(transcript.commands, [command("true", Some(0), &[])]);
        assert_eq!(transcript.final_message.as_deref(), Some("Done."));

        let failed = format!("{text}\n{{\"type\":\"turn.failed\",\"error\":{{\"message\":\"stream disconnected\"}}}}");
        assert_eq!(parse_events(EventFormat::CodexJson, &failed).final_message, None);
    }

    #[test]
    fn claude_exit_codes_come_from_the_exit_code_prefix_or_is_error() {
        let text = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"a","name":"Bash","input":{"command":"make"}},{"type":"tool_use","id":"b","name":"Bash","input":{"command":"sleep 999"}},{"type":"tool_use","id":"c","name":"Bash","input":{"command":"echo hi"}},{"type":"tool_use","id":"d","name":"Bash","input":{"command":"never answered"}}]}}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"text","text":"Exit code 2\nmake: *** No rule to make target 'all'.  Stop."}],"is_error":true}]}}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"b","content":"Command timed out after 2m 0.0s","is_error":true}]}}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"c","content":"hi\n","is_error":false},{"type":"tool_result","tool_use_id":"zzz","content":"no such call","is_error":false}]}}"#;
        let transcript = parse_events(EventFormat::ClaudeStreamJson, text);
        assert_eq!(
            transcript.commands,
            [
                command("make", Some(2), &["make: *** No rule to make target 'all'.  Stop."]),
                command("sleep 999", None, &["Command timed out after 2m 0.0s"]),
                command("echo hi", Some(0), &["hi"]),
                command("never answered", None, &[]),
            ]
        );
    }

    #[test]
    fn claude_error_and_empty_results_are_not_final_messages() {
        let ok = r#"{"type":"result","subtype":"success","is_error":false,"result":"All done."}"#;
        let spurious = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"Error"}"#;
        let empty = r#"{"type":"result","subtype":"success","is_error":false,"result":"","stop_reason":"tool_use"}"#;
        let limit = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"result":"Reached max turns"}"#;
        let rate =
            r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 429 rate_limit_error"}"#;
        let final_message =
            |lines: &[&str]| parse_events(EventFormat::ClaudeStreamJson, &lines.join("\n")).final_message;

        assert_eq!(final_message(&[ok, spurious]).as_deref(), Some("All done."));
        assert_eq!(final_message(&[empty]), None);
        assert_eq!(final_message(&[limit]), None);
        assert_eq!(final_message(&[rate]), None);
    }

    #[test]
    fn output_keeps_the_last_five_lines_each_bounded() {
        let output: String = (1..=9).map(|i| format!("line {i}\n")).collect::<String>() + &"x".repeat(5000) + "\n\n\n";
        let transcript = parse_events(EventFormat::CodexJson, &codex_command_event("1", "make", &output, Some(0)));
        let kept = &transcript.commands[0].output;
        assert_eq!(kept[..4], ["line 6", "line 7", "line 8", "line 9"]);
        assert_eq!(kept[4].chars().count(), MAX_LINE_CHARS + 1);
        assert!(kept[4].ends_with('\u{2026}'));
    }

    #[test]
    fn a_transcript_keeps_the_last_two_hundred_commands() {
        let text: String = (0..1000)
            .map(|i| {
                let (id, command) = (format!("item_{i}"), format!("echo {i}"));
                let started = codex_command_event(&id, &command, "", None).replace("item.completed", "item.started");
                let completed = codex_command_event(&id, &command, &format!("{i}\n"), Some(0));
                format!("{started}\n{completed}\n")
            })
            .collect();
        let transcript = parse_events(EventFormat::CodexJson, &text);
        assert_eq!(transcript.commands.len(), MAX_COMMANDS);
        assert_eq!(transcript.commands[0], command("echo 800", Some(0), &["800"]));
        assert_eq!(transcript.commands[MAX_COMMANDS - 1], command("echo 999", Some(0), &["999"]));
    }

    #[test]
    fn shell_wrappers_are_unwrapped_to_their_script() {
        let script = |c: &str| command(c, None, &[]).script();
        assert_eq!(script("/bin/bash -lc 'sh test.sh'"), "sh test.sh");
        assert_eq!(script("bash -lc ls"), "ls");
        assert_eq!(script("/usr/bin/zsh -c 'echo '\\''hi'\\'''"), "echo 'hi'");
        assert_eq!(script(r#"sh -c "echo \"\$HOME\" \q""#), r#"echo "$HOME" \q"#);
        // Not exactly a wrapper around one word: left as it is.
        assert_eq!(script("bash -lc 'sh test.sh' extra"), "bash -lc 'sh test.sh' extra");
        assert_eq!(script("bash -lc 'unclosed"), "bash -lc 'unclosed");
        assert_eq!(script("python -c 'print(1)'"), "python -c 'print(1)'");
        assert_eq!(script("bash test.sh"), "bash test.sh");
        assert_eq!(script("sh test.sh"), "sh test.sh");
    }

    #[test]
    fn a_contradiction_is_the_same_command_with_the_other_outcome() {
        let passed = command("/bin/bash -lc 'sh  test.sh'", Some(0), &[]);
        let failed = command("cd /workspace &&\tsh test.sh", Some(1), &[]);
        let unknown = command("sh test.sh", None, &[]);

        // The agent claimed success; errand's run failed. And the other way round.
        assert!(contradiction(&passed, "sh test.sh", 1));
        assert!(contradiction(&passed, " sh test.sh\n", 137));
        assert!(contradiction(&failed, "sh test.sh", 0));
        // Both agree.
        assert!(!contradiction(&passed, "sh test.sh", 0));
        assert!(!contradiction(&failed, "sh test.sh", 2));
        // Another command, or no claim at all.
        assert!(!contradiction(&passed, "sh test.sh -v", 1));
        assert!(!contradiction(&command("sh test.sh | tail -n 3", Some(0), &[]), "sh test.sh", 1));
        assert!(!contradiction(&command("cd /elsewhere && sh test.sh", Some(0), &[]), "sh test.sh", 1));
        assert!(!contradiction(&unknown, "sh test.sh", 1));
    }

    #[test]
    fn the_last_run_of_a_check_decides_not_the_first() {
        for (format, text) in [(EventFormat::CodexJson, CODEX), (EventFormat::ClaudeStreamJson, CLAUDE)] {
            let transcript = parse_events(format, text);
            let first = &transcript.commands[0];
            let last = transcript.last_run("sh test.sh").expect("the agent ran the test");

            assert_eq!(last.exit_code, Some(0), "{format:?}");
            assert!(!contradiction(last, "sh test.sh", 0), "{format:?}: both passed");
            assert!(contradiction(last, "sh test.sh", 1), "{format:?}: the agent says it passed, errand saw it fail");
            // Judged alone, the first (failing) run would look like a contradiction.
            assert!(contradiction(first, "sh test.sh", 0), "{format:?}");
            assert!(transcript.last_run("make test").is_none());
        }
    }
}
