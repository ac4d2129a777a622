//! Deliberate retries of GitHub calls: transient failures (5xx, secondary rate limits, time-outs)
//! are retried with backoff that honours `Retry-After`, within a bound; GitHub's other answers
//! come back typed so callers can branch on them.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Longest `Retry-After` errand waits inside one job step; longer waits hand the job back to the
/// queue to be retried later instead of holding a worker.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Tries per call, the first included.
const TRIES: usize = 5;

/// Why a GitHub call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// GitHub was unreachable or kept failing after the retries: try the job again later.
    #[error("GitHub kept failing while {what}: {source:#}")]
    Transient { what: &'static str, source: anyhow::Error },
    /// GitHub answered with a client error (404, 422, 403 without a rate limit, ...).
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    /// errand's GitHub App is not installed on the repository (or it does not exist).
    #[error("errand's GitHub App is not installed on {repo}, or the repository does not exist")]
    NotInstalled { repo: String },
    /// Anything else: a bug or a misconfiguration.
    #[error(transparent)]
    Fatal(anyhow::Error),
}

/// Whether an octocrab error is worth retrying, and after how long GitHub asked us to wait.
fn classify(error: &octocrab::Error) -> (bool, Option<Duration>) {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let retry_after = source
                .headers
                .as_ref()
                .and_then(|h| h.get(http::header::RETRY_AFTER))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let rate_limited = status == 429
                || (status == 403 && (retry_after.is_some() || source.message.to_lowercase().contains("rate limit")));
            (status >= 500 || rate_limited, retry_after)
        }
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } | octocrab::Error::Http { .. } => (true, None),
        _ => (false, None),
    }
}

/// One failed try: GitHub's (or the connection's) error, no answer in time, or, for a try made
/// of several calls, a call that already failed for good after retries of its own.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error(transparent)]
    Octocrab(octocrab::Error),
    #[error("GitHub did not answer within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Settled(ForgeError),
}

impl Failure {
    /// Whether the try is worth repeating, and after how long GitHub asked us to wait. A try
    /// without an answer is repeated: whatever it may have done, each create looks for it first.
    fn classify(&self) -> (bool, Option<Duration>) {
        match self {
            Failure::Octocrab(error) => classify(error),
            Failure::TimedOut(_) => (true, None),
            Failure::Settled(_) => (false, None),
        }
    }
}

fn into_forge_error(what: &'static str, failure: Failure) -> ForgeError {
    let error = match failure {
        Failure::Octocrab(error) => error,
        timed_out @ Failure::TimedOut(_) => {
            return ForgeError::Transient { what, source: anyhow::Error::new(timed_out) };
        }
        Failure::Settled(error) => return error,
    };
    let (transient, _) = classify(&error);
    match error {
        _ if transient => ForgeError::Transient { what, source: anyhow::Error::new(error) },
        octocrab::Error::GitHub { source, .. } => {
            let mut message = source.message.clone();
            for detail in source.errors.iter().flatten() {
                if let Some(m) = detail.get("message").and_then(|m| m.as_str()) {
                    message.push_str(": ");
                    message.push_str(m);
                }
            }
            ForgeError::Status { status: source.status_code.as_u16(), message }
        }
        other => ForgeError::Fatal(anyhow::Error::new(other).context(what)),
    }
}

/// Runs `call` until it succeeds, fails for good, or the tries run out; a try without an answer
/// after `timeout` is given up (the request dropped) and counts as a passing failure.
pub async fn with_retries<T, F, Fut>(what: &'static str, timeout: Duration, mut call: F) -> Result<T, ForgeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, octocrab::Error>>,
{
    retry_tries(what, || timed(timeout, call())).await
}

/// One request, given up after `timeout` without an answer.
pub(super) async fn timed<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, octocrab::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(answer) => answer.map_err(Failure::Octocrab),
        Err(_) => Err(Failure::TimedOut(timeout)),
    }
}

/// [`with_retries`] for a call whose tries are each several requests (a look-up, then a create),
/// each bounded on its own: by [`timed`], or by a `with_retries` of its own whose final failure
/// ends the call ([`Failure::Settled`]).
pub(super) async fn retry_tries<T, F, Fut>(what: &'static str, call: F) -> Result<T, ForgeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(TRIES - 1)
        .with_jitter();
    call.retry(backoff)
        .when(|e| e.classify().0)
        .adjust(|e, backoff| match e.classify().1 {
            Some(wait) if wait > MAX_RETRY_AFTER => None,
            Some(wait) => Some(wait),
            None => backoff,
        })
        .notify(|e, wait| tracing::warn!(what, ?wait, error = %e, "GitHub call failed; retrying"))
        .await
        .map_err(|e| into_forge_error(what, e))
}
