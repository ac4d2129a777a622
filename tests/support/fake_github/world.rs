//! The fake GitHub's state: its repositories (each backed by a bare repository, see `git.rs`)
//! with their issues, comments, reactions, pull requests, reviews, review comments, protected
//! branches, check runs and collaborator permissions; the users it knows, the installation
//! tokens it minted, every request it received, and the faults waiting to be injected (matched
//! and applied in `routes.rs`). One [`World`] behind a mutex; each request is carried out under
//! its lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use super::git::{PULL_MAP_FILE, git_ok, resolve};
use super::{FakeCheckRun, RecordedRequest};

/// Resource ids (comments, reactions, pull requests, check runs, repositories) start above
/// 2^32, so a 32-bit truncation anywhere in errand shows up as a wrong id.
const FIRST_RESOURCE_ID: u64 = 5_000_000_000;
pub(super) const REACTIONS: [&str; 8] = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];

pub(super) struct World {
    /// The server's own base URL; also used for `html_url`s so every link stays local.
    pub(super) api: String,
    pub(super) root: PathBuf,
    next_id: u64,
    pub(super) repos: BTreeMap<String, Repo>,
    pub(super) known_users: BTreeSet<String>,
    pub(super) installation_tokens: HashMap<String, (u64, chrono::DateTime<chrono::Utc>)>,
    pub(super) token_mode_restrictions: bool,
    pub(super) faults: Vec<Fault>,
    pub(super) timeouts: Vec<Timeout>,
    pub(super) holds: Vec<PendingHold>,
    pub(super) requests: Vec<RecordedRequest>,
    /// Cancelled when the server stops: ends the requests it never answers.
    pub(super) stopped: tokio_util::sync::CancellationToken,
}

pub(super) struct Repo {
    pub(super) id: u64,
    pub(super) owner: String,
    pub(super) name: String,
    pub(super) bare: PathBuf,
    pub(super) clone_url: String,
    pub(super) created_at: String,
    pub(super) next_number: u64,
    pub(super) issues: BTreeMap<u64, Issue>,
    pub(super) pulls: BTreeMap<u64, Pull>,
    pub(super) comments: BTreeMap<u64, Comment>,
    /// Reactions on issues and pull requests themselves, by number.
    pub(super) issue_reactions: BTreeMap<u64, Vec<Reaction>>,
    pub(super) reviews: BTreeMap<u64, Review>,
    pub(super) review_comments: BTreeMap<u64, ReviewComment>,
    /// Branches with branch protection.
    pub(super) protected: BTreeSet<String>,
    pub(super) check_runs: BTreeMap<u64, FakeCheckRun>,
    pub(super) permissions: HashMap<String, String>,
}

impl Repo {
    pub(super) fn take_number(&mut self) -> u64 {
        self.next_number += 1;
        self.next_number - 1
    }

    pub(super) fn has_issue(&self, number: u64) -> bool {
        self.issues.contains_key(&number) || self.pulls.contains_key(&number)
    }

    pub(super) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The reactions on `id` (a comment id, or an issue or pull request number), if it exists.
    pub(super) fn reactions(&self, target: ReactionTarget, id: u64) -> Option<&Vec<Reaction>> {
        match target {
            ReactionTarget::IssueComment => self.comments.get(&id).map(|c| &c.reactions),
            ReactionTarget::ReviewComment => self.review_comments.get(&id).map(|c| &c.reactions),
            ReactionTarget::Issue => {
                static NONE: Vec<Reaction> = Vec::new();
                self.has_issue(id).then(|| self.issue_reactions.get(&id).unwrap_or(&NONE))
            }
        }
    }

    pub(super) fn reactions_mut(&mut self, target: ReactionTarget, id: u64) -> Option<&mut Vec<Reaction>> {
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
    pub(super) fn pull_head_sha(&self, pull: &Pull) -> String {
        let branch = (pull.fork.is_none() && pull.state == "open")
            .then(|| resolve(&self.bare, &format!("refs/heads/{}", pull.head)))
            .flatten();
        branch.or_else(|| resolve(&self.bare, &format!("refs/pull/{}/head", pull.number))).unwrap_or_default()
    }

    /// Tells the `post-receive` hook which branches are heads of open same-repository pull
    /// requests.
    pub(super) fn write_pull_map(&self) {
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
    pub(super) fn insert_pull(&mut self, number: u64, pull: Pull) {
        if pull.fork.is_none() {
            let sha = resolve(&self.bare, &format!("refs/heads/{}", pull.head)).expect("the head branch");
            git_ok(&self.bare, &["update-ref", &format!("refs/pull/{number}/head"), &sha]);
        }
        self.pulls.insert(number, Pull { number, ..pull });
        self.write_pull_map();
    }
}

pub(super) struct Issue {
    pub(super) id: u64,
    pub(super) title: String,
    pub(super) body: String,
    pub(super) author: String,
    pub(super) created_at: String,
}

pub(super) struct Pull {
    pub(super) id: u64,
    pub(super) number: u64,
    pub(super) title: String,
    pub(super) body: String,
    pub(super) head: String,
    pub(super) base: String,
    pub(super) state: String,
    pub(super) draft: bool,
    pub(super) author: String,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) closed_at: Option<String>,
    pub(super) merged_at: Option<String>,
    /// Where the head branch lives when it is not this repository.
    pub(super) fork: Option<Fork>,
}

impl Pull {
    /// An open pull request; its number is set when it is inserted.
    pub(super) fn new(id: u64, title: &str, body: &str, head: &str, base: &str, author: &str, draft: bool) -> Pull {
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
    pub(super) fn head_owner<'a>(&'a self, repo: &'a Repo) -> &'a str {
        self.fork.as_ref().map_or(repo.owner.as_str(), |fork| split_full_name(&fork.full_name).0)
    }
}

/// The fork a pull request's head lives in. The fake holds no repository for it: its commits are
/// only at `refs/pull/N/head` of the base repository.
pub(super) struct Fork {
    pub(super) full_name: String,
    pub(super) id: u64,
    pub(super) created_at: String,
}

pub(super) struct Review {
    pub(super) id: u64,
    pub(super) pull: u64,
    pub(super) author: String,
    /// Empty for the single-comment review a reply makes.
    pub(super) body: String,
    /// `COMMENTED`, `APPROVED`, `CHANGES_REQUESTED`, as the REST API writes it.
    pub(super) state: String,
    pub(super) commit_id: String,
    pub(super) submitted_at: String,
}

pub(super) struct ReviewComment {
    pub(super) id: u64,
    pub(super) pull: u64,
    pub(super) review_id: u64,
    pub(super) in_reply_to: Option<u64>,
    pub(super) path: String,
    /// The line at `commit_id`.
    pub(super) line: u64,
    pub(super) diff_hunk: String,
    pub(super) author: String,
    pub(super) body: String,
    pub(super) history: Vec<String>,
    pub(super) reactions: Vec<Reaction>,
    /// The head the comment was made on (GitHub's `original_commit_id`).
    pub(super) commit_id: String,
    pub(super) created_at: String,
    pub(super) updated_at: String,
}

/// What a reaction is on.
#[derive(Clone, Copy)]
pub(super) enum ReactionTarget {
    IssueComment,
    Issue,
    ReviewComment,
}

pub(super) struct Comment {
    pub(super) id: u64,
    pub(super) issue: u64,
    pub(super) author: String,
    pub(super) body: String,
    pub(super) history: Vec<String>,
    pub(super) reactions: Vec<Reaction>,
    pub(super) created_at: String,
    pub(super) updated_at: String,
}

impl Comment {
    pub(super) fn new(id: u64, issue: u64, author: &str, body: &str) -> Self {
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
pub(super) struct Reaction {
    pub(super) id: u64,
    pub(super) user: String,
    pub(super) content: String,
    pub(super) created_at: String,
}

pub(super) struct Fault {
    pub(super) method: String,
    pub(super) pattern: String,
    pub(super) status: u16,
    pub(super) remaining: usize,
    pub(super) after_effect: bool,
}

/// A request the fake will not answer (see
/// [`FakeGithub::time_out_next`](super::FakeGithub::time_out_next)).
pub(super) struct Timeout {
    pub(super) method: String,
    pub(super) pattern: String,
    pub(super) body_contains: Option<String>,
    pub(super) remaining: usize,
    pub(super) after_effect: bool,
}

impl Timeout {
    pub(super) fn matches(&self, method: &str, path: &str, body: &[u8]) -> bool {
        self.remaining > 0
            && (self.method == "*" || self.method == method)
            && path_matches(&self.pattern, path)
            && self.body_contains.as_ref().is_none_or(|needle| String::from_utf8_lossy(body).contains(needle.as_str()))
    }
}

/// The world's side of a [`Hold`](super::Hold).
pub(super) struct PendingHold {
    pub(super) method: String,
    pub(super) pattern: String,
    pub(super) body_contains: Option<String>,
    pub(super) arrived: tokio::sync::watch::Sender<bool>,
    pub(super) released: tokio::sync::oneshot::Receiver<()>,
}

impl PendingHold {
    pub(super) fn matches(&self, method: &str, path: &str, body: &[u8]) -> bool {
        (self.method == "*" || self.method == method)
            && path_matches(&self.pattern, path)
            && self.body_contains.as_ref().is_none_or(|needle| String::from_utf8_lossy(body).contains(needle.as_str()))
    }
}

impl Fault {
    pub(super) fn matches(&self, method: &str, path: &str) -> bool {
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

impl World {
    pub(super) fn new(api: String, root: PathBuf, stopped: tokio_util::sync::CancellationToken) -> Self {
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

    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn repo(&self, full_name: &str) -> &Repo {
        self.repos.get(full_name).unwrap_or_else(|| panic!("the fake GitHub has no repository {full_name}"))
    }

    pub(super) fn repo_mut(&mut self, full_name: &str) -> &mut Repo {
        self.repos.get_mut(full_name).unwrap_or_else(|| panic!("the fake GitHub has no repository {full_name}"))
    }

    /// A reply in the thread of `root` (a top-level review comment) with a single-comment review
    /// of its own, as GitHub makes it: same path, line, hunk and commit as the thread.
    pub(super) fn add_reply(&mut self, repo: &str, root: u64, author: &str, body: &str) -> u64 {
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
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn split_full_name(full_name: &str) -> (&str, &str) {
    full_name.split_once('/').unwrap_or_else(|| panic!("{full_name} is not owner/name"))
}
