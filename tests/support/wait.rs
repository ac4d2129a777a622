//! Waiting for a condition, bounded: a test polls the world (a record, a reply, a request, a
//! container, a port) until it shows what the test waits for, and fails naming what it waited for
//! when it never does. It depends on no other test-support module, so a test binary that includes
//! single support files with `#[path]` can include it too.

use std::time::Duration;

/// How often [`wait_until`] asks again. This is the polling rate, not a synchronization: a
/// condition that holds is seen at the next poll, and one that never holds fails at its bound.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `probe` every [`POLL_INTERVAL`] until it gives a value, and returns that value; panics
/// with `what` ("waiting until {what}") and `within` once `within` has passed without one.
pub async fn wait_until<T>(what: &str, within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
