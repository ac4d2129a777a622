//! The forge: GitHub's REST API through octocrab, and git on the worker (mirrors, workspaces,
//! pushes). Forge credentials live here and never reach a sandbox.

pub mod git;
pub mod github;
pub mod retry;

pub use self::github::{Github, GithubAuth, RepoClient, RepoInfo};
pub use self::retry::ForgeError;
