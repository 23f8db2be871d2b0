//! Status requests asked on a client's behalf (`meshwork peers`, tests
//! watching a worker's own counters): which of the machine's requests they
//! are, and their answers.
//!
//! They travel as ordinary machine requests, so the simulator and the
//! node carry them the same way, but their answers go back to whoever
//! asked, never to the scheduler: a Status answer says nothing about any
//! job.

use crate::ids::RequestId;
use crate::wire::{Load, Response};
use rustc_hash::FxHashSet;
use std::collections::VecDeque;

/// Why a Status request got no load back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The request was not answered (its stream ended, the peer is gone).
    #[error("{0}")]
    Failed(String),
    /// The peer answered with something other than its status.
    #[error("answered Status with {0}")]
    Unexpected(String),
}

/// The answer to a Status request asked with
/// [`Machine::ask_status`](crate::Machine::ask_status).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct StatusAnswer {
    /// The request, as `ask_status` numbered it.
    pub id: RequestId,
    /// The peer's load as it reported it, or why there is none.
    pub load: Result<Load, StatusError>,
}

/// Status requests in flight and answers not yet polled.
#[derive(Debug, Default)]
pub(crate) struct StatusQueries {
    pending: FxHashSet<RequestId>,
    answers: VecDeque<StatusAnswer>,
}

impl StatusQueries {
    /// Request `id` is a Status request of a client's.
    pub(crate) fn asked(&mut self, id: RequestId) {
        self.pending.insert(id);
    }

    /// Takes `response` if it answers one of ours; gives it back otherwise.
    pub(crate) fn answered(&mut self, id: RequestId, response: Response) -> Option<Response> {
        if !self.pending.remove(&id) {
            return Some(response);
        }
        let load = match response {
            Response::Status(advert) => Ok(advert.load()),
            other => Err(StatusError::Unexpected(format!("{other:?}"))),
        };
        self.answers.push_back(StatusAnswer { id, load });
        None
    }

    /// Takes the failure of request `id` if it is one of ours.
    pub(crate) fn failed(&mut self, id: RequestId, cause: &str) -> bool {
        if !self.pending.remove(&id) {
            return false;
        }
        self.answers.push_back(StatusAnswer { id, load: Err(StatusError::Failed(cause.to_string())) });
        true
    }

    pub(crate) fn poll(&mut self) -> Option<StatusAnswer> {
        self.answers.pop_front()
    }
}
