//! Scenario tests: the spine end to end. A signed comment goes into the real ingress, through the
//! queue, a real worker runs the agent and the checks in real Docker containers, and the fake
//! GitHub ends up holding what a person would see.

mod support;

use errand::job::{JobState, JobStatus};
use support::fake_github::AuthKind;
use support::world::{self, Auth, FIXING_AGENT, REPO, World, errand_toml};

fn pr_body_filters(settings: &mut insta::Settings) {
    settings.add_filter(r"[0-9a-f]{32}", "[job id]");
    settings.add_filter(r"\b\d+(\.\d+)?m?s\b", "[duration]");
    settings.add_filter(r"\d+m \d+s", "[duration]");
    settings.add_filter(r"http://127\.0\.0\.1:\d+", "http://[fake github]");
}

#[tokio::test]
async fn a_mention_on_an_issue_becomes_a_pull_request_with_test_evidence() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;

    assert_eq!(world.comment(1, "octocat", "@agent fix this", "delivery-1").await, 202);
    assert_eq!(world.drain().await, 1);

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1, "exactly one pull request");
    let pull = &pulls[0];
    assert!(pull.head.starts_with("errand/issue-1-"), "branch {}", pull.head);
    assert_eq!(pull.base, "main");
    assert_eq!(pull.title, "Make add() add");
    assert!(pull.body.contains("Closes #1"), "{}", pull.body);
    assert!(pull.body.contains("| ✅ | test | `sh test.sh` | 0 |"), "{}", pull.body);
    assert!(pull.body.contains("❌ exit 1"), "the baseline shows the check failing before the agent: {}", pull.body);
    assert!(pull.body.contains("ok: add 2 3 = 5"), "the output of the check that really ran: {}", pull.body);
    assert_eq!(
        world.github.file_at(REPO, &pull.head, "calc.sh").as_deref(),
        Some("add() { echo $(( $1 + $2 )); }\n"),
        "the branch holds the agent's fix"
    );
    let mut settings = insta::Settings::clone_current();
    pr_body_filters(&mut settings);
    settings.bind(|| insta::assert_snapshot!("pull_request_body", pull.body));

    let comments = world.github.comments(REPO, 1);
    let tracking = comments.iter().find(|c| c.author != "octocat").expect("a tracking comment");
    assert!(tracking.body.contains("✅ **Done**"), "{}", tracking.body);
    assert!(tracking.body.contains(&format!("/pull/{}", pull.number)), "links the PR: {}", tracking.body);
    assert_eq!(comments.len(), 2, "the request and one tracking comment");
    let request = comments.iter().find(|c| c.author == "octocat").expect("the request");
    assert_eq!(world.github.reactions(REPO, request.id), ["eyes"]);

    let jobs = world.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state.status(), JobStatus::Succeeded);
    assert_eq!(jobs[0].pull_request.as_ref().map(|p| p.number), Some(pull.number));
}

#[tokio::test]
async fn a_failing_check_is_shown_as_failed_with_its_output() {
    let breaking_agent =
        "printf 'add() { echo 42; }\\n' > calc.sh && echo 'Hard-code the answer' > \"$ERRAND_SUMMARY_FILE\"";
    let world = World::start(&errand_toml(breaking_agent, "2m")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let pulls = world.github.pull_requests(REPO);
    assert_eq!(pulls.len(), 1);
    let body = &pulls[0].body;
    assert!(body.contains("| ❌ | test | `sh test.sh` | 1 |"), "{body}");
    assert!(body.contains("FAIL: add 2 3 = 42, want 5"), "the failing output is shown: {body}");
    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("❌ 0/1 checks passed"), "{}", tracking.body);
}

#[tokio::test]
async fn an_agent_that_changes_nothing_answers_without_a_pull_request() {
    let answering_agent =
        "printf 'add() subtracts\\n\\nIt computes $1 - $2 in calc.sh line 1.\\n' > \"$ERRAND_SUMMARY_FILE\"";
    let world = World::start(&errand_toml(answering_agent, "2m")).await;

    world.comment(1, "octocat", "@agent why does add 2 3 print -1?", "delivery-1").await;
    world.drain().await;

    assert!(world.github.pull_requests(REPO).is_empty());
    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("💬 **Answer**"), "{}", tracking.body);
    assert!(tracking.body.contains("It computes $1 - $2 in calc.sh line 1."), "{}", tracking.body);
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Succeeded);
}

#[tokio::test]
async fn a_requester_without_write_permission_gets_a_polite_refusal_and_nothing_runs() {
    let world = World::start(&errand_toml("touch /workspace/ran && echo ran > \"$ERRAND_SUMMARY_FILE\"", "2m")).await;

    world.comment(1, "visitor", "@agent fix this", "delivery-1").await;
    world.drain().await;

    assert!(world.github.pull_requests(REPO).is_empty());
    assert!(world.github.branches(REPO).iter().all(|b| !b.starts_with("errand/")));
    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("🚫 **Not run**: @visitor"), "{}", tracking.body);
    assert!(tracking.body.contains("yours is `read`"), "{}", tracking.body);
    let job = &world.jobs().await[0];
    assert_eq!(job.state.status(), JobStatus::Failed);
}

#[tokio::test]
async fn a_forged_signature_is_refused_and_creates_no_job() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;
    let comment = world.github.add_issue_comment(REPO, 1, "octocat", "@agent fix this");
    let payload = serde_json::to_vec(&world.github.issue_comment_webhook(REPO, 1, comment)).unwrap();

    assert_eq!(world.deliver("issue_comment", "forged-1", &payload, "not-the-secret").await, 401);

    assert!(world.jobs().await.is_empty());
    assert_eq!(world.queue.outstanding().await.unwrap(), 0);
}

#[tokio::test]
async fn a_repeated_delivery_makes_one_job() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;
    let comment = world.github.add_issue_comment(REPO, 1, "octocat", "@agent fix this");
    let payload = serde_json::to_vec(&world.github.issue_comment_webhook(REPO, 1, comment)).unwrap();

    assert_eq!(world.deliver("issue_comment", "same-delivery", &payload, world::WEBHOOK_SECRET).await, 202);
    assert_eq!(world.deliver("issue_comment", "same-delivery", &payload, world::WEBHOOK_SECRET).await, 200);
    assert_eq!(world.drain().await, 1);

    assert_eq!(world.jobs().await.len(), 1);
    assert_eq!(world.github.pull_requests(REPO).len(), 1);
}

#[tokio::test]
async fn the_bots_own_comment_and_a_mention_in_a_code_block_make_no_job() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;

    let bot = world.comment(1, "errand-bot", "@agent fix this", "delivery-bot").await;
    let app = world.comment(1, "some-app[bot]", "@agent fix this", "delivery-app").await;
    let code = world.comment(1, "octocat", "Try:\n\n```\n@agent fix this\n```\n", "delivery-code").await;
    let quote = world.comment(1, "octocat", "> @agent fix this\n\nwhat they said", "delivery-quote").await;

    assert!([bot, app, code, quote].iter().all(|s| (200..300).contains(s)), "{bot} {app} {code} {quote}");
    assert!(world.jobs().await.is_empty());
}

#[tokio::test]
async fn an_agent_that_crashes_ends_the_job_failed_with_the_reason() {
    let world = World::start(&errand_toml("echo 'segfault in the model client' >&2; exit 3", "2m")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    assert!(world.github.pull_requests(REPO).is_empty());
    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("❌ **Failed**: the agent exited with code 3."), "{}", tracking.body);
    assert!(tracking.body.contains("segfault in the model client"), "{}", tracking.body);
    assert!(tracking.body.contains("To try again, comment `@agent"), "{}", tracking.body);
    let job = &world.jobs().await[0];
    assert_eq!(job.state, JobState::Failed { reason: "the agent exited with code 3.".into() });
}

#[tokio::test]
async fn an_agent_that_runs_out_of_time_ends_the_job_failed_with_the_reason() {
    let world = World::start(&errand_toml("echo thinking; while :; do :; done", "3s")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("❌ **Failed**: the agent ran out of time (3.0s)."), "{}", tracking.body);
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Failed);
}

#[tokio::test]
async fn a_502_on_pull_request_creation_that_did_create_it_still_yields_one_pull_request() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;
    world.github.fail_next("POST", "/repos/acme/calculator/pulls", 502, 1, true);

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    assert_eq!(world.github.pull_requests(REPO).len(), 1, "one pull request despite the retry");
    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("✅ **Done**"), "{}", tracking.body);
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Succeeded);
}

#[tokio::test]
async fn an_invalid_errand_toml_gets_a_reply_naming_the_line_and_field() {
    let world = World::start("image = \"x\"\n[agent]\ncomand = \"oops\"\n").await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("`.errand.toml` on `main` is invalid, line 3"), "{}", tracking.body);
    assert!(tracking.body.contains("unknown field `comand`"), "{}", tracking.body);
}

#[tokio::test]
async fn no_token_reaches_the_sandbox_or_the_comments() {
    let snooping_agent = "env > env.txt; cat /workspace/.git/config >> env.txt 2>&1; echo 'Dump env' > \"$ERRAND_SUMMARY_FILE\"; echo leaked: ghp_scenarioTokenThatMustNeverBePosted0001";
    let world = World::start(&errand_toml(snooping_agent, "2m")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let pull = &world.github.pull_requests(REPO)[0];
    let env = world.github.file_at(REPO, &pull.head, "env.txt").expect("the agent's env dump");
    assert!(env.contains("ERRAND_TASK_FILE=/errand/task.md"), "{env}");
    assert!(!env.contains(world::GITHUB_TOKEN), "{env}");
    assert!(!env.contains("extraheader"), "{env}");
    for comment in world.github.comments(REPO, 1) {
        assert!(!comment.body.contains(world::GITHUB_TOKEN), "{}", comment.body);
    }
}

#[tokio::test]
async fn in_app_mode_the_job_runs_on_an_installation_token_and_posts_as_the_app() {
    let queue = errand::queue::Queue::Memory(errand::queue::MemoryQueue::new(errand::queue::QueueSettings {
        lease: std::time::Duration::from_secs(30),
        max_deliveries: 3,
    }));
    let world = World::start_on(queue, &errand_toml(FIXING_AGENT, "2m"), Auth::App).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    assert_eq!(world.github.pull_requests(REPO).len(), 1);
    let tracking = &world.github.comments(REPO, 1)[1];
    assert_eq!(tracking.author, support::fake_github::APP_BOT_LOGIN);
    let requests = world.github.requests();
    assert!(requests.iter().any(|r| r.path == "/app/installations/42/access_tokens"), "a token was minted");
    let repo_calls: Vec<_> = requests.iter().filter(|r| r.path.starts_with("/repos/")).collect();
    assert!(!repo_calls.is_empty());
    assert!(
        repo_calls.iter().all(|r| r.auth == AuthKind::Installation { installation_id: 42 }),
        "every repository call carries the installation token: {:?}",
        repo_calls.iter().map(|r| (&r.path, &r.auth)).collect::<Vec<_>>()
    );
    assert!(world.github.unexpected_requests().is_empty(), "{:?}", world.github.unexpected_requests());
}

#[tokio::test]
async fn a_mention_becomes_a_pull_request_on_the_redis_queue_too() {
    let redis = support::redis::TestRedis::start();
    let settings = errand::queue::QueueSettings { lease: std::time::Duration::from_secs(30), max_deliveries: 3 };
    let queue = errand::queue::RedisQueue::connect_with_prefix(redis.url(), settings, redis.namespace())
        .await
        .expect("the test Redis answers");
    let world =
        World::start_on(errand::queue::Queue::Redis(queue), &errand_toml(FIXING_AGENT, "2m"), Auth::Token).await;

    assert_eq!(world.comment(1, "octocat", "@agent fix this", "delivery-1").await, 202);
    assert_eq!(world.comment(1, "octocat", "@agent fix this", "delivery-1").await, 200, "a repeated delivery");
    assert_eq!(world.drain().await, 1);

    assert_eq!(world.github.pull_requests(REPO).len(), 1);
    let jobs = world.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state.status(), JobStatus::Succeeded);
    assert_eq!(jobs[0].deliveries, 1);
}

#[tokio::test]
async fn rate_limits_and_lost_answers_on_comments_post_nothing_twice() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;
    world.github.fail_next("POST", "/repos/acme/calculator/issues/1/comments", 429, 1, false);
    world.github.fail_next("POST", "/repos/acme/calculator/issues/1/comments", 502, 1, true);
    world.github.fail_next("PATCH", "/repos/acme/calculator/issues/comments/*", 403, 1, false);

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let comments = world.github.comments(REPO, 1);
    assert_eq!(comments.len(), 2, "the request and exactly one tracking comment: {comments:#?}");
    assert!(comments[1].body.contains("✅ **Done**"), "{}", comments[1].body);
    assert_eq!(world.github.pull_requests(REPO).len(), 1);
}

#[tokio::test]
async fn when_github_stays_down_the_job_is_retried_then_dead_lettered_and_the_requester_told() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;
    // Every try of three deliveries fails (five tries a delivery), then GitHub is back.
    world.github.fail_next("GET", "/repos/acme/calculator/collaborators/*/permission", 502, 15, false);

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    assert_eq!(world.drain().await, 4, "three failed deliveries, then the one that gives up");

    assert!(world.github.pull_requests(REPO).is_empty());
    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("❌ **Failed**: errand tried this job 3 times and gave up"), "{}", tracking.body);
    assert!(tracking.body.contains("checking the requester's permission"), "{}", tracking.body);
    let dead = world.queue.dead().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state.status(), JobStatus::Failed);
}

#[tokio::test]
async fn help_and_a_malformed_command_get_an_answer_in_the_thread_and_run_nothing() {
    let world = World::start(&errand_toml(FIXING_AGENT, "2m")).await;

    assert_eq!(world.comment(1, "visitor", "@agent help", "delivery-help").await, 202);
    assert_eq!(world.comment(1, "octocat", "@agent --attemps 3 fix this", "delivery-typo").await, 202);
    world.drain().await;

    assert!(world.github.pull_requests(REPO).is_empty(), "nothing ran");
    let replies: Vec<_> = world.github.comments(REPO, 1).into_iter().filter(|c| c.author == "errand-bot").collect();
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert!(replies.iter().any(|c| c.body.starts_with("@visitor **errand** runs a coding agent")), "{replies:#?}");
    let typo = replies.iter().find(|c| c.body.starts_with("@octocat")).expect("a reply to the typo");
    assert!(typo.body.contains("I don't know the option `--attemps`"), "{}", typo.body);
    assert!(typo.body.contains("Write `@agent help` to see what I can do."), "{}", typo.body);
}

#[tokio::test]
async fn canary_secrets_in_the_agents_output_reach_neither_github_nor_the_job_api() {
    const CANARY_TOKEN: &str = "ghp_CanaryTokenFromTheAgent000000000000001";
    const CANARY_KEY: &str = "sk-ant-canaryKeyFromTheAgent0000000000000001";
    let leaky_agent = format!(
        "echo 'token {CANARY_TOKEN} key {CANARY_KEY} secret {secret}'; printf 'Leak {CANARY_TOKEN}\\n' > \"$ERRAND_SUMMARY_FILE\"; exit 4",
        secret = world::WEBHOOK_SECRET
    );
    let world = World::start(&errand_toml(&leaky_agent, "2m")).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("the agent exited with code 4"), "the failure is shown: {}", tracking.body);
    assert!(tracking.body.contains("token [redacted] key [redacted] secret [redacted]"), "{}", tracking.body);
    let api = world.http.get(format!("{}/api/jobs", world.ingress_url)).bearer_auth(world::API_TOKEN);
    let api = api.send().await.unwrap().text().await.unwrap();
    let posted: Vec<String> = world
        .github
        .requests()
        .into_iter()
        .filter_map(|r| r.body.map(|b| b.to_string()))
        .chain(std::iter::once(api))
        .collect();
    for text in &posted {
        for canary in [CANARY_TOKEN, CANARY_KEY, world::WEBHOOK_SECRET, world::GITHUB_TOKEN] {
            assert!(!text.contains(canary), "{canary} leaked in {text}");
        }
    }
}

#[tokio::test]
async fn a_missing_sandbox_image_fails_the_job_with_a_reason_people_can_act_on() {
    let world = World::start("image = \"no-such-image:1\"\n[agent]\ncommand = \"true\"\n").await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(
        tracking.body.contains("❌ **Failed**: the sandbox image `no-such-image:1` is not on this worker"),
        "{}",
        tracking.body
    );
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Failed);
}

#[tokio::test]
async fn an_agent_killed_for_memory_fails_the_job_and_says_so() {
    let hungry_agent = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}";
    let toml = format!("{}\n[resources]\nmemory_mb = 64\n", errand_toml(hungry_agent, "2m"));
    let world = World::start(&toml).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(tracking.body.contains("❌ **Failed**: the agent ran out of memory and was stopped."), "{}", tracking.body);
    assert_eq!(world.jobs().await[0].state.status(), JobStatus::Failed);
}

#[tokio::test]
async fn an_agent_that_fills_the_disk_fails_the_job_and_says_so() {
    // 96 MB into the workspace, past the repository's 64 MB bound, then it would go on forever.
    let filling_agent = "dd if=/dev/zero of=/workspace/big bs=1M count=96 2>/dev/null; echo wrote; sleep 300";
    let toml = format!("{}\n[resources]\ndisk_mb = 64\n", errand_toml(filling_agent, "2m"));
    let world = World::start(&toml).await;

    world.comment(1, "octocat", "@agent fix this", "delivery-1").await;
    world.drain().await;

    let tracking = &world.github.comments(REPO, 1)[1];
    assert!(
        tracking.body.contains("❌ **Failed**: the agent wrote more than 64 MB to disk and was stopped."),
        "{}",
        tracking.body
    );
    assert!(world.github.pull_requests(REPO).is_empty());
    let job = &world.jobs().await[0];
    assert_eq!(
        job.state,
        JobState::Failed { reason: "the agent wrote more than 64 MB to disk and was stopped.".into() }
    );
}
