//! What the machine asks its driver to do, and the numbering of its requests.
//! Requests to ourselves never reach the driver: they wait in `to_self`
//! until the machine hands them to its own worker. Answers leave within
//! the message limit (see `message_limit`).

use crate::ids::{ExecId, InboundId, PeerKey, RequestId};
use crate::message_limit::fit;
use crate::wire::{Advert, Request, Response};
use crate::worker::Execution;
use std::collections::VecDeque;

/// One thing for the driver to do.
#[derive(Debug)]
#[must_use]
pub enum Action {
    /// Send `request` to `to`; report the answer with `id`
    /// ([`Machine::handle_response`](crate::Machine::handle_response)) or its failure.
    Send {
        /// Destination.
        to: PeerKey,
        /// Our number for the request.
        id: RequestId,
        /// What to send.
        request: Request,
    },
    /// Answer the inbound request `id` from `to`.
    Respond {
        /// The requester.
        to: PeerKey,
        /// The number the driver gave the request.
        id: InboundId,
        /// The answer.
        response: Response,
    },
    /// Publish this advert on the load topic.
    Publish(Advert),
    /// Run these pieces on the local worker pool.
    Execute(Execution),
    /// Set the cancellation flag of a running execution.
    Abort(ExecId),
    /// This peer is judged dead: close every connection to it (and redial later).
    Disconnect(PeerKey),
}

#[derive(Debug)]
pub(crate) struct Outbox {
    me: PeerKey,
    /// The RPC message limit answers must fit in.
    max_message: usize,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) to_self: VecDeque<(RequestId, Request)>,
    next: u64,
}

impl Outbox {
    pub(crate) fn new(me: PeerKey, max_message: usize) -> Outbox {
        Outbox { me, max_message, actions: VecDeque::new(), to_self: VecDeque::new(), next: 1 }
    }

    /// Numbers `request` and queues it for `to` (ourselves included).
    pub(crate) fn request(&mut self, to: PeerKey, request: Request) -> RequestId {
        let id = RequestId(self.next);
        self.next += 1;
        if to == self.me {
            self.to_self.push_back((id, request));
        } else {
            self.actions.push_back(Action::Send { to, id, request });
        }
        id
    }

    /// Answers inbound request `id` from `to`; results too large for one
    /// message go back as failures that say so.
    pub(crate) fn respond(&mut self, to: PeerKey, id: InboundId, response: Response) {
        let response = fit(response, self.max_message);
        self.actions.push_back(Action::Respond { to, id, response });
    }

    pub(crate) fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}
