//! The fake GitHub speaks GitHub well enough for the real octocrab client: its answers
//! deserialize into octocrab's strict models, and its state changes the way GitHub's would.

// The module alone, not `mod support`: it must stand on its own (the quick start includes it the
// same way), and this test should not wait for the rest of the support code to build.
#[path = "support/fake_github/mod.rs"]
mod fake_github;

use std::path::Path;
use std::process::Command;

use fake_github::{
    APP_BOT_LOGIN, AuthKind, FakeGithub, INSTALLATION_ID, TOKEN_BOT_LOGIN, generate_app_private_key_pem,
};
use octocrab::Octocrab;
use octocrab::models::reactions::ReactionContent;
use octocrab::models::webhook_events::{WebhookEvent, WebhookEventPayload};
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

/// The calculator with a fix on `errand/issue-1-abcd`, opened as pull request #2 by the bot, and
/// a review of it by `octocat` with two comments (one on the changed line, one on an unchanged
/// one); returns (pull number, review id, comment ids).
fn reviewed_pull(github: &FakeGithub) -> (u64, u64, Vec<u64>) {
    github.add_branch(
        REPO,
        "errand/issue-1-abcd",
        "main",
        &[("calc.sh", "# Adds two numbers.\nadd() { echo $(( $1 + $2 )); }\n")],
        "Make add() add",
    );
    let pull = github.add_pull(REPO, "errand/issue-1-abcd", "main", "Make add() add", "Closes #1", APP_BOT_LOGIN);
    let (review, comments) = github.add_review(
        REPO,
        pull,
        "octocat",
        "Nearly there",
        &[("calc.sh", 2, "Use printf, @errand"), ("README.md", 1, "Mention add() here")],
    );
    (pull, review, comments)
}

fn github_error(result: Result<impl std::fmt::Debug, octocrab::Error>) -> (u16, String, Option<Vec<Value>>) {
    match result {
        Err(octocrab::Error::GitHub { source, .. }) => (source.status_code.as_u16(), source.message, source.errors),
        other => panic!("expected an error from GitHub, got {other:?}"),
    }
}

#[tokio::test]
async fn review_comments_are_listed_oldest_first_with_their_thread_and_hunk() {
    let github = world().await;
    let (pull, review, comments) = reviewed_pull(&github);
    let reply = github.add_review_reply(REPO, pull, comments[0], "octocat", "Or echo, fine");
    let octocrab = token_client(&github);
    let pulls = octocrab.pulls("acme", "calculator");
    let head = github.sha_of(REPO, "errand/issue-1-abcd").expect("the head");

    let listed = pulls.list_comments(Some(pull)).per_page(100).send().await.expect("review comments");
    let ids: Vec<u64> = listed.items.iter().map(|c| c.id.0).collect();
    assert_eq!(ids, [comments[0], comments[1], reply]);
    assert!(ids.iter().all(|id| *id > u64::from(u32::MAX)));
    let first = &listed.items[0];
    assert_eq!((first.path.as_str(), first.line, first.original_line), ("calc.sh", Some(2), Some(2)));
    assert_eq!(first.pull_request_review_id.map(|r| r.0), Some(review));
    assert_eq!(first.in_reply_to_id, None);
    assert_eq!((first.commit_id.as_str(), first.original_commit_id.as_str()), (head.as_str(), head.as_str()));
    assert_eq!(first.user.as_ref().map(|u| u.login.as_str()), Some("octocat"));
    assert_eq!(first.body, "Use printf, @errand");
    assert_eq!(
        first.diff_hunk,
        "@@ -1 +1,2 @@\n-add() { echo $(( $1 - $2 )); }\n+# Adds two numbers.\n+add() { echo $(( $1 + $2 )); }"
    );
    assert_eq!(first.html_url, format!("{}/acme/calculator/pull/{pull}#discussion_r{}", github.api_url(), comments[0]));
    let outside_the_diff = &listed.items[1];
    assert_eq!(outside_the_diff.diff_hunk, "@@ -1,1 +1,1 @@\n # Calculator");
    let threaded = &listed.items[2];
    assert_eq!(threaded.in_reply_to_id.map(|c| c.0), Some(comments[0]));
    assert_ne!(threaded.pull_request_review_id.map(|r| r.0), Some(review), "a reply has a review of its own");
    assert_eq!((threaded.path.as_str(), threaded.diff_hunk.as_str()), ("calc.sh", first.diff_hunk.as_str()));

    let raw: Value = octocrab.get(format!("/repos/{REPO}/pulls/{pull}/comments"), None::<&()>).await.expect("raw");
    assert!(raw[0].get("in_reply_to_id").is_none(), "GitHub leaves in_reply_to_id out of a thread's first comment");
    assert_eq!(raw[0]["pull_request_url"], format!("{}/repos/{REPO}/pulls/{pull}", github.api_url()));
    let page: Value =
        octocrab.get(format!("/repos/{REPO}/pulls/{pull}/comments"), Some(&[("per_page", "2")])).await.expect("page");
    assert_eq!(page.as_array().map(Vec::len), Some(2));

    let of_review: Value = octocrab
        .get(format!("/repos/{REPO}/pulls/{pull}/reviews/{review}/comments"), None::<&()>)
        .await
        .expect("the review's comments");
    let of_review: Vec<&Value> = of_review.as_array().expect("a list").iter().map(|c| &c["id"]).collect();
    assert_eq!(of_review, [comments[0], comments[1]]);
    let reviews = pulls.list_reviews(pull).send().await.expect("reviews");
    let states: Vec<_> = reviews.items.iter().map(|r| (r.id.0, r.state, r.body.clone())).collect();
    let commented = Some(octocrab::models::pulls::ReviewState::Commented);
    assert_eq!(states[0], (review, commented, Some("Nearly there".to_owned())));
    assert_eq!(states[1].2.as_deref(), Some(""), "a reply's review has an empty body");
    assert_eq!(github.reviews(REPO, pull).len(), 2);

    let missing = octocrab.get::<Value, _, _>(format!("/repos/{REPO}/pulls/1/comments"), None::<&()>).await;
    assert_eq!(github_error(missing).0, 404, "#1 is an issue, not a pull request");
}

#[tokio::test]
async fn a_push_that_changes_the_commented_line_makes_the_comment_outdated() {
    let github = world().await;
    let (pull, _, comments) = reviewed_pull(&github);
    let reviewed = github.sha_of(REPO, "errand/issue-1-abcd").expect("the head");
    let fixed = github.add_branch(
        REPO,
        "errand/issue-1-abcd",
        "errand/issue-1-abcd",
        &[("calc.sh", "# Adds two numbers.\nadd() { printf '%d\\n' $(( $1 + $2 )); }\n")],
        "Use printf",
    );
    assert_eq!(github.branch_log(REPO, "errand/issue-1-abcd"), ["Use printf", "Make add() add", "Initial commit"]);
    let octocrab = token_client(&github);
    let pulls = octocrab.pulls("acme", "calculator");

    assert_eq!(pulls.get(pull).await.expect("the pull request").head.sha, fixed);
    let changed = pulls.comment(comments[0].into()).get().await.expect("the comment");
    assert_eq!((changed.line, changed.original_line, changed.position), (None, Some(2), None));
    assert_eq!(
        (changed.commit_id.as_str(), changed.original_commit_id.as_str()),
        (reviewed.as_str(), reviewed.as_str())
    );
    let unchanged = pulls.comment(comments[1].into()).get().await.expect("the comment");
    assert_eq!((unchanged.line, unchanged.commit_id.as_str()), (Some(1), fixed.as_str()));
    assert_eq!(github.sha_of(REPO, &format!("refs/pull/{pull}/head")), Some(fixed), "the push moved refs/pull/N/head");
}

#[tokio::test]
async fn a_reply_goes_into_the_thread_and_a_reply_to_a_reply_is_422() {
    let github = world().await;
    let (pull, review, comments) = reviewed_pull(&github);
    let octocrab = token_client(&github);
    let pulls = octocrab.pulls("acme", "calculator");

    let reply = pulls.reply_to_comment(pull, comments[0].into(), "Done in abc123").await.expect("a reply");
    assert_eq!(reply.in_reply_to_id.map(|c| c.0), Some(comments[0]));
    assert_eq!(reply.user.as_ref().map(|u| u.login.as_str()), Some(TOKEN_BOT_LOGIN));
    assert_eq!((reply.path.as_str(), reply.original_line), ("calc.sh", Some(2)));
    let reply_review = reply.pull_request_review_id.expect("a review").0;
    assert_ne!(reply_review, review);
    let post = github.requests().into_iter().find(|r| r.path.ends_with("/replies")).expect("the reply request");
    assert_eq!(post.status, 201);

    let (status, message, errors) = github_error(pulls.reply_to_comment(pull, reply.id, "Again").await);
    assert_eq!((status, message.as_str()), (422, "Validation Failed"));
    assert_eq!(errors.expect("errors")[0]["resource"], "PullRequestReviewComment");
    let other = github.add_pull(REPO, "errand/issue-1-abcd", "main", "Same branch again", "", "octocat");
    assert_eq!(github_error(pulls.reply_to_comment(other, comments[0].into(), "Hm").await).0, 404);
    let no_body = octocrab
        .post::<_, Value>(
            format!("/repos/{REPO}/pulls/{pull}/comments/{}/replies", comments[0]),
            Some(&serde_json::json!({})),
        )
        .await;
    assert_eq!(github_error(no_body).0, 422);

    let held = github.review_comments(REPO, pull);
    assert_eq!(held.len(), 3);
    assert_eq!(
        (held[2].id, held[2].in_reply_to, held[2].review_id, held[2].author.as_str()),
        (reply.id.0, Some(comments[0]), reply_review, TOKEN_BOT_LOGIN)
    );
    let reviews = github.reviews(REPO, pull);
    assert_eq!(reviews.len(), 2);
    assert_eq!(
        (reviews[1].id, reviews[1].author.as_str(), reviews[1].body.as_str()),
        (reply_review, TOKEN_BOT_LOGIN, "")
    );
    assert_eq!(reviews[1].state, "COMMENTED");
}

#[tokio::test]
async fn a_review_comment_is_edited_with_patch_and_its_history_kept() {
    let github = world().await;
    let (pull, _, comments) = reviewed_pull(&github);
    let octocrab = token_client(&github);
    let pulls = octocrab.pulls("acme", "calculator");

    let edited = pulls.comment(comments[1].into()).update("Mention add() in the README").await.expect("an edit");
    assert_eq!(edited.body, "Mention add() in the README");
    assert_eq!(pulls.comment(comments[1].into()).get().await.expect("the comment").body, "Mention add() in the README");
    assert_eq!(github_error(pulls.comment(1.into()).update("x").await).0, 404);

    let previous = github.edit_review_comment(REPO, comments[1], "Mention add() and sub()");
    assert_eq!(previous, "Mention add() in the README");
    let held = &github.review_comments(REPO, pull)[1];
    assert_eq!((held.body.as_str(), held.edits), ("Mention add() and sub()", 2));
    assert_eq!(held.history, ["Mention add() here", "Mention add() in the README"]);
}

#[tokio::test]
async fn branches_say_whether_they_are_protected_and_names_may_contain_slashes() {
    let github = world().await;
    let sha = github.add_branch(REPO, "errand/issue-1-abcd", "main", &[("NEW.md", "new\n")], "Add NEW.md");
    github.protect_branch(REPO, "main");
    let octocrab = token_client(&github);
    let repos = octocrab.repos("acme", "calculator");
    let branches = repos.branches();

    let main = branches.get("main").await.expect("main");
    assert!(main.protected);
    assert_eq!(main.commit.sha, github.sha_of(REPO, "main").expect("main"));
    assert_eq!(main.protection.map(|p| p.enabled), Some(true));
    let topic = branches.get("errand/issue-1-abcd").await.expect("a branch with a slash");
    assert_eq!(
        (topic.name.as_str(), topic.protected, topic.commit.sha.as_str()),
        ("errand/issue-1-abcd", false, sha.as_str())
    );
    assert_eq!(topic.commit.commit.message, "Add NEW.md");
    assert_eq!(topic.commit.parents.len(), 1);

    let raw: Value =
        octocrab.get(format!("/repos/{REPO}/branches/errand/issue-1-abcd"), None::<&()>).await.expect("raw");
    assert_eq!(raw["protection"]["enabled"], false);
    assert_eq!(raw["protection"]["required_status_checks"]["enforcement_level"], "off");
    assert_eq!(raw["_links"]["self"], format!("{}/repos/{REPO}/branches/errand/issue-1-abcd", github.api_url()));
    let (status, message, _) = github_error(branches.get("errand/nope").await);
    assert_eq!((status, message.as_str()), (404, "Branch not found"));
    assert_eq!(github.branch_log(REPO, "errand/issue-1-abcd"), ["Add NEW.md", "Initial commit"]);
    assert!(github.unexpected_requests().is_empty());
}

#[tokio::test]
async fn a_fork_pull_request_lives_only_at_refs_pull_and_names_the_fork_as_its_head_repo() {
    let github = world().await;
    let octocrab = token_client(&github);
    let pulls = octocrab.pulls("acme", "calculator");
    let fork = github.add_fork_pull(
        REPO,
        "contributor/calculator",
        "fix-add",
        "main",
        "Fix add()",
        "contributor",
        &[("calc.sh", "add() { echo $(( $1 + $2 )); }\n")],
    );

    let pull = pulls.get(fork).await.expect("the fork's pull request");
    let head_repo = pull.head.repo.as_ref().expect("head.repo");
    assert_eq!(head_repo.fork, Some(true));
    assert_eq!(head_repo.full_name.as_deref(), Some("contributor/calculator"));
    assert_eq!(head_repo.owner.as_ref().map(|o| o.login.as_str()), Some("contributor"));
    assert_eq!((pull.head.ref_field.as_str(), pull.head.label.as_deref()), ("fix-add", Some("contributor:fix-add")));
    assert_eq!(pull.maintainer_can_modify, Some(false));
    assert_eq!(pull.base.repo.as_ref().and_then(|r| r.full_name.as_deref()), Some(REPO));
    let refs_pull = format!("refs/pull/{fork}/head");
    assert_eq!(github.sha_of(REPO, &refs_pull).as_deref(), Some(pull.head.sha.as_str()));
    assert_eq!(github.branches(REPO), ["main"], "a fork's branch is not a branch here");
    assert_eq!(github.file_at(REPO, &refs_pull, "calc.sh").as_deref(), Some("add() { echo $(( $1 + $2 )); }\n"));
    assert_eq!(github.branch_log(REPO, &refs_pull), ["Fix add()", "Initial commit"]);
    let listed = pulls.list().head("contributor:fix-add").send().await.expect("listed by the fork's head");
    assert_eq!(listed.items.iter().map(|p| p.number).collect::<Vec<_>>(), [fork]);
    let held = &github.pull_requests(REPO)[0];
    assert_eq!((held.head.as_str(), held.head_repo.as_str()), ("fix-add", "contributor/calculator"));

    push_branch(&github.clone_url(REPO), "own", "README.md", "own\n");
    let own = pulls.create("Own", "own", "main").send().await.expect("a same-repository pull request");
    let own_repo = own.head.repo.as_ref().expect("head.repo");
    assert_eq!((own_repo.full_name.as_deref(), own_repo.fork), (Some(REPO), Some(false)));
    assert_eq!(own.maintainer_can_modify, Some(false));
    assert_eq!((own.merged, own.locked), (Some(false), false));
    assert_eq!(github.sha_of(REPO, &format!("refs/pull/{}/head", own.number)), github.sha_of(REPO, "own"));

    github.close_pull(REPO, own.number, true);
    let merged = pulls.get(own.number).await.expect("the merged pull request");
    assert_eq!((merged.merged, merged.merged_at.is_some()), (Some(true), true));
    let as_issue = octocrab.issues("acme", "calculator").get(own.number).await.expect("a pull request is an issue");
    assert!(as_issue.pull_request.is_some());
}

#[tokio::test]
async fn reactions_on_issues_and_review_comments_are_made_once_per_user_and_content() {
    let github = world().await;
    let (pull, _, comments) = reviewed_pull(&github);
    let octocrab = token_client(&github);
    let issues = octocrab.issues("acme", "calculator");
    let pulls = octocrab.pulls("acme", "calculator");

    let first = issues.create_reaction(1, ReactionContent::Eyes).await.expect("a reaction on the issue");
    let again = issues.create_reaction(1, ReactionContent::Eyes).await.expect("the same reaction");
    assert_eq!(again.id, first.id);
    issues.create_reaction(pull, ReactionContent::Rocket).await.expect("a reaction on the pull request");
    let on_comment = pulls.create_comment_reaction(comments[0], ReactionContent::Eyes).await.expect("a reaction");
    assert_eq!(on_comment.user.login, TOKEN_BOT_LOGIN);
    let twice = pulls.create_comment_reaction(comments[0], ReactionContent::Eyes).await.expect("the same one");
    assert_eq!(twice.id, on_comment.id);
    pulls.create_comment_reaction(comments[0], ReactionContent::PlusOne).await.expect("another one");

    assert_eq!(github.issue_reactions(REPO, 1), ["eyes"]);
    assert_eq!(github.issue_reactions(REPO, pull), ["rocket"]);
    assert_eq!(github.review_comment_reactions(REPO, comments[0]), ["eyes", "+1"]);
    assert!(github.review_comment_reactions(REPO, comments[1]).is_empty());
    let statuses: Vec<u16> =
        github.requests().iter().filter(|r| r.path.ends_with("/reactions")).map(|r| r.status).collect();
    assert_eq!(statuses, [201, 200, 201, 201, 200, 201]);

    let issue: Value = octocrab.get(format!("/repos/{REPO}/issues/1"), None::<&()>).await.expect("the issue");
    assert_eq!((issue["reactions"]["total_count"].as_u64(), issue["reactions"]["eyes"].as_u64()), (Some(1), Some(1)));
    let comment: Value =
        octocrab.get(format!("/repos/{REPO}/pulls/comments/{}", comments[0]), None::<&()>).await.expect("comment");
    assert_eq!(comment["reactions"]["total_count"], 2);
    let missing = issues.create_reaction(99, ReactionContent::Eyes).await;
    assert_eq!(github_error(missing).0, 404);
    let bad = octocrab
        .post::<_, Value>(format!("/repos/{REPO}/issues/1/reactions"), Some(&serde_json::json!({"content": "tada"})))
        .await;
    assert_eq!(github_error(bad).0, 422);
}

#[tokio::test]
async fn review_webhooks_carry_the_comment_the_pull_request_and_what_changed() {
    let github = world().await;
    let (pull, review, comments) = reviewed_pull(&github);
    let reply = github.add_review_reply(REPO, pull, comments[0], "octocat", "@errand also handle overflow");
    let parse = |event: &str, payload: &Value| {
        WebhookEvent::try_from_header_and_body(event, &serde_json::to_vec(payload).expect("JSON"))
            .unwrap_or_else(|e| panic!("a {event} event: {e}"))
    };

    let created = github.review_comment_webhook(REPO, pull, reply);
    assert_eq!(created["action"], "created");
    assert_eq!(created["comment"]["id"], reply);
    assert_eq!(created["comment"]["in_reply_to_id"], comments[0]);
    assert_eq!(created["comment"]["body"], "@errand also handle overflow");
    assert_eq!(created["pull_request"]["number"], pull);
    assert_eq!(created["pull_request"]["head"]["ref"], "errand/issue-1-abcd");
    assert_eq!(created["installation"]["id"], INSTALLATION_ID);
    assert_eq!(created["sender"]["login"], "octocat");
    let event = parse("pull_request_review_comment", &created);
    let WebhookEventPayload::PullRequestReviewComment(specific) = event.specific else {
        panic!("not a review comment")
    };
    assert_eq!((specific.comment.id.0, specific.comment.in_reply_to_id.map(|c| c.0)), (reply, Some(comments[0])));
    assert_eq!(specific.pull_request.number, pull);
    assert_eq!(event.repository.and_then(|r| r.full_name).as_deref(), Some(REPO));
    let top_level = github.review_comment_webhook(REPO, pull, comments[0]);
    assert!(top_level["comment"].get("in_reply_to_id").is_none());
    assert_eq!(top_level["comment"]["pull_request_review_id"], review);

    let previous = github.edit_review_comment(REPO, comments[0], "Use printf, @errand, please");
    let edited = github.review_comment_edited_webhook(REPO, pull, comments[0], &previous);
    assert_eq!(
        (edited["action"].as_str(), edited["changes"]["body"]["from"].as_str()),
        (Some("edited"), Some("Use printf, @errand"))
    );
    assert_eq!(edited["comment"]["body"], "Use printf, @errand, please");
    let event = parse("pull_request_review_comment", &edited);
    let WebhookEventPayload::PullRequestReviewComment(specific) = event.specific else {
        panic!("not a review comment")
    };
    assert_eq!(specific.changes.and_then(|c| c.body).map(|b| b.from).as_deref(), Some("Use printf, @errand"));

    let submitted = github.review_webhook(REPO, pull, review);
    assert_eq!(
        (submitted["action"].as_str(), submitted["review"]["state"].as_str()),
        (Some("submitted"), Some("commented"))
    );
    assert_eq!(submitted["review"]["id"], review);
    assert_eq!(submitted["review"]["body"], "Nearly there");
    assert_eq!(submitted["pull_request"]["head"]["ref"], "errand/issue-1-abcd");
    let event = parse("pull_request_review", &submitted);
    let WebhookEventPayload::PullRequestReview(specific) = event.specific else { panic!("not a review") };
    assert_eq!((specific.review.id.0, specific.pull_request.number), (review, pull));
    let reply_review = github.review_comments(REPO, pull)[2].review_id;
    assert_eq!(github.review_webhook(REPO, pull, reply_review)["review"]["body"], Value::Null);

    let on_pull = github.add_issue_comment(REPO, pull, "octocat", "@errand rebase please");
    let comment = github.issue_comment_webhook(REPO, pull, on_pull);
    let marker = &comment["issue"]["pull_request"];
    assert_eq!(marker["url"], format!("{}/repos/{REPO}/pulls/{pull}", github.api_url()));
    assert!(["html_url", "diff_url", "patch_url"].iter().all(|field| marker[field].is_string()));
    let previous = github.edit_issue_comment(REPO, on_pull, "@errand rebase, please");
    let edited = github.issue_comment_edited_webhook(REPO, pull, on_pull, &previous);
    assert_eq!(
        (edited["action"].as_str(), edited["changes"]["body"]["from"].as_str()),
        (Some("edited"), Some("@errand rebase please"))
    );
    let event = parse("issue_comment", &edited);
    let WebhookEventPayload::IssueComment(specific) = event.specific else { panic!("not an issue comment") };
    assert_eq!(specific.comment.body.as_deref(), Some("@errand rebase, please"));
    assert_eq!(specific.changes.map(|c| c.body.from).as_deref(), Some("@errand rebase please"));
    assert!(specific.issue.pull_request.is_some());
    assert_eq!(github.comments(REPO, pull)[0].history, ["@errand rebase please"]);
}
