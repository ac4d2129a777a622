//! Test support shared by the scenario, contract and sandbox tests: a stateful fake GitHub, a
//! Redis server of the test's own, the sandbox test image and signed-request helpers.
#![allow(dead_code, reason = "each test binary uses a different part of the support code")]

pub mod docker;
pub mod fake_github;
pub mod fake_slack;
pub mod installation;
pub mod redis;
pub mod signing;
pub mod world;
