//! Issue endpoints: an issue (or a pull request read as one), its comments, and reactions on
//! issues, issue comments and review comments.

use serde_json::{Value, json};

use super::routes::{Call, Reply, required_body};
use super::world::{Comment, REACTIONS, Reaction, ReactionTarget, World, now};

impl World {
    pub(super) fn get_issue(&self, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        match number.parse().ok().and_then(|n| self.issue_json(r, n)) {
            Some(issue) => Reply::json(200, issue),
            None => Reply::not_found("https://docs.github.com/rest/issues/issues#get-an-issue"),
        }
    }

    pub(super) fn list_comments(&self, call: &Call, repo: &str, number: &str) -> Reply {
        let r = self.repo(repo);
        let Some(number) = number.parse().ok().filter(|n| r.has_issue(*n)) else {
            return Reply::not_found("https://docs.github.com/rest/issues/comments#list-issue-comments");
        };
        let all: Vec<Value> =
            r.comments.values().filter(|c| c.issue == number).map(|c| self.comment_json(r, c)).collect();
        self.paginate(call, &self.api_repo(r, &format!("/issues/{number}/comments")), all)
    }

    pub(super) fn create_comment(&mut self, call: &Call, repo: &str, number: &str) -> Reply {
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

    pub(super) fn get_comment(&self, repo: &str, id: &str) -> Reply {
        let r = self.repo(repo);
        match id.parse().ok().and_then(|id: u64| r.comments.get(&id)) {
            Some(comment) => Reply::json(200, self.comment_json(r, comment)),
            None => Reply::not_found("https://docs.github.com/rest/issues/comments#get-an-issue-comment"),
        }
    }

    pub(super) fn update_comment(&mut self, call: &Call, repo: &str, id: &str) -> Reply {
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
    pub(super) fn react(&mut self, call: &Call, repo: &str, target: ReactionTarget, id: &str) -> Reply {
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
}
