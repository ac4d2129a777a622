//! Slack: requests arrive as signed Events API callbacks and slash commands, answers go to the
//! thread they came from. The edge (signature, events, repository resolution, who may ask) and
//! the Web API client live here; the ingress and the worker wire them in.

pub mod api;
pub mod events;
pub mod resolve;
pub mod signature;
pub mod thread;
