//! The fake GitHub speaks GitHub well enough for the real octocrab client: its answers
//! deserialize into octocrab's strict models, and its state changes the way GitHub's would.

// The module alone, not `mod support`: it must stand on its own (the quick start includes it the
// same way), and this test should not wait for the rest of the support code to build.
#[path = "support/fake_github.rs"]
mod fake_github;

use std::path::Path;
use std::process::Command;

use fake_github::{
    APP_BOT_LOGIN, AuthKind, FakeGithub, INSTALLATION_ID, TOKEN_BOT_LOGIN, generate_app_private_key_pem,
};
use octocrab::Octocrab;
use octocrab::models::reactions::ReactionContent;
use octocrab::models::{AppId, CommentId, InstallationId};
use octocrab::service::middleware::retry::RetryConfig;
use serde_json::Value;

const REPO: &str = "acme/calculator";

async fn world() -> FakeGithub {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let github = FakeGithub::start().await;
    github.add_repo(
        REPO,
        &[
            ("README.md", "# Calculator\n"),
            ("calc.sh", "add() { echo $(( $1 - $2 )); }\n"),
            ("docs/usage.md", "add 2 3\n"),
        ],
    );
    github.add_issue(REPO, "add() returns the wrong sum", "`add 2 3` prints -1.", "octocat");
    github
}

/// A client with a plain token that never retries by itself, so each injected fault is seen.
fn token_client(github: &FakeGithub) -> Octocrab {
    Octocrab::builder()
        .base_uri(github.api_url())
        .expect("the fake's URL")
        .personal_token("ghp_notARealToken0000000000000000000000")
        .add_retry_config(RetryConfig::None)
        .build()
        .expect("an octocrab client")
}

/// Clones the repository, commits `file` on a new branch and pushes it with plain `git`.
fn push_branch(clone_url: &str, branch: &str, file: &str, content: &str) {
    let work = tempfile::tempdir().expect("a work dir");
    let run = |dir: &Path, args: &[&str]| {
        let output = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    run(work.path(), &["clone", "--quiet", clone_url, "checkout"]);
    let checkout = work.path().join("checkout");
    run(&checkout, &["checkout", "--quiet", "-b", branch]);
    std::fs::write(checkout.join(file), content).expect("writing the change");
    run(&checkout, &["commit", "--quiet", "-am", "Change"]);
    run(&checkout, &["push", "--quiet", "origin", branch]);
}

#[tokio::test]
async fn comments_are_created_listed_and_edited_through_octocrab() {
    let github = world().await;
    let octocrab = token_client(&github);
    let issues = octocrab.issues("acme", "calculator");

    let created = issues.create_comment(1, "Working on it").await.expect("a created comment");
    assert!(created.id.0 > u64::from(u32::MAX), "comment ids exceed 32 bits: {}", created.id);
    assert_eq!(created.user.login, TOKEN_BOT_LOGIN, "a token's comments are authored by its user");
    assert_eq!(created.body.as_deref(), Some("Working on it"));

    let edited = issues.update_comment(created.id, "Done").await.expect("an edited comment");
    assert_eq!(edited.body.as_deref(), Some("Done"));

    let listed = issues.list_comments(1).per_page(100).send().await.expect("a page of comments");
    let bodies: Vec<_> = listed.items.iter().map(|c| c.body.clone().unwrap_or_default()).collect();
    assert_eq!(bodies, ["Done"]);

    let held = github.comments(REPO, 1);
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].author.as_str(), held[0].body.as_str(), held[0].edits), (TOKEN_BOT_LOGIN, "Done", 1));
    assert_eq!(held[0].history, ["Working on it"]);
    let update = github.requests().into_iter().find(|r| r.path.ends_with(&format!("/comments/{}", created.id)));
    assert_eq!(update.map(|r| r.method), Some("POST".to_owned()), "octocrab edits a comment with POST");
}

#[tokio::test]
async fn a_patch_edits_a_comment_too_and_a_missing_comment_is_404() {
    let github = world().await;
    let octocrab = token_client(&github);
    let id = github.add_issue_comment(REPO, 1, "octocat", "@agent fix this");

    let route = format!("/repos/{REPO}/issues/comments/{id}");
    let edited: Value =
        octocrab.patch(route, Some(&serde_json::json!({"body": "@agent fix it"}))).await.expect("PATCH");
    assert_eq!(edited["body"], "@agent fix it");
    assert_eq!(github.comments(REPO, 1)[0].body, "@agent fix it");

    let missing = octocrab.get::<Value, _, _>(format!("/repos/{REPO}/issues/comments/1"), None::<&()>).await;
    match missing {
        Err(octocrab::Error::GitHub { source, .. }) => {
            assert_eq!(source.status_code.as_u16(), 404);
            assert_eq!(source.message, "Not Found");
        }
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn reacting_twice_with_the_same_content_keeps_one_reaction() {
    let github = world().await;
    let octocrab = token_client(&github);
    let comment = github.add_issue_comment(REPO, 1, "octocat", "@agent fix this");
    let issues = octocrab.issues("acme", "calculator");

    let first = issues.create_comment_reaction(CommentId(comment), ReactionContent::Eyes).await.expect("a reaction");
    assert_eq!(first.content, ReactionContent::Eyes);
    assert_eq!(first.user.login, TOKEN_BOT_LOGIN);
    let again = issues.create_comment_reaction(CommentId(comment), ReactionContent::Eyes).await.expect("a reaction");
    assert_eq!(again.id, first.id, "GitHub answers the existing reaction");
    issues.create_comment_reaction(CommentId(comment), ReactionContent::PlusOne).await.expect("a reaction");

    assert_eq!(github.reactions(REPO, comment), ["eyes", "+1"]);
    let statuses: Vec<u16> =
        github.requests().iter().filter(|r| r.path.ends_with("/reactions")).map(|r| r.status).collect();
    assert_eq!(statuses, [201, 200, 201]);
}

#[tokio::test]
async fn a_pushed_branch_becomes_a_pull_request_and_a_second_one_is_refused_with_422() {
    let github = world().await;
    let repo = github.clone_url(REPO);
    push_branch(&repo, "errand/issue-1-fix", "calc.sh", "add() { echo $(( $1 + $2 )); }\n");
    assert_eq!(github.branches(REPO), ["errand/issue-1-fix", "main"]);
    let octocrab = token_client(&github);
    let pulls = octocrab.pulls("acme", "calculator");

    let pull = pulls
        .create("Make add() add", "errand/issue-1-fix", "main")
        .body("Closes #1")
        .draft(true)
        .send()
        .await
        .expect("a pull request");
    assert_eq!(pull.number, 2, "issues and pull requests share numbers");
    assert!(pull.id.0 > u64::from(u32::MAX));
    assert_eq!(pull.head.ref_field, "errand/issue-1-fix");
    assert_eq!(pull.head.sha, github.sha_of(REPO, "errand/issue-1-fix").expect("the branch"));
    assert_eq!(pull.base.ref_field, "main");
    assert_eq!(pull.draft, Some(true));
    let html_url = pull.html_url.expect("an html_url").to_string();
    assert_eq!(html_url, format!("{}/acme/calculator/pull/2", github.api_url()));

    let duplicate = pulls.create("Again", "errand/issue-1-fix", "main").send().await;
    match duplicate {
        Err(octocrab::Error::GitHub { source, .. }) => {
            assert_eq!(source.status_code.as_u16(), 422);
            assert_eq!(source.message, "Validation Failed");
            let errors = source.errors.expect("errors");
            assert_eq!(errors[0]["message"], "A pull request already exists for acme:errand/issue-1-fix.");
            assert_eq!(errors[0]["code"], "custom");
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    let unknown_head = pulls.create("Nothing", "no-such-branch", "main").send().await;
    assert!(matches!(unknown_head, Err(octocrab::Error::GitHub { ref source, .. }) if source.status_code == 422));

    let held = github.pull_requests(REPO);
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].title.as_str(), held[0].body.as_str(), held[0].user.as_str()),
        ("Make add() add", "Closes #1", TOKEN_BOT_LOGIN)
    );
    assert_eq!(github.file_at(REPO, &held[0].head, "calc.sh").as_deref(), Some("add() { echo $(( $1 + $2 )); }\n"));
}

#[tokio::test]
async fn pull_requests_are_listed_by_head_and_updated() {
    let github = world().await;
    let clone_url = github.clone_url(REPO);
    push_branch(&clone_url, "one", "README.md", "one\n");
    push_branch(&clone_url, "two", "README.md", "two\n");
    let octocrab = token_client(&github);
    let pulls = octocrab.pulls("acme", "calculator");
    pulls.create("One", "one", "main").send().await.expect("PR one");
    let two = pulls.create("Two", "acme:two", "main").send().await.expect("PR two");

    let found = pulls
        .list()
        .head("acme:two")
        .state(octocrab::params::State::All)
        .send()
        .await
        .expect("a page of pull requests");
    let numbers: Vec<u64> = found.items.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [two.number]);

    pulls
        .update(two.number)
        .body("New body")
        .state(octocrab::params::pulls::State::Closed)
        .send()
        .await
        .expect("update");
    let open = pulls.list().head("acme:two").send().await.expect("open ones");
    assert!(open.items.is_empty(), "a closed pull request is not listed as open");
    let fetched = pulls.get(two.number).await.expect("the pull request");
    assert_eq!(fetched.body.as_deref(), Some("New body"));
    assert_eq!(fetched.state, Some(octocrab::models::IssueState::Closed));
}

#[tokio::test]
async fn file_contents_come_base64_encoded_from_the_bare_repository() {
    let github = world().await;
    let octocrab = token_client(&github);
    let repos = octocrab.repos("acme", "calculator");

    let mut file = repos.get_content().path("docs/usage.md").r#ref("main").send().await.expect("contents");
    let items = file.take_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].encoding.as_deref(), Some("base64"));
    assert_eq!(items[0].decoded_content().as_deref(), Some("add 2 3\n"));

    let root = repos.get_content().send().await.expect("the root listing").items;
    let mut names: Vec<_> = root.iter().map(|c| (c.name.as_str(), c.r#type.as_str())).collect();
    names.sort();
    assert_eq!(names, [("README.md", "file"), ("calc.sh", "file"), ("docs", "dir")]);

    let missing = repos.get_content().path("nope.txt").send().await;
    assert!(matches!(missing, Err(octocrab::Error::GitHub { ref source, .. }) if source.status_code == 404));

    let repository = repos.get().await.expect("the repository");
    assert_eq!(repository.default_branch.as_deref(), Some("main"));
    assert_eq!(repository.clone_url.map(|u| u.to_string()), Some(github.clone_url(REPO)));
}

#[tokio::test]
async fn long_files_are_wrapped_at_60_characters_like_github() {
    let github = FakeGithub::start().await;
    let long = "x".repeat(200);
    github.add_repo("acme/long", &[("long.txt", &long)]);
    let octocrab = token_client(&github);

    let raw: Value = octocrab.get("/repos/acme/long/contents/long.txt", None::<&()>).await.expect("contents");
    let content = raw["content"].as_str().expect("content");
    assert!(content.lines().all(|l| l.len() <= 60), "{content}");
    assert_eq!(content.lines().next().map(str::len), Some(60));
    assert!(content.ends_with('\n'));
}

#[tokio::test]
async fn permissions_are_read_raw_with_the_role_and_unknown_users_are_404() {
    let github = world().await;
    github.set_permission(REPO, "octocat", "write");
    github.set_permission(REPO, "triager", "triage");
    let octocrab = token_client(&github);
    let permission = |user: &str| {
        let octocrab = octocrab.clone();
        let route = format!("/repos/{REPO}/collaborators/{user}/permission");
        async move { octocrab.get::<Value, _, _>(route, None::<&()>).await }
    };

    let writer = permission("octocat").await.expect("a permission");
    assert_eq!((writer["permission"].as_str(), writer["role_name"].as_str()), (Some("write"), Some("write")));
    assert_eq!(writer["user"]["login"], "octocat");
    assert_eq!(writer["user"]["permissions"]["push"], true);
    let triager = permission("triager").await.expect("a permission");
    assert_eq!((triager["permission"].as_str(), triager["role_name"].as_str()), (Some("read"), Some("triage")));

    match permission("nobody-at-all").await {
        Err(octocrab::Error::GitHub { source, .. }) => assert_eq!(source.status_code.as_u16(), 404),
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn an_app_mints_an_installation_token_and_the_next_call_carries_it() {
    let github = world().await;
    let app = Octocrab::builder()
        .base_uri(github.api_url())
        .expect("the fake's URL")
        .app(
            AppId(1234),
            octocrab::EncodingKey::from_rsa_pem(generate_app_private_key_pem().as_bytes()).expect("a key"),
        )
        .add_retry_config(RetryConfig::None)
        .build()
        .expect("an App client");

    let (installation, token) =
        app.installation_and_token(InstallationId(INSTALLATION_ID)).await.expect("an installation token");
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    assert!(token.starts_with("ghs_"), "{token}");
    let comment = installation.issues("acme", "calculator").create_comment(1, "From the App").await.expect("a comment");
    assert_eq!(comment.user.login, APP_BOT_LOGIN);
    assert_eq!(comment.user.r#type, "Bot");

    let requests = github.requests();
    let mint = &requests[0];
    assert_eq!(mint.path, format!("/app/installations/{INSTALLATION_ID}/access_tokens"));
    assert_eq!(mint.auth, AuthKind::AppJwt { app_id: "1234".to_owned() });
    let post = requests.iter().find(|r| r.path.ends_with("/issues/1/comments")).expect("the comment request");
    assert_eq!(post.auth, AuthKind::Installation { installation_id: INSTALLATION_ID });
    assert_eq!(post.authorization.as_deref(), Some(format!("Bearer {token}").as_str()));
    assert_eq!(github.comments(REPO, 1)[0].author, APP_BOT_LOGIN);
}

#[tokio::test]
async fn check_runs_need_an_app_and_a_plain_token_gets_403() {
    let github = world().await;
    let sha = github.sha_of(REPO, "main").expect("main");
    let octocrab = token_client(&github);

    let refused = octocrab.checks("acme", "calculator").create_check_run("errand", &sha).send().await;
    match refused {
        Err(octocrab::Error::GitHub { source, .. }) => {
            assert_eq!(source.status_code.as_u16(), 403);
            assert_eq!(source.message, "Resource not accessible by personal access token");
        }
        other => panic!("expected a 403, got {other:?}"),
    }

    let app = Octocrab::builder()
        .base_uri(github.api_url())
        .expect("the fake's URL")
        .app(AppId(1), octocrab::EncodingKey::from_rsa_pem(generate_app_private_key_pem().as_bytes()).expect("a key"))
        .add_retry_config(RetryConfig::None)
        .build()
        .expect("an App client")
        .installation(InstallationId(INSTALLATION_ID))
        .expect("an installation client");
    let checks = app.checks("acme", "calculator");
    let run = checks
        .create_check_run("errand", &sha)
        .status(octocrab::params::checks::CheckRunStatus::InProgress)
        .send()
        .await
        .expect("a check run");
    checks
        .update_check_run(run.id)
        .conclusion(octocrab::params::checks::CheckRunConclusion::Success)
        .output(octocrab::params::checks::CheckRunOutput {
            title: "All checks passed".into(),
            summary: "1/1".into(),
            text: None,
            annotations: vec![],
            images: vec![],
        })
        .send()
        .await
        .expect("an updated check run");

    let runs = github.check_runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].status.as_str(), runs[0].conclusion.as_deref()), ("completed", Some("success")));
    assert_eq!(runs[0].output_title.as_deref(), Some("All checks passed"));
}

#[tokio::test]
async fn an_injected_502_is_seen_once_and_after_effect_still_does_the_work() {
    let github = world().await;
    let octocrab = token_client(&github);
    let issues = octocrab.issues("acme", "calculator");
    github.fail_next("POST", "/issues/1/comments", 502, 1, true);

    let failed = issues.create_comment(1, "First try").await;
    match failed {
        Err(octocrab::Error::GitHub { source, .. }) => assert_eq!(source.status_code.as_u16(), 502),
        other => panic!("expected a 502, got {other:?}"),
    }
    assert_eq!(github.comments(REPO, 1).len(), 1, "the comment was made before the 502");

    issues.create_comment(1, "Second try").await.expect("the fault was used up");
    assert_eq!(github.comments(REPO, 1).len(), 2);

    github.fail_next("GET", "/repos/acme/*/issues/1", 429, 1, false);
    match issues.get(1).await {
        Err(octocrab::Error::GitHub { source, .. }) => {
            assert_eq!(source.status_code.as_u16(), 429);
            let headers = source.headers.expect("headers");
            assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    let issue = issues.get(1).await.expect("the issue once the fault is used up");
    assert_eq!(issue.title, "add() returns the wrong sum");
    assert_eq!(issue.comments, 2);
}

#[tokio::test]
async fn unexpected_calls_are_404_and_recorded() {
    let github = world().await;
    let octocrab = token_client(&github);

    let answer = octocrab.get::<Value, _, _>("/repos/acme/calculator/releases", None::<&()>).await;
    assert!(matches!(answer, Err(octocrab::Error::GitHub { ref source, .. }) if source.status_code == 404));
    let user = octocrab.current().user().await.expect("the token's user");
    assert_eq!(user.login, TOKEN_BOT_LOGIN);

    let unexpected = github.unexpected_requests();
    assert_eq!(unexpected.len(), 1);
    assert_eq!(
        (unexpected[0].method.as_str(), unexpected[0].path.as_str()),
        ("GET", "/repos/acme/calculator/releases")
    );
    assert_eq!(unexpected[0].auth, AuthKind::Token);
}

#[tokio::test]
async fn the_issue_comment_webhook_parses_as_octocrab_webhook_event() {
    let github = world().await;
    let comment = github.add_issue_comment(REPO, 1, "some-app[bot]", "@agent fix this");

    let payload = github.issue_comment_webhook(REPO, 1, comment);
    assert_eq!(payload["sender"]["type"], "Bot");
    assert_eq!(payload["installation"]["id"], INSTALLATION_ID);
    let body = serde_json::to_vec(&payload).expect("JSON");
    let event = octocrab::models::webhook_events::WebhookEvent::try_from_header_and_body("issue_comment", &body)
        .expect("a webhook event");
    let octocrab::models::webhook_events::WebhookEventPayload::IssueComment(specific) = event.specific else {
        panic!("not an issue_comment event");
    };
    assert_eq!(specific.comment.id.0, comment);
    assert_eq!(specific.comment.body.as_deref(), Some("@agent fix this"));
    assert_eq!(specific.issue.number, 1);
    assert_eq!(event.repository.and_then(|r| r.full_name).as_deref(), Some(REPO));
}

#[tokio::test]
async fn the_server_stops_when_the_last_handle_is_dropped() {
    let github = world().await;
    let octocrab = token_client(&github);
    let copy = github.clone();
    drop(github);
    octocrab.current().user().await.expect("a clone keeps the server running");

    drop(copy);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), octocrab.current().user()).await;
    match answer {
        Ok(Err(octocrab::Error::GitHub { source, .. })) => panic!("the server still answered {}", source.status_code),
        Ok(Ok(user)) => panic!("the server still answered as {}", user.login),
        Ok(Err(_)) => {}
        Err(_) => panic!("the call hung instead of failing"),
    }
}

#[tokio::test]
async fn a_body_longer_than_githubs_limit_is_refused_with_422() {
    let github = world().await;
    let octocrab = token_client(&github);
    let issues = octocrab.issues("acme", "calculator");

    let refused = issues.create_comment(1, "é".repeat(65_537)).await;
    match refused {
        Err(octocrab::Error::GitHub { source, .. }) => {
            assert_eq!(source.status_code.as_u16(), 422);
            let errors = source.errors.expect("errors");
            assert_eq!(errors[0]["message"], "body is too long (maximum is 65536 characters)");
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    issues.create_comment(1, "é".repeat(65_536)).await.expect("the limit counts characters, not bytes");
    assert_eq!(github.comments(REPO, 1).len(), 1);
}
