//! Real agent CLIs as presets, end to end: `.errand.toml` names `codex` or `claude`, the worker
//! runs the preset's pinned command line in the sandbox (a stand-in named like the real CLI that
//! checks its arguments and replays a recorded event stream), and the pull request cites the
//! commands the agent ran next to errand's own re-run of the checks.

mod support;

use support::docker::TEST_IMAGE;
use support::world::{REPO, World};

/// A key that must reach the agent step and nothing errand posts.
const CANARY_KEY: &str = "sk-canary-4c1f9e0b7d2a4e6f8a1b3c5d7e9f0a2b";

async fn world_with(preset: &str, key_var: &str) -> (World, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env_file = dir.path().join("agent.env");
    std::fs::write(&env_file, format!("# model credentials\n{key_var}={CANARY_KEY}\n")).expect("the env file");
    let toml = format!(
        "image = \"{TEST_IMAGE}\"\ntimeout = \"2m\"\nagent = \"{preset}\"\n\n[checks]\ntest = \"sh test.sh\"\n"
    );
    (World::start_with_agent_env(&toml, env_file).await, dir)
}

fn testing_section(body: &str) -> String {
    let start = body.find("<!-- errand:testing -->").expect("a Testing section");
    let end = body.find("<!-- /errand:testing -->").expect("its end");
    body[start..end].to_owned()
}

async fn run_preset(preset: &str, key_var: &str) -> String {
    let (world, _env) = world_with(preset, key_var).await;
    assert_eq!(world.comment(1, "octocat", "@agent fix this", "delivery-preset").await, 202);
    assert_eq!(world.drain().await, 1);

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "one pull request: {:#?}", world.github.comments(REPO, 1));
    let pull = &pulls[0];
    assert_eq!(world.github.file_at(REPO, &pull.head, "calc.sh").as_deref(), Some("add() { echo $(( $1 + $2 )); }\n"));
    let everything: Vec<String> =
        world.github.requests().into_iter().filter_map(|r| r.body.map(|b| b.to_string())).collect();
    assert!(everything.iter().all(|b| !b.contains(CANARY_KEY)), "the agent's key reached GitHub");
    let testing = testing_section(&pull.body);
    assert!(testing.contains("**The agent's own runs**"), "{testing}");
    assert!(
        testing.contains("The agent's own last run of `sh test.sh` (exit 0) agrees with errand's re-run."),
        "{testing}"
    );
    testing
}

#[tokio::test]
async fn the_codex_preset_is_invoked_headless_and_its_event_stream_is_cited() {
    let testing = run_preset("codex", "OPENAI_API_KEY").await;
    insta::with_settings!({ filters => vec![(r"\| \d+(\.\d+)?m?s \|", "| [duration] |")] }, {
        insta::assert_snapshot!("codex_testing_section", testing);
    });
}

#[tokio::test]
async fn the_claude_preset_is_invoked_headless_and_its_event_stream_is_cited() {
    let testing = run_preset("claude", "ANTHROPIC_API_KEY").await;
    insta::with_settings!({ filters => vec![(r"\| \d+(\.\d+)?m?s \|", "| [duration] |")] }, {
        insta::assert_snapshot!("claude_testing_section", testing);
    });
}
