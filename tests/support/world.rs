//! A whole errand installation for scenario tests, assembled as `errand all` is, from the command
//! line it would get: the real ingress on a loopback port (through the same `start` as
//! production), a real queue, a real worker with real Docker sandboxes, all talking to the
//! stateful fake GitHub through octocrab, and (for Slack scenarios) the stateful fake Slack
//! through slack-morphism. The test drives the worker, one job at a time.

use std::time::Duration;

use clap::Parser as _;
use errand::app::{Process, ProcessArgs};
use errand::config::{Cli, CliCommand};
use errand::job::JobRecord;
use errand::queue::{MemoryQueue, Queue, QueueSettings};
use errand::worker::Worker;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::docker::{TEST_IMAGE, sandbox_with_test_image};
use super::fake_github::{APP_BOT_LOGIN, FakeGithub, TOKEN_BOT_LOGIN, generate_app_private_key_pem};
use super::fake_slack::{BOT_TOKEN, BOT_USER_ID, FakeSlack, TEAM_ID};
use super::signing;

pub const WEBHOOK_SECRET: &str = "scenario-webhook-secret";
pub const API_TOKEN: &str = "scenario-api-token";
pub const GITHUB_TOKEN: &str = "ghp_scenarioTokenThatMustNeverBePosted0001";
pub const REPO: &str = "acme/calculator";
/// Labelling an issue with this starts a task.
pub const TRIGGER_LABEL: &str = "errand";
pub const SLACK_SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// A Slack channel on the allowlist, without a default repository.
pub const SLACK_CHANNEL: &str = "C0ALLOWED";
/// A Slack channel on the allowlist whose default repository is the calculator.
pub const SLACK_DEFAULT_CHANNEL: &str = "C0CALC";
/// A Slack channel errand is in but that is not on the allowlist.
pub const SLACK_OTHER_CHANNEL: &str = "C0ELSEWHERE";
/// A person on the allowlist (everywhere).
pub const SLACK_ALLOWED_USER: &str = "U0ALICE";

/// A repository whose test fails until `add` adds.
pub fn calculator_files(errand_toml: &str) -> Vec<(String, String)> {
    vec![
        (".errand.toml".into(), errand_toml.into()),
        ("calc.sh".into(), "add() { echo $(( $1 - $2 )); }\n".into()),
        (
            "test.sh".into(),
            ". ./calc.sh\ngot=$(add 2 3)\nif [ \"$got\" != 5 ]; then echo \"FAIL: add 2 3 = $got, want 5\"; exit 1; fi\necho \"ok: add 2 3 = 5\"\n".into(),
        ),
    ]
}

/// The calculator on the fake GitHub: the repository with `errand_toml`, `octocat` with write
/// access, and issue #1 about the bug.
pub fn seed_calculator(github: &FakeGithub, errand_toml: &str) {
    let files = calculator_files(errand_toml);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    github.add_repo(REPO, &files);
    github.set_permission(REPO, "octocat", "write");
    let issue = github.add_issue(REPO, "add() returns the wrong sum", "`add 2 3` prints -1.", "octocat");
    assert_eq!(issue, 1, "the calculator's first issue is #1");
}

/// `.errand.toml` for the calculator with the given agent command.
pub fn errand_toml(agent: &str, timeout: &str) -> String {
    format!(
        "image = \"{TEST_IMAGE}\"\ntimeout = \"{timeout}\"\n\n[agent]\ncommand = '''{agent}'''\n\n[checks]\ntest = \"sh test.sh\"\n"
    )
}

/// An agent that fixes the bug and says so.
pub const FIXING_AGENT: &str = "sed -i 's/\\$1 - \\$2/$1 + $2/' calc.sh && printf 'Make add() add\\n\\nadd() subtracted its arguments; it adds them now.\\n' > \"$ERRAND_SUMMARY_FILE\"";

/// How errand authenticates to the fake GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A plain token; errand's comments appear as `errand-bot`.
    Token,
    /// A GitHub App: an installation token is minted for each job.
    App,
}

/// `errand all`'s command line for the world: the fake GitHub, the sandbox test image, small
/// limits, a short retry delay. GitHub's credentials and Slack's come from the functions below.
fn command_line(data: &std::path::Path, github_api_url: &str) -> Vec<String> {
    let flags = [
        ("--github-webhook-secret", WEBHOOK_SECRET),
        ("--api-token", API_TOKEN),
        ("--queue", "memory"),
        ("--github-api-url", github_api_url),
        ("--trigger-label", TRIGGER_LABEL),
        ("--default-image", TEST_IMAGE),
        ("--sandbox-uid", "10001"),
        ("--sandbox-memory-mb", "256"),
        ("--sandbox-cpus", "1"),
        ("--sandbox-pids", "128"),
        ("--sandbox-disk-mb", "1024"),
        ("--timeout", "120s"),
        ("--max-timeout", "600s"),
        ("--git-author-email", "errand@example.com"),
        ("--retry-delay", "10ms"),
        ("--shutdown-grace", "5s"),
        ("--concurrency", "1"),
    ];
    let mut argv = vec!["errand".to_owned(), "all".to_owned(), "--data-dir".to_owned(), data.display().to_string()];
    argv.extend(flags.iter().flat_map(|(flag, value)| [(*flag).to_owned(), (*value).to_owned()]));
    argv
}

/// How errand authenticates to the fake GitHub: a token, or an App whose key is written to `dir`.
fn github_auth(auth: Auth, dir: &std::path::Path) -> Vec<String> {
    let flags: Vec<(&str, String)> = match auth {
        Auth::Token => vec![("--github-token", GITHUB_TOKEN.to_owned()), ("--bot-login", TOKEN_BOT_LOGIN.to_owned())],
        Auth::App => {
            let key = dir.join("github-app.pem");
            std::fs::write(&key, generate_app_private_key_pem()).expect("the App's key file");
            vec![
                ("--github-app-id", "1".to_owned()),
                ("--github-private-key-file", key.display().to_string()),
                ("--bot-login", APP_BOT_LOGIN.to_owned()),
            ]
        }
    };
    flags.into_iter().flat_map(|(flag, value)| [flag.to_owned(), value]).collect()
}

/// Slack on the fake: its channels [`SLACK_CHANNEL`] and [`SLACK_DEFAULT_CHANNEL`] allowed, the
/// latter with the calculator as its default repository, and [`SLACK_ALLOWED_USER`] everywhere.
fn slack_command_line(api_url: &str) -> Vec<String> {
    let flags = [
        ("--slack-signing-secret", SLACK_SIGNING_SECRET.to_owned()),
        ("--slack-bot-token", BOT_TOKEN.to_owned()),
        ("--slack-api-url", api_url.to_owned()),
        ("--slack-allowed-channels", format!("{SLACK_CHANNEL},{SLACK_DEFAULT_CHANNEL}")),
        ("--slack-allowed-users", SLACK_ALLOWED_USER.to_owned()),
        ("--slack-allowed-teams", TEAM_ID.to_owned()),
        ("--slack-default-repos", format!("{SLACK_DEFAULT_CHANNEL}={REPO}")),
    ];
    flags.into_iter().flat_map(|(flag, value)| [flag.to_owned(), value]).collect()
}

/// What the worker gives agents: `ERRAND_AGENT_ENV_FILE` and `ERRAND_CUSTOM_AGENT_ENV`.
struct AgentEnv {
    file: std::path::PathBuf,
    for_commands: Vec<String>,
}

pub struct World {
    pub github: FakeGithub,
    /// The fake Slack, in worlds started with [`World::start_with_slack`].
    pub slack: Option<FakeSlack>,
    pub queue: Queue,
    pub worker: Worker,
    pub ingress_url: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
}

impl World {
    /// An installation on the memory queue with the calculator repository.
    pub async fn start(errand_toml: &str) -> World {
        let queue =
            Queue::Memory(MemoryQueue::new(QueueSettings { lease: Duration::from_secs(30), max_deliveries: 3 }));
        Self::start_on(queue, errand_toml, Auth::Token).await
    }

    pub async fn start_on(queue: Queue, errand_toml: &str, auth: Auth) -> World {
        Self::start_with(queue, errand_toml, auth, None, false).await
    }

    /// An installation on the memory queue that also takes requests from the fake Slack: its
    /// channels [`SLACK_CHANNEL`] and [`SLACK_DEFAULT_CHANNEL`] are on the allowlist, the latter
    /// with the calculator as its default repository. GitHub is reached as an App, so the
    /// installation is looked up for each Slack job.
    pub async fn start_with_slack(errand_toml: &str) -> World {
        let queue =
            Queue::Memory(MemoryQueue::new(QueueSettings { lease: Duration::from_secs(30), max_deliveries: 3 }));
        Self::start_with(queue, errand_toml, Auth::App, None, true).await
    }

    /// A world whose worker gives the agent the variables in `agent_env_file` (`NAME=VALUE`).
    pub async fn start_with_agent_env(errand_toml: &str, agent_env_file: std::path::PathBuf) -> World {
        Self::start_with_agent_env_for_commands(errand_toml, agent_env_file, &[]).await
    }

    /// [`World::start_with_agent_env`], where a command named by `.errand.toml` also gets the
    /// variables `for_commands` names (`ERRAND_CUSTOM_AGENT_ENV`).
    pub async fn start_with_agent_env_for_commands(
        errand_toml: &str,
        agent_env_file: std::path::PathBuf,
        for_commands: &[&str],
    ) -> World {
        let queue =
            Queue::Memory(MemoryQueue::new(QueueSettings { lease: Duration::from_secs(60), max_deliveries: 3 }));
        let agent_env =
            AgentEnv { file: agent_env_file, for_commands: for_commands.iter().map(|n| (*n).to_owned()).collect() };
        Self::start_with(queue, errand_toml, Auth::Token, Some(agent_env), false).await
    }

    /// Assembles the installation as `errand all` does, from the command line it would get, on
    /// `queue`; the ingress runs through the same `start` as production, and the worker is driven
    /// by the test ([`World::drain`]).
    async fn start_with(
        queue: Queue,
        errand_toml: &str,
        auth: Auth,
        agent_env: Option<AgentEnv>,
        with_slack: bool,
    ) -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        sandbox_with_test_image().await;
        let github = FakeGithub::start().await;
        seed_calculator(&github, errand_toml);
        github.set_permission(REPO, "visitor", "read");

        let data = tempfile::tempdir().expect("a temp dir for the worker");
        let mut argv = command_line(data.path(), &github.api_url());
        argv.extend(github_auth(auth, data.path()));
        if let Some(env) = agent_env {
            argv.extend(["--agent-env-file".to_owned(), env.file.display().to_string()]);
            argv.extend(["--custom-agent-env".to_owned(), env.for_commands.join(",")]);
        }
        let slack = match with_slack {
            true => {
                let slack = FakeSlack::start().await;
                for channel in [SLACK_CHANNEL, SLACK_DEFAULT_CHANNEL, SLACK_OTHER_CHANNEL] {
                    slack.add_channel(channel);
                }
                argv.extend(slack_command_line(&slack.api_url()));
                Some(slack)
            }
            false => None,
        };
        let Ok(Cli { command: CliCommand::All(args) }) = Cli::try_parse_from(&argv) else {
            panic!("errand all takes the world's command line: {argv:?}");
        };
        let mut process =
            Process::assemble(ProcessArgs::all(&args), Some(queue.clone())).await.expect("errand assembles");
        let worker = process.worker.take().expect("errand all has a worker");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let ingress_url = format!("http://{}", listener.local_addr().expect("its address"));
        let shutdown = CancellationToken::new();
        // As in production, the ingress hands accepted jobs to an acknowledger that posts 👀 and
        // the tracking comment, racing the worker that claims the same job.
        tokio::spawn(errand::app::start(process, Some(listener), shutdown.clone()));
        World { github, slack, queue, worker, ingress_url, http: reqwest::Client::new(), shutdown, _data: data }
    }

    /// Has `author` comment `body` on it; returns the webhook's HTTP status.
    pub async fn comment(&self, issue: u64, author: &str, body: &str, delivery: &str) -> u16 {
        let comment = self.github.add_issue_comment(REPO, issue, author, body);
        let payload = self.github.issue_comment_webhook(REPO, issue, comment);
        self.deliver("issue_comment", delivery, &serde_json::to_vec(&payload).expect("JSON"), WEBHOOK_SECRET).await
    }

    /// Posts a webhook signed with `secret`; returns the HTTP status.
    pub async fn deliver(&self, event: &str, delivery: &str, body: &[u8], secret: &str) -> u16 {
        self.http
            .post(format!("{}/github/webhook", self.ingress_url))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", signing::github_signature(secret, body))
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("the ingress answers")
            .status()
            .as_u16()
    }

    /// The fake Slack of a world started with [`World::start_with_slack`].
    pub fn fake_slack(&self) -> &FakeSlack {
        self.slack.as_ref().expect("a world started with start_with_slack")
    }

    /// `user` writes `text` in `channel` (in the thread `thread_ts`, if given) and Slack sends the
    /// `app_mention` event, shaped as in `tests/data/slack/event_callback.app_mention.json`;
    /// returns the message's `ts`, the event body and the HTTP status.
    pub async fn slack_mention(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> (String, Vec<u8>, u16) {
        let ts = self.fake_slack().add_message(channel, user, text, thread_ts);
        let body = slack_app_mention(channel, user, text, &ts, thread_ts);
        let status = self.post_slack("/slack/events", &body, None, chrono::Utc::now().timestamp()).await;
        (ts, body, status)
    }

    /// Posts `body` to a Slack route, signed for `timestamp`, with `X-Slack-Retry-Num` when given.
    pub async fn post_slack(&self, path: &str, body: &[u8], retry: Option<u32>, timestamp: i64) -> u16 {
        self.post_slack_answer(path, body, retry, timestamp).await.0
    }

    /// As [`World::post_slack`], with the answer's JSON body.
    pub async fn post_slack_answer(
        &self,
        path: &str,
        body: &[u8],
        retry: Option<u32>,
        timestamp: i64,
    ) -> (u16, serde_json::Value) {
        let signature = errand::chat::signature::slack_signature(
            &SecretString::from(SLACK_SIGNING_SECRET),
            &timestamp.to_string(),
            body,
        );
        let content_type =
            if path.ends_with("commands") { "application/x-www-form-urlencoded" } else { "application/json" };
        let mut request = self
            .http
            .post(format!("{}{path}", self.ingress_url))
            .header("X-Slack-Request-Timestamp", timestamp.to_string())
            .header("X-Slack-Signature", signature)
            .header("Content-Type", content_type)
            .body(body.to_vec());
        if let Some(retry) = retry {
            request =
                request.header("X-Slack-Retry-Num", retry.to_string()).header("X-Slack-Retry-Reason", "http_timeout");
        }
        let answer = request.send().await.expect("the ingress answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Runs the worker until no job is left (at most `limit` jobs, so a bug cannot loop forever).
    pub async fn drain(&self) -> usize {
        let mut ran = 0;
        while self.queue.outstanding().await.expect("the queue answers") > 0 {
            assert!(ran < 10, "the worker ran 10 jobs without draining the queue");
            if self.worker.run_next_job(Duration::from_secs(5)).await.expect("the worker runs").is_some() {
                ran += 1;
            }
        }
        ran
    }

    /// All jobs, through the job API.
    pub async fn jobs(&self) -> Vec<JobRecord> {
        let answer: serde_json::Value = self
            .http
            .get(format!("{}/api/jobs", self.ingress_url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("the job API answers")
            .json()
            .await
            .expect("JSON");
        serde_json::from_value(answer["jobs"].clone()).expect("job records")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An `app_mention` callback for a message, built on the fixture Slack documents.
pub fn slack_app_mention(channel: &str, user: &str, text: &str, ts: &str, thread_ts: Option<&str>) -> Vec<u8> {
    let fixture = include_str!("../data/slack/event_callback.app_mention.json");
    let mut payload: serde_json::Value = serde_json::from_str(fixture).expect("the fixture is JSON");
    payload["team_id"] = TEAM_ID.into();
    payload["event_id"] = format!("Ev{}", ts.replace('.', "")).into();
    payload["authorizations"][0]["team_id"] = TEAM_ID.into();
    payload["authorizations"][0]["user_id"] = BOT_USER_ID.into();
    payload["authorizations"][0]["is_bot"] = true.into();
    let event = &mut payload["event"];
    event["user"] = user.into();
    event["text"] = text.into();
    event["ts"] = ts.into();
    event["event_ts"] = ts.into();
    event["channel"] = channel.into();
    if let Some(thread_ts) = thread_ts {
        event["thread_ts"] = thread_ts.into();
    }
    serde_json::to_vec(&payload).expect("JSON")
}
