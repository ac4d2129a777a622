//! The identifiers errand works with, each its own type, parsed once at the edge: a job's id, a
//! repository's name, an issue number (not a comment id), a Slack channel (not a user), and the
//! thread key, made in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A job's id: a time-ordered UUID (v7) in its simple form, kept through reclaims and retries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A new id; ids sort by creation time.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters after the timestamp prefix, unique enough for branch names.
    pub fn short(&self) -> &str {
        let len = self.0.len();
        &self.0[len.saturating_sub(8)..]
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for JobId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId("job id"))
        }
    }
}

/// An identifier that failed to parse; names what kind of identifier it was.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid {0}")]
pub struct InvalidId(pub &'static str);

/// A GitHub repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    pub fn new(owner: &str, name: &str) -> Result<Self, InvalidId> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if valid(owner) && valid(name) {
            Ok(Self { owner: owner.to_owned(), name: name.to_owned() })
        } else {
            Err(InvalidId("repository name"))
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl FromStr for RepoName {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (owner, name) = s.split_once('/').ok_or(InvalidId("repository name"))?;
        Self::new(owner, name)
    }
}

impl Serialize for RepoName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RepoName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The number of an issue or a pull request (they share one sequence per repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IssueNumber(pub u64);

impl IssueNumber {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for IssueNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of a GitHub comment (an issue comment or a review comment). GitHub ids exceed 2^31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommentId(pub u64);

impl CommentId {
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The id of a pull request review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReviewId(pub u64);

impl ReviewId {
    pub fn get(self) -> u64 {
        self.0
    }
}

/// An issue or a pull request of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "number", rename_all = "snake_case")]
pub enum GithubItem {
    Issue(IssueNumber),
    PullRequest(IssueNumber),
}

impl GithubItem {
    pub fn number(self) -> IssueNumber {
        match self {
            Self::Issue(number) | Self::PullRequest(number) => number,
        }
    }

    pub fn is_pull_request(self) -> bool {
        matches!(self, Self::PullRequest(_))
    }
}

macro_rules! slack_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slack_id!(
    /// A Slack workspace (`team_id`).
    SlackTeam
);
slack_id!(
    /// A Slack channel id (`C…`, `G…`, `D…`); unique across workspaces.
    SlackChannel
);
slack_id!(
    /// A Slack message's timestamp, which is its id in its channel; a thread is named by the
    /// timestamp of its first message.
    MessageTs
);

/// The conversation a job belongs to: an issue or pull request of a repository, or a Slack
/// thread. Tasks of one thread run one at a time, in order; `stop`, `status` and `retry` act on
/// them. The queue keeps per-thread lists under this key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ThreadKey(String);

impl ThreadKey {
    /// The thread of an issue or pull request.
    pub fn github(repo: &RepoName, number: IssueNumber) -> Self {
        Self(format!("github:{repo}#{number}"))
    }

    /// A Slack thread (a channel id is unique across workspaces).
    pub fn slack(channel: &SlackChannel, thread_ts: &MessageTs) -> Self {
        Self(format!("slack:{channel}:{thread_ts}"))
    }

    /// A job that has no thread of its own yet (a slash command's, before errand starts one).
    pub fn job(id: &JobId) -> Self {
        Self(format!("job:{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ThreadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_keys_name_their_conversation() {
        let repo: RepoName = "acme/app".parse().expect("a repository");
        assert_eq!(ThreadKey::github(&repo, IssueNumber(9)).as_str(), "github:acme/app#9");
        let (channel, ts) = (SlackChannel::new("C1"), MessageTs::new("1700000000.000100"));
        assert_eq!(ThreadKey::slack(&channel, &ts).as_str(), "slack:C1:1700000000.000100");
    }

    #[test]
    fn identifiers_are_plain_json() {
        assert_eq!(serde_json::to_string(&IssueNumber(7)).expect("JSON"), "7");
        assert_eq!(serde_json::to_string(&SlackChannel::new("C1")).expect("JSON"), "\"C1\"");
        let item: GithubItem = serde_json::from_str(r#"{"kind":"pull_request","number":4}"#).expect("JSON");
        assert_eq!(item, GithubItem::PullRequest(IssueNumber(4)));
    }
}
