//! A follow-up's review comments: which comments of a review ask errand for something, the
//! threads they sit in, and how they read in the agent's task file.

use std::fmt::Write as _;

use crate::forge::github::{PullInfo, ReviewComment};
use crate::forge::{ForgeError, RepoClient};
use crate::job::ReplyTarget;
use crate::request::command::{self, Command};
use crate::request::ids::{CommentId, IssueNumber, ReviewId};

/// The review comments one job addresses, each with the thread it sits in.
#[derive(Debug, Default)]
pub struct Review {
    pub notes: Vec<Note>,
}

/// One review comment that asks, with the earlier comments of its thread.
#[derive(Debug)]
pub struct Note {
    pub comment: ReviewComment,
    /// The whole thread, oldest first (the comment included).
    pub thread: Vec<ReviewComment>,
}

/// Reads the pull request's review comments and keeps those the job addresses: every comment of
/// `review_id` that asks errand for a task, and the comment that asked, in order.
pub async fn gather(
    gh: &RepoClient,
    pull: IssueNumber,
    review_id: Option<ReviewId>,
    asked: Option<CommentId>,
    mention: &str,
) -> Result<Review, ForgeError> {
    let all = gh.review_comments(pull.get()).await?;
    Ok(select(&all, review_id.map(ReviewId::get), asked.map(CommentId::get), mention))
}

/// The pure part of [`gather`].
pub fn select(all: &[ReviewComment], review_id: Option<u64>, asked: Option<u64>, mention: &str) -> Review {
    let mentions = [mention.to_owned()];
    let asks = |c: &ReviewComment| {
        command::parse_comment(c.body.as_deref().unwrap_or_default(), &mentions)
            .first()
            .is_some_and(|p| matches!(p.command, Ok(Command::Task { .. })))
    };
    let notes = all
        .iter()
        .filter(|c| Some(c.id) == asked || (review_id.is_some() && c.pull_request_review_id == review_id && asks(c)))
        .map(|c| Note {
            comment: c.clone(),
            thread: all.iter().filter(|t| t.thread() == c.thread()).cloned().collect(),
        })
        .collect();
    Review { notes }
}

impl Review {
    /// The threads other than the one the tracking reply lives in, each once.
    pub fn other_threads(&self, reply: &ReplyTarget) -> Vec<CommentId> {
        let own = match reply {
            ReplyTarget::GithubReview { comment_id: Some(comment), thread_id, .. } => {
                Some(thread_id.unwrap_or(*comment))
            }
            _ => None,
        };
        let mut threads: Vec<CommentId> = Vec::new();
        for note in &self.notes {
            let thread = CommentId(note.comment.thread());
            if Some(thread) != own && !threads.contains(&thread) {
                threads.push(thread);
            }
        }
        threads
    }

    /// The pull request and the review comments, for the agent's task file.
    pub fn task_context(&self, pull: Option<&PullInfo>) -> String {
        let mut out = String::new();
        if let Some(pull) = pull {
            let _ = writeln!(
                out,
                "## Pull request #{}\n\nYou are working on the pull request's branch `{}` (into `{}`); your changes are added to it as a new commit.\n",
                pull.number, pull.head.branch, pull.base.branch
            );
        }
        if self.notes.is_empty() {
            return out;
        }
        out.push_str("## Review comments to address\n\nAddress every comment below.\n");
        for (i, note) in self.notes.iter().enumerate() {
            let c = &note.comment;
            let place = match (&c.path, c.line.or(c.original_line)) {
                (Some(path), Some(line)) => format!("`{path}` line {line}"),
                (Some(path), None) => format!("`{path}`"),
                _ => "the diff".to_owned(),
            };
            let _ =
                writeln!(out, "\n### {}. On {place}, @{} wrote\n\n{}\n", i + 1, c.author(), quote(c.body.as_deref()));
            if let Some(hunk) = c.diff_hunk.as_deref().filter(|h| !h.trim().is_empty()) {
                let _ = writeln!(out, "The diff there:\n\n````diff\n{}\n````\n", hunk.trim_end());
            }
            let earlier: Vec<&ReviewComment> = note.thread.iter().filter(|t| t.id != c.id).collect();
            if !earlier.is_empty() {
                out.push_str("The rest of the thread:\n\n");
                for t in earlier {
                    let _ = writeln!(out, "- @{}: {}", t.author(), one_line(t.body.as_deref()));
                }
                out.push('\n');
            }
        }
        out
    }
}

fn quote(text: Option<&str>) -> String {
    text.unwrap_or_default().lines().map(|l| format!("> {l}")).collect::<Vec<_>>().join("\n")
}

fn one_line(text: Option<&str>) -> String {
    let text = text.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    // errand's own replies carry a hidden marker; it means nothing to the agent.
    let text = text.split("<!--").next().unwrap_or_default().trim().to_owned();
    if text.chars().count() > 300 { format!("{}…", text.chars().take(300).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(id: u64, review: u64, reply_to: Option<u64>, author: &str, body: &str) -> ReviewComment {
        serde_json::from_value(serde_json::json!({
            "id": id, "pull_request_review_id": review, "in_reply_to_id": reply_to,
            "path": "src/lib.rs", "line": 3, "diff_hunk": "@@ -1,3 +1,3 @@\n-a\n+b",
            "body": body, "user": {"login": author}
        }))
        .unwrap()
    }

    #[test]
    fn a_review_addresses_each_comment_that_asks() {
        let all = [
            comment(1, 10, None, "ann", "@agent rename this"),
            comment(2, 10, None, "ann", "nice"),
            comment(3, 10, None, "ann", "@agent use a map"),
            comment(4, 11, None, "bob", "@agent unrelated review"),
            comment(5, 12, Some(1), "bob", "agreed"),
        ];
        let review = select(&all, Some(10), Some(1), "@agent");
        let ids: Vec<u64> = review.notes.iter().map(|n| n.comment.id).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(review.notes[0].thread.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 5]);
        let reply = ReplyTarget::GithubReview {
            pull: IssueNumber(7),
            review_id: Some(ReviewId(10)),
            comment_id: Some(CommentId(1)),
            thread_id: Some(CommentId(1)),
        };
        assert_eq!(review.other_threads(&reply), [CommentId(3)]);
        let context = review.task_context(None);
        assert!(context.contains("### 1. On `src/lib.rs` line 3, @ann wrote\n\n> @agent rename this"), "{context}");
        assert!(context.contains("- @bob: agreed"), "{context}");
        assert!(context.contains("### 2. On `src/lib.rs` line 3, @ann wrote\n\n> @agent use a map"), "{context}");
    }

    #[test]
    fn a_reply_without_a_review_id_is_still_addressed() {
        let all = [comment(1, 10, None, "ann", "first"), comment(2, 13, Some(1), "bob", "@agent fix")];
        let review = select(&all, None, Some(2), "@agent");
        assert_eq!(review.notes.len(), 1);
        let reply = ReplyTarget::GithubReview {
            pull: IssueNumber(7),
            review_id: None,
            comment_id: Some(CommentId(2)),
            thread_id: Some(CommentId(1)),
        };
        assert!(review.other_threads(&reply).is_empty());
    }
}
