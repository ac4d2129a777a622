//! Rate limits per requester and per repository, so that one person or a loop cannot fill the
//! queue.
//!
//! Counted in the queue's store (`Queue::count_in_window`: INCR with an expiry in Redis), so the
//! limits hold across several `serve` replicas. Fixed windows, starting at a key's first count.
//!
//! Decisions:
//! - Every job a comment would make counts, replies (help, malformed commands) included.
//! - A request over a limit is not dropped silently: the requester gets one reply job saying
//!   which limit they hit and when to try again; further requests in the same window get 429
//!   (visible in GitHub's delivery log) and no reply, so the replies cannot be a loop either.
//! - The requester's count is checked first; a request refused for it does not use the
//!   repository's budget. A redelivery of the same delivery id counts again (rare, by hand).
//! - When the store cannot count (the queue is down), the request is let through: it is spooled
//!   or refused by the enqueue that follows, and losing it would be worse than letting it pass.

use std::time::Duration;

use crate::job::RepoName;
use crate::queue::{Queue, WindowCount};

/// Default of [`RateLimits::per_requester`].
pub const DEFAULT_JOBS_PER_REQUESTER: u64 = 10;
/// Default of [`RateLimits::per_repository`].
pub const DEFAULT_JOBS_PER_REPOSITORY: u64 = 60;
/// Default of [`RateLimits::window`].
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// How many new jobs a requester and a repository may start per window; `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub per_requester: Option<u64>,
    pub per_repository: Option<u64>,
    pub window: Duration,
}

impl Default for RateLimits {
    /// 10 jobs per requester and 60 per repository per minute.
    fn default() -> Self {
        Self {
            per_requester: Some(DEFAULT_JOBS_PER_REQUESTER),
            per_repository: Some(DEFAULT_JOBS_PER_REPOSITORY),
            window: DEFAULT_RATE_WINDOW,
        }
    }
}

impl RateLimits {
    /// No limits at all.
    pub fn none() -> Self {
        Self { per_requester: None, per_repository: None, window: DEFAULT_RATE_WINDOW }
    }
}

/// Which limit a request hit.
pub use crate::request::RateLimitScope as Scope;

/// What the limits say about one more job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over a limit, and the requester has not been told in this window: reply to them.
    Tell {
        scope: Scope,
        limit: u64,
        retry_after: Duration,
    },
    /// Over a limit, and the requester was told already: refuse without a reply.
    Refuse {
        retry_after: Duration,
    },
}

/// Counts one more job by `requester` on `repo` and says whether it may be queued.
pub async fn check(queue: &Queue, limits: &RateLimits, requester: &str, repo: &RepoName, timeout: Duration) -> Verdict {
    let requester = requester.to_ascii_lowercase();
    let repo = repo.to_string().to_ascii_lowercase();
    let scopes = [
        (Scope::Requester, limits.per_requester, format!("rate:requester:{requester}")),
        (Scope::Repository, limits.per_repository, format!("rate:repo:{repo}")),
    ];
    for (scope, limit, key) in scopes {
        let Some(limit) = limit else { continue };
        let Some(counted) = count(queue, &key, limits.window, timeout).await else { return Verdict::Allowed };
        if counted.count <= limit {
            continue;
        }
        let retry_after = counted.resets_in;
        tracing::info!(requester, repo, ?scope, limit, ?retry_after, "rate limit reached");
        let told = count(queue, &format!("rate-notice:requester:{requester}"), limits.window, timeout).await;
        return match told {
            Some(told) if told.count > 1 => Verdict::Refuse { retry_after },
            _ => Verdict::Tell { scope, limit, retry_after },
        };
    }
    Verdict::Allowed
}

async fn count(queue: &Queue, key: &str, window: Duration, timeout: Duration) -> Option<WindowCount> {
    match tokio::time::timeout(timeout, queue.count_in_window(key, window)).await {
        Ok(Ok(count)) => Some(count),
        Ok(Err(error)) => {
            tracing::warn!(error = format!("{error:#}"), "could not count for the rate limit; letting it pass");
            None
        }
        Err(_) => {
            tracing::warn!("counting for the rate limit timed out; letting it pass");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{MemoryQueue, QueueSettings};

    fn queue() -> Queue {
        Queue::Memory(MemoryQueue::new(QueueSettings { lease: Duration::from_secs(30), max_deliveries: 3 }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_requester_over_the_limit_is_told_once_then_refused_until_the_window_ends() {
        let queue = queue();
        let limits = RateLimits { per_requester: Some(2), per_repository: Some(100), window: Duration::from_secs(60) };
        let repo: RepoName = "acme/app".parse().unwrap();
        let timeout = Duration::from_secs(2);
        for _ in 0..2 {
            assert_eq!(check(&queue, &limits, "Octocat", &repo, timeout).await, Verdict::Allowed);
        }
        tokio::time::advance(Duration::from_secs(20)).await;
        let told = check(&queue, &limits, "octocat", &repo, timeout).await;
        assert_eq!(told, Verdict::Tell { scope: Scope::Requester, limit: 2, retry_after: Duration::from_secs(40) });
        assert!(matches!(check(&queue, &limits, "octocat", &repo, timeout).await, Verdict::Refuse { .. }));
        // Someone else is not limited by octocat.
        assert_eq!(check(&queue, &limits, "hubot", &repo, timeout).await, Verdict::Allowed);
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(check(&queue, &limits, "octocat", &repo, timeout).await, Verdict::Allowed);
    }

    #[tokio::test]
    async fn a_repository_over_its_limit_tells_each_requester() {
        let queue = queue();
        let limits = RateLimits { per_requester: None, per_repository: Some(1), window: Duration::from_secs(60) };
        let repo: RepoName = "acme/app".parse().unwrap();
        let timeout = Duration::from_secs(2);
        assert_eq!(check(&queue, &limits, "a", &repo, timeout).await, Verdict::Allowed);
        assert!(matches!(
            check(&queue, &limits, "b", &repo, timeout).await,
            Verdict::Tell { scope: Scope::Repository, limit: 1, .. }
        ));
        assert!(matches!(check(&queue, &limits, "c", &repo, timeout).await, Verdict::Tell { .. }));
        assert!(matches!(check(&queue, &limits, "b", &repo, timeout).await, Verdict::Refuse { .. }));
        assert_eq!(check(&queue, &limits, "a", &"acme/other".parse().unwrap(), timeout).await, Verdict::Allowed);
    }
}
