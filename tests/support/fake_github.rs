//! A stateful fake GitHub: a real HTTP server on a loopback port that holds a small world
//! (repositories backed by local bare git repositories, issues, comments, reactions, pull
//! requests with their reviews and review comments, branch protection, check runs, collaborator
//! permissions, installation tokens) and answers the REST calls errand makes with GitHub-shaped
//! JSON, reached through the real octocrab client. It also builds the webhook deliveries a
//! GitHub App would receive for what the test seeds (`issue_comment`, `pull_request_review`,
//! `pull_request_review_comment`).
//!
//! Responses start from GitHub's own examples (`tests/data/github/openapi-subset.json`, the
//! webhook examples and the recorded 422; see `tests/data/github/SOURCES.md`), with ids, numbers,
//! bodies, users and URLs replaced, so they deserialize into octocrab's strict models. Every
//! request is recorded with the authentication it carried, and faults can be injected per method
//! and path.
//!
//! As on GitHub, every pull request has `refs/pull/N/head` in the bare repository; a
//! `post-receive` hook moves it when the head branch of an open same-repository pull request is
//! pushed. A pull request from a fork ([`FakeGithub::add_fork_pull`]) exists only as that ref.
//!
//! The quick-start example includes this file with `#[path]`, so it depends on no other
//! test-support module and works outside `#[test]`.
#![allow(dead_code, reason = "each includer (test binaries, the quick start) uses a different part")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

/// The login comments and pull requests get when the caller uses an installation token.
pub const APP_BOT_LOGIN: &str = "errand-test[bot]";
/// The login `GET /user` answers for a plain token, and the author of what a plain token posts.
pub const TOKEN_BOT_LOGIN: &str = "errand-bot";
/// The installation the webhooks name and the App is installed as.
pub const INSTALLATION_ID: u64 = 42;

/// Resource ids (comments, reactions, pull requests, check runs, repositories) start above
/// 2^32, so a 32-bit truncation anywhere in errand shows up as a wrong id.
const FIRST_RESOURCE_ID: u64 = 5_000_000_000;
/// How long a minted installation token lives, as on GitHub.
const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
/// GitHub wraps base64 file contents at 60 characters.
const BASE64_LINE: usize = 60;
/// Commits made by `add_repo` carry this date, so their shas are the same on every run.
const FIXED_GIT_DATE: &str = "2026-01-01T00:00:00Z";
/// GitHub refuses comment and pull request bodies longer than this many characters.
const MAX_BODY_CHARS: usize = 65_536;
const REACTIONS: [&str; 8] = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];
/// In each bare repository: `N branch` for every open same-repository pull request, read by
/// [`POST_RECEIVE_HOOK`].
const PULL_MAP_FILE: &str = "fake-github-pulls";
/// GitHub moves `refs/pull/N/head` when the head branch of an open pull request is pushed; this
/// hook does the same in the bare repository (hooks run in the bare repository's directory).
const POST_RECEIVE_HOOK: &str = r#"#!/bin/sh
# Written by the fake GitHub (tests/support/fake_github.rs): keep refs/pull/N/head on the head
# branch of each open same-repository pull request, as GitHub does on push.
[ -f fake-github-pulls ] || exit 0
while read -r old new ref; do
  case "$ref" in refs/heads/*) branch="${ref#refs/heads/}" ;; *) continue ;; esac
  case "$new" in *[!0]*) ;; *) continue ;; esac
  while read -r number head; do
    if [ "$head" = "$branch" ]; then git update-ref "refs/pull/$number/head" "$new"; fi
  done < fake-github-pulls
done
exit 0
"#;

// ---------------------------------------------------------------------------------------------
// Public inspection types
// ---------------------------------------------------------------------------------------------

/// A repository added with [`FakeGithub::add_repo`].
#[derive(Debug, Clone)]
pub struct FakeRepo {
    pub full_name: String,
    /// `file:///…/owner/name.git`: clone and push here.
    pub clone_url: String,
    /// The bare repository on disk.
    pub path: PathBuf,
    /// The sha of the initial commit on `main`.
    pub initial_sha: String,
}

/// A pull request as the world holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    pub number: u64,
    pub id: u64,
    pub title: String,
    pub body: String,
    /// The head branch name (no `owner:` prefix).
    pub head: String,
    /// The repository the head branch lives in: this one, or the fork's `owner/name`.
    pub head_repo: String,
    pub base: String,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    pub draft: bool,
    pub user: String,
    pub html_url: String,
}

/// A pull request review comment (a comment on a line of the diff) as the world holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReviewComment {
    pub id: u64,
    /// The pull request's number.
    pub pull: u64,
    /// The review it belongs to (each reply gets a review of its own, as on GitHub).
    pub review_id: u64,
    /// For a reply, the thread's first comment.
    pub in_reply_to: Option<u64>,
    pub path: String,
    /// The line of the file at `commit_id` (`original_line` in GitHub's JSON).
    pub line: u64,
    pub author: String,
    /// The current text.
    pub body: String,
    /// How many times it was edited.
    pub edits: usize,
    /// Earlier texts, oldest first.
    pub history: Vec<String>,
    /// The head sha the comment was made on (`original_commit_id`).
    pub commit_id: String,
}

/// A pull request review as the world holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReview {
    pub id: u64,
    /// The pull request's number.
    pub pull: u64,
    pub author: String,
    pub body: String,
    /// `COMMENTED`, as the REST API writes it.
    pub state: String,
}

/// An issue comment as the world holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub id: u64,
    pub author: String,
    /// The current text.
    pub body: String,
    /// How many times it was edited.
    pub edits: usize,
    /// Earlier texts, oldest first.
    pub history: Vec<String>,
}

/// A check run as the world holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub external_id: Option<String>,
    pub output_title: Option<String>,
    pub output_summary: Option<String>,
    pub output_text: Option<String>,
}

/// The authentication a request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKind {
    Anonymous,
    /// `Bearer <token>` that is not an App JWT or an installation token: a personal access token.
    Token,
    /// `Bearer <jwt>` signed as a GitHub App (the JWT's `iss`; the signature is not checked).
    AppJwt {
        app_id: String,
    },
    /// `Bearer ghs_…` minted by this fake for the installation.
    Installation {
        installation_id: u64,
    },
    /// A `ghs_…` token this fake never minted, or one that expired.
    BadCredentials,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, empty when there was none.
    pub query: String,
    pub auth: AuthKind,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    pub body: Option<Value>,
    /// What the fake answered; `0` for a request it never answered (see
    /// [`FakeGithub::time_out_next`]).
    pub status: u16,
    /// False when no endpoint of the fake matched (the answer was a 404).
    pub matched: bool,
    /// When the fake recorded it (for a request it carried out, once done).
    pub at: std::time::Instant,
}

/// A request held by [`FakeGithub::hold_next`]; dropping it answers the request `503` without
/// carrying it out.
pub struct Hold {
    arrived: tokio::sync::watch::Receiver<bool>,
    release: Option<tokio::sync::oneshot::Sender<()>>,
    what: String,
}

impl Hold {
    /// Whether the held request has arrived (and is waiting).
    pub fn has_arrived(&self) -> bool {
        *self.arrived.borrow()
    }

    /// Waits until the held request arrives; panics after `timeout`, saying which request.
    pub async fn arrived(&mut self, timeout: std::time::Duration) {
        let what = self.what.clone();
        match tokio::time::timeout(timeout, self.arrived.wait_for(|arrived| *arrived)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => panic!("the fake GitHub stopped before the held request {what} arrived"),
            Err(_) => panic!("the held request {what} did not arrive within {timeout:?}"),
        }
    }

    /// Lets the held request be carried out and answered as usual.
    pub fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold").field("what", &self.what).field("arrived", &self.has_arrived()).finish()
    }
}

// ---------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------

/// A handle on a running fake GitHub. Clones share the world; the server stops and the bare
/// repositories are deleted when the last handle is dropped (or on [`FakeGithub::stop`]).
#[derive(Clone)]
pub struct FakeGithub {
    inner: Arc<Inner>,
}

struct Inner {
    api_url: String,
    world: Arc<Mutex<World>>,
    /// Cancelled on drop: the server stops accepting and closes its idle keep-alive
    /// connections (aborting the accept loop alone would leave pooled connections answering).
    shutdown: tokio_util::sync::CancellationToken,
    _repositories: tempfile::TempDir,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl FakeGithub {
    /// Starts the server on `127.0.0.1:0` in the current tokio runtime.
    pub async fn start() -> FakeGithub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port for the fake GitHub");
        let api_url = format!("http://{}", listener.local_addr().expect("its address"));
        let repositories = tempfile::tempdir().expect("a temp dir for the fake GitHub's repositories");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let world = Arc::new(Mutex::new(World::new(api_url.clone(), repositories.path().to_owned(), shutdown.clone())));
        let router = axum::Router::new().fallback(serve_request).with_state(world.clone());
        let stopped = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stopped).await {
                eprintln!("the fake GitHub stopped: {error}");
            }
        });
        FakeGithub { inner: Arc::new(Inner { api_url, world, shutdown, _repositories: repositories }) }
    }

    /// The base URI for octocrab, e.g. `http://127.0.0.1:PORT` (no trailing slash).
    pub fn api_url(&self) -> String {
        self.inner.api_url.clone()
    }

    /// Stops answering; later requests fail to connect.
    pub fn stop(&self) {
        self.inner.shutdown.cancel();
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.inner.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a public repository whose `main` holds one commit with `files` (paths may contain
    /// directories). Files named `*.sh` or starting with `#!` are executable.
    pub fn add_repo(&self, full_name: &str, files: &[(&str, &str)]) -> FakeRepo {
        let (owner, name) = split_full_name(full_name);
        let root = self.world().root.clone();
        let bare = root.join(owner).join(format!("{name}.git"));
        let seed = root.join(".seed").join(owner).join(name);
        std::fs::create_dir_all(&seed).expect("a seed work tree");
        git_ok(&root, &["init", "--bare", "--quiet", path_str(&bare)]);
        let hook = bare.join("hooks").join("post-receive");
        std::fs::create_dir_all(hook.parent().expect("a hooks dir")).expect("the hooks dir");
        std::fs::write(&hook, POST_RECEIVE_HOOK).expect("the post-receive hook");
        make_executable(&hook);
        git_ok(&seed, &["init", "--quiet"]);
        write_files(&seed, files);
        git_ok(&seed, &["add", "--all"]);
        git_ok(&seed, &["commit", "--quiet", "--allow-empty", "-m", "Initial commit"]);
        git_ok(&seed, &["push", "--quiet", path_str(&bare), "HEAD:refs/heads/main"]);
        let initial_sha = git_ok(&bare, &["rev-parse", "refs/heads/main"]).trim().to_owned();
        std::fs::remove_dir_all(&seed).expect("removing the seed work tree");

        let clone_url = format!("file://{}", bare.display());
        let mut world = self.world();
        let id = world.next_id();
        world.repos.insert(
            full_name.to_owned(),
            Repo {
                id,
                owner: owner.to_owned(),
                name: name.to_owned(),
                bare: bare.clone(),
                clone_url: clone_url.clone(),
                created_at: now(),
                next_number: 1,
                issues: BTreeMap::new(),
                pulls: BTreeMap::new(),
                comments: BTreeMap::new(),
                issue_reactions: BTreeMap::new(),
                reviews: BTreeMap::new(),
                review_comments: BTreeMap::new(),
                protected: BTreeSet::new(),
                check_runs: BTreeMap::new(),
                permissions: HashMap::new(),
            },
        );
        FakeRepo { full_name: full_name.to_owned(), clone_url, path: bare, initial_sha }
    }

    /// Opens an issue; returns its number (issues and pull requests share the numbering).
    pub fn add_issue(&self, repo: &str, title: &str, body: &str, author: &str) -> u64 {
        let mut world = self.world();
        world.known_users.insert(author.to_owned());
        let id = world.next_id();
        let repo = world.repo_mut(repo);
        let number = repo.take_number();
        repo.issues.insert(
            number,
            Issue { id, title: title.to_owned(), body: body.to_owned(), author: author.to_owned(), created_at: now() },
        );
        number
    }

    /// Adds a comment to an issue or pull request as `author`; returns the comment id.
    pub fn add_issue_comment(&self, repo: &str, issue: u64, author: &str, body: &str) -> u64 {
        let mut world = self.world();
        world.known_users.insert(author.to_owned());
        let id = world.next_id();
        let repo = world.repo_mut(repo);
        assert!(repo.has_issue(issue), "{}/{} has no issue or pull request #{issue}", repo.owner, repo.name);
        repo.comments.insert(id, Comment::new(id, issue, author, body));
        id
    }

    /// An `issue_comment` `created` delivery for the comment, as a GitHub App receives it. On a
    /// pull request's number, `issue.pull_request` is set, as GitHub does.
    pub fn issue_comment_webhook(&self, repo: &str, issue: u64, comment_id: u64) -> Value {
        self.world().issue_comment_payload(repo, issue, comment_id, None)
    }

    /// An `issue_comment` `edited` delivery: the comment as it is now, and `changes.body.from`
    /// = `previous_body` (see [`FakeGithub::edit_issue_comment`]).
    pub fn issue_comment_edited_webhook(&self, repo: &str, issue: u64, comment_id: u64, previous_body: &str) -> Value {
        self.world().issue_comment_payload(repo, issue, comment_id, Some(previous_body))
    }

    /// Adds a commit on top of branch `from` with `files` written (paths may contain
    /// directories) and points branch `branch` at it (created, or moved: `branch` may be `from`
    /// itself); returns the commit's sha. Pushed like any push, so an open pull request whose
    /// head is `branch` moves with it.
    pub fn add_branch(&self, repo: &str, branch: &str, from: &str, files: &[(&str, &str)], message: &str) -> String {
        let world = self.world();
        let bare = world.repo(repo).bare.clone();
        commit_files(&world.root, &bare, &format!("refs/heads/{from}"), files, message, &format!("refs/heads/{branch}"))
    }

    /// Opens a pull request from branch `head` of the repository into `base`, as `author`;
    /// returns its number (shared with issues). Writes `refs/pull/N/head`, as GitHub does.
    pub fn add_pull(&self, repo: &str, head: &str, base: &str, title: &str, body: &str, author: &str) -> u64 {
        let mut world = self.world();
        world.known_users.insert(author.to_owned());
        let id = world.next_id();
        let r = world.repo_mut(repo);
        for branch in [head, base] {
            assert!(resolve(&r.bare, &format!("refs/heads/{branch}")).is_some(), "{repo} has no branch {branch}");
        }
        let number = r.take_number();
        r.insert_pull(number, Pull::new(id, title, body, head, base, author, false));
        number
    }

    /// Opens a pull request from branch `head_branch` of the fork `fork_full_name` (owned by a
    /// user) into `base`: a commit on top of `base` with `files` written, which the bare
    /// repository holds only as `refs/pull/N/head`, as GitHub does for a fork. Its JSON names the
    /// fork as `head.repo` (`fork: true`), with `maintainer_can_modify: false`.
    #[allow(clippy::too_many_arguments, reason = "mirrors what a pull request from a fork is made of")]
    pub fn add_fork_pull(
        &self,
        repo: &str,
        fork_full_name: &str,
        head_branch: &str,
        base: &str,
        title: &str,
        author: &str,
        files: &[(&str, &str)],
    ) -> u64 {
        let mut world = self.world();
        world.known_users.insert(author.to_owned());
        world.known_users.insert(split_full_name(fork_full_name).0.to_owned());
        let (id, fork_id) = (world.next_id(), world.next_id());
        let root = world.root.clone();
        let r = world.repo_mut(repo);
        let number = r.take_number();
        let target = format!("refs/pull/{number}/head");
        commit_files(&root, &r.bare, &format!("refs/heads/{base}"), files, title, &target);
        let fork = Fork { full_name: fork_full_name.to_owned(), id: fork_id, created_at: now() };
        let pull = Pull { fork: Some(fork), ..Pull::new(id, title, "", head_branch, base, author, false) };
        r.insert_pull(number, pull);
        number
    }

    /// Marks a pull request closed, and merged if `merged` (the bare repository is left as it
    /// is: nothing is merged into the base).
    pub fn close_pull(&self, repo: &str, pull: u64, merged: bool) {
        let mut world = self.world();
        let r = world.repo_mut(repo);
        let p = r.pulls.get_mut(&pull).unwrap_or_else(|| panic!("{repo} has no pull request #{pull}"));
        let at = now();
        p.state = "closed".to_owned();
        p.closed_at = Some(at.clone());
        p.merged_at = merged.then(|| at.clone());
        p.updated_at = at;
        r.write_pull_map();
    }

    /// A submitted review (state `COMMENTED`) of the pull request by `author`, with a top-level
    /// review comment per `(path, line, body)` on the file at the pull request's head; returns
    /// the review's id and the comments' ids.
    pub fn add_review(
        &self,
        repo: &str,
        pull: u64,
        author: &str,
        body: &str,
        comments: &[(&str, u64, &str)],
    ) -> (u64, Vec<u64>) {
        let mut world = self.world();
        world.known_users.insert(author.to_owned());
        let review_id = world.next_id();
        let ids: Vec<u64> = comments.iter().map(|_| world.next_id()).collect();
        let r = world.repo_mut(repo);
        let p = r.pulls.get(&pull).unwrap_or_else(|| panic!("{repo} has no pull request #{pull}"));
        let head = r.pull_head_sha(p);
        let base = resolve(&r.bare, &format!("refs/heads/{}", p.base));
        let created_at = now();
        for (&id, &(path, line, text)) in ids.iter().zip(comments) {
            assert!(line >= 1, "lines count from 1");
            let diff_hunk = review_diff_hunk(&r.bare, base.as_deref(), &head, path, line);
            let comment = ReviewComment {
                id,
                pull,
                review_id,
                in_reply_to: None,
                path: path.to_owned(),
                line,
                diff_hunk,
                author: author.to_owned(),
                body: text.to_owned(),
                history: Vec::new(),
                reactions: Vec::new(),
                commit_id: head.clone(),
                created_at: created_at.clone(),
                updated_at: created_at.clone(),
            };
            r.review_comments.insert(id, comment);
        }
        let review = Review {
            id: review_id,
            pull,
            author: author.to_owned(),
            body: body.to_owned(),
            state: "COMMENTED".to_owned(),
            commit_id: head,
            submitted_at: created_at,
        };
        r.reviews.insert(review_id, review);
        (review_id, ids)
    }

    /// A reply by `author` in the thread of review comment `in_reply_to`; returns its id. As on
    /// GitHub it makes a single-comment review of its own, and its `in_reply_to_id` is the
    /// thread's first comment (GitHub's web page replies that way to any comment of a thread).
    pub fn add_review_reply(&self, repo: &str, pull: u64, in_reply_to: u64, author: &str, body: &str) -> u64 {
        let mut world = self.world();
        world.known_users.insert(author.to_owned());
        let parent = world
            .repo(repo)
            .review_comments
            .get(&in_reply_to)
            .unwrap_or_else(|| panic!("{repo} has no review comment {in_reply_to}"));
        assert_eq!(parent.pull, pull, "review comment {in_reply_to} is not on #{pull}");
        let root = parent.in_reply_to.unwrap_or(parent.id);
        world.add_reply(repo, root, author, body)
    }

    /// Protects `branch` (`GET /branches/{branch}` then answers `protected: true`). A push to it
    /// through git is not refused: the bare repository knows nothing of it.
    pub fn protect_branch(&self, repo: &str, branch: &str) {
        self.world().repo_mut(repo).protected.insert(branch.to_owned());
    }

    /// Edits an issue comment as its author would; returns the previous body (for
    /// [`FakeGithub::issue_comment_edited_webhook`]).
    pub fn edit_issue_comment(&self, repo: &str, comment_id: u64, new_body: &str) -> String {
        let mut world = self.world();
        let comment = world
            .repo_mut(repo)
            .comments
            .get_mut(&comment_id)
            .unwrap_or_else(|| panic!("{repo} has no comment {comment_id}"));
        let previous = std::mem::replace(&mut comment.body, new_body.to_owned());
        comment.history.push(previous.clone());
        comment.updated_at = now();
        previous
    }

    /// Edits a review comment as its author would; returns the previous body (for
    /// [`FakeGithub::review_comment_edited_webhook`]).
    pub fn edit_review_comment(&self, repo: &str, comment_id: u64, new_body: &str) -> String {
        let mut world = self.world();
        let comment = world
            .repo_mut(repo)
            .review_comments
            .get_mut(&comment_id)
            .unwrap_or_else(|| panic!("{repo} has no review comment {comment_id}"));
        let previous = std::mem::replace(&mut comment.body, new_body.to_owned());
        comment.history.push(previous.clone());
        comment.updated_at = now();
        previous
    }

    /// A `pull_request_review_comment` `created` delivery for the review comment, as a GitHub
    /// App receives it: `comment` (with `in_reply_to_id` for a reply), `pull_request`,
    /// `repository`, `organization`, `sender`, `installation`.
    pub fn review_comment_webhook(&self, repo: &str, pull: u64, comment_id: u64) -> Value {
        self.world().review_comment_payload(repo, pull, comment_id, None)
    }

    /// A `pull_request_review_comment` `edited` delivery: the comment as it is now, and
    /// `changes.body.from` = `previous_body` (see [`FakeGithub::edit_review_comment`]).
    pub fn review_comment_edited_webhook(&self, repo: &str, pull: u64, comment_id: u64, previous_body: &str) -> Value {
        self.world().review_comment_payload(repo, pull, comment_id, Some(previous_body))
    }

    /// A `pull_request_review` `submitted` delivery for the review. A reply's single-comment
    /// review has `body: null`, as GitHub sends it.
    pub fn review_webhook(&self, repo: &str, pull: u64, review_id: u64) -> Value {
        let world = self.world();
        let r = world.repo(repo);
        let review = r.reviews.get(&review_id).unwrap_or_else(|| panic!("{repo} has no review {review_id}"));
        assert_eq!(review.pull, pull, "review {review_id} is not of #{pull}");
        let mut payload = TEMPLATES.review_webhook.clone();
        payload["action"] = json!("submitted");
        payload["review"] = world.review_json(r, review, true);
        payload["pull_request"] = world.pull_json(r, &r.pulls[&pull]);
        world.webhook_envelope(&mut payload, r, &review.author);
        payload
    }

    /// Sets `user`'s role on `repo`: `admin`, `maintain`, `write`, `triage`, `read` or `none`.
    /// A user the world never saw is answered 404, as GitHub does for a login that does not exist.
    pub fn set_permission(&self, repo: &str, user: &str, permission: &str) {
        assert!(
            ["admin", "maintain", "write", "triage", "read", "none"].contains(&permission),
            "unknown permission {permission}"
        );
        let mut world = self.world();
        world.known_users.insert(user.to_owned());
        world.repo_mut(repo).permissions.insert(user.to_owned(), permission.to_owned());
    }

    /// The next `times` requests whose method is `method` (or `*`) and whose path ends with
    /// `path_pattern` (or matches it, `*` standing for any text) are answered with `status`.
    /// With `after_effect`, the request is carried out first and its answer replaced by the
    /// error (a pull request created, then a 502). 403 and 429 carry `Retry-After: 1` and a
    /// secondary-rate-limit message.
    pub fn fail_next(&self, method: &str, path_pattern: &str, status: u16, times: usize, after_effect: bool) {
        self.world().faults.push(Fault {
            method: method.to_uppercase(),
            pattern: path_pattern.to_owned(),
            status,
            remaining: times,
            after_effect,
        });
    }

    /// The next `times` requests whose method is `method` (or `*`), whose path matches
    /// `path_pattern` (as in [`FakeGithub::fail_next`]) and whose body contains `body_contains`
    /// (if given) time out: the fake never answers them while it runs, as a GitHub that hangs
    /// would, so only the client's own time-out ends them. With `after_effect`, the request is
    /// carried out first (a comment posted, a pull request opened, then silence), so a client that
    /// tries again must find what the unanswered try made rather than make it twice. They are
    /// recorded with status `0`.
    pub fn time_out_next(
        &self,
        method: &str,
        path_pattern: &str,
        body_contains: Option<&str>,
        times: usize,
        after_effect: bool,
    ) {
        self.world().timeouts.push(Timeout {
            method: method.to_uppercase(),
            pattern: path_pattern.to_owned(),
            body_contains: body_contains.map(str::to_owned),
            remaining: times,
            after_effect,
        });
    }

    /// Holds the next request whose method is `method` (or `*`), whose path matches
    /// `path_pattern` (as in [`FakeGithub::fail_next`]) and whose body contains `body_contains`
    /// (if given): it waits, not yet carried out, until the test calls [`Hold::release`] (then it
    /// is carried out and answered as usual) or drops the [`Hold`] (then it is answered `503`
    /// without effect, as if the server never got to it). Lets a test act while that request is
    /// in flight, e.g. kill the process that made it.
    pub fn hold_next(&self, method: &str, path_pattern: &str, body_contains: Option<&str>) -> Hold {
        let (arrived_tx, arrived) = tokio::sync::watch::channel(false);
        let (release, released) = tokio::sync::oneshot::channel();
        self.world().holds.push(PendingHold {
            method: method.to_uppercase(),
            pattern: path_pattern.to_owned(),
            body_contains: body_contains.map(str::to_owned),
            arrived: arrived_tx,
            released,
        });
        Hold { arrived, release: Some(release), what: format!("{method} {path_pattern}") }
    }

    /// Whether a plain token is refused what only a GitHub App may do (check runs), as on
    /// GitHub. On by default.
    pub fn set_token_mode_restrictions(&self, on: bool) {
        self.world().token_mode_restrictions = on;
    }

    // --- inspection ------------------------------------------------------------------------

    pub fn pull_requests(&self, repo: &str) -> Vec<FakePull> {
        let world = self.world();
        let r = world.repo(repo);
        r.pulls
            .values()
            .map(|p| FakePull {
                number: p.number,
                id: p.id,
                title: p.title.clone(),
                body: p.body.clone(),
                head: p.head.clone(),
                head_repo: p.fork.as_ref().map_or_else(|| r.full_name(), |f| f.full_name.clone()),
                base: p.base.clone(),
                state: p.state.clone(),
                merged: p.merged_at.is_some(),
                draft: p.draft,
                user: p.author.clone(),
                html_url: world.html(r, &format!("/pull/{}", p.number)),
            })
            .collect()
    }

    /// The comments on an issue or pull request, oldest first.
    pub fn comments(&self, repo: &str, issue: u64) -> Vec<FakeComment> {
        let world = self.world();
        world
            .repo(repo)
            .comments
            .values()
            .filter(|c| c.issue == issue)
            .map(|c| FakeComment {
                id: c.id,
                author: c.author.clone(),
                body: c.body.clone(),
                edits: c.history.len(),
                history: c.history.clone(),
            })
            .collect()
    }

    /// The reactions on an issue comment (`"eyes"`, `"+1"`, …), in the order they were made.
    pub fn reactions(&self, repo: &str, comment_id: u64) -> Vec<String> {
        let world = self.world();
        world
            .repo(repo)
            .comments
            .get(&comment_id)
            .map(|c| c.reactions.iter().map(|r| r.content.clone()).collect())
            .unwrap_or_default()
    }

    /// The reactions on an issue or pull request itself, in the order they were made.
    pub fn issue_reactions(&self, repo: &str, issue: u64) -> Vec<String> {
        let world = self.world();
        let reactions = world.repo(repo).reactions(ReactionTarget::Issue, issue).cloned().unwrap_or_default();
        reactions.into_iter().map(|r| r.content).collect()
    }

    /// The reactions on a review comment, in the order they were made.
    pub fn review_comment_reactions(&self, repo: &str, comment_id: u64) -> Vec<String> {
        let world = self.world();
        let reactions = world.repo(repo).reactions(ReactionTarget::ReviewComment, comment_id).cloned();
        reactions.unwrap_or_default().into_iter().map(|r| r.content).collect()
    }

    /// The review comments on a pull request, oldest first.
    pub fn review_comments(&self, repo: &str, pull: u64) -> Vec<FakeReviewComment> {
        let world = self.world();
        world
            .repo(repo)
            .review_comments
            .values()
            .filter(|c| c.pull == pull)
            .map(|c| FakeReviewComment {
                id: c.id,
                pull: c.pull,
                review_id: c.review_id,
                in_reply_to: c.in_reply_to,
                path: c.path.clone(),
                line: c.line,
                author: c.author.clone(),
                body: c.body.clone(),
                edits: c.history.len(),
                history: c.history.clone(),
                commit_id: c.commit_id.clone(),
            })
            .collect()
    }

    /// The reviews of a pull request, oldest first (replies' single-comment reviews included).
    pub fn reviews(&self, repo: &str, pull: u64) -> Vec<FakeReview> {
        let world = self.world();
        world
            .repo(repo)
            .reviews
            .values()
            .filter(|r| r.pull == pull)
            .map(|r| FakeReview {
                id: r.id,
                pull: r.pull,
                author: r.author.clone(),
                body: r.body.clone(),
                state: r.state.clone(),
            })
            .collect()
    }

    /// The subjects of the commits reachable from `branch` (or from a ref such as
    /// `refs/pull/2/head`), newest first; empty if it does not exist.
    pub fn branch_log(&self, repo: &str, branch: &str) -> Vec<String> {
        let bare = self.world().repo(repo).bare.clone();
        let Some(sha) = resolve(&bare, &format!("refs/heads/{branch}")).or_else(|| resolve(&bare, branch)) else {
            return Vec::new();
        };
        git_ok(&bare, &["log", "--format=%s", &sha]).lines().map(str::to_owned).collect()
    }

    pub fn check_runs(&self, repo: &str) -> Vec<FakeCheckRun> {
        self.world().repo(repo).check_runs.values().cloned().collect()
    }

    /// The text of `path` at `git_ref` in the bare repository, if it exists there.
    pub fn file_at(&self, repo: &str, git_ref: &str, path: &str) -> Option<String> {
        let bare = self.world().repo(repo).bare.clone();
        read_blob(&bare, git_ref, path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Serves `repo` over git's smart HTTP on this server from now on, as GitHub does: its
    /// `clone_url` becomes `http://…/owner/name.git`, so fetches and pushes are HTTP requests that
    /// faults and time-outs apply to (paths `/owner/name.git/info/refs`, `…/git-upload-pack`,
    /// `…/git-receive-pack`). Returns the new URL.
    pub fn serve_git_over_http(&self, repo: &str) -> String {
        let mut world = self.world();
        let url = format!("{}/{repo}.git", world.api);
        world.repo_mut(repo).clone_url = url.clone();
        url
    }

    /// The repository's clone and push URL: `file:///…/owner/name.git`, or an `http://` URL on
    /// this server after [`FakeGithub::serve_git_over_http`].
    pub fn clone_url(&self, repo: &str) -> String {
        self.world().repo(repo).clone_url.clone()
    }

    /// The sha `git_ref` points at, if it exists.
    pub fn sha_of(&self, repo: &str, git_ref: &str) -> Option<String> {
        let bare = self.world().repo(repo).bare.clone();
        resolve(&bare, git_ref)
    }

    /// The whole message of the commit `git_ref` names, if it exists.
    pub fn commit_message(&self, repo: &str, git_ref: &str) -> Option<String> {
        let bare = self.world().repo(repo).bare.clone();
        if !safe_for_git(git_ref) {
            return None;
        }
        let output = git(&bare, &["log", "-1", "--format=%B", git_ref, "--"]);
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Every path in the tree of `git_ref`, recursively, sorted.
    pub fn paths_at(&self, repo: &str, git_ref: &str) -> Vec<String> {
        let bare = self.world().repo(repo).bare.clone();
        if !safe_for_git(git_ref) {
            return Vec::new();
        }
        let output = git(&bare, &["ls-tree", "-r", "--name-only", git_ref]);
        let mut paths: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
        paths.sort();
        paths
    }

    /// The branch names in the bare repository, sorted.
    pub fn branches(&self, repo: &str) -> Vec<String> {
        let bare = self.world().repo(repo).bare.clone();
        branches(&bare)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.world().requests.clone()
    }

    /// Requests that matched no endpoint of the fake (answered 404).
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.world().requests.iter().filter(|r| !r.matched).cloned().collect()
    }
}

/// A fresh 2048-bit RSA private key (PEM) for `Octocrab::builder().app(..)`: the fake does not
/// check JWT signatures, but octocrab needs a real key to make one. Generated with `openssl`.
pub fn generate_app_private_key_pem() -> String {
    let output = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("running openssl to make a test App key");
    assert!(output.status.success(), "openssl genpkey failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("a PEM")
}

// ---------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------

struct World {
    /// The server's own base URL; also used for `html_url`s so every link stays local.
    api: String,
    root: PathBuf,
    next_id: u64,
    repos: BTreeMap<String, Repo>,
    known_users: BTreeSet<String>,
    installation_tokens: HashMap<String, (u64, chrono::DateTime<chrono::Utc>)>,
    token_mode_restrictions: bool,
    faults: Vec<Fault>,
    timeouts: Vec<Timeout>,
    holds: Vec<PendingHold>,
    requests: Vec<RecordedRequest>,
    /// Cancelled when the server stops: ends the requests it never answers.
    stopped: tokio_util::sync::CancellationToken,
}

struct Repo {
    id: u64,
    owner: String,
    name: String,
    bare: PathBuf,
    clone_url: String,
    created_at: String,
    next_number: u64,
    issues: BTreeMap<u64, Issue>,
    pulls: BTreeMap<u64, Pull>,
    comments: BTreeMap<u64, Comment>,
    /// Reactions on issues and pull requests themselves, by number.
    issue_reactions: BTreeMap<u64, Vec<Reaction>>,
    reviews: BTreeMap<u64, Review>,
    review_comments: BTreeMap<u64, ReviewComment>,
    /// Branches with branch protection.
    protected: BTreeSet<String>,
    check_runs: BTreeMap<u64, FakeCheckRun>,
    permissions: HashMap<String, String>,
}

impl Repo {
    fn take_number(&mut self) -> u64 {
        self.next_number += 1;
        self.next_number - 1
    }

    fn has_issue(&self, number: u64) -> bool {
        self.issues.contains_key(&number) || self.pulls.contains_key(&number)
    }

    fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The reactions on `id` (a comment id, or an issue or pull request number), if it exists.
    fn reactions(&self, target: ReactionTarget, id: u64) -> Option<&Vec<Reaction>> {
        match target {
            ReactionTarget::IssueComment => self.comments.get(&id).map(|c| &c.reactions),
            ReactionTarget::ReviewComment => self.review_comments.get(&id).map(|c| &c.reactions),
            ReactionTarget::Issue => {
                static NONE: Vec<Reaction> = Vec::new();
                self.has_issue(id).then(|| self.issue_reactions.get(&id).unwrap_or(&NONE))
            }
        }
    }

    fn reactions_mut(&mut self, target: ReactionTarget, id: u64) -> Option<&mut Vec<Reaction>> {
        match target {
            ReactionTarget::IssueComment => self.comments.get_mut(&id).map(|c| &mut c.reactions),
            ReactionTarget::ReviewComment => self.review_comments.get_mut(&id).map(|c| &mut c.reactions),
            ReactionTarget::Issue if self.has_issue(id) => Some(self.issue_reactions.entry(id).or_default()),
            ReactionTarget::Issue => None,
        }
    }

    /// The sha a pull request's head is at: its branch while it is open and from this
    /// repository, otherwise `refs/pull/N/head` (GitHub keeps the last head of a closed pull
    /// request, and a fork's commits are only there).
    fn pull_head_sha(&self, pull: &Pull) -> String {
        let branch = (pull.fork.is_none() && pull.state == "open")
            .then(|| resolve(&self.bare, &format!("refs/heads/{}", pull.head)))
            .flatten();
        branch.or_else(|| resolve(&self.bare, &format!("refs/pull/{}/head", pull.number))).unwrap_or_default()
    }

    /// Tells the `post-receive` hook which branches are heads of open same-repository pull
    /// requests.
    fn write_pull_map(&self) {
        let map: String = self
            .pulls
            .values()
            .filter(|p| p.fork.is_none() && p.state == "open")
            .map(|p| format!("{} {}\n", p.number, p.head))
            .collect();
        std::fs::write(self.bare.join(PULL_MAP_FILE), map).expect("the pull request list for the post-receive hook");
    }

    /// Adds `pull` as number `number` (taken with [`Repo::take_number`]). For a same-repository
    /// pull request this points `refs/pull/N/head` at its head branch, as GitHub does; a fork's
    /// commits must already be there.
    fn insert_pull(&mut self, number: u64, pull: Pull) {
        if pull.fork.is_none() {
            let sha = resolve(&self.bare, &format!("refs/heads/{}", pull.head)).expect("the head branch");
            git_ok(&self.bare, &["update-ref", &format!("refs/pull/{number}/head"), &sha]);
        }
        self.pulls.insert(number, Pull { number, ..pull });
        self.write_pull_map();
    }
}

struct Issue {
    id: u64,
    title: String,
    body: String,
    author: String,
    created_at: String,
}

struct Pull {
    id: u64,
    number: u64,
    title: String,
    body: String,
    head: String,
    base: String,
    state: String,
    draft: bool,
    author: String,
    created_at: String,
    updated_at: String,
    closed_at: Option<String>,
    merged_at: Option<String>,
    /// Where the head branch lives when it is not this repository.
    fork: Option<Fork>,
}

impl Pull {
    /// An open pull request; its number is set when it is inserted.
    fn new(id: u64, title: &str, body: &str, head: &str, base: &str, author: &str, draft: bool) -> Pull {
        let created_at = now();
        Pull {
            id,
            number: 0,
            title: title.to_owned(),
            body: body.to_owned(),
            head: head.to_owned(),
            base: base.to_owned(),
            state: "open".to_owned(),
            draft,
            author: author.to_owned(),
            updated_at: created_at.clone(),
            created_at,
            closed_at: None,
            merged_at: None,
            fork: None,
        }
    }

    /// The owner of the head branch's repository.
    fn head_owner<'a>(&'a self, repo: &'a Repo) -> &'a str {
        self.fork.as_ref().map_or(repo.owner.as_str(), |fork| split_full_name(&fork.full_name).0)
    }
}

/// The fork a pull request's head lives in. The fake holds no repository for it: its commits are
/// only at `refs/pull/N/head` of the base repository.
struct Fork {
    full_name: String,
    id: u64,
    created_at: String,
}

struct Review {
    id: u64,
    pull: u64,
    author: String,
    /// Empty for the single-comment review a reply makes.
    body: String,
    /// `COMMENTED`, `APPROVED`, `CHANGES_REQUESTED`, as the REST API writes it.
    state: String,
    commit_id: String,
    submitted_at: String,
}

struct ReviewComment {
    id: u64,
    pull: u64,
    review_id: u64,
    in_reply_to: Option<u64>,
    path: String,
    /// The line at `commit_id`.
    line: u64,
    diff_hunk: String,
    author: String,
    body: String,
    history: Vec<String>,
    reactions: Vec<Reaction>,
    /// The head the comment was made on (GitHub's `original_commit_id`).
    commit_id: String,
    created_at: String,
    updated_at: String,
}

/// What a reaction is on.
#[derive(Clone, Copy)]
enum ReactionTarget {
    IssueComment,
    Issue,
    ReviewComment,
}

struct Comment {
    id: u64,
    issue: u64,
    author: String,
    body: String,
    history: Vec<String>,
    reactions: Vec<Reaction>,
    created_at: String,
    updated_at: String,
}

impl Comment {
    fn new(id: u64, issue: u64, author: &str, body: &str) -> Self {
        let created_at = now();
        Comment {
            id,
            issue,
            author: author.to_owned(),
            body: body.to_owned(),
            history: Vec::new(),
            reactions: Vec::new(),
            updated_at: created_at.clone(),
            created_at,
        }
    }
}

#[derive(Clone)]
struct Reaction {
    id: u64,
    user: String,
    content: String,
    created_at: String,
}

struct Fault {
    method: String,
    pattern: String,
    status: u16,
    remaining: usize,
    after_effect: bool,
}

/// A request the fake will not answer (see [`FakeGithub::time_out_next`]).
struct Timeout {
    method: String,
    pattern: String,
    body_contains: Option<String>,
    remaining: usize,
    after_effect: bool,
}

impl Timeout {
    fn matches(&self, method: &str, path: &str, body: &[u8]) -> bool {
        self.remaining > 0
            && (self.method == "*" || self.method == method)
            && path_matches(&self.pattern, path)
            && self.body_contains.as_ref().is_none_or(|needle| String::from_utf8_lossy(body).contains(needle.as_str()))
    }
}

/// The world's side of a [`Hold`].
struct PendingHold {
    method: String,
    pattern: String,
    body_contains: Option<String>,
    arrived: tokio::sync::watch::Sender<bool>,
    released: tokio::sync::oneshot::Receiver<()>,
}

impl PendingHold {
    fn matches(&self, method: &str, path: &str, body: &[u8]) -> bool {
        (self.method == "*" || self.method == method)
            && path_matches(&self.pattern, path)
            && self.body_contains.as_ref().is_none_or(|needle| String::from_utf8_lossy(body).contains(needle.as_str()))
    }
}

impl Fault {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining > 0 && (self.method == "*" || self.method == method) && path_matches(&self.pattern, path)
    }
}

/// `pattern` is a suffix of `path`, or, with `*`, a glob over the whole path.
fn path_matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('*') {
        return path.ends_with(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = path;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(after) = rest.strip_prefix(part) else { return false };
            rest = after;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// Who made a request, as far as authoring goes.
enum Caller {
    Anonymous,
    User(String),
    App,
    Installation,
    BadCredentials,
}

impl Caller {
    fn login(&self) -> Option<&str> {
        match self {
            Caller::User(login) => Some(login),
            Caller::Installation => Some(APP_BOT_LOGIN),
            _ => None,
        }
    }
}

impl World {
    fn new(api: String, root: PathBuf, stopped: tokio_util::sync::CancellationToken) -> Self {
        World {
            api,
            root,
            next_id: FIRST_RESOURCE_ID,
            repos: BTreeMap::new(),
            known_users: BTreeSet::new(),
            installation_tokens: HashMap::new(),
            token_mode_restrictions: true,
            faults: Vec::new(),
            timeouts: Vec::new(),
            holds: Vec::new(),
            requests: Vec::new(),
            stopped,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn repo(&self, full_name: &str) -> &Repo {
        self.repos.get(full_name).unwrap_or_else(|| panic!("the fake GitHub has no repository {full_name}"))
    }

    fn repo_mut(&mut self, full_name: &str) -> &mut Repo {
        self.repos.get_mut(full_name).unwrap_or_else(|| panic!("the fake GitHub has no repository {full_name}"))
    }

    /// A reply in the thread of `root` (a top-level review comment) with a single-comment review
    /// of its own, as GitHub makes it: same path, line, hunk and commit as the thread.
    fn add_reply(&mut self, repo: &str, root: u64, author: &str, body: &str) -> u64 {
        let (review_id, id) = (self.next_id(), self.next_id());
        let r = self.repo_mut(repo);
        let thread = &r.review_comments[&root];
        let pull = thread.pull;
        let created_at = now();
        let comment = ReviewComment {
            id,
            pull,
            review_id,
            in_reply_to: Some(root),
            path: thread.path.clone(),
            line: thread.line,
            diff_hunk: thread.diff_hunk.clone(),
            author: author.to_owned(),
            body: body.to_owned(),
            history: Vec::new(),
            reactions: Vec::new(),
            commit_id: thread.commit_id.clone(),
            created_at: created_at.clone(),
            updated_at: created_at.clone(),
        };
        let review = Review {
            id: review_id,
            pull,
            author: author.to_owned(),
            body: String::new(),
            state: "COMMENTED".to_owned(),
            commit_id: r.pull_head_sha(&r.pulls[&pull]),
            submitted_at: created_at,
        };
        r.reviews.insert(review_id, review);
        r.review_comments.insert(id, comment);
        id
    }

    fn issue_comment_payload(&self, repo: &str, issue: u64, comment_id: u64, previous_body: Option<&str>) -> Value {
        let r = self.repo(repo);
        let comment = r.comments.get(&comment_id).unwrap_or_else(|| panic!("{repo} has no comment {comment_id}"));
        assert_eq!(comment.issue, issue, "comment {comment_id} is not on #{issue}");
        let mut payload = TEMPLATES.issue_comment_webhook.clone();
        payload["action"] = json!(if previous_body.is_some() { "edited" } else { "created" });
        if let Some(previous) = previous_body {
            payload["changes"] = edited_changes(previous);
        }
        payload["issue"] = self.issue_json(r, issue).expect("the issue");
        payload["comment"] = self.comment_json(r, comment);
        self.webhook_envelope(&mut payload, r, &comment.author);
        payload
    }

    fn review_comment_payload(&self, repo: &str, pull: u64, comment_id: u64, previous_body: Option<&str>) -> Value {
        let r = self.repo(repo);
        let comment =
            r.review_comments.get(&comment_id).unwrap_or_else(|| panic!("{repo} has no review comment {comment_id}"));
        assert_eq!(comment.pull, pull, "review comment {comment_id} is not on #{pull}");
        let mut payload = TEMPLATES.review_comment_webhook.clone();
        payload["action"] = json!(if previous_body.is_some() { "edited" } else { "created" });
        if let Some(previous) = previous_body {
            payload["changes"] = edited_changes(previous);
        }
        payload["comment"] = self.review_comment_json(r, comment);
        payload["pull_request"] = self.pull_json(r, &r.pulls[&pull]);
        self.webhook_envelope(&mut payload, r, &comment.author);
        payload
    }

    fn authenticate(&self, authorization: Option<&str>) -> (AuthKind, Caller) {
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("token ")))
        else {
            return (AuthKind::Anonymous, Caller::Anonymous);
        };
        if token.starts_with("ghs_") {
            return match self.installation_tokens.get(token) {
                Some((installation_id, expires)) if *expires > chrono::Utc::now() => {
                    (AuthKind::Installation { installation_id: *installation_id }, Caller::Installation)
                }
                _ => (AuthKind::BadCredentials, Caller::BadCredentials),
            };
        }
        if let Some(app_id) = jwt_issuer(token) {
            return (AuthKind::AppJwt { app_id }, Caller::App);
        }
        (AuthKind::Token, Caller::User(TOKEN_BOT_LOGIN.to_owned()))
    }

    // --- JSON rendering ----------------------------------------------------------------------

    fn html(&self, repo: &Repo, rest: &str) -> String {
        format!("{}/{}/{}{rest}", self.api, repo.owner, repo.name)
    }

    fn api_repo(&self, repo: &Repo, rest: &str) -> String {
        format!("{}/repos/{}/{}{rest}", self.api, repo.owner, repo.name)
    }

    /// Points a template's GitHub URLs at this server.
    fn localize(&self, value: &mut Value) {
        relocate(value, "https://api.github.com", &self.api);
        relocate(value, "https://github.com", &self.api);
        relocate(value, "git:github.com", &self.api.replacen("http://", "git://", 1));
        relocate(value, "git@github.com:", &format!("git@{}:", self.api.trim_start_matches("http://")));
    }

    fn user_json(&self, login: &str) -> Value {
        let mut user = TEMPLATES.user.clone();
        relocate(&mut user, "/users/octocat", &format!("/users/{}", url_escape(login)));
        self.localize(&mut user);
        let id = numeric_id(login);
        let bot = login.ends_with("[bot]");
        user["login"] = json!(login);
        user["id"] = json!(id);
        user["node_id"] = json!(node_id(if bot { "Bot" } else { "User" }, id));
        user["avatar_url"] = json!(format!("{}/avatars/u/{id}?v=4", self.api));
        user["html_url"] = json!(match login.strip_suffix("[bot]") {
            Some(app) => format!("{}/apps/{app}", self.api),
            None => format!("{}/{login}", self.api),
        });
        user["type"] = json!(if bot { "Bot" } else { "User" });
        user
    }

    fn owner_json(&self, owner: &str) -> Value {
        let mut user = self.user_json(owner);
        user["type"] = json!("Organization");
        user["node_id"] = json!(node_id("Organization", numeric_id(owner)));
        user
    }

    /// A public repository, from the pull request example's `head.repo`.
    fn repository_json(&self, full_name: &str, id: u64, owner: Value, clone_url: &str, created_at: &str) -> Value {
        let mut value = TEMPLATES.repository.clone();
        relocate(&mut value, "octocat/Hello-World", full_name);
        self.localize(&mut value);
        value["id"] = json!(id);
        value["node_id"] = json!(node_id("Repository", id));
        value["name"] = json!(split_full_name(full_name).1);
        value["full_name"] = json!(full_name);
        value["owner"] = owner;
        value["private"] = json!(false);
        value["visibility"] = json!("public");
        value["fork"] = json!(false);
        value["description"] = Value::Null;
        value["homepage"] = Value::Null;
        value["default_branch"] = json!("main");
        value["clone_url"] = json!(clone_url);
        value["html_url"] = json!(format!("{}/{full_name}", self.api));
        value["created_at"] = json!(created_at);
        value["updated_at"] = json!(created_at);
        value["pushed_at"] = json!(created_at);
        value["license"] = Value::Null;
        value["topics"] = json!([]);
        value["temp_clone_token"] = Value::Null;
        value
    }

    fn repo_json(&self, repo: &Repo) -> Value {
        let mut value = self.repository_json(
            &repo.full_name(),
            repo.id,
            self.owner_json(&repo.owner),
            &repo.clone_url,
            &repo.created_at,
        );
        let open = repo.issues.len() + repo.pulls.values().filter(|p| p.state == "open").count();
        value["open_issues_count"] = json!(open);
        value["open_issues"] = json!(open);
        value["permissions"] = json!({"admin": false, "maintain": false, "push": true, "triage": true, "pull": true});
        value
    }

    /// A fork owned by a user. Its `clone_url` is an `http://` URL on this server, which serves
    /// no git: the fake holds no repository for a fork, so a push there fails.
    fn fork_repo_json(&self, fork: &Fork) -> Value {
        let owner = split_full_name(&fork.full_name).0;
        let clone_url = format!("{}/{}.git", self.api, fork.full_name);
        let mut value =
            self.repository_json(&fork.full_name, fork.id, self.user_json(owner), &clone_url, &fork.created_at);
        value["fork"] = json!(true);
        value["open_issues_count"] = json!(0);
        value["open_issues"] = json!(0);
        // What the caller (errand) may do there: read, not push.
        value["permissions"] = json!({"admin": false, "maintain": false, "push": false, "triage": false, "pull": true});
        value
    }

    /// The organization a webhook names, from the `issue_comment` example's.
    fn organization_json(&self, owner: &str) -> Value {
        let mut organization = TEMPLATES.issue_comment_webhook["organization"].clone();
        relocate(&mut organization, "https://api.github.com/orgs/Octocoders", &format!("{}/orgs/{owner}", self.api));
        organization["login"] = json!(owner);
        organization["id"] = json!(numeric_id(owner));
        organization["node_id"] = json!(node_id("Organization", numeric_id(owner)));
        organization
    }

    /// What every delivery to the App carries besides the event: `repository`,
    /// `organization`, `sender` and `installation`.
    fn webhook_envelope(&self, payload: &mut Value, repo: &Repo, sender: &str) {
        let mut repository = self.repo_json(repo);
        if let Some(fields) = repository.as_object_mut() {
            fields.remove("permissions");
        }
        payload["repository"] = repository;
        payload["organization"] = self.organization_json(&repo.owner);
        payload["sender"] = self.user_json(sender);
        payload["installation"] = json!({ "id": INSTALLATION_ID, "node_id": node_id("Installation", INSTALLATION_ID) });
    }

    fn issue_json(&self, repo: &Repo, number: u64) -> Option<Value> {
        let mut value = TEMPLATES.issue.clone();
        relocate(&mut value, "Codertocat/Hello-World", &repo.full_name());
        relocate(&mut value, "/issues/1", &format!("/issues/{number}"));
        self.localize(&mut value);
        let comments = repo.comments.values().filter(|c| c.issue == number).count();
        let (id, title, body, author, state, created_at, closed_at) = if let Some(issue) = repo.issues.get(&number) {
            (issue.id, &issue.title, &issue.body, &issue.author, "open", &issue.created_at, None)
        } else {
            // A pull request is an issue too (`GET /issues/N` answers it), marked by `pull_request`.
            let pull = repo.pulls.get(&number)?;
            value["pull_request"] = json!({
                "url": self.api_repo(repo, &format!("/pulls/{number}")),
                "html_url": self.html(repo, &format!("/pull/{number}")),
                "diff_url": self.html(repo, &format!("/pull/{number}.diff")),
                "patch_url": self.html(repo, &format!("/pull/{number}.patch")),
                "merged_at": pull.merged_at,
            });
            value["draft"] = json!(pull.draft);
            let closed_at = pull.closed_at.as_ref();
            (pull.id, &pull.title, &pull.body, &pull.author, pull.state.as_str(), &pull.created_at, closed_at)
        };
        value["id"] = json!(id);
        value["node_id"] = json!(node_id("Issue", id));
        value["number"] = json!(number);
        value["title"] = json!(title);
        value["body"] = json!(body);
        value["user"] = self.user_json(author);
        value["state"] = json!(state);
        value["labels"] = json!([]);
        value["assignee"] = Value::Null;
        value["assignees"] = json!([]);
        value["milestone"] = Value::Null;
        value["comments"] = json!(comments);
        value["created_at"] = json!(created_at);
        value["updated_at"] = json!(created_at);
        value["closed_at"] = json!(closed_at);
        value["author_association"] = json!(self.association(repo, author));
        value["html_url"] = json!(self.html(repo, &format!("/issues/{number}")));
        value["reactions"] = reaction_rollup(
            self.api_repo(repo, &format!("/issues/{number}/reactions")),
            repo.reactions(ReactionTarget::Issue, number).map_or(&[], Vec::as_slice),
        );
        Some(value)
    }

    fn association(&self, repo: &Repo, login: &str) -> &'static str {
        match repo.permissions.get(login).map(String::as_str) {
            Some("admin" | "maintain" | "write" | "triage") => "COLLABORATOR",
            _ => "NONE",
        }
    }

    fn comment_json(&self, repo: &Repo, comment: &Comment) -> Value {
        let mut value = TEMPLATES.comment.clone();
        relocate(&mut value, "octocat/Hello-World", &repo.full_name());
        self.localize(&mut value);
        value["id"] = json!(comment.id);
        value["node_id"] = json!(node_id("IssueComment", comment.id));
        value["url"] = json!(self.api_repo(repo, &format!("/issues/comments/{}", comment.id)));
        value["html_url"] = json!(self.html(repo, &format!("/issues/{}#issuecomment-{}", comment.issue, comment.id)));
        value["issue_url"] = json!(self.api_repo(repo, &format!("/issues/{}", comment.issue)));
        value["body"] = json!(comment.body);
        value["user"] = self.user_json(&comment.author);
        value["created_at"] = json!(comment.created_at);
        value["updated_at"] = json!(comment.updated_at);
        value["author_association"] = json!(self.association(repo, &comment.author));
        value["performed_via_github_app"] = Value::Null;
        value["reactions"] = reaction_rollup(
            self.api_repo(repo, &format!("/issues/comments/{}/reactions", comment.id)),
            &comment.reactions,
        );
        value
    }

    /// Where a review comment applies now. GitHub moves `commit_id` along with the pull
    /// request's head while the commented line stays, and marks the comment outdated (`line` and
    /// `position` null, `commit_id` left behind) once a push changes it. The fake compares the
    /// text of the line at the comment's commit and at the head (GitHub also follows lines that
    /// moved; the fake calls those outdated).
    fn review_comment_anchor(&self, repo: &Repo, comment: &ReviewComment) -> (Option<u64>, String) {
        let head = repo.pulls.get(&comment.pull).map(|p| repo.pull_head_sha(p)).unwrap_or_default();
        if head.is_empty() || head == comment.commit_id {
            return (Some(comment.line), comment.commit_id.clone());
        }
        let line_at = |sha: &str| {
            let text = String::from_utf8_lossy(&read_blob(&repo.bare, sha, &comment.path)?).into_owned();
            let index = usize::try_from(comment.line.checked_sub(1)?).ok()?;
            text.lines().nth(index).map(str::to_owned)
        };
        match (line_at(&comment.commit_id), line_at(&head)) {
            (Some(then), Some(now)) if then == now => (Some(comment.line), head),
            _ => (None, comment.commit_id.clone()),
        }
    }

    fn review_comment_json(&self, repo: &Repo, comment: &ReviewComment) -> Value {
        let mut value = TEMPLATES.review_comment.clone();
        relocate(&mut value, "octocat/Hello-World", &repo.full_name());
        self.localize(&mut value);
        let (id, pull) = (comment.id, comment.pull);
        let url = self.api_repo(repo, &format!("/pulls/comments/{id}"));
        let html_url = self.html(repo, &format!("/pull/{pull}#discussion_r{id}"));
        let pull_request_url = self.api_repo(repo, &format!("/pulls/{pull}"));
        let (line, commit_id) = self.review_comment_anchor(repo, comment);
        // The deprecated `position`: the line's index in the file's diff, counted from the first
        // line under the hunk header.
        let position = comment.diff_hunk.lines().count().saturating_sub(1).max(1);
        value["url"] = json!(url);
        value["id"] = json!(id);
        value["node_id"] = json!(node_id("PullRequestReviewComment", id));
        value["pull_request_review_id"] = json!(comment.review_id);
        value["diff_hunk"] = json!(comment.diff_hunk);
        value["path"] = json!(comment.path);
        value["position"] = json!(line.map(|_| position));
        value["original_position"] = json!(position);
        value["commit_id"] = json!(commit_id);
        value["original_commit_id"] = json!(comment.commit_id);
        match comment.in_reply_to {
            Some(root) => value["in_reply_to_id"] = json!(root),
            // GitHub leaves the field out of a thread's first comment.
            None => {
                if let Some(fields) = value.as_object_mut() {
                    fields.remove("in_reply_to_id");
                }
            }
        }
        value["user"] = self.user_json(&comment.author);
        value["body"] = json!(comment.body);
        value["created_at"] = json!(comment.created_at);
        value["updated_at"] = json!(comment.updated_at);
        value["html_url"] = json!(html_url);
        value["pull_request_url"] = json!(pull_request_url);
        value["author_association"] = json!(self.association(repo, &comment.author));
        value["_links"] = json!({
            "self": { "href": url },
            "html": { "href": html_url },
            "pull_request": { "href": pull_request_url },
        });
        value["start_line"] = Value::Null;
        value["original_start_line"] = Value::Null;
        value["start_side"] = Value::Null;
        value["line"] = json!(line);
        value["original_line"] = json!(comment.line);
        value["side"] = json!("RIGHT");
        value["subject_type"] = json!("line");
        value["reactions"] = reaction_rollup(format!("{url}/reactions"), &comment.reactions);
        value
    }

    /// A review, from the `pull_request_review` example's. `for_webhook`: the delivery writes
    /// the state in lower case and an empty body as `null`; the REST API writes `COMMENTED`
    /// and `""`.
    fn review_json(&self, repo: &Repo, review: &Review, for_webhook: bool) -> Value {
        let mut value = TEMPLATES.review.clone();
        relocate(&mut value, "Codertocat/Hello-World", &repo.full_name());
        self.localize(&mut value);
        let (id, pull) = (review.id, review.pull);
        let html_url = self.html(repo, &format!("/pull/{pull}#pullrequestreview-{id}"));
        let pull_request_url = self.api_repo(repo, &format!("/pulls/{pull}"));
        value["id"] = json!(id);
        value["node_id"] = json!(node_id("PullRequestReview", id));
        value["user"] = self.user_json(&review.author);
        value["body"] = if for_webhook && review.body.is_empty() { Value::Null } else { json!(review.body) };
        value["commit_id"] = json!(review.commit_id);
        value["submitted_at"] = json!(review.submitted_at);
        value["state"] = json!(if for_webhook { review.state.to_lowercase() } else { review.state.clone() });
        value["html_url"] = json!(html_url);
        value["pull_request_url"] = json!(pull_request_url);
        value["author_association"] = json!(self.association(repo, &review.author));
        value["_links"] = json!({ "html": { "href": html_url }, "pull_request": { "href": pull_request_url } });
        value
    }

    /// `GET /repos/{owner}/{repo}/branches/{branch}`. The openapi subset has no example of a
    /// `branch-with-protection`, so this is built by hand from the documented shape
    /// (https://docs.github.com/rest/branches/branches#get-a-branch) and the answers GitHub
    /// gives: an unprotected branch has `protection.enabled: false` with
    /// `enforcement_level: "off"`.
    fn branch_detail_json(&self, repo: &Repo, branch: &str, sha: &str) -> Value {
        let log = git_ok(
            &repo.bare,
            &["log", "-1", "--format=%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B", sha],
        );
        let fields: Vec<&str> = log.splitn(9, '\0').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or_default();
        let person = |name: usize| json!({ "name": field(name), "email": field(name + 1), "date": field(name + 2) });
        let commit_url = |sha: &str| self.api_repo(repo, &format!("/commits/{sha}"));
        let branch_url = self.api_repo(repo, &format!("/branches/{branch}"));
        let protected = repo.protected.contains(branch);
        let parents: Vec<Value> = field(1)
            .split_whitespace()
            .map(|p| json!({ "sha": p, "url": commit_url(p), "html_url": self.html(repo, &format!("/commit/{p}")) }))
            .collect();
        json!({
            "name": branch,
            "commit": {
                "sha": sha,
                // GitHub's legacy commit node id: `06:Commit<repository id>:<sha>`.
                "node_id": base64::engine::general_purpose::STANDARD.encode(format!("06:Commit{}:{sha}", repo.id)),
                "commit": {
                    "author": person(2),
                    "committer": person(5),
                    "message": field(8).trim_end(),
                    "tree": { "sha": field(0), "url": self.api_repo(repo, &format!("/git/trees/{}", field(0))) },
                    "url": self.api_repo(repo, &format!("/git/commits/{sha}")),
                    "comment_count": 0,
                    "verification": {
                        "verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null
                    },
                },
                "url": commit_url(sha),
                "html_url": self.html(repo, &format!("/commit/{sha}")),
                "comments_url": format!("{}/comments", commit_url(sha)),
                // The commit's email belongs to no GitHub user.
                "author": null,
                "committer": null,
                "parents": parents,
            },
            "_links": { "self": branch_url, "html": self.html(repo, &format!("/tree/{branch}")) },
            "protected": protected,
            "protection": {
                "enabled": protected,
                "required_status_checks": {
                    "enforcement_level": if protected { "non_admins" } else { "off" },
                    "contexts": [],
                    "checks": [],
                },
            },
            "protection_url": format!("{branch_url}/protection"),
        })
    }

    fn reaction_json(&self, reaction: &Reaction) -> Value {
        let mut value = TEMPLATES.reaction.clone();
        value["id"] = json!(reaction.id);
        value["node_id"] = json!(node_id("Reaction", reaction.id));
        value["user"] = self.user_json(&reaction.user);
        value["content"] = json!(reaction.content);
        value["created_at"] = json!(reaction.created_at);
        value
    }

    fn branch_json(&self, repo: &Repo, branch: &str, sha: &str) -> Value {
        json!({
            "label": format!("{}:{branch}", repo.owner),
            "ref": branch,
            "sha": sha,
            "user": self.owner_json(&repo.owner),
            "repo": self.repo_json(repo),
        })
    }

    fn pull_json(&self, repo: &Repo, pull: &Pull) -> Value {
        let n = pull.number;
        let head_sha = repo.pull_head_sha(pull);
        let base_sha = resolve(&repo.bare, &format!("refs/heads/{}", pull.base)).unwrap_or_default();
        let mut value = TEMPLATES.pull.clone();
        relocate(&mut value, "octocat/Hello-World", &repo.full_name());
        relocate(&mut value, "/1347", &format!("/{n}"));
        relocate(&mut value, "6dcb09b5b57875f334f61aebed695e2e4193db5e", &head_sha);
        self.localize(&mut value);
        value["id"] = json!(pull.id);
        value["node_id"] = json!(node_id("PullRequest", pull.id));
        value["number"] = json!(n);
        value["state"] = json!(pull.state);
        value["title"] = json!(pull.title);
        value["body"] = json!(pull.body);
        value["user"] = self.user_json(&pull.author);
        value["draft"] = json!(pull.draft);
        value["labels"] = json!([]);
        value["milestone"] = Value::Null;
        value["assignee"] = Value::Null;
        value["assignees"] = json!([]);
        value["requested_reviewers"] = json!([]);
        value["requested_teams"] = json!([]);
        value["created_at"] = json!(pull.created_at);
        value["updated_at"] = json!(pull.updated_at);
        value["closed_at"] = json!(pull.closed_at);
        value["merged_at"] = json!(pull.merged_at);
        value["merge_commit_sha"] = Value::Null;
        value["merged"] = json!(pull.merged_at.is_some());
        value["merged_by"] = Value::Null;
        value["auto_merge"] = Value::Null;
        // The example is a locked pull request; these are not.
        value["locked"] = json!(false);
        value["active_lock_reason"] = Value::Null;
        // GitHub answers false for a same-repository pull request; a fork's author may allow it,
        // but `add_fork_pull` seeds ones that do not.
        value["maintainer_can_modify"] = json!(false);
        value["author_association"] = json!("NONE");
        value["comments"] = json!(repo.comments.values().filter(|c| c.issue == n).count());
        value["review_comments"] = json!(repo.review_comments.values().filter(|c| c.pull == n).count());
        value["head"] = match &pull.fork {
            None => self.branch_json(repo, &pull.head, &head_sha),
            Some(fork) => {
                let owner = split_full_name(&fork.full_name).0;
                json!({
                    "label": format!("{owner}:{}", pull.head),
                    "ref": pull.head,
                    "sha": head_sha,
                    "user": self.user_json(owner),
                    "repo": self.fork_repo_json(fork),
                })
            }
        };
        value["base"] = self.branch_json(repo, &pull.base, &base_sha);
        value
    }

    fn check_run_json(&self, repo: &Repo, run: &FakeCheckRun) -> Value {
        let mut value = TEMPLATES.check_run.clone();
        relocate(&mut value, "github/hello-world", &repo.full_name());
        self.localize(&mut value);
        value["id"] = json!(run.id);
        value["node_id"] = json!(node_id("CheckRun", run.id));
        value["url"] = json!(self.api_repo(repo, &format!("/check-runs/{}", run.id)));
        value["html_url"] = json!(self.html(repo, &format!("/runs/{}", run.id)));
        value["name"] = json!(run.name);
        value["head_sha"] = json!(run.head_sha);
        value["external_id"] = json!(run.external_id.clone().unwrap_or_default());
        value["status"] = json!(run.status);
        value["conclusion"] = json!(run.conclusion);
        value["completed_at"] = if run.status == "completed" { json!(now()) } else { Value::Null };
        value["output"] = json!({
            "title": run.output_title,
            "summary": run.output_summary,
            "text": run.output_text,
            "annotations_count": 0,
            "annotations_url": self.api_repo(repo, &format!("/check-runs/{}/annotations", run.id)),
        });
        value["pull_requests"] = json!([]);
        value["app"]["slug"] = json!(APP_BOT_LOGIN.trim_end_matches("[bot]"));
        value
    }
}

// ---------------------------------------------------------------------------------------------
// Templates: GitHub's own example responses
// ---------------------------------------------------------------------------------------------

struct Templates {
    user: Value,
    repository: Value,
    issue: Value,
    comment: Value,
    reaction: Value,
    pull: Value,
    check_run: Value,
    installation_token: Value,
    collaborator_permission: Value,
    validation_failed: Value,
    issue_comment_webhook: Value,
    review_comment: Value,
    review: Value,
    review_comment_webhook: Value,
    review_webhook: Value,
    /// `changes` of an `edited` delivery.
    edited_changes: Value,
}

static TEMPLATES: LazyLock<Templates> = LazyLock::new(|| {
    let openapi: Value =
        serde_json::from_str(include_str!("../data/github/openapi-subset.json")).expect("openapi-subset.json is JSON");
    let example = |name: &str| openapi["components"]["examples"][name]["value"].clone();
    let webhook: Value =
        serde_json::from_str(include_str!("../data/github/webhooks/issue_comment.created.with-organization.json"))
            .expect("the issue_comment webhook example is JSON");
    let review_comment_webhook: Value =
        serde_json::from_str(include_str!("../data/github/webhooks/pull_request_review_comment.created.json"))
            .expect("the pull_request_review_comment webhook example is JSON");
    let review_webhook: Value =
        serde_json::from_str(include_str!("../data/github/webhooks/pull_request_review.submitted.json"))
            .expect("the pull_request_review webhook example is JSON");
    let issue_comment_edited: Value =
        serde_json::from_str(include_str!("../data/github/webhooks/issue_comment.edited.json"))
            .expect("the issue_comment edited webhook example is JSON");
    let recorded_422: Value = serde_json::from_str(include_str!(
        "../data/github/recorded/errors.validation-failed-422.octokit-fixtures.json"
    ))
    .expect("the recorded 422 is JSON");
    let comment = example("issue-comment");
    let pull = example("pull-request");
    Templates {
        user: comment["user"].clone(),
        repository: pull["head"]["repo"].clone(),
        issue: webhook["issue"].clone(),
        reaction: example("reaction"),
        check_run: example("check-run"),
        installation_token: example("installation-token"),
        collaborator_permission: example("repository-collaborator-permission-response-if-user-has-admin-permissions"),
        validation_failed: recorded_422["interactions"][0]["response"]["body"].clone(),
        issue_comment_webhook: webhook,
        review_comment: example("pull-request-review-comment"),
        review: review_webhook["review"].clone(),
        review_comment_webhook,
        review_webhook,
        edited_changes: issue_comment_edited["changes"].clone(),
        comment,
        pull,
    }
});

/// The `changes` of an `edited` delivery. There is no `pull_request_review_comment` `edited`
/// example among the fixtures; GitHub documents the same `changes.body.from` for it as for
/// `issue_comment`, so both use the `issue_comment` one's.
fn edited_changes(previous_body: &str) -> Value {
    let mut changes = TEMPLATES.edited_changes.clone();
    changes["body"]["from"] = json!(previous_body);
    changes
}

/// A `reactions` rollup: `url`, `total_count` and a count per content.
fn reaction_rollup(url: String, reactions: &[Reaction]) -> Value {
    let mut rollup = json!({ "url": url, "total_count": reactions.len() });
    for content in REACTIONS {
        rollup[content] = json!(reactions.iter().filter(|r| r.content == content).count());
    }
    rollup
}

/// Replaces `from` with `to` in every string inside `value`.
fn relocate(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| relocate(v, from, to)),
        Value::Object(fields) => fields.values_mut().for_each(|v| relocate(v, from, to)),
        _ => {}
    }
}

/// A stable id for a login, in the range of real GitHub user ids.
fn numeric_id(login: &str) -> u64 {
    // FNV-1a: deterministic across runs, unlike std's hasher.
    let hash = login.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    1_000 + hash % 100_000_000
}

/// GitHub's legacy global node id: base64 of `<len>:<Type><id>`.
fn node_id(kind: &str, id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{:02}:{kind}{id}", kind.len()))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn split_full_name(full_name: &str) -> (&str, &str) {
    full_name.split_once('/').unwrap_or_else(|| panic!("{full_name} is not owner/name"))
}

/// The `iss` of a JWT, if `token` looks like one (its signature is not checked).
fn jwt_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    match &claims["iss"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// git
// ---------------------------------------------------------------------------------------------

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Fake GitHub")
        .env("GIT_AUTHOR_EMAIL", "fake-github@example.com")
        .env("GIT_COMMITTER_NAME", "Fake GitHub")
        .env("GIT_COMMITTER_EMAIL", "fake-github@example.com")
        .env("GIT_AUTHOR_DATE", FIXED_GIT_DATE)
        .env("GIT_COMMITTER_DATE", FIXED_GIT_DATE)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("running git")
}

fn git_ok(dir: &Path, args: &[&str]) -> String {
    let output = git(dir, args);
    assert!(output.status.success(), "git {args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

/// A ref or path argument must not be read as an option by git.
fn safe_for_git(text: &str) -> bool {
    !text.starts_with('-') && !text.contains('\0')
}

fn resolve(bare: &Path, git_ref: &str) -> Option<String> {
    if !safe_for_git(git_ref) {
        return None;
    }
    let output = git(bare, &["rev-parse", "--verify", "--quiet", &format!("{git_ref}^{{commit}}")]);
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn read_blob(bare: &Path, git_ref: &str, path: &str) -> Option<Vec<u8>> {
    if !safe_for_git(git_ref) {
        return None;
    }
    let output = git(bare, &["cat-file", "blob", &format!("{git_ref}:{path}")]);
    output.status.success().then_some(output.stdout)
}

/// Writes `files` under `dir`; files named `*.sh` or starting with `#!` are executable.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a file path")).expect("the file's directory");
        std::fs::write(&file, content).expect("a seed file");
        if path.ends_with(".sh") || content.starts_with("#!") {
            make_executable(&file);
        }
    }
}

/// Commits `files` on top of `from` (a ref of `bare`) in a scratch clone under `root` and
/// pushes the commit to `target` (a full ref name, force); returns its sha.
fn commit_files(root: &Path, bare: &Path, from: &str, files: &[(&str, &str)], message: &str, target: &str) -> String {
    let parent = resolve(bare, from).unwrap_or_else(|| panic!("{} has no {from}", bare.display()));
    let scratch = tempfile::Builder::new().prefix(".commit").tempdir_in(root).expect("a scratch dir");
    let work = scratch.path().join("work");
    git_ok(root, &["clone", "--quiet", "--no-checkout", path_str(bare), path_str(&work)]);
    git_ok(&work, &["checkout", "--quiet", "--detach", &parent]);
    write_files(&work, files);
    git_ok(&work, &["add", "--all"]);
    git_ok(&work, &["commit", "--quiet", "--allow-empty", "-m", message]);
    git_ok(&work, &["push", "--quiet", "--force", path_str(bare), &format!("HEAD:{target}")]);
    git_ok(&work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// A review comment's `diff_hunk`, as GitHub cuts it: the hunk of the pull request's diff that
/// holds `line` (of the file at `head`), from its header down to that line. A line outside the
/// diff gets a hunk of up to three lines of context ending at it; a file the fake cannot read, a
/// fixed one.
fn review_diff_hunk(bare: &Path, base: Option<&str>, head: &str, path: &str, line: u64) -> String {
    let from_diff = || {
        let merge_base = git(bare, &["merge-base", base?, head]);
        let merge_base = String::from_utf8_lossy(&merge_base.stdout).trim().to_owned();
        let diff = git(bare, &["diff", "--no-color", "--unified=3", &merge_base, head, "--", path]);
        diff.status.success().then_some(())?;
        hunk_ending_at(&String::from_utf8_lossy(&diff.stdout), line)
    };
    let context = || {
        let text = String::from_utf8_lossy(&read_blob(bare, head, path)?).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let end = usize::try_from(line).ok().filter(|l| (1..=lines.len()).contains(l))?;
        let start = end.saturating_sub(2).max(1);
        let count = end - start + 1;
        let body: Vec<String> = lines[start - 1..end].iter().map(|l| format!(" {l}")).collect();
        Some(format!("@@ -{start},{count} +{start},{count} @@\n{}", body.join("\n")))
    };
    from_diff().or_else(context).unwrap_or_else(|| "@@ -1,3 +1,3 @@".to_owned())
}

/// In a unified diff, the hunk holding new-file line `line`, cut after that line.
fn hunk_ending_at(diff: &str, line: u64) -> Option<String> {
    let mut hunk: Option<(Vec<&str>, u64)> = None;
    for text in diff.lines() {
        if text.starts_with("@@") {
            let start = text.split_whitespace().find_map(|w| w.strip_prefix('+'))?;
            let start = start.split(',').next()?.parse().ok()?;
            hunk = Some((vec![text], start));
            continue;
        }
        let Some((lines, next)) = hunk.as_mut() else { continue };
        match text.as_bytes().first() {
            Some(b'+' | b' ') => {
                lines.push(text);
                if *next == line {
                    return Some(lines.join("\n"));
                }
                *next += 1;
            }
            Some(b'-') => lines.push(text),
            _ => {}
        }
    }
    None
}

fn branches(bare: &Path) -> Vec<String> {
    git_ok(bare, &["for-each-ref", "--format=%(refname:short)", "refs/heads"]).lines().map(str::to_owned).collect()
}

#[cfg(unix)]
fn make_executable(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).expect("chmod +x");
}

#[cfg(not(unix))]
fn make_executable(_file: &Path) {}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// An answer before it becomes an HTTP response.
struct Reply {
    status: u16,
    body: Option<Value>,
    /// A body that is not JSON (git's smart HTTP); its type is in `headers`.
    raw: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    /// False when no endpoint matched.
    matched: bool,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: Some(body), raw: None, headers: Vec::new(), matched: true }
    }

    fn error(status: u16, message: &str, documentation_url: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": documentation_url, "status": status.to_string() }),
        )
    }

    fn not_found(documentation_url: &str) -> Reply {
        Reply::error(404, "Not Found", documentation_url)
    }

    fn unauthenticated() -> Reply {
        Reply::error(401, "Requires authentication", "https://docs.github.com/rest")
    }

    fn bad_credentials() -> Reply {
        Reply::error(401, "Bad credentials", "https://docs.github.com/rest")
    }

    /// GitHub's 422 with `errors`, shaped like the recorded one.
    fn validation_failed(errors: Value, documentation_url: &str) -> Reply {
        let mut body = TEMPLATES.validation_failed.clone();
        body["errors"] = errors;
        body["documentation_url"] = json!(documentation_url);
        body["status"] = json!("422");
        Reply::json(422, body)
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match (self.body, self.raw) {
            (Some(body), _) => (status, axum::Json(body)).into_response(),
            (None, Some(raw)) => (status, raw).into_response(),
            (None, None) => status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// The one axum handler: everything is dispatched by [`World::answer`] under the world's lock,
/// so each request sees and leaves a consistent world. The git calls it makes block, so it runs
/// on the blocking pool.
async fn serve_request(
    axum::extract::State(world): axum::extract::State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let held = {
        let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = world.holds.iter().position(|hold| hold.matches(method.as_str(), uri.path(), &body));
        at.map(|at| world.holds.remove(at))
    };
    if let Some(hold) = held {
        hold.arrived.send_replace(true);
        if hold.released.await.is_err() {
            return Reply::error(503, "Service Unavailable (held by the test, then dropped)", "").into_response();
        }
    }
    let timeout = {
        let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = world.timeouts.iter().position(|t| t.matches(method.as_str(), uri.path(), &body));
        at.map(|at| {
            world.timeouts[at].remaining -= 1;
            let after_effect = world.timeouts[at].after_effect;
            world.timeouts.retain(|t| t.remaining > 0);
            (after_effect, world.stopped.clone())
        })
    };
    if let Some((after_effect, stopped)) = timeout {
        let world = world.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if after_effect {
                world.answer(&method, &uri, &headers, &body);
            } else {
                world.record_unanswered(&method, &uri, &headers, &body);
            }
            if let Some(request) = world.requests.last_mut() {
                request.status = 0;
            }
        })
        .await;
        if let Err(panic) = recorded {
            return Reply::error(500, &format!("the fake GitHub panicked: {panic}"), "").into_response();
        }
        // Never answered while the fake runs: only the client's time-out ends the request.
        stopped.cancelled().await;
        return Reply::error(504, "Gateway Timeout (the fake GitHub stopped)", "").into_response();
    }
    let answer = tokio::task::spawn_blocking(move || {
        let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        world.answer(&method, &uri, &headers, &body)
    })
    .await;
    match answer {
        Ok(reply) => reply.into_response(),
        Err(panic) => Reply::error(500, &format!("the fake GitHub panicked: {panic}"), "").into_response(),
    }
}

/// A request, parsed.
struct Call {
    method: String,
    segments: Vec<String>,
    query: HashMap<String, String>,
    body: Value,
    caller: Caller,
}

impl Call {
    fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn text(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }
}

impl World {
    fn answer(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let path = uri.path().to_owned();
        let raw_query = uri.query().unwrap_or_default().to_owned();
        let authorization = headers.get(http_authorization()).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (auth, caller) = self.authenticate(authorization.as_deref());
        let json_body = if body.is_empty() { None } else { serde_json::from_slice::<Value>(body).ok() };
        let method = method.as_str().to_owned();

        let fault = self.faults.iter_mut().find(|f| f.matches(&method, &path)).map(|f| {
            f.remaining -= 1;
            (f.status, f.after_effect)
        });
        self.faults.retain(|f| f.remaining > 0);

        let reply = match fault {
            Some((status, false)) => injected_failure(status),
            _ if self.serves_git_over_http(&path) => {
                let done = self.git_http_backend(&method, uri, headers, body);
                match fault {
                    Some((status, true)) => Reply { matched: done.matched, ..injected_failure(status) },
                    _ => done,
                }
            }
            _ if !body.is_empty() && json_body.is_none() => {
                Reply::error(400, "Problems parsing JSON", "https://docs.github.com/rest")
            }
            _ => {
                let call = Call {
                    method: method.clone(),
                    segments: path
                        .trim_matches('/')
                        .split('/')
                        .map(|segment| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned())
                        .collect(),
                    query: form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect(),
                    body: json_body.clone().unwrap_or(Value::Null),
                    caller,
                };
                let done = self.route(&call);
                match fault {
                    Some((status, true)) => Reply { matched: done.matched, ..injected_failure(status) },
                    _ => done,
                }
            }
        };
        self.requests.push(RecordedRequest {
            method,
            path,
            query: raw_query,
            auth,
            authorization,
            body: json_body,
            status: reply.status,
            matched: reply.matched,
            at: std::time::Instant::now(),
        });
        reply
    }

    /// Whether `path` is a git smart-HTTP request for a repository served that way.
    fn serves_git_over_http(&self, path: &str) -> bool {
        let Some((repo, _)) = path.trim_start_matches('/').split_once(".git/") else { return false };
        self.repos.get(repo).is_some_and(|r| r.clone_url.starts_with("http"))
    }

    /// Answers a git smart-HTTP request (`info/refs`, `git-upload-pack`, `git-receive-pack`)
    /// with git's own CGI, `git http-backend`, on the bare repository. Anyone may fetch and push:
    /// the fake checks no git credentials.
    fn git_http_backend(&self, method: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let run = Command::new("git")
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", uri.path())
            .env("QUERY_STRING", uri.query().unwrap_or_default())
            .env("REQUEST_METHOD", method)
            .env("CONTENT_TYPE", header("content-type"))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
            .env("GIT_PROTOCOL", header("git-protocol"))
            // Pushing over HTTP needs an authenticated user by default.
            .env("REMOTE_USER", "errand")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                let mut stdin = child.stdin.take().expect("a piped stdin");
                stdin.write_all(body)?;
                drop(stdin);
                child.wait_with_output()
            });
        let output = match run {
            Ok(output) => output,
            Err(error) => return Reply::error(500, &format!("running git http-backend: {error}"), ""),
        };
        // CGI: header lines, an empty line, the body.
        let out = output.stdout;
        let Some(split) = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| (at, at + 4))
            .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|at| (at, at + 2)))
        else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Reply::error(500, &format!("git http-backend gave no CGI headers: {stderr}"), "");
        };
        let mut reply =
            Reply { status: 200, body: None, raw: Some(out[split.1..].to_vec()), headers: Vec::new(), matched: true };
        for line in String::from_utf8_lossy(&out[..split.0]).lines() {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim().to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "status" => reply.status = value.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(500),
                "content-type" => reply.headers.push(("content-type", value)),
                "cache-control" => reply.headers.push(("cache-control", value)),
                _ => {}
            }
        }
        reply
    }

    /// Records a request that is not carried out (a time-out before it had any effect).
    fn record_unanswered(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
        let authorization = headers.get(http_authorization()).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (auth, _) = self.authenticate(authorization.as_deref());
        self.requests.push(RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            auth,
            authorization,
            body: serde_json::from_slice(body).ok(),
            status: 0,
            matched: true,
            at: std::time::Instant::now(),
        });
    }

    fn route(&mut self, call: &Call) -> Reply {
        if matches!(call.caller, Caller::BadCredentials) {
            return Reply::bad_credentials();
        }
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        let method = call.method.as_str();
        match (method, segments.as_slice()) {
            ("GET", ["user"]) => self.authenticated_user(call),
            ("POST", ["app", "installations", id, "access_tokens"]) => self.mint_installation_token(call, id),
            ("GET", ["repos", owner, name, "installation"]) => self.repository_installation(call, owner, name),
            (_, ["repos", owner, name, rest @ ..]) => {
                if matches!(call.caller, Caller::App) {
                    // The App's JWT only opens `/app` endpoints; repository calls need an
                    // installation token.
                    return Reply::error(403, "Resource not accessible by integration", "https://docs.github.com/rest");
                }
                let full_name = format!("{owner}/{name}");
                if !self.repos.contains_key(&full_name) {
                    return Reply::not_found("https://docs.github.com/rest/repos/repos#get-a-repository");
                }
                self.route_repo(call, &full_name, rest)
            }
            _ => unmatched(),
        }
    }

    fn route_repo(&mut self, call: &Call, repo: &str, rest: &[&str]) -> Reply {
        let writes = call.method != "GET";
        if writes && call.caller.login().is_none() && !matches!(rest, ["check-runs", ..]) {
            return Reply::unauthenticated();
        }
        match (call.method.as_str(), rest) {
            ("GET", []) => Reply::json(200, self.repo_json(self.repo(repo))),
            ("GET", ["contents"]) => self.contents(call, repo, ""),
            ("GET", ["contents", path @ ..]) => self.contents(call, repo, &path.join("/")),
            ("GET", ["collaborators", user, "permission"]) => self.permission(repo, user),
            ("GET", ["branches", branch @ ..]) if !branch.is_empty() => self.get_branch(repo, &branch.join("/")),
            ("GET", ["issues", number]) => self.get_issue(repo, number),
            ("GET", ["issues", number, "comments"]) => self.list_comments(call, repo, number),
            ("POST", ["issues", number, "comments"]) => self.create_comment(call, repo, number),
            ("GET", ["issues", "comments", id]) => self.get_comment(repo, id),
            ("PATCH" | "POST", ["issues", "comments", id]) => self.update_comment(call, repo, id),
            ("POST", ["issues", "comments", id, "reactions"]) => {
                self.react(call, repo, ReactionTarget::IssueComment, id)
            }
            ("POST", ["issues", number, "reactions"]) => self.react(call, repo, ReactionTarget::Issue, number),
            ("GET", ["pulls"]) => self.list_pulls(call, repo),
            ("POST", ["pulls"]) => self.create_pull(call, repo),
            ("GET", ["pulls", "comments", id]) => self.get_review_comment(repo, id),
            ("PATCH", ["pulls", "comments", id]) => self.update_review_comment(call, repo, id),
            ("POST", ["pulls", "comments", id, "reactions"]) => {
                self.react(call, repo, ReactionTarget::ReviewComment, id)
            }
            ("GET", ["pulls", number]) => self.get_pull(repo, number),
            ("PATCH", ["pulls", number]) => self.update_pull(call, repo, number),
            ("GET", ["pulls", number, "comments"]) => self.list_review_comments(call, repo, number, None),
            ("POST", ["pulls", number, "comments", id, "replies"]) => {
                self.reply_to_review_comment(call, repo, number, id)
            }
            ("GET", ["pulls", number, "reviews"]) => self.list_reviews(call, repo, number),
            ("GET", ["pulls", number, "reviews", id]) => self.get_review(repo, number, id),
            ("GET", ["pulls", number, "reviews", id, "comments"]) => {
                self.list_review_comments(call, repo, number, Some(id))
            }
            ("POST", ["check-runs"]) => self.create_check_run(call, repo),
            ("PATCH", ["check-runs", id]) => self.update_check_run(call, repo, id),
            _ => unmatched(),
        }
    }

    // --- endpoints -------------------------------------------------------------------------

    fn authenticated_user(&self, call: &Call) -> Reply {
        match &call.caller {
            Caller::User(login) => Reply::json(200, self.user_json(login)),
            Caller::Installation | Caller::App => Reply::error(
                403,
                "Resource not accessible by integration",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            ),
            _ => Reply::unauthenticated(),
        }
    }

    /// `GET /repos/{owner}/{repo}/installation` (App JWT): the installation that holds the
    /// repository, which is every repository of this fake's world.
    fn repository_installation(&self, call: &Call, owner: &str, name: &str) -> Reply {
        const DOCS: &str =
            "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app";
        if !matches!(call.caller, Caller::App) {
            return Reply::error(401, "A JSON web token could not be decoded", "https://docs.github.com/rest");
        }
        if !self.repos.contains_key(&format!("{owner}/{name}")) {
            return Reply::not_found(DOCS);
        }
        Reply::json(
            200,
            json!({
                "id": INSTALLATION_ID,
                "account": { "login": owner, "type": "Organization" },
                "repository_selection": "all",
                "target_type": "Organization",
                "permissions": { "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read" },
            }),
        )
    }

    fn mint_installation_token(&mut self, call: &Call, id: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
        if !matches!(call.caller, Caller::App) {
            return Reply::error(401, "A JSON web token could not be decoded", "https://docs.github.com/rest");
        }
        let Some(installation_id) = id.parse::<u64>().ok().filter(|id| *id == INSTALLATION_ID) else {
            return Reply::not_found(DOCS);
        };
        let token = format!("ghs_{}", uuid::Uuid::now_v7().simple()).chars().take(40).collect::<String>();
        let expires = chrono::Utc::now() + TOKEN_LIFETIME;
        self.installation_tokens.insert(token.clone(), (installation_id, expires));
        let mut value = TEMPLATES.installation_token.clone();
        value["token"] = json!(token);
        value["expires_at"] = json!(expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        value["permissions"] = json!({
            "contents": "write", "issues": "write", "pull_requests": "write", "checks": "write", "metadata": "read"
        });
        value["repository_selection"] = json!("all");
        if let Some(fields) = value.as_object_mut() {
            fields.remove("repositories");
        }
        Reply::json(201, value)
    }

    fn contents(&self, call: &Call, repo: &str, path: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/repos/contents#get-repository-content";
        let r = self.repo(repo);
        let git_ref = call.query("ref").filter(|r| !r.is_empty()).unwrap_or("main");
        let path = path.trim_matches('/');
        if !safe_for_git(git_ref) || resolve(&r.bare, git_ref).is_none() {
            return Reply::error(404, &format!("No commit found for the ref {git_ref}"), DOCS);
        }
        let spec = if path.is_empty() { format!("{git_ref}^{{tree}}") } else { format!("{git_ref}:{path}") };
        let kind = git(&r.bare, &["cat-file", "-t", &spec]);
        match String::from_utf8_lossy(&kind.stdout).trim() {
            "blob" => {
                let bytes = read_blob(&r.bare, git_ref, path).unwrap_or_default();
                let sha = git_ok(&r.bare, &["rev-parse", &spec]).trim().to_owned();
                let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
                let mut wrapped: String = encoded
                    .as_bytes()
                    .chunks(BASE64_LINE)
                    .map(|line| String::from_utf8_lossy(line).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n");
                wrapped.push('\n');
                let mut entry = self.content_entry(r, git_ref, path, "file", &sha, bytes.len());
                entry["encoding"] = json!("base64");
                entry["content"] = json!(wrapped);
                Reply::json(200, entry)
            }
            "tree" => {
                let listing = git_ok(&r.bare, &["ls-tree", "-l", &spec]);
                let entries: Vec<Value> = listing
                    .lines()
                    .filter_map(|line| {
                        let (meta, name) = line.split_once('\t')?;
                        let fields: Vec<&str> = meta.split_whitespace().collect();
                        let (mode, kind, sha, size) = (fields.first()?, fields.get(1)?, fields.get(2)?, fields.get(3)?);
                        let kind = match (*kind, *mode) {
                            ("blob", "120000") => "symlink",
                            ("blob", _) => "file",
                            ("tree", _) => "dir",
                            _ => "submodule",
                        };
                        let child = if path.is_empty() { name.to_owned() } else { format!("{path}/{name}") };
                        Some(self.content_entry(r, git_ref, &child, kind, sha, size.parse().unwrap_or(0)))
                    })
                    .collect();
                Reply::json(200, Value::Array(entries))
            }
            _ => Reply::not_found(DOCS),
        }
    }

    fn content_entry(&self, repo: &Repo, git_ref: &str, path: &str, kind: &str, sha: &str, size: usize) -> Value {
        let url = self.api_repo(repo, &format!("/contents/{path}?ref={git_ref}"));
        let git_url = self.api_repo(repo, &format!("/git/{}/{sha}", if kind == "dir" { "trees" } else { "blobs" }));
        let html_url = self.html(repo, &format!("/{}/{git_ref}/{path}", if kind == "dir" { "tree" } else { "blob" }));
        let name = path.rsplit('/').next().unwrap_or(path);
        json!({
            "type": kind,
            "size": size,
            "name": name,
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": (kind == "file").then(|| self.html(repo, &format!("/raw/{git_ref}/{path}"))),
            "_links": { "self": url, "git": git_url, "html": html_url },
        })
    }

    fn permission(&self, repo: &str, user: &str) -> Reply {
        const DOCS: &str =
            "https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user";
        if !self.known_users.contains(user) {
            return Reply::error(404, &format!("{user} is not a user"), DOCS);
        }
        // A public repository: anyone GitHub knows may read it.
        let role = self.repo(repo).permissions.get(user).map_or("read", String::as_str);
        // `permission` is the legacy field: maintain shows as write, triage as read.
        let permission = match role {
            "maintain" => "write",
            "triage" => "read",
            other => other,
        };
        let mut value = TEMPLATES.collaborator_permission.clone();
        value["permission"] = json!(permission);
        value["role_name"] = json!(role);
        let mut user_json = self.user_json(user);
        user_json["permissions"] = json!({
            "admin": role == "admin",
            "maintain": matches!(role, "admin" | "maintain"),
            "push": matches!(role, "admin" | "maintain" | "write"),
            "triage": matches!(role, "admin" | "maintain" | "write" | "triage"),
            "pull": role != "none",
        });
        user_json["role_name"] = json!(role);
        value["user"] = user_json;
        Reply::json(200, value)
    }

    fn get_issue(&self, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        match number.parse().ok().and_then(|n| self.issue_json(r, n)) {
            Some(issue) => Reply::json(200, issue),
            None => Reply::not_found("https://docs.github.com/rest/issues/issues#get-an-issue"),
        }
    }

    fn list_comments(&self, call: &Call, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        let Some(number) = number.parse().ok().filter(|n| r.has_issue(*n)) else {
            return Reply::not_found("https://docs.github.com/rest/issues/comments#list-issue-comments");
        };
        let all: Vec<Value> =
            r.comments.values().filter(|c| c.issue == number).map(|c| self.comment_json(r, c)).collect();
        self.paginate(call, &self.api_repo(r, &format!("/issues/{number}/comments")), all)
    }

    fn create_comment(&mut self, call: &Call, repo: &str, number: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
        let author = call.caller.login().expect("checked by route_repo").to_owned();
        let Some(number) = number.parse().ok().filter(|n| self.repo(repo).has_issue(*n)) else {
            return Reply::not_found(DOCS);
        };
        let body = match required_body(call, "IssueComment", DOCS) {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        let id = self.next_id();
        let comment = Comment::new(id, number, &author, body);
        let value = self.comment_json(self.repo(repo), &comment);
        self.repo_mut(repo).comments.insert(id, comment);
        Reply::json(201, value)
    }

    fn get_comment(&self, repo: &str, id: &str) -> Reply {
        let r = self.repo(repo);
        match id.parse().ok().and_then(|id: u64| r.comments.get(&id)) {
            Some(comment) => Reply::json(200, self.comment_json(r, comment)),
            None => Reply::not_found("https://docs.github.com/rest/issues/comments#get-an-issue-comment"),
        }
    }

    fn update_comment(&mut self, call: &Call, repo: &str, id: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/issues/comments#update-an-issue-comment";
        let Some(id) = id.parse::<u64>().ok().filter(|id| self.repo(repo).comments.contains_key(id)) else {
            return Reply::not_found(DOCS);
        };
        let body = match required_body(call, "IssueComment", DOCS) {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        let comment = self.repo_mut(repo).comments.get_mut(&id).expect("checked above");
        let earlier = std::mem::replace(&mut comment.body, body.to_owned());
        comment.history.push(earlier);
        comment.updated_at = now();
        let r = self.repo(repo);
        Reply::json(200, self.comment_json(r, &r.comments[&id]))
    }

    /// A reaction on an issue comment, an issue (or pull request) or a review comment. As on
    /// GitHub, the same user reacting with the same content again gets the existing reaction
    /// back with `200`, and no second one is made.
    fn react(&mut self, call: &Call, repo: &str, target: ReactionTarget, id: &str) -> Reply {
        let docs = match target {
            ReactionTarget::IssueComment => {
                "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment"
            }
            ReactionTarget::Issue => "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue",
            ReactionTarget::ReviewComment => {
                "https://docs.github.com/rest/reactions/reactions#create-reaction-for-a-pull-request-review-comment"
            }
        };
        let user = call.caller.login().expect("checked by route_repo").to_owned();
        let Some(id) = id.parse::<u64>().ok().filter(|id| self.repo(repo).reactions(target, *id).is_some()) else {
            return Reply::not_found(docs);
        };
        let Some(content) = call.text("content").filter(|c| REACTIONS.contains(c)) else {
            return Reply::validation_failed(
                json!([{"resource": "Reaction", "code": "invalid", "field": "content"}]),
                docs,
            );
        };
        let reaction_id = self.next_id();
        let reactions = self.repo_mut(repo).reactions_mut(target, id).expect("checked above");
        let (status, reaction) = match reactions.iter().find(|r| r.user == user && r.content == content) {
            Some(existing) => (200, existing.clone()),
            None => {
                let reaction = Reaction { id: reaction_id, user, content: content.to_owned(), created_at: now() };
                reactions.push(reaction.clone());
                (201, reaction)
            }
        };
        Reply::json(status, self.reaction_json(&reaction))
    }

    fn get_branch(&self, repo: &str, branch: &str) -> Reply {
        let r = self.repo(repo);
        match resolve(&r.bare, &format!("refs/heads/{branch}")) {
            Some(sha) => Reply::json(200, self.branch_detail_json(r, branch, &sha)),
            None => {
                Reply::error(404, "Branch not found", "https://docs.github.com/rest/branches/branches#get-a-branch")
            }
        }
    }

    /// A pull request's review comments, oldest first, or one review's (`review`).
    fn list_review_comments(&self, call: &Call, repo: &str, number: &str, review: Option<&str>) -> Reply {
        let docs = match review {
            None => "https://docs.github.com/rest/pulls/comments#list-review-comments-on-a-pull-request",
            Some(_) => "https://docs.github.com/rest/pulls/reviews#list-comments-for-a-pull-request-review",
        };
        let r = self.repo(repo);
        let Some(number) = number.parse::<u64>().ok().filter(|n| r.pulls.contains_key(n)) else {
            return Reply::not_found(docs);
        };
        let review = match review {
            None => None,
            Some(id) => match id.parse::<u64>().ok().filter(|id| r.reviews.get(id).is_some_and(|v| v.pull == number)) {
                Some(id) => Some(id),
                None => return Reply::not_found(docs),
            },
        };
        let mut all: Vec<Value> = r
            .review_comments
            .values()
            .filter(|c| c.pull == number && review.is_none_or(|id| c.review_id == id))
            .map(|c| self.review_comment_json(r, c))
            .collect();
        // GitHub ignores `direction` without `sort`.
        if call.query("sort").is_some() && call.query("direction") == Some("desc") {
            all.reverse();
        }
        let url = match review {
            None => self.api_repo(r, &format!("/pulls/{number}/comments")),
            Some(id) => self.api_repo(r, &format!("/pulls/{number}/reviews/{id}/comments")),
        };
        self.paginate(call, &url, all)
    }

    fn get_review_comment(&self, repo: &str, id: &str) -> Reply {
        let r = self.repo(repo);
        match id.parse().ok().and_then(|id: u64| r.review_comments.get(&id)) {
            Some(comment) => Reply::json(200, self.review_comment_json(r, comment)),
            None => {
                Reply::not_found("https://docs.github.com/rest/pulls/comments#get-a-review-comment-for-a-pull-request")
            }
        }
    }

    fn update_review_comment(&mut self, call: &Call, repo: &str, id: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/pulls/comments#update-a-review-comment-for-a-pull-request";
        let Some(id) = id.parse::<u64>().ok().filter(|id| self.repo(repo).review_comments.contains_key(id)) else {
            return Reply::not_found(DOCS);
        };
        let body = match required_body(call, "PullRequestReviewComment", DOCS) {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        let comment = self.repo_mut(repo).review_comments.get_mut(&id).expect("checked above");
        let earlier = std::mem::replace(&mut comment.body, body.to_owned());
        comment.history.push(earlier);
        comment.updated_at = now();
        let r = self.repo(repo);
        Reply::json(200, self.review_comment_json(r, &r.review_comments[&id]))
    }

    /// `POST /pulls/{n}/comments/{id}/replies`. The docs say `id` must be a thread's first
    /// comment ("Replies to replies are not supported"); the fake refuses a reply's id with a
    /// 422 so a client that gets this wrong is caught.
    fn reply_to_review_comment(&mut self, call: &Call, repo: &str, number: &str, id: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/pulls/comments#create-a-reply-for-a-review-comment";
        let author = call.caller.login().expect("checked by route_repo").to_owned();
        let r = self.repo(repo);
        let Some(number) = number.parse::<u64>().ok().filter(|n| r.pulls.contains_key(n)) else {
            return Reply::not_found(DOCS);
        };
        let Some(parent) =
            id.parse::<u64>().ok().and_then(|id| r.review_comments.get(&id)).filter(|c| c.pull == number)
        else {
            return Reply::not_found(DOCS);
        };
        if let Some(root) = parent.in_reply_to {
            return Reply::validation_failed(
                json!([{
                    "resource": "PullRequestReviewComment",
                    "code": "invalid",
                    "field": "in_reply_to",
                    "message": format!(
                        "comment {} is a reply; replies to replies are not supported (reply to {root})",
                        parent.id
                    ),
                }]),
                DOCS,
            );
        }
        let body = match required_body(call, "PullRequestReviewComment", DOCS) {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        let root = parent.id;
        self.known_users.insert(author.clone());
        let id = self.add_reply(repo, root, &author, body);
        let r = self.repo(repo);
        let mut reply = Reply::json(201, self.review_comment_json(r, &r.review_comments[&id]));
        reply.headers.push(("location", self.api_repo(r, &format!("/pulls/comments/{id}"))));
        reply
    }

    fn list_reviews(&self, call: &Call, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        let Some(number) = number.parse::<u64>().ok().filter(|n| r.pulls.contains_key(n)) else {
            return Reply::not_found("https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request");
        };
        let all: Vec<Value> =
            r.reviews.values().filter(|v| v.pull == number).map(|v| self.review_json(r, v, false)).collect();
        self.paginate(call, &self.api_repo(r, &format!("/pulls/{number}/reviews")), all)
    }

    fn get_review(&self, repo: &str, number: &str, id: &str) -> Reply {
        let r = self.repo(repo);
        let number = number.parse::<u64>().ok();
        match id.parse().ok().and_then(|id: u64| r.reviews.get(&id)).filter(|v| Some(v.pull) == number) {
            Some(review) => Reply::json(200, self.review_json(r, review, false)),
            None => Reply::not_found("https://docs.github.com/rest/pulls/reviews#get-a-review-for-a-pull-request"),
        }
    }

    fn list_pulls(&self, call: &Call, repo: &str) -> Reply {
        let r = self.repo(repo);
        let state = call.query("state").unwrap_or("open");
        let head = call.query("head").map(|h| match h.split_once(':') {
            Some((owner, branch)) => (Some(owner), branch),
            None => (None, h),
        });
        let all: Vec<Value> = r
            .pulls
            .values()
            .rev()
            .filter(|p| state == "all" || p.state == state)
            .filter(|p| call.query("base").is_none_or(|b| b == p.base))
            .filter(|p| {
                head.is_none_or(|(owner, branch)| owner.is_none_or(|o| o == p.head_owner(r)) && branch == p.head)
            })
            .map(|p| self.pull_json(r, p))
            .collect();
        self.paginate(call, &self.api_repo(r, "/pulls"), all)
    }

    fn create_pull(&mut self, call: &Call, repo: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
        let author = call.caller.login().expect("checked by route_repo").to_owned();
        let r = self.repo(repo);
        let missing = |field: &str| {
            Reply::validation_failed(
                json!([{"resource": "PullRequest", "code": "missing_field", "field": field}]),
                DOCS,
            )
        };
        let Some(title) = call.text("title").filter(|t| !t.is_empty()) else { return missing("title") };
        let Some(head) = call.text("head") else { return missing("head") };
        let Some(base) = call.text("base") else { return missing("base") };
        let branch = match head.split_once(':') {
            Some((owner, branch)) if owner == r.owner => branch,
            Some(_) => head,
            None => head,
        };
        let invalid = |field: &str| {
            Reply::validation_failed(json!([{"resource": "PullRequest", "code": "invalid", "field": field}]), DOCS)
        };
        if let Some(too_long) = body_too_long("PullRequest", call.text("body"), DOCS) {
            return too_long;
        }
        let all_branches = branches(&r.bare);
        if !all_branches.iter().any(|b| b == base) {
            return invalid("base");
        }
        if !all_branches.iter().any(|b| b == branch) {
            return invalid("head");
        }
        if r.pulls.values().any(|p| p.fork.is_none() && p.state == "open" && p.head == branch && p.base == base) {
            return Reply::validation_failed(
                json!([{
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": format!("A pull request already exists for {}:{branch}.", r.owner),
                }]),
                DOCS,
            );
        }
        let ahead = git_ok(&r.bare, &["rev-list", "--count", &format!("refs/heads/{base}..refs/heads/{branch}")]);
        if ahead.trim() == "0" {
            return Reply::validation_failed(
                json!([{"resource": "PullRequest", "code": "custom", "message": format!("No commits between {base} and {branch}")}]),
                DOCS,
            );
        }
        let id = self.next_id();
        let draft = call.body.get("draft").and_then(Value::as_bool).unwrap_or(false);
        let pull = Pull::new(id, title, call.text("body").unwrap_or_default(), branch, base, &author, draft);
        let r = self.repo_mut(repo);
        let number = r.take_number();
        r.insert_pull(number, pull);
        let r = self.repo(repo);
        let mut reply = Reply::json(201, self.pull_json(r, &r.pulls[&number]));
        reply.headers.push(("location", self.api_repo(r, &format!("/pulls/{number}"))));
        reply
    }

    fn get_pull(&self, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        match number.parse().ok().and_then(|n: u64| r.pulls.get(&n)) {
            Some(pull) => Reply::json(200, self.pull_json(r, pull)),
            None => Reply::not_found("https://docs.github.com/rest/pulls/pulls#get-a-pull-request"),
        }
    }

    fn update_pull(&mut self, call: &Call, repo: &str, number: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/pulls/pulls#update-a-pull-request";
        let Some(number) = number.parse::<u64>().ok().filter(|n| self.repo(repo).pulls.contains_key(n)) else {
            return Reply::not_found(DOCS);
        };
        if let Some(state) = call.text("state").filter(|s| !["open", "closed"].contains(s)) {
            return Reply::validation_failed(
                json!([{"resource": "PullRequest", "code": "invalid", "field": "state", "value": state}]),
                DOCS,
            );
        }
        if let Some(too_long) = body_too_long("PullRequest", call.text("body"), DOCS) {
            return too_long;
        }
        let pull = self.repo_mut(repo).pulls.get_mut(&number).expect("checked above");
        if let Some(title) = call.text("title") {
            pull.title = title.to_owned();
        }
        if let Some(body) = call.text("body") {
            pull.body = body.to_owned();
        }
        if let Some(base) = call.text("base") {
            pull.base = base.to_owned();
        }
        if let Some(state) = call.text("state") {
            pull.closed_at = (state == "closed").then(now);
            pull.state = state.to_owned();
        }
        pull.updated_at = now();
        let r = self.repo(repo);
        r.write_pull_map();
        Reply::json(200, self.pull_json(r, &r.pulls[&number]))
    }

    fn check_runs_allowed(&self, call: &Call) -> Result<(), Reply> {
        match call.caller {
            Caller::Installation => Ok(()),
            Caller::User(_) if !self.token_mode_restrictions => Ok(()),
            Caller::User(_) => Err(Reply::error(
                403,
                "Resource not accessible by personal access token",
                "https://docs.github.com/rest/checks/runs#create-a-check-run",
            )),
            _ => Err(Reply::unauthenticated()),
        }
    }

    fn create_check_run(&mut self, call: &Call, repo: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/checks/runs#create-a-check-run";
        if let Err(refusal) = self.check_runs_allowed(call) {
            return refusal;
        }
        let (Some(name), Some(head_sha)) = (call.text("name"), call.text("head_sha")) else {
            return Reply::validation_failed(
                json!([{"resource": "CheckRun", "code": "missing_field", "field": "name"}]),
                DOCS,
            );
        };
        if resolve(&self.repo(repo).bare, head_sha).is_none() {
            return Reply::validation_failed(
                json!([{"resource": "CheckRun", "code": "invalid", "field": "head_sha"}]),
                DOCS,
            );
        }
        let id = self.next_id();
        let mut run = FakeCheckRun {
            id,
            name: name.to_owned(),
            head_sha: head_sha.to_owned(),
            status: "queued".to_owned(),
            conclusion: None,
            external_id: None,
            output_title: None,
            output_summary: None,
            output_text: None,
        };
        apply_check_run_fields(&mut run, &call.body);
        let value = self.check_run_json(self.repo(repo), &run);
        self.repo_mut(repo).check_runs.insert(id, run);
        Reply::json(201, value)
    }

    fn update_check_run(&mut self, call: &Call, repo: &str, id: &str) -> Reply {
        if let Err(refusal) = self.check_runs_allowed(call) {
            return refusal;
        }
        let Some(run) = id.parse::<u64>().ok().and_then(|id| self.repo_mut(repo).check_runs.get_mut(&id)) else {
            return Reply::not_found("https://docs.github.com/rest/checks/runs#update-a-check-run");
        };
        apply_check_run_fields(run, &call.body);
        let run = run.clone();
        Reply::json(200, self.check_run_json(self.repo(repo), &run))
    }

    /// One page of `items` (`per_page` up to 100, default 30) with GitHub's `Link` header.
    fn paginate(&self, call: &Call, url: &str, items: Vec<Value>) -> Reply {
        let per_page = call.query("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(30).clamp(1, 100);
        let page = call.query("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let mut links = Vec::new();
        let link = |n: usize, rel: &str| format!("<{url}?per_page={per_page}&page={n}>; rel=\"{rel}\"");
        if page < last {
            links.push(link(page + 1, "next"));
            links.push(link(last, "last"));
        }
        if page > 1 {
            links.push(link(1, "first"));
            links.push(link(page - 1, "prev"));
        }
        let page_items: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        let mut reply = Reply::json(200, Value::Array(page_items));
        if !links.is_empty() {
            reply.headers.push(("link", links.join(", ")));
        }
        reply
    }
}

fn apply_check_run_fields(run: &mut FakeCheckRun, body: &Value) {
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
    if let Some(name) = text("name") {
        run.name = name;
    }
    if let Some(status) = text("status") {
        run.status = status;
    }
    if let Some(conclusion) = text("conclusion") {
        run.conclusion = Some(conclusion);
        // GitHub completes a run whose conclusion is set.
        run.status = "completed".to_owned();
    }
    if let Some(external_id) = text("external_id") {
        run.external_id = Some(external_id);
    }
    if let Some(output) = body.get("output") {
        let field = |name: &str| output.get(name).and_then(Value::as_str).map(str::to_owned);
        run.output_title = field("title").or(run.output_title.take());
        run.output_summary = field("summary").or(run.output_summary.take());
        run.output_text = field("text").or(run.output_text.take());
    }
}

/// GitHub's 422 for a body over [`MAX_BODY_CHARS`] characters.
fn body_too_long(resource: &str, body: Option<&str>, documentation_url: &str) -> Option<Reply> {
    body.filter(|b| b.chars().count() > MAX_BODY_CHARS).map(|_| {
        Reply::validation_failed(
            json!([{
                "resource": resource,
                "code": "custom",
                "field": "body",
                "message": format!("body is too long (maximum is {MAX_BODY_CHARS} characters)"),
            }]),
            documentation_url,
        )
    })
}

/// The `body` a create or edit call must carry, or GitHub's answer to a missing or too long one.
fn required_body<'c>(call: &'c Call, resource: &str, documentation_url: &str) -> Result<&'c str, Reply> {
    let Some(body) = call.text("body") else {
        return Err(Reply::validation_failed(
            json!([{"resource": resource, "code": "missing_field", "field": "body"}]),
            documentation_url,
        ));
    };
    match body_too_long(resource, Some(body), documentation_url) {
        Some(too_long) => Err(too_long),
        None => Ok(body),
    }
}

fn unmatched() -> Reply {
    Reply { matched: false, ..Reply::not_found("https://docs.github.com/rest") }
}

/// The error [`FakeGithub::fail_next`] asked for, with GitHub's wording and headers.
fn injected_failure(status: u16) -> Reply {
    match status {
        403 | 429 => {
            let mut reply = Reply::error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            );
            reply.headers.push(("retry-after", "1".to_owned()));
            reply
        }
        500..=599 => Reply::json(status, json!({ "message": "Server Error" })),
        _ => Reply::error(status, "Injected failure", "https://docs.github.com/rest"),
    }
}

fn http_authorization() -> axum::http::HeaderName {
    axum::http::header::AUTHORIZATION
}

/// Logins such as `errand-test[bot]` in URLs, the way GitHub writes them.
fn url_escape(text: &str) -> String {
    text.replace('[', "%5B").replace(']', "%5D")
}
