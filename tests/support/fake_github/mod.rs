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
//! The quick-start example includes this folder's `mod.rs` with `#[path]`, so the fake depends
//! on no other test-support module and works outside `#[test]`.
//!
//! The fake, by concern:
//! - `mod.rs` (this file): the handle tests hold, [`FakeGithub`] — seeding the world, injecting
//!   faults, inspecting what errand did — and the public types it answers with.
//! - `world.rs`: the state: repositories, issues, comments, reactions, pull requests, reviews
//!   and review comments, check runs, permissions, installation tokens, recorded requests and
//!   the faults waiting to be injected.
//! - `routes.rs`: the HTTP side: the one handler, the request recorder, fault injection
//!   (failures, time-outs, holds), the route table, and what the endpoints' replies share.
//! - `auth.rs`: who a request comes from (a plain token, the App's JWT, an installation token),
//!   and the App's endpoints (`GET /user`, the installation, minting installation tokens).
//! - `repos.rs`: repository endpoints: contents, branches, collaborator permissions, check runs.
//! - `issues.rs`: issue, issue comment and reaction endpoints.
//! - `pulls.rs`: pull request, review and review comment endpoints.
//! - `json.rs`: the GitHub-shaped JSON octocrab's strict models need, from GitHub's examples.
//! - `webhooks.rs`: the webhook deliveries tests send errand.
//! - `git.rs`: the bare repositories: seeding, reading refs, blobs and commits, the
//!   `post-receive` hook, serving them over git's smart HTTP.
#![allow(dead_code, reason = "each includer (test binaries, the quick start) uses a different part")]

mod auth;
mod git;
mod issues;
mod json;
mod pulls;
mod repos;
mod routes;
mod webhooks;
mod world;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use git::{branches, commit_files, git, git_ok, read_blob, resolve, review_diff_hunk, safe_for_git, seed_bare_repo};
use routes::serve_request;
use world::{
    Comment, Fault, Fork, Issue, PendingHold, Pull, ReactionTarget, Repo, Review, ReviewComment, Timeout, World, now,
    split_full_name,
};

/// The login comments and pull requests get when the caller uses an installation token.
pub const APP_BOT_LOGIN: &str = "errand-test[bot]";
/// The login `GET /user` answers for a plain token, and the author of what a plain token posts.
pub const TOKEN_BOT_LOGIN: &str = "errand-bot";
/// The installation the webhooks name and the App is installed as.
pub const INSTALLATION_ID: u64 = 42;

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
        let (bare, initial_sha) = seed_bare_repo(&root, owner, name, files);

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
        self.world().review_payload(repo, pull, review_id)
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
