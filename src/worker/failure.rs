//! How a job's run stops short of its result: it aborts (bad input, no permission, a
//! misconfiguration: the requester is told why, in words rendering picks, and the job ends
//! failed), it is retried (a passing failure of GitHub, Slack, git or the engine: the error
//! chain is kept for the log and flattened only where it is shown), or it was stopped (cancelled,
//! its lease lost, the worker stopping: the delivery decides what that means).

use crate::forge::ForgeError;
use crate::publish::PublishError;
use crate::publish::delivery::DeliveryError;
use crate::publish::render::Reason;
use crate::rollout::{RolloutAbort, RolloutError};

#[derive(Debug)]
pub(super) enum Failure {
    /// The requester is told the reason, and the job ends failed.
    Abort(Reason),
    /// Run the job again later.
    Retry(anyhow::Error),
    /// Stopped before the end: nothing more may be published by this run.
    Stopped,
}

impl From<ForgeError> for Failure {
    fn from(error: ForgeError) -> Self {
        Self::Retry(error.into())
    }
}

impl From<PublishError> for Failure {
    fn from(error: PublishError) -> Self {
        Self::Retry(error.into())
    }
}

impl From<DeliveryError> for Failure {
    fn from(error: DeliveryError) -> Self {
        match error {
            DeliveryError::Halted => Self::Stopped,
            other => Self::Retry(other.into()),
        }
    }
}

impl From<RolloutError> for Failure {
    fn from(error: RolloutError) -> Self {
        match error {
            RolloutError::Abort(abort) => Self::Abort(reason_of(abort)),
            RolloutError::Transient(error) => Self::Retry(error),
        }
    }
}

/// What the requester or the operator must fix, as the reason they read.
fn reason_of(abort: RolloutAbort) -> Reason {
    match abort {
        RolloutAbort::NoAgent => Reason::NoAgent,
        RolloutAbort::ImageMissing { image } => Reason::ImageMissing { image },
        RolloutAbort::EgressUnavailable { detail } => Reason::EgressUnavailable { detail },
        RolloutAbort::SandboxRefused { step, detail } => Reason::SandboxRefused { step, detail },
    }
}
