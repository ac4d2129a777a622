//! The webhook deliveries a GitHub App would receive for what a test seeded, built from
//! GitHub's own examples (`tests/data/github/webhooks/`): `issue_comment` (`created`, `edited`),
//! `pull_request_review_comment` (`created`, `edited`) and `pull_request_review` (`submitted`),
//! each with the `repository`, `organization`, `sender` and `installation` a delivery carries.

use serde_json::{Value, json};

use super::INSTALLATION_ID;
use super::json::{TEMPLATES, node_id, numeric_id, relocate};
use super::world::{Repo, World};

impl World {
    pub(super) fn issue_comment_payload(
        &self,
        repo: &str,
        issue: u64,
        comment_id: u64,
        previous_body: Option<&str>,
    ) -> Value {
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

    pub(super) fn review_comment_payload(
        &self,
        repo: &str,
        pull: u64,
        comment_id: u64,
        previous_body: Option<&str>,
    ) -> Value {
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

    /// A `pull_request_review` `submitted` delivery for the review (see
    /// [`FakeGithub::review_webhook`](super::FakeGithub::review_webhook)).
    pub(super) fn review_payload(&self, repo: &str, pull: u64, review_id: u64) -> Value {
        let r = self.repo(repo);
        let review = r.reviews.get(&review_id).unwrap_or_else(|| panic!("{repo} has no review {review_id}"));
        assert_eq!(review.pull, pull, "review {review_id} is not of #{pull}");
        let mut payload = TEMPLATES.review_webhook.clone();
        payload["action"] = json!("submitted");
        payload["review"] = self.review_json(r, review, true);
        payload["pull_request"] = self.pull_json(r, &r.pulls[&pull]);
        self.webhook_envelope(&mut payload, r, &review.author);
        payload
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
}

/// The `changes` of an `edited` delivery. There is no `pull_request_review_comment` `edited`
/// example among the fixtures; GitHub documents the same `changes.body.from` for it as for
/// `issue_comment`, so both use the `issue_comment` one's.
fn edited_changes(previous_body: &str) -> Value {
    let mut changes = TEMPLATES.edited_changes.clone();
    changes["body"]["from"] = json!(previous_body);
    changes
}
