//! Pull request endpoints: pull requests, their reviews and review comments, and replies in a
//! review comment's thread.

use serde_json::{Value, json};

use super::git::{branches, git_ok};
use super::routes::{Call, Reply, body_too_long, required_body};
use super::world::{Pull, World, now};

impl World {
    /// A pull request's review comments, oldest first, or one review's (`review`).
    pub(super) fn list_review_comments(&self, call: &Call, repo: &str, number: &str, review: Option<&str>) -> Reply {
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

    pub(super) fn get_review_comment(&self, repo: &str, id: &str) -> Reply {
        let r = self.repo(repo);
        match id.parse().ok().and_then(|id: u64| r.review_comments.get(&id)) {
            Some(comment) => Reply::json(200, self.review_comment_json(r, comment)),
            None => {
                Reply::not_found("https://docs.github.com/rest/pulls/comments#get-a-review-comment-for-a-pull-request")
            }
        }
    }

    pub(super) fn update_review_comment(&mut self, call: &Call, repo: &str, id: &str) -> Reply {
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
    pub(super) fn reply_to_review_comment(&mut self, call: &Call, repo: &str, number: &str, id: &str) -> Reply {
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

    pub(super) fn list_reviews(&self, call: &Call, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        let Some(number) = number.parse::<u64>().ok().filter(|n| r.pulls.contains_key(n)) else {
            return Reply::not_found("https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request");
        };
        let all: Vec<Value> =
            r.reviews.values().filter(|v| v.pull == number).map(|v| self.review_json(r, v, false)).collect();
        self.paginate(call, &self.api_repo(r, &format!("/pulls/{number}/reviews")), all)
    }

    pub(super) fn get_review(&self, repo: &str, number: &str, id: &str) -> Reply {
        let r = self.repo(repo);
        let number = number.parse::<u64>().ok();
        match id.parse().ok().and_then(|id: u64| r.reviews.get(&id)).filter(|v| Some(v.pull) == number) {
            Some(review) => Reply::json(200, self.review_json(r, review, false)),
            None => Reply::not_found("https://docs.github.com/rest/pulls/reviews#get-a-review-for-a-pull-request"),
        }
    }

    pub(super) fn list_pulls(&self, call: &Call, repo: &str) -> Reply {
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

    pub(super) fn create_pull(&mut self, call: &Call, repo: &str) -> Reply {
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

    pub(super) fn get_pull(&self, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        match number.parse().ok().and_then(|n: u64| r.pulls.get(&n)) {
            Some(pull) => Reply::json(200, self.pull_json(r, pull)),
            None => Reply::not_found("https://docs.github.com/rest/pulls/pulls#get-a-pull-request"),
        }
    }

    pub(super) fn update_pull(&mut self, call: &Call, repo: &str, number: &str) -> Reply {
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
}
