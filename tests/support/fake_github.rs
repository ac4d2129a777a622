//! A stateful fake GitHub: a real HTTP server on a loopback port that holds a small world
//! (repositories backed by local bare git repositories, issues, comments, reactions, pull
//! requests, check runs, collaborator permissions, installation tokens) and answers the REST
//! calls errand makes with GitHub-shaped JSON, reached through the real octocrab client.
//!
//! Responses start from GitHub's own examples (`tests/data/github/openapi-subset.json`, the
//! `issue_comment` webhook example and the recorded 422; see `tests/data/github/SOURCES.md`),
//! with ids, numbers, bodies, users and URLs replaced, so they deserialize into octocrab's strict
//! models. Every request is recorded with the authentication it carried, and faults can be
//! injected per method and path.
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
    pub base: String,
    /// `open` or `closed`.
    pub state: String,
    pub draft: bool,
    pub user: String,
    pub html_url: String,
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
    /// What the fake answered.
    pub status: u16,
    /// False when no endpoint of the fake matched (the answer was a 404).
    pub matched: bool,
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
        let world = Arc::new(Mutex::new(World::new(api_url.clone(), repositories.path().to_owned())));
        let router = axum::Router::new().fallback(serve_request).with_state(world.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
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
        git_ok(&seed, &["init", "--quiet"]);
        for (path, content) in files {
            let file = seed.join(path);
            std::fs::create_dir_all(file.parent().expect("a file path")).expect("the file's directory");
            std::fs::write(&file, content).expect("a seed file");
            if path.ends_with(".sh") || content.starts_with("#!") {
                make_executable(&file);
            }
        }
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

    /// An `issue_comment` `created` delivery for the comment, as a GitHub App receives it.
    pub fn issue_comment_webhook(&self, repo: &str, issue: u64, comment_id: u64) -> Value {
        let world = self.world();
        let r = world.repo(repo);
        let comment = r.comments.get(&comment_id).unwrap_or_else(|| panic!("{repo} has no comment {comment_id}"));
        assert_eq!(comment.issue, issue, "comment {comment_id} is not on #{issue}");
        let mut payload = TEMPLATES.issue_comment_webhook.clone();
        payload["action"] = json!("created");
        payload["issue"] = world.issue_json(r, issue).expect("the issue");
        payload["comment"] = world.comment_json(r, comment);
        let mut repository = world.repo_json(r);
        if let Some(fields) = repository.as_object_mut() {
            fields.remove("permissions");
        }
        payload["repository"] = repository;
        let organization = &mut payload["organization"];
        relocate(organization, "https://api.github.com/orgs/Octocoders", &format!("{}/orgs/{}", world.api, r.owner));
        organization["login"] = json!(r.owner);
        organization["id"] = json!(numeric_id(&r.owner));
        organization["node_id"] = json!(node_id("Organization", numeric_id(&r.owner)));
        payload["sender"] = world.user_json(&comment.author);
        payload["installation"] = json!({ "id": INSTALLATION_ID, "node_id": node_id("Installation", INSTALLATION_ID) });
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
                base: p.base.clone(),
                state: p.state.clone(),
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

    pub fn check_runs(&self, repo: &str) -> Vec<FakeCheckRun> {
        self.world().repo(repo).check_runs.values().cloned().collect()
    }

    /// The text of `path` at `git_ref` in the bare repository, if it exists there.
    pub fn file_at(&self, repo: &str, git_ref: &str, path: &str) -> Option<String> {
        let bare = self.world().repo(repo).bare.clone();
        read_blob(&bare, git_ref, path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `file:///…/owner/name.git`, the repository's clone and push URL.
    pub fn clone_url(&self, repo: &str) -> String {
        self.world().repo(repo).clone_url.clone()
    }

    /// The sha `git_ref` points at, if it exists.
    pub fn sha_of(&self, repo: &str, git_ref: &str) -> Option<String> {
        let bare = self.world().repo(repo).bare.clone();
        resolve(&bare, git_ref)
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
    holds: Vec<PendingHold>,
    requests: Vec<RecordedRequest>,
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
    fn new(api: String, root: PathBuf) -> Self {
        World {
            api,
            root,
            next_id: FIRST_RESOURCE_ID,
            repos: BTreeMap::new(),
            known_users: BTreeSet::new(),
            installation_tokens: HashMap::new(),
            token_mode_restrictions: true,
            faults: Vec::new(),
            holds: Vec::new(),
            requests: Vec::new(),
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

    fn repo_json(&self, repo: &Repo) -> Value {
        let mut value = TEMPLATES.repository.clone();
        relocate(&mut value, "octocat/Hello-World", &repo.full_name());
        self.localize(&mut value);
        value["id"] = json!(repo.id);
        value["node_id"] = json!(node_id("Repository", repo.id));
        value["name"] = json!(repo.name);
        value["full_name"] = json!(repo.full_name());
        value["owner"] = self.owner_json(&repo.owner);
        value["private"] = json!(false);
        value["visibility"] = json!("public");
        value["description"] = Value::Null;
        value["homepage"] = Value::Null;
        value["default_branch"] = json!("main");
        value["clone_url"] = json!(repo.clone_url);
        value["html_url"] = json!(self.html(repo, ""));
        value["created_at"] = json!(repo.created_at);
        value["updated_at"] = json!(repo.created_at);
        value["pushed_at"] = json!(repo.created_at);
        value["license"] = Value::Null;
        value["topics"] = json!([]);
        value["temp_clone_token"] = Value::Null;
        let open = repo.issues.len() + repo.pulls.values().filter(|p| p.state == "open").count();
        value["open_issues_count"] = json!(open);
        value["open_issues"] = json!(open);
        value["permissions"] = json!({"admin": false, "maintain": false, "push": true, "triage": true, "pull": true});
        value
    }

    fn issue_json(&self, repo: &Repo, number: u64) -> Option<Value> {
        let mut value = TEMPLATES.issue.clone();
        relocate(&mut value, "Codertocat/Hello-World", &repo.full_name());
        relocate(&mut value, "/issues/1", &format!("/issues/{number}"));
        self.localize(&mut value);
        let comments = repo.comments.values().filter(|c| c.issue == number).count();
        let (id, title, body, author, state, created_at) = if let Some(issue) = repo.issues.get(&number) {
            (issue.id, &issue.title, &issue.body, &issue.author, "open", &issue.created_at)
        } else {
            let pull = repo.pulls.get(&number)?;
            value["pull_request"] = json!({
                "url": self.api_repo(repo, &format!("/pulls/{number}")),
                "html_url": self.html(repo, &format!("/pull/{number}")),
                "diff_url": self.html(repo, &format!("/pull/{number}.diff")),
                "patch_url": self.html(repo, &format!("/pull/{number}.patch")),
                "merged_at": null,
            });
            (pull.id, &pull.title, &pull.body, &pull.author, pull.state.as_str(), &pull.created_at)
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
        value["closed_at"] = Value::Null;
        value["author_association"] = json!(self.association(repo, author));
        value["html_url"] = json!(self.html(repo, &format!("/issues/{number}")));
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
        let mut rollup = json!({
            "url": self.api_repo(repo, &format!("/issues/comments/{}/reactions", comment.id)),
            "total_count": comment.reactions.len(),
        });
        for content in REACTIONS {
            rollup[content] = json!(comment.reactions.iter().filter(|r| r.content == content).count());
        }
        value["reactions"] = rollup;
        value
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
        let head_sha = resolve(&repo.bare, &format!("refs/heads/{}", pull.head)).unwrap_or_default();
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
        value["merged_at"] = Value::Null;
        value["merge_commit_sha"] = Value::Null;
        value["merged"] = json!(false);
        value["merged_by"] = Value::Null;
        value["auto_merge"] = Value::Null;
        value["author_association"] = json!("NONE");
        value["comments"] = json!(repo.comments.values().filter(|c| c.issue == n).count());
        value["review_comments"] = json!(0);
        value["head"] = self.branch_json(repo, &pull.head, &head_sha);
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
}

static TEMPLATES: LazyLock<Templates> = LazyLock::new(|| {
    let openapi: Value =
        serde_json::from_str(include_str!("../data/github/openapi-subset.json")).expect("openapi-subset.json is JSON");
    let example = |name: &str| openapi["components"]["examples"][name]["value"].clone();
    let webhook: Value =
        serde_json::from_str(include_str!("../data/github/webhooks/issue_comment.created.with-organization.json"))
            .expect("the issue_comment webhook example is JSON");
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
        comment,
        pull,
    }
});

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
    headers: Vec<(&'static str, String)>,
    /// False when no endpoint matched.
    matched: bool,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: Some(body), headers: Vec::new(), matched: true }
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
        let mut response = match self.body {
            Some(body) => (status, axum::Json(body)).into_response(),
            None => status.into_response(),
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
            _ if !body.is_empty() && json_body.is_none() => {
                Reply::error(400, "Problems parsing JSON", "https://docs.github.com/rest")
            }
            _ => {
                let call = Call {
                    method: method.clone(),
                    segments: path.trim_matches('/').split('/').map(percent_decode).collect(),
                    query: parse_query(&raw_query),
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
        });
        reply
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
            ("GET", ["issues", number]) => self.get_issue(repo, number),
            ("GET", ["issues", number, "comments"]) => self.list_comments(call, repo, number),
            ("POST", ["issues", number, "comments"]) => self.create_comment(call, repo, number),
            ("GET", ["issues", "comments", id]) => self.get_comment(repo, id),
            ("PATCH" | "POST", ["issues", "comments", id]) => self.update_comment(call, repo, id),
            ("POST", ["issues", "comments", id, "reactions"]) => self.react(call, repo, id),
            ("GET", ["pulls"]) => self.list_pulls(call, repo),
            ("POST", ["pulls"]) => self.create_pull(call, repo),
            ("GET", ["pulls", number]) => self.get_pull(repo, number),
            ("PATCH", ["pulls", number]) => self.update_pull(call, repo, number),
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
        let Some(body) = call.text("body") else {
            return Reply::validation_failed(
                json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}]),
                DOCS,
            );
        };
        if let Some(too_long) = body_too_long("IssueComment", Some(body), DOCS) {
            return too_long;
        }
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
        let Some(body) = call.text("body") else {
            return Reply::validation_failed(
                json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}]),
                DOCS,
            );
        };
        if let Some(too_long) = body_too_long("IssueComment", Some(body), DOCS) {
            return too_long;
        }
        let comment = self.repo_mut(repo).comments.get_mut(&id).expect("checked above");
        let earlier = std::mem::replace(&mut comment.body, body.to_owned());
        comment.history.push(earlier);
        comment.updated_at = now();
        let r = self.repo(repo);
        Reply::json(200, self.comment_json(r, &r.comments[&id]))
    }

    fn react(&mut self, call: &Call, repo: &str, id: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment";
        let user = call.caller.login().expect("checked by route_repo").to_owned();
        let Some(id) = id.parse::<u64>().ok().filter(|id| self.repo(repo).comments.contains_key(id)) else {
            return Reply::not_found(DOCS);
        };
        let Some(content) = call.text("content").filter(|c| REACTIONS.contains(c)) else {
            return Reply::validation_failed(
                json!([{"resource": "Reaction", "code": "invalid", "field": "content"}]),
                DOCS,
            );
        };
        let reaction_id = self.next_id();
        let comment = self.repo_mut(repo).comments.get_mut(&id).expect("checked above");
        let (status, index) = match comment.reactions.iter().position(|r| r.user == user && r.content == content) {
            Some(existing) => (200, existing),
            None => {
                comment.reactions.push(Reaction {
                    id: reaction_id,
                    user,
                    content: content.to_owned(),
                    created_at: now(),
                });
                (201, comment.reactions.len() - 1)
            }
        };
        Reply::json(status, self.reaction_json(&self.repo(repo).comments[&id].reactions[index]))
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
            .filter(|p| head.is_none_or(|(owner, branch)| owner.is_none_or(|o| o == r.owner) && branch == p.head))
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
        if r.pulls.values().any(|p| p.state == "open" && p.head == branch && p.base == base) {
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
        let created_at = now();
        let pull = Pull {
            id,
            number: 0,
            title: title.to_owned(),
            body: call.text("body").unwrap_or_default().to_owned(),
            head: branch.to_owned(),
            base: base.to_owned(),
            state: "open".to_owned(),
            draft: call.body.get("draft").and_then(Value::as_bool).unwrap_or(false),
            author,
            updated_at: created_at.clone(),
            created_at,
            closed_at: None,
        };
        let r = self.repo_mut(repo);
        let number = r.take_number();
        r.pulls.insert(number, Pull { number, ..pull });
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

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&name.replace('+', " ")), percent_decode(&value.replace('+', " ")))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex()) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Logins such as `errand-test[bot]` in URLs, the way GitHub writes them.
fn url_escape(text: &str) -> String {
    text.replace('[', "%5B").replace(']', "%5D")
}
