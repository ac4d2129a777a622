//! The GitHub REST calls errand makes, through octocrab, with deliberate retries and
//! idempotent creation (a retried POST never makes a second comment or pull request).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use octocrab::service::middleware::retry::RetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::retry::{Failure, ForgeError, retry_tries, timed, with_retries};
use crate::job::{PullRequestRef, RepoName};
use crate::secrets::Redactor;

/// How long opening a connection to GitHub may take, at most (never more than the request
/// time-out).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How errand authenticates to GitHub.
pub enum GithubAuth {
    /// A plain token (small setups): no check runs, comments appear as the token's user.
    Token(SecretString),
    /// A GitHub App: an installation token is minted per job and renewed before it expires.
    App { app_id: u64, private_key_pem: SecretString },
}

/// A GitHub connection for the whole process; `for_repo` gives the client one job uses.
#[derive(Clone)]
pub struct Github {
    client: Octocrab,
    app_mode: bool,
    /// How long one try of a request may take.
    timeout: Duration,
    /// Every text errand sends (comments, pull request titles and bodies) passes it here, at the
    /// edge, so that no caller can forget it.
    redactor: Redactor,
}

impl Github {
    /// A client whose requests give up after `timeout` without an answer from GitHub (then
    /// [`with_retries`] tries again; a create looks for what the lost try made first).
    pub fn new(api_url: &str, auth: GithubAuth, timeout: Duration) -> Result<Self> {
        // octocrab's own retry re-sends POSTs at once on a 5xx and ignores Retry-After: it would
        // post a comment twice. `with_retries` retries deliberately instead, and bounds each try
        // by `timeout`. octocrab's read time-out is not used for that: it starts counting when
        // a pooled connection falls idle, so a request on a reused connection would be cut short.
        let builder = Octocrab::builder()
            .base_uri(api_url)
            .context("parsing the GitHub API URL")?
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(CONNECT_TIMEOUT.min(timeout)));
        let (builder, app_mode) = match auth {
            GithubAuth::Token(token) => (builder.personal_token(token), false),
            GithubAuth::App { app_id, private_key_pem } => {
                let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                    .context("reading the GitHub App private key (PEM)")?;
                (builder.app(AppId(app_id), key), true)
            }
        };
        Ok(Self {
            client: builder.build().context("building the GitHub client")?,
            app_mode,
            timeout,
            redactor: Redactor::default(),
        })
    }

    /// Redacts every text sent to GitHub with `redactor` (the process's secrets).
    pub fn with_redactor(self, redactor: Redactor) -> Self {
        Self { redactor, ..self }
    }

    /// A client for one repository, authenticated as the installation that delivered the job.
    pub async fn for_repo(&self, repo: &RepoName, installation_id: Option<u64>) -> Result<RepoClient, ForgeError> {
        let client = match (self.app_mode, installation_id) {
            (true, Some(id)) => self
                .client
                .installation(InstallationId(id))
                .map_err(|e| ForgeError::Fatal(anyhow!(e).context("selecting the installation")))?,
            // A request from Slack names no installation: ask GitHub which one holds the repository.
            (true, None) => {
                let path = format!("/repos/{}/{}/installation", repo.owner(), repo.name());
                let found: Result<Installation, ForgeError> =
                    with_retries("finding the App's installation", self.timeout, || {
                        self.client.get(&path, None::<&()>)
                    })
                    .await;
                match found {
                    Ok(installation) => self
                        .client
                        .installation(InstallationId(installation.id))
                        .map_err(|e| ForgeError::Fatal(anyhow!(e).context("selecting the installation")))?,
                    Err(ForgeError::Status { status: 404, .. }) => {
                        return Err(ForgeError::NotInstalled { repo: repo.to_string() });
                    }
                    Err(e) => return Err(e),
                }
            }
            (false, _) => self.client.clone(),
        };
        Ok(RepoClient {
            client,
            app_mode: self.app_mode,
            repo: repo.clone(),
            timeout: self.timeout,
            redactor: self.redactor.clone(),
        })
    }
}

/// What errand needs to know of a repository.
#[derive(Debug, Clone, Deserialize)]
pub struct RepoInfo {
    pub default_branch: String,
    pub clone_url: String,
}

#[derive(Debug, Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct CommentBody {
    id: u64,
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PullBody {
    number: u64,
    html_url: String,
}

#[derive(Debug, Deserialize)]
struct Contents {
    content: Option<String>,
    encoding: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DirEntry {
    name: String,
}

/// Something a reaction can be added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reactable {
    IssueComment(u64),
    ReviewComment(u64),
    /// The issue (or pull request) itself.
    Issue(u64),
}

/// A pull request as a follow-up needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct PullInfo {
    pub number: u64,
    pub html_url: String,
    pub state: String,
    #[serde(default)]
    pub merged: bool,
    pub body: Option<String>,
    pub head: PullEnd,
    pub base: PullEnd,
}

/// One side of a pull request: a branch of a repository.
#[derive(Debug, Clone, Deserialize)]
pub struct PullEnd {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
    /// `None` when the repository was deleted (a fork that is gone).
    pub repo: Option<PullRepo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRepo {
    pub full_name: String,
}

/// A review comment on a pull request's diff.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewComment {
    pub id: u64,
    pub pull_request_review_id: Option<u64>,
    /// The first comment of the thread, for replies; absent on the first comment itself.
    pub in_reply_to_id: Option<u64>,
    pub path: Option<String>,
    /// The line in the pull request's current diff; `None` once a push made the comment outdated.
    pub line: Option<u64>,
    /// The line when the comment was written.
    pub original_line: Option<u64>,
    pub diff_hunk: Option<String>,
    pub body: Option<String>,
    pub user: Option<Login>,
    pub html_url: Option<String>,
}

impl ReviewComment {
    /// The first comment of this comment's thread.
    pub fn thread(&self) -> u64 {
        self.in_reply_to_id.unwrap_or(self.id)
    }

    pub fn author(&self) -> &str {
        self.user.as_ref().map_or("someone", |u| u.login.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    pub login: String,
}

#[derive(Debug, Deserialize)]
struct BranchInfo {
    protected: bool,
}

#[derive(Debug, Deserialize)]
struct Permission {
    permission: String,
}

/// GitHub calls for one repository.
#[derive(Clone)]
pub struct RepoClient {
    client: Octocrab,
    app_mode: bool,
    repo: RepoName,
    timeout: Duration,
    redactor: Redactor,
}

impl RepoClient {
    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.repo.owner(), self.repo.name())
    }

    /// The token git uses to push: the installation token (re-minted when it nears expiry), or
    /// the plain token.
    pub async fn git_token(&self) -> Result<Option<SecretString>, ForgeError> {
        if !self.app_mode {
            return Ok(None);
        }
        with_retries("minting an installation token", self.timeout, || async {
            self.client.installation_token().await.map(Some)
        })
        .await
    }

    pub async fn repository(&self) -> Result<RepoInfo, ForgeError> {
        with_retries("reading the repository", self.timeout, || self.client.get(self.route(""), None::<&()>)).await
    }

    /// The requester's permission on the repository: `admin`, `maintain`, `write`, `triage`,
    /// `read` or `none`. (octocrab's typed call cannot parse GitHub's answer.)
    pub async fn permission(&self, user: &str) -> Result<String, ForgeError> {
        let route = self.route(&format!("/collaborators/{user}/permission"));
        match with_retries("checking the requester's permission", self.timeout, || {
            self.client.get::<Permission, _, _>(route.clone(), None::<&()>)
        })
        .await
        {
            Ok(p) => Ok(p.permission),
            Err(ForgeError::Status { status: 404, .. }) => Ok("none".to_owned()),
            Err(e) => Err(e),
        }
    }

    /// A text file at `git_ref`, or `None` when it does not exist.
    pub async fn file(&self, path: &str, git_ref: &str) -> Result<Option<String>, ForgeError> {
        let route = self.route(&format!("/contents/{path}"));
        let query = [("ref", git_ref)];
        let found = with_retries("reading a file from the repository", self.timeout, || {
            self.client.get::<Contents, _, _>(route.clone(), Some(&query))
        })
        .await;
        let contents = match found {
            Ok(c) => c,
            Err(ForgeError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if contents.encoding.as_deref() != Some("base64") {
            return Err(ForgeError::Fatal(anyhow!("{path} is not a file")));
        }
        let packed: String = contents.content.unwrap_or_default().split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|e| ForgeError::Fatal(anyhow!(e).context(format!("decoding {path}"))))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Names at the repository's root, for detecting checks.
    pub async fn root_names(&self, git_ref: &str) -> Result<Vec<String>, ForgeError> {
        let route = self.route("/contents/");
        let query = [("ref", git_ref)];
        let entries: Vec<DirEntry> =
            with_retries("listing the repository root", self.timeout, || self.client.get(route.clone(), Some(&query)))
                .await?;
        Ok(entries.into_iter().map(|e| e.name).collect())
    }

    /// Adds a reaction (`eyes`, `+1`, ...) to what asked; reacting twice is harmless on GitHub's side.
    pub async fn react(&self, to: Reactable, content: &str) -> Result<(), ForgeError> {
        let route = match to {
            Reactable::IssueComment(id) => self.route(&format!("/issues/comments/{id}/reactions")),
            Reactable::ReviewComment(id) => self.route(&format!("/pulls/comments/{id}/reactions")),
            Reactable::Issue(number) => self.route(&format!("/issues/{number}/reactions")),
        };
        let reaction = json!({ "content": content });
        with_retries("reacting to the request", self.timeout, || {
            self.client.post::<_, serde_json::Value>(route.clone(), Some(&reaction))
        })
        .await
        .map(drop)
    }

    /// The comment on `issue` whose body contains `marker`, if errand already posted it.
    pub async fn find_comment(&self, issue: u64, marker: &str) -> Result<Option<u64>, ForgeError> {
        let route = self.route(&format!("/issues/{issue}/comments"));
        for page in 1..=10u32 {
            let query = [("per_page", "100".to_owned()), ("page", page.to_string())];
            let comments: Vec<CommentBody> =
                with_retries("listing comments", self.timeout, || self.client.get(route.clone(), Some(&query))).await?;
            if let Some(c) = comments.iter().find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker))) {
                return Ok(Some(c.id));
            }
            if comments.len() < 100 {
                break;
            }
        }
        Ok(None)
    }

    /// Posts a comment carrying `marker` once: before each try it looks for a comment that an
    /// earlier try (whose answer was lost) already made. A look-up that fails ends the call: to
    /// post without knowing could post twice.
    pub async fn create_comment_once(&self, issue: u64, body: &str, marker: &str) -> Result<u64, ForgeError> {
        let route = self.route(&format!("/issues/{issue}/comments"));
        let request = json!({ "body": self.redactor.redact(body) });
        retry_tries("posting a comment", || async {
            if let Some(id) = self.find_comment(issue, marker).await.map_err(Failure::Settled)? {
                return Ok(id);
            }
            timed(self.timeout, self.client.post::<_, Created>(route.clone(), Some(&request))).await.map(|c| c.id)
        })
        .await
    }

    pub async fn update_comment(&self, comment_id: u64, body: &str) -> Result<(), ForgeError> {
        let route = self.route(&format!("/issues/comments/{comment_id}"));
        let edit = json!({ "body": self.redactor.redact(body) });
        with_retries("editing a comment", self.timeout, || {
            self.client.patch::<serde_json::Value, _, _>(route.clone(), Some(&edit))
        })
        .await
        .map(drop)
    }

    /// A pull request.
    pub async fn pull(&self, number: u64) -> Result<PullInfo, ForgeError> {
        let route = self.route(&format!("/pulls/{number}"));
        with_retries("reading the pull request", self.timeout, || self.client.get(route.clone(), None::<&()>)).await
    }

    /// Whether `branch` is protected. errand pushes to a protected branch never, even when its
    /// token could (an admin's rules may allow apps through).
    pub async fn branch_protected(&self, branch: &str) -> Result<bool, ForgeError> {
        let route = self.route(&format!("/branches/{branch}"));
        let info: BranchInfo =
            with_retries("reading the branch", self.timeout, || self.client.get(route.clone(), None::<&()>)).await?;
        Ok(info.protected)
    }

    /// Whether `branch` exists.
    pub async fn branch_exists(&self, branch: &str) -> Result<bool, ForgeError> {
        match self.branch_protected(branch).await {
            Ok(_) => Ok(true),
            Err(ForgeError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every review comment of a pull request, oldest first.
    pub async fn review_comments(&self, pull: u64) -> Result<Vec<ReviewComment>, ForgeError> {
        let route = self.route(&format!("/pulls/{pull}/comments"));
        let mut all = Vec::new();
        for page in 1..=10u32 {
            let query = [("per_page", "100".to_owned()), ("page", page.to_string())];
            let comments: Vec<ReviewComment> =
                with_retries("listing review comments", self.timeout, || self.client.get(route.clone(), Some(&query)))
                    .await?;
            let last = comments.len() < 100;
            all.extend(comments);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Replies in the review thread that starts with `thread`, once: a reply carrying `marker`
    /// that an earlier try made is found and returned instead.
    pub async fn reply_in_thread_once(
        &self,
        pull: u64,
        thread: u64,
        body: &str,
        marker: &str,
    ) -> Result<u64, ForgeError> {
        let route = self.route(&format!("/pulls/{pull}/comments/{thread}/replies"));
        let request = json!({ "body": self.redactor.redact(body) });
        retry_tries("replying in the review thread", || async {
            let comments = self.review_comments(pull).await.map_err(Failure::Settled)?;
            let made = |c: &&ReviewComment| {
                c.in_reply_to_id == Some(thread) && c.body.as_deref().is_some_and(|b| b.contains(marker))
            };
            if let Some(found) = comments.iter().find(made) {
                return Ok(found.id);
            }
            timed(self.timeout, self.client.post::<_, Created>(route.clone(), Some(&request))).await.map(|c| c.id)
        })
        .await
    }

    /// Edits a review comment errand wrote.
    pub async fn update_review_comment(&self, comment_id: u64, body: &str) -> Result<(), ForgeError> {
        let route = self.route(&format!("/pulls/comments/{comment_id}"));
        let edit = json!({ "body": self.redactor.redact(body) });
        with_retries("editing a review comment", self.timeout, || {
            self.client.patch::<serde_json::Value, _, _>(route.clone(), Some(&edit))
        })
        .await
        .map(drop)
    }

    /// The pull request whose head is `branch`, open or not.
    pub async fn find_pull(&self, branch: &str) -> Result<Option<PullRequestRef>, ForgeError> {
        let head = format!("{}:{branch}", self.repo.owner());
        let query = [("head", head.as_str()), ("state", "all")];
        let pulls: Vec<PullBody> = with_retries("looking for an existing pull request", self.timeout, || {
            self.client.get(self.route("/pulls"), Some(&query))
        })
        .await?;
        Ok(pulls.into_iter().next().map(|p| PullRequestRef { number: p.number, url: p.html_url }))
    }

    /// Opens a pull request from `branch`, or finds the one a lost earlier try opened (GitHub
    /// answers that retry with 422 "A pull request already exists").
    pub async fn open_pull_once(
        &self,
        title: &str,
        branch: &str,
        base: &str,
        body: &str,
    ) -> Result<PullRequestRef, ForgeError> {
        if let Some(existing) = self.find_pull(branch).await? {
            self.update_pull_body(existing.number, body).await?;
            return Ok(existing);
        }
        let request = json!({
            "title": self.redactor.redact(title),
            "head": branch,
            "base": base,
            "body": self.redactor.redact(body),
        });
        let created = with_retries("opening the pull request", self.timeout, || {
            self.client.post::<_, PullBody>(self.route("/pulls"), Some(&request))
        })
        .await;
        match created {
            Ok(p) => Ok(PullRequestRef { number: p.number, url: p.html_url }),
            Err(ForgeError::Status { status: 422, message }) if message.contains("already exists") => {
                self.find_pull(branch).await?.ok_or_else(|| {
                    ForgeError::Fatal(anyhow!("GitHub says a pull request exists for {branch} but lists none"))
                })
            }
            Err(e) => Err(e),
        }
    }

    pub async fn update_pull_body(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        let route = self.route(&format!("/pulls/{number}"));
        let edit = json!({ "body": self.redactor.redact(body) });
        with_retries("updating the pull request", self.timeout, || {
            self.client.patch::<serde_json::Value, _, _>(route.clone(), Some(&edit))
        })
        .await
        .map(drop)
    }
}
