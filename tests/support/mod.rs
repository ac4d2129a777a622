//! Test support shared by the scenario, contract, fault and sandbox tests. Test binaries that need
//! only one piece include its file with `#[path]`, so `docker.rs`, `fake_github/`, `fake_slack.rs`,
//! `redis.rs`, `signing.rs` and `wait.rs` depend on no other module here.
#![allow(dead_code, reason = "each test binary uses a different part of the support code")]

/// The real Docker engine and the sandbox test image (`deploy/sandbox-test-image/build.sh`).
pub mod docker;
/// A stateful fake GitHub on a loopback port, for the real octocrab client (a map: its `mod.rs`).
pub mod fake_github;
/// A stateful fake Slack on a loopback port, for the real slack-morphism client.
pub mod fake_slack;
/// A whole installation made of real `errand` processes, for the fault and attack tests.
pub mod installation;
/// A Redis for each test: the shared one with a namespace of its own, or a server of its own.
pub mod redis;
/// Signed requests: GitHub's `X-Hub-Signature-256`, and a client that posts signed webhooks.
pub mod signing;
/// Waiting for a condition, bounded: the one polling helper, [`wait::wait_until`].
pub mod wait;
/// A whole installation in the test process (ingress, queue, worker, fakes), for scenario tests.
pub mod world;
