//! The GitHub-shaped JSON the fake answers with: users, repositories, issues, comments,
//! reactions, pull requests, reviews, review comments, branches and check runs. Each starts from
//! GitHub's own example (`tests/data/github/openapi-subset.json`, the webhook examples and the
//! recorded 422; see `tests/data/github/SOURCES.md`), with ids, numbers, bodies, users and URLs
//! replaced, so it deserializes into octocrab's strict models.

use std::sync::LazyLock;

use base64::Engine as _;
use serde_json::{Value, json};

use super::git::{git_ok, read_blob, resolve};
use super::world::{
    Comment, Fork, Pull, REACTIONS, Reaction, ReactionTarget, Repo, Review, ReviewComment, World, now, split_full_name,
};
use super::{APP_BOT_LOGIN, FakeCheckRun};

impl World {
    pub(super) fn html(&self, repo: &Repo, rest: &str) -> String {
        format!("{}/{}/{}{rest}", self.api, repo.owner, repo.name)
    }

    pub(super) fn api_repo(&self, repo: &Repo, rest: &str) -> String {
        format!("{}/repos/{}/{}{rest}", self.api, repo.owner, repo.name)
    }

    /// Points a template's GitHub URLs at this server.
    fn localize(&self, value: &mut Value) {
        relocate(value, "https://api.github.com", &self.api);
        relocate(value, "https://github.com", &self.api);
        relocate(value, "git:github.com", &self.api.replacen("http://", "git://", 1));
        relocate(value, "git@github.com:", &format!("git@{}:", self.api.trim_start_matches("http://")));
    }

    pub(super) fn user_json(&self, login: &str) -> Value {
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

    pub(super) fn repo_json(&self, repo: &Repo) -> Value {
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

    pub(super) fn issue_json(&self, repo: &Repo, number: u64) -> Option<Value> {
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

    pub(super) fn comment_json(&self, repo: &Repo, comment: &Comment) -> Value {
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

    pub(super) fn review_comment_json(&self, repo: &Repo, comment: &ReviewComment) -> Value {
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
    pub(super) fn review_json(&self, repo: &Repo, review: &Review, for_webhook: bool) -> Value {
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
    pub(super) fn branch_detail_json(&self, repo: &Repo, branch: &str, sha: &str) -> Value {
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

    pub(super) fn reaction_json(&self, reaction: &Reaction) -> Value {
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

    pub(super) fn pull_json(&self, repo: &Repo, pull: &Pull) -> Value {
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

    pub(super) fn check_run_json(&self, repo: &Repo, run: &FakeCheckRun) -> Value {
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

pub(super) struct Templates {
    user: Value,
    repository: Value,
    issue: Value,
    comment: Value,
    reaction: Value,
    pull: Value,
    check_run: Value,
    pub(super) installation_token: Value,
    pub(super) collaborator_permission: Value,
    pub(super) validation_failed: Value,
    pub(super) issue_comment_webhook: Value,
    review_comment: Value,
    review: Value,
    pub(super) review_comment_webhook: Value,
    pub(super) review_webhook: Value,
    /// `changes` of an `edited` delivery.
    pub(super) edited_changes: Value,
}

pub(super) static TEMPLATES: LazyLock<Templates> = LazyLock::new(|| {
    let openapi: Value = serde_json::from_str(include_str!("../../data/github/openapi-subset.json"))
        .expect("openapi-subset.json is JSON");
    let example = |name: &str| openapi["components"]["examples"][name]["value"].clone();
    let webhook: Value =
        serde_json::from_str(include_str!("../../data/github/webhooks/issue_comment.created.with-organization.json"))
            .expect("the issue_comment webhook example is JSON");
    let review_comment_webhook: Value =
        serde_json::from_str(include_str!("../../data/github/webhooks/pull_request_review_comment.created.json"))
            .expect("the pull_request_review_comment webhook example is JSON");
    let review_webhook: Value =
        serde_json::from_str(include_str!("../../data/github/webhooks/pull_request_review.submitted.json"))
            .expect("the pull_request_review webhook example is JSON");
    let issue_comment_edited: Value =
        serde_json::from_str(include_str!("../../data/github/webhooks/issue_comment.edited.json"))
            .expect("the issue_comment edited webhook example is JSON");
    let recorded_422: Value = serde_json::from_str(include_str!(
        "../../data/github/recorded/errors.validation-failed-422.octokit-fixtures.json"
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

/// A `reactions` rollup: `url`, `total_count` and a count per content.
fn reaction_rollup(url: String, reactions: &[Reaction]) -> Value {
    let mut rollup = json!({ "url": url, "total_count": reactions.len() });
    for content in REACTIONS {
        rollup[content] = json!(reactions.iter().filter(|r| r.content == content).count());
    }
    rollup
}

/// Replaces `from` with `to` in every string inside `value`.
pub(super) fn relocate(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s.contains(from) => *s = s.replace(from, to),
        Value::Array(items) => items.iter_mut().for_each(|v| relocate(v, from, to)),
        Value::Object(fields) => fields.values_mut().for_each(|v| relocate(v, from, to)),
        _ => {}
    }
}

/// A stable id for a login, in the range of real GitHub user ids.
pub(super) fn numeric_id(login: &str) -> u64 {
    // FNV-1a: deterministic across runs, unlike std's hasher.
    let hash = login.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    1_000 + hash % 100_000_000
}

/// GitHub's legacy global node id: base64 of `<len>:<Type><id>`.
pub(super) fn node_id(kind: &str, id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{:02}:{kind}{id}", kind.len()))
}

/// Logins such as `errand-test[bot]` in URLs, the way GitHub writes them.
fn url_escape(text: &str) -> String {
    text.replace('[', "%5B").replace(']', "%5D")
}
