//! The agent CLIs errand knows, each pinned to one headless command line in [`Preset::command_line`].
//!
//! The invocations follow the team's notes on running agent CLIs headless in a container
//! (`AGENT-CLIS.md`); each preset cites its section, and the upstream sources behind a decision.
//! What all of them share (§5.1, §5.2):
//! - The task comes from `$ERRAND_TASK_FILE`, as an argument (or a file the CLI reads), and
//!   stdin is `/dev/null`, so no CLI waits for input that never comes.
//! - The CLI's own sandbox and approval prompts are off: the container is the sandbox, and it
//!   never runs as root (which Claude Code's bypass mode refuses, and which breaks Codex's bwrap).
//! - The script's exit code is the CLI's: no pipeline hides it.
//!
//! Every preset calls a hosted model: a repository that uses one needs `network = "allowlist"`
//! with the model API's host in `allow_hosts` (or `network = "open"`), and
//! the worker must pass the preset's [`Preset::api_key_vars`]. The image should pin the CLI's
//! version: these flags and event shapes changed within months (§5.4).

use std::fmt;

use super::events::{AgentTranscript, EventFormat};
use crate::sandbox::{ERRAND_DIR, WORKSPACE_DIR};

/// Where a preset with an event stream ([`Preset::event_format`]) writes it in the sandbox:
/// beside the task and summary files, so it never shows up in the diff.
pub const EVENTS_FILE: &str = "/errand/agent-events.jsonl";

/// The turn limit of the CLIs that take one (Claude Code, Goose), as AGENT-CLIS.md recommends;
/// errand's time limit bounds every preset anyway.
const MAX_TURNS: u32 = 50;

/// Reads the task into `$task`; without a task file the script stops before the agent starts.
/// The task file always begins `# Task`, so as an argument it is never taken for a flag.
const READ_TASK: &str = r#"task="$(cat "$ERRAND_TASK_FILE")" || exit 2"#;

/// An agent CLI errand knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// OpenAI Codex CLI, `codex exec` (AGENT-CLIS.md §1).
    Codex,
    /// Claude Code, `claude -p` (§2).
    Claude,
    /// Aider, `aider --message-file` (§3).
    Aider,
    /// OpenCode, `opencode run` (§4).
    OpenCode,
    /// Goose, `goose run` (§4).
    Goose,
    /// OpenHands V1 CLI, `openhands --headless` (§4).
    OpenHands,
}

/// Where errand's summary (the pull request's title and description) comes from with a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummarySource {
    /// The agent writes `$ERRAND_SUMMARY_FILE` itself, as the task file asks.
    Agent,
    /// The CLI writes its final message to `$ERRAND_SUMMARY_FILE` (Codex's `--output-last-message`).
    Cli,
    /// The agent may write the file; when it is empty, the event stream's final message is the
    /// summary (Claude Code's `result`).
    EventStream,
}

impl Preset {
    pub const ALL: [Preset; 6] =
        [Preset::Codex, Preset::Claude, Preset::Aider, Preset::OpenCode, Preset::Goose, Preset::OpenHands];

    /// The preset of this name (`codex`, `claude`, `aider`, `opencode`, `goose`, `openhands`).
    pub fn from_name(name: &str) -> Option<Preset> {
        Self::ALL.into_iter().find(|preset| preset.name() == name)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Preset::Codex => "codex",
            Preset::Claude => "claude",
            Preset::Aider => "aider",
            Preset::OpenCode => "opencode",
            Preset::Goose => "goose",
            Preset::OpenHands => "openhands",
        }
    }

    /// The environment variables that carry the model provider's credentials. The worker passes
    /// each one it has (and nothing else of its own); the agent needs at least one.
    pub fn api_key_vars(&self) -> &'static [&'static str] {
        match self {
            // `CODEX_API_KEY` is the key of one `codex exec`; `OPENAI_API_KEY` alone is not a
            // login, so the command line hands it over as `CODEX_API_KEY` (§1 "Auth").
            Preset::Codex => &["CODEX_API_KEY", "OPENAI_API_KEY"],
            // In `-p` mode the key is always used when present; a gateway token is the
            // alternative (§2 "Auth").
            Preset::Claude => &["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"],
            // Read directly, by whichever provider the model needs (§3, §4).
            Preset::Aider | Preset::OpenCode | Preset::Goose => &["ANTHROPIC_API_KEY", "OPENAI_API_KEY"],
            // Used only with `--override-with-envs` (§4).
            Preset::OpenHands => &["LLM_API_KEY"],
        }
    }

    /// The flag that chooses the model, for the CLIs that take one on the command line.
    pub fn model_flag(&self) -> Option<&'static str> {
        match self {
            Preset::Codex | Preset::OpenCode => Some("-m"),
            Preset::Claude | Preset::Aider => Some("--model"),
            Preset::Goose | Preset::OpenHands => None,
        }
    }

    /// The environment variable that chooses the model, for the CLIs that take it from there.
    pub fn model_env(&self) -> Option<&'static str> {
        match self {
            Preset::Goose => Some("GOOSE_MODEL"),
            Preset::OpenHands => Some("LLM_MODEL"),
            Preset::Codex | Preset::Claude | Preset::Aider | Preset::OpenCode => None,
        }
    }

    /// The event stream the command line writes to [`EVENTS_FILE`], for the CLIs errand can read.
    pub fn event_format(&self) -> Option<EventFormat> {
        match self {
            Preset::Codex => Some(EventFormat::CodexJson),
            Preset::Claude => Some(EventFormat::ClaudeStreamJson),
            // Aider has no event stream (§3). OpenCode's and OpenHands' JSON shapes are known
            // only from third parties and carry no confirmed exit code, and Goose's are
            // unconfirmed (§4): their plain output goes to the output tail instead, where errand
            // shows it when the agent fails.
            Preset::Aider | Preset::OpenCode | Preset::Goose | Preset::OpenHands => None,
        }
    }

    pub fn summary_source(&self) -> SummarySource {
        match self {
            Preset::Codex => SummarySource::Cli,
            Preset::Claude => SummarySource::EventStream,
            Preset::Aider | Preset::OpenCode | Preset::Goose | Preset::OpenHands => SummarySource::Agent,
        }
    }

    /// errand's summary: the summary file's text, or (for [`SummarySource::EventStream`], when
    /// the file is missing or blank) the transcript's final message.
    pub fn summary(&self, summary_file: Option<String>, transcript: Option<&AgentTranscript>) -> Option<String> {
        let from_file = summary_file.filter(|text| !text.trim().is_empty());
        match self.summary_source() {
            SummarySource::EventStream => {
                from_file.or_else(|| transcript.and_then(|transcript| transcript.final_message.clone()))
            }
            SummarySource::Agent | SummarySource::Cli => from_file,
        }
    }

    /// The agent step's script (run as `sh -c` in `/workspace`), with `model` when given, else
    /// the CLI's default model.
    pub fn command_line(&self, model: Option<&str>) -> String {
        let model_flag = self.model_flag().zip(model).map(|(flag, model)| format!("{flag} {}", shell_quote(model)));
        let model_env = self.model_env().zip(model).map(|(var, model)| format!("{var}={}", shell_quote(model)));
        let (model_flag, model_env) = (model_flag.as_deref().unwrap_or(""), model_env.as_deref().unwrap_or(""));
        let max_turns = format!("--max-turns {MAX_TURNS}");
        let events = self.event_format().is_some();
        match self {
            // §1 "Recommended command". `--sandbox danger-full-access`: the container is the
            // sandbox, and Codex's own (bwrap, Landlock) fails under Docker's seccomp profile
            // (openai/codex#16211); `--full-auto` is deprecated. `-o` writes the last message as
            // the summary. CODEX_HOME must exist; an image may set its own. An empty
            // CODEX_API_KEY counts as unset in Codex (`read_codex_api_key_from_env`).
            Preset::Codex => script(
                &[
                    READ_TASK,
                    r#"export CODEX_HOME="${CODEX_HOME:-$HOME/.codex}""#,
                    r#"mkdir -p "$CODEX_HOME" || exit 2"#,
                ],
                &[
                    r#"CODEX_API_KEY="${CODEX_API_KEY:-${OPENAI_API_KEY:-}}""#,
                    "codex exec --json",
                    "--sandbox danger-full-access",
                    "--skip-git-repo-check",
                    &format!("-C {WORKSPACE_DIR}"),
                    r#"-o "$ERRAND_SUMMARY_FILE""#,
                    model_flag,
                    r#""$task""#,
                ],
                events,
            ),
            // §2 "Recommended command". stream-json with `-p` requires `--verbose` (else exit 1).
            // bypassPermissions refuses root, and the sandbox never runs as root, so no
            // undocumented IS_SANDBOX is needed. Errors (rate limits, auth) arrive in the stream,
            // not on stderr: `script` copies the stream's last lines to stderr when it fails.
            Preset::Claude => script(
                &[READ_TASK],
                &[
                    "claude -p",
                    r#""$task""#,
                    "--output-format stream-json",
                    "--verbose",
                    "--permission-mode bypassPermissions",
                    &max_turns,
                    model_flag,
                ],
                events,
            ),
            // §3 "Recommended command". `--yes-always` is the current auto-confirm; errand
            // commits, so aider does not (`--no-auto-commits --no-dirty-commits`); the chat
            // history goes beside the task file and `.aider*` stays out of .gitignore, so
            // neither shows up in the diff; no update checks or installs.
            Preset::Aider => script(
                &[],
                &[
                    "aider",
                    r#"--message-file "$ERRAND_TASK_FILE""#,
                    "--yes-always",
                    "--no-auto-commits --no-dirty-commits --no-gitignore",
                    "--no-pretty --no-stream --no-fancy-input",
                    "--no-check-update --analytics-disable --no-show-model-warnings",
                    &format!("--chat-history-file {ERRAND_DIR}/aider.chat.history.md"),
                    &format!("--llm-history-file {ERRAND_DIR}/aider.llm.history"),
                    model_flag,
                ],
                events,
            ),
            // §4 "OpenCode". `--auto` approves what is not explicitly denied: a permission that
            // resolves to "ask" would hang headless (anomalyco/opencode#36762). Without
            // `--format json`: see `event_format`.
            Preset::OpenCode => script(&[READ_TASK], &["opencode run", "--auto", model_flag, r#""$task""#], events),
            // §4 "Goose": GOOSE_MODE=auto approves tool calls; text output needs NO_COLOR. The
            // provider is Anthropic unless the image sets GOOSE_PROVIDER.
            Preset::Goose => script(
                &[READ_TASK],
                &[
                    "NO_COLOR=1 GOOSE_MODE=auto",
                    r#"GOOSE_PROVIDER="${GOOSE_PROVIDER:-anthropic}""#,
                    model_env,
                    "goose run --no-session",
                    &max_turns,
                    r#"-t "$task""#,
                ],
                events,
            ),
            // §4 "OpenHands": headless always approves; without `--override-with-envs` the
            // LLM_* variables are ignored. Without `--json`: see `event_format`.
            Preset::OpenHands => script(
                &[READ_TASK],
                &[model_env, "openhands --headless", r#"-t "$task""#, "--override-with-envs"],
                events,
            ),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `setup; agent < /dev/null`, and with an event stream: stdout to [`EVENTS_FILE`], the stream's
/// last lines copied to stderr (the output tail errand shows) when the agent fails, and the
/// agent's exit code as the script's. A plain redirection, not `| tee`, which would report tee's
/// exit code instead of the agent's.
fn script(setup: &[&str], agent: &[&str], events: bool) -> String {
    let agent = agent.iter().copied().filter(|word| !word.is_empty()).collect::<Vec<_>>().join(" ");
    let run = if events {
        format!(
            r#"{agent} < /dev/null > {EVENTS_FILE}; status=$?; [ "$status" -eq 0 ] || tail -n 5 {EVENTS_FILE} >&2; exit "$status""#
        )
    } else {
        format!("{agent} < /dev/null")
    };
    setup.iter().copied().chain([run.as_str()]).collect::<Vec<_>>().join("; ")
}

/// `text` as one POSIX shell word, whatever it holds.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::events::parse_events;

    /// The pinned command lines, in full: a change here must be a decision.
    #[test]
    fn each_preset_has_one_pinned_command_line() {
        let tail = r#"< /dev/null > /errand/agent-events.jsonl; status=$?; [ "$status" -eq 0 ] || tail -n 5 /errand/agent-events.jsonl >&2; exit "$status""#;
        let read = r#"task="$(cat "$ERRAND_TASK_FILE")" || exit 2; "#;
        let expected = [
            (
                Preset::Codex,
                format!(
                    r#"{read}export CODEX_HOME="${{CODEX_HOME:-$HOME/.codex}}"; mkdir -p "$CODEX_HOME" || exit 2; CODEX_API_KEY="${{CODEX_API_KEY:-${{OPENAI_API_KEY:-}}}}" codex exec --json --sandbox danger-full-access --skip-git-repo-check -C /workspace -o "$ERRAND_SUMMARY_FILE" "$task" {tail}"#
                ),
            ),
            (
                Preset::Claude,
                format!(
                    r#"{read}claude -p "$task" --output-format stream-json --verbose --permission-mode bypassPermissions --max-turns 50 {tail}"#
                ),
            ),
            (
                Preset::Aider,
                r#"aider --message-file "$ERRAND_TASK_FILE" --yes-always --no-auto-commits --no-dirty-commits --no-gitignore --no-pretty --no-stream --no-fancy-input --no-check-update --analytics-disable --no-show-model-warnings --chat-history-file /errand/aider.chat.history.md --llm-history-file /errand/aider.llm.history < /dev/null"#.to_owned(),
            ),
            (Preset::OpenCode, format!(r#"{read}opencode run --auto "$task" < /dev/null"#)),
            (
                Preset::Goose,
                format!(
                    r#"{read}NO_COLOR=1 GOOSE_MODE=auto GOOSE_PROVIDER="${{GOOSE_PROVIDER:-anthropic}}" goose run --no-session --max-turns 50 -t "$task" < /dev/null"#
                ),
            ),
            (Preset::OpenHands, format!(r#"{read}openhands --headless -t "$task" --override-with-envs < /dev/null"#)),
        ];
        for (preset, line) in expected {
            assert_eq!(preset.command_line(None), line, "{preset}");
        }
    }

    #[test]
    fn a_model_is_passed_as_one_quoted_word_by_flag_or_variable() {
        let odd = "it's; rm -rf /";
        assert!(
            Preset::Codex
                .command_line(Some("gpt-5-codex"))
                .contains(r#"-o "$ERRAND_SUMMARY_FILE" -m 'gpt-5-codex' "$task""#)
        );
        assert!(Preset::Claude.command_line(Some(odd)).contains(r"--max-turns 50 --model 'it'\''s; rm -rf /' <"));
        assert!(Preset::Aider.command_line(Some("sonnet")).contains("--model 'sonnet' < /dev/null"));
        assert!(
            Preset::OpenCode
                .command_line(Some("anthropic/claude-sonnet-4-5"))
                .contains(r#"--auto -m 'anthropic/claude-sonnet-4-5' "$task""#)
        );
        assert!(
            Preset::Goose
                .command_line(Some("claude-sonnet-4-5"))
                .contains(" GOOSE_MODEL='claude-sonnet-4-5' goose run ")
        );
        assert!(
            Preset::OpenHands
                .command_line(Some("anthropic/x"))
                .contains("; LLM_MODEL='anthropic/x' openhands --headless")
        );
    }

    #[test]
    fn every_preset_reads_the_task_file_closes_stdin_and_keeps_the_exit_code() {
        for preset in Preset::ALL {
            let line = preset.command_line(Some("m"));
            assert!(line.contains("$ERRAND_TASK_FILE"), "{preset}: {line}");
            assert!(line.contains("< /dev/null"), "{preset}: {line}");
            assert!(!line.contains(" | "), "{preset}: a pipeline would hide the exit code: {line}");
            assert!(!line.contains("--full-auto") && !line.contains("IS_SANDBOX"), "{preset}: {line}");
            let streams = line.contains(&format!("> {EVENTS_FILE};"));
            assert_eq!(streams, preset.event_format().is_some(), "{preset}: {line}");
            if streams {
                assert!(line.ends_with(r#"exit "$status""#), "{preset}: {line}");
            }
        }
    }

    /// The agent step runs the line with `sh -c`: every line, with or without a model, must be
    /// valid POSIX shell (checked by the host's `sh -n`, which parses without running).
    #[test]
    fn every_command_line_is_valid_posix_shell() {
        for preset in Preset::ALL {
            for model in [None, Some("it's \"odd\" $HOME `x`")] {
                let line = preset.command_line(model);
                let check = std::process::Command::new("sh").args(["-n", "-c", &line]).output().expect("running sh -n");
                assert!(check.status.success(), "{preset}: {line}: {}", String::from_utf8_lossy(&check.stderr));
            }
        }
    }

    #[test]
    fn the_events_file_is_in_errands_directory() {
        assert_eq!(std::path::Path::new(EVENTS_FILE).parent(), Some(std::path::Path::new(ERRAND_DIR)));
    }

    #[test]
    fn presets_are_found_by_their_names_only() {
        for preset in Preset::ALL {
            assert_eq!(Preset::from_name(preset.name()), Some(preset));
            assert_eq!(preset.to_string(), preset.name());
        }
        for name in ["Codex", "claude-code", "gpt", "", " aider"] {
            assert_eq!(Preset::from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn the_claude_summary_falls_back_to_the_streams_result() {
        let transcript =
            parse_events(EventFormat::ClaudeStreamJson, include_str!("../../tests/data/agents/claude.stream.jsonl"));
        let stream_message = transcript.final_message.clone();
        assert!(stream_message.as_deref().is_some_and(|m| m.starts_with("Make add() add")));

        let claude = Preset::Claude;
        assert_eq!(claude.summary(None, Some(&transcript)), stream_message);
        assert_eq!(claude.summary(Some(" \n".into()), Some(&transcript)), stream_message);
        assert_eq!(claude.summary(Some("Own words".into()), Some(&transcript)).as_deref(), Some("Own words"));
        assert_eq!(claude.summary(None, None), None);
        // Codex writes the file itself (`-o`); the others are asked to by the task file.
        assert_eq!(Preset::Codex.summary(None, Some(&transcript)), None);
        assert_eq!(Preset::Aider.summary(Some("Fix".into()), None).as_deref(), Some("Fix"));
    }
}
