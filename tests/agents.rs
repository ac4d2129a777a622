//! The agent presets against the real Docker engine. Each preset's pinned command line is the
//! agent step's script, and the sandbox test image holds a stand-in for its CLI that accepts
//! only the preset's flags, fixes the calculator and prints a recorded event stream
//! (tests/data/agents/). errand then reads the stream from its directory on the host. Together
//! this proves the invocation and the parsing, without a model or a network.
//!
//! Needs a running engine and `deploy/sandbox-test-image/build.sh`; fails (never skips) without.

mod support;

use std::path::Path;
use std::time::Duration;

use errand::agents::{AgentTranscript, EventFormat, Preset, contradiction, read_transcript};
use errand::job::JobId;
use errand::sandbox::{Limits, NetworkAccess, Sandbox, StepOutput, StepSpec};
use support::docker::{TEST_IMAGE, sandbox_with_test_image};
use support::world::calculator_files;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The uid and gid steps run as: not root, and not in the image's /etc/passwd.
const SANDBOX_UID: u32 = 10001;
/// A task with what shell quoting gets wrong: quotes, `$`, backticks, a leading `#`.
const TASK: &str = "# Task\n\nMake `add 2 3` print 5, not -1. Don't touch \"$HOME\" or 'calc.sh's' callers.\n";
/// The calculator's check, as `.errand.toml` names it in the scenario tests.
const CHECK: &str = "sh test.sh";
const FIXED_CALC: &str = "add() { echo $(( $1 + $2 )); }\n";
const BROKEN_CALC: &str = "add() { echo $(( $1 - $2 )); }\n";

/// One agent step's host side: the calculator as the workspace, and errand's directory with the
/// task file.
struct Attempt {
    workspace: TempDir,
    errand: TempDir,
}

impl Attempt {
    fn new() -> Attempt {
        let attempt = Attempt { workspace: sandbox_dir(), errand: sandbox_dir() };
        for (path, content) in calculator_files("") {
            std::fs::write(attempt.workspace.path().join(path), content).expect("writing the calculator");
        }
        std::fs::write(attempt.errand.path().join("task.md"), TASK).expect("writing the task file");
        attempt
    }

    fn calc(&self) -> String {
        read(&self.workspace.path().join("calc.sh")).expect("calc.sh is there")
    }

    fn summary(&self) -> Option<String> {
        read(&self.errand.path().join("summary.md"))
    }

    /// Runs `script` as a step, with the environment errand gives the agent plus `keys`.
    async fn run(&self, sandbox: &Sandbox, script: &str, keys: &[(&str, &str)]) -> StepOutput {
        let mut env: Vec<(String, String)> = vec![
            ("ERRAND_TASK".into(), "Make add 2 3 print 5".into()),
            ("ERRAND_TASK_FILE".into(), "/errand/task.md".into()),
            ("ERRAND_SUMMARY_FILE".into(), "/errand/summary.md".into()),
            ("HOME".into(), "/tmp".into()),
        ];
        env.extend(keys.iter().map(|(key, value)| (key.to_string(), value.to_string())));
        let spec = StepSpec {
            job: JobId::generate(),
            step: "agent".into(),
            image: TEST_IMAGE.into(),
            script: script.into(),
            workspace: self.workspace.path().to_owned(),
            errand_dir: self.errand.path().to_owned(),
            objects: None,
            env,
            user: format!("{SANDBOX_UID}:{SANDBOX_UID}"),
            network: NetworkAccess::None,
            limits: Limits {
                memory_bytes: 256 * 1024 * 1024,
                nano_cpus: 1_000_000_000,
                pids: 128,
                disk_bytes: 1 << 30,
            },
            timeout: Duration::from_secs(60),
        };
        sandbox.run_step(&spec, &CancellationToken::new()).await.unwrap_or_else(|error| panic!("the step ran: {error}"))
    }

    async fn transcript(&self, format: EventFormat) -> AgentTranscript {
        read_transcript(self.errand.path(), format)
            .await
            .expect("a regular events file")
            .expect("the agent left an events file")
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A temp dir the sandbox uid can write to: chowned when the tests run as root (as in CI),
/// world-writable otherwise.
fn sandbox_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    if std::os::unix::fs::chown(dir.path(), Some(SANDBOX_UID), Some(SANDBOX_UID)).is_err() {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod 777");
    }
    dir
}

/// (script, exit code, output) of each command in a transcript.
fn commands(transcript: &AgentTranscript) -> Vec<(String, Option<i64>, Vec<String>)> {
    transcript.commands.iter().map(|c| (c.script(), c.exit_code, c.output.clone())).collect()
}

fn claimed(script: &str, exit_code: i64, output: &str) -> (String, Option<i64>, Vec<String>) {
    (script.to_owned(), Some(exit_code), vec![output.to_owned()])
}

#[tokio::test]
async fn the_codex_preset_runs_codex_exec_and_its_events_name_the_commands_it_ran() {
    let sandbox = sandbox_with_test_image().await;
    let attempt = Attempt::new();
    let preset = Preset::Codex;
    // The worker has only OPENAI_API_KEY; the preset hands it to codex exec as CODEX_API_KEY.
    assert!(preset.api_key_vars().contains(&"OPENAI_API_KEY"));

    let output = attempt.run(&sandbox, &preset.command_line(None), &[("OPENAI_API_KEY", "sk-test-not-a-key")]).await;

    assert_eq!(output.exit_code, 0, "{}", output.output_tail);
    assert!(!output.output_tail.contains("thread.started"), "the events went to the file: {}", output.output_tail);
    assert_eq!(attempt.calc(), FIXED_CALC);
    let transcript = attempt.transcript(preset.event_format().expect("codex has events")).await;
    assert_eq!(
        commands(&transcript),
        [
            claimed("sh test.sh", 1, "FAIL: add 2 3 = -1, want 5"),
            claimed("cat calc.sh", 0, "add() { echo $(( $1 - $2 )); }"),
            claimed("sh test.sh", 0, "ok: add 2 3 = 5"),
        ]
    );
    assert_eq!(transcript.commands[0].command, "/bin/bash -lc 'sh test.sh'", "recorded as Codex wraps it");
    // `--output-last-message` wrote the final message as errand's summary.
    let final_message = transcript.final_message.clone().expect("a final message");
    assert!(final_message.starts_with("Make add() add its arguments\n\n"), "{final_message}");
    assert_eq!(attempt.summary().as_deref(), Some(final_message.as_str()));
    assert_eq!(preset.summary(attempt.summary(), Some(&transcript)), Some(final_message));

    // errand's own run of the check agrees with the agent's last one.
    let check = attempt.run(&sandbox, CHECK, &[]).await;
    assert_eq!(check.exit_code, 0, "{}", check.output_tail);
    let last = transcript.last_run(CHECK).expect("the agent ran the check");
    assert!(!contradiction(last, CHECK, check.exit_code));
}

#[tokio::test]
async fn the_claude_preset_runs_claude_print_and_its_stream_names_the_commands_it_ran() {
    let sandbox = sandbox_with_test_image().await;
    let attempt = Attempt::new();
    let preset = Preset::Claude;
    assert!(preset.api_key_vars().contains(&"ANTHROPIC_API_KEY"));

    let output =
        attempt.run(&sandbox, &preset.command_line(None), &[("ANTHROPIC_API_KEY", "sk-ant-test-not-a-key")]).await;

    assert_eq!(output.exit_code, 0, "{}", output.output_tail);
    assert!(!output.output_tail.contains("\"type\""), "the events went to the file: {}", output.output_tail);
    assert_eq!(attempt.calc(), FIXED_CALC);
    let transcript = attempt.transcript(preset.event_format().expect("claude has events")).await;
    assert_eq!(
        commands(&transcript),
        [
            claimed("sh test.sh", 1, "FAIL: add 2 3 = -1, want 5"),
            claimed("cat calc.sh", 0, "add() { echo $(( $1 - $2 )); }"),
            claimed("cd /workspace && sh test.sh", 0, "ok: add 2 3 = 5"),
        ]
    );
    // Claude Code writes no summary file: the stream's `result` is the summary.
    assert_eq!(attempt.summary(), None);
    let summary = preset.summary(attempt.summary(), Some(&transcript)).expect("a summary from the stream");
    assert!(summary.starts_with("Make add() add its arguments\n\n"), "{summary}");

    // The agent's last run (`cd /workspace && sh test.sh`) is errand's check: had errand's run
    // failed, that would be a contradiction.
    let check = attempt.run(&sandbox, CHECK, &[]).await;
    assert_eq!(check.exit_code, 0, "{}", check.output_tail);
    let last = transcript.last_run(CHECK).expect("the agent ran the check");
    assert_eq!(last.command, "cd /workspace && sh test.sh");
    assert!(!contradiction(last, CHECK, check.exit_code));
    assert!(contradiction(last, CHECK, 1));
}

#[tokio::test]
async fn a_model_reaches_the_cli_as_one_argument() {
    let sandbox = sandbox_with_test_image().await;
    let model = "gpt-5-codex it's $HOME";

    for (preset, key) in [(Preset::Codex, "OPENAI_API_KEY"), (Preset::Claude, "ANTHROPIC_API_KEY")] {
        let attempt = Attempt::new();
        let output = attempt.run(&sandbox, &preset.command_line(Some(model)), &[(key, "test-key")]).await;

        assert_eq!(output.exit_code, 0, "{preset}: {}", output.output_tail);
        assert!(output.output_tail.contains(&format!("{preset} stand-in: model={model}\n")), "{}", output.output_tail);
    }
}

/// The stand-ins fail loudly without the flags the presets pass, so a preset that loses one is
/// caught; and the agent's exit code survives the redirection to the events file.
#[tokio::test]
async fn a_command_line_without_a_needed_flag_fails_with_the_clis_exit_code() {
    let sandbox = sandbox_with_test_image().await;
    let cases = [
        (Preset::Claude, " --verbose", "requires --verbose"),
        (Preset::Claude, " --permission-mode bypassPermissions", "bypassPermissions is missing"),
        (Preset::Codex, " --sandbox danger-full-access", "must be danger-full-access"),
        (Preset::Codex, " --json", "--json is missing"),
        (Preset::Codex, r#" -o "$ERRAND_SUMMARY_FILE""#, "--output-last-message is missing"),
    ];

    for (preset, flag, complaint) in cases {
        let attempt = Attempt::new();
        let line = preset.command_line(None);
        assert!(line.contains(flag), "{preset} passes{flag}");
        let key = if preset == Preset::Codex { "CODEX_API_KEY" } else { "ANTHROPIC_API_KEY" };

        let output = attempt.run(&sandbox, &line.replacen(flag, "", 1), &[(key, "test-key")]).await;

        assert_eq!(output.exit_code, 2, "{preset} without{flag}: {}", output.output_tail);
        assert!(output.output_tail.contains(complaint), "{preset} without{flag}: {}", output.output_tail);
        assert_eq!(attempt.calc(), BROKEN_CALC, "{preset} without{flag} changed nothing");
    }
}

#[tokio::test]
async fn an_agent_without_a_task_file_does_not_start() {
    let sandbox = sandbox_with_test_image().await;

    for (preset, key) in [(Preset::Codex, "CODEX_API_KEY"), (Preset::Claude, "ANTHROPIC_API_KEY")] {
        let attempt = Attempt::new();
        std::fs::remove_file(attempt.errand.path().join("task.md")).expect("removing the task file");

        let output = attempt.run(&sandbox, &preset.command_line(None), &[(key, "test-key")]).await;

        let tail = &output.output_tail;
        assert_eq!(output.exit_code, 2, "{preset}: {tail}");
        assert!(tail.contains("/errand/task.md") && !tail.contains("stand-in"), "{preset} never started: {tail}");
        assert_eq!(attempt.calc(), BROKEN_CALC, "{preset}");
        assert_eq!(read_transcript(attempt.errand.path(), EventFormat::CodexJson).await, Ok(None), "{preset}");
    }
}
