//! The driver's side of `/meshwork/module/1`: answers peers' requests from
//! the [`Shelf`] and hands the answers to this node's own requests back to
//! the piece that is waiting for them.

use super::cache::ModuleId;
use super::shelf::{ModuleRequest, ModuleResponse, Shelf};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::PeerId;
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The module behaviour, as the composed behaviour holds it.
pub type ModuleBehaviour = request_response::cbor::Behaviour<ModuleRequest, ModuleResponse>;

/// A module's bytes, or why this node could not get them.
pub type Fetched = Result<Vec<u8>, String>;

/// What the rest of the node asks of the module service.
#[derive(Debug)]
pub enum ModuleCommand {
    /// Serve these bytes until withdrawn (once per job using them).
    Offer(Arc<Vec<u8>>),
    /// A job using this module ended.
    Withdraw(ModuleId),
    /// Get a module from a peer.
    Fetch {
        /// The peer offering it.
        from: PeerId,
        /// The module.
        id: ModuleId,
        /// Where the bytes go.
        reply: oneshot::Sender<Fetched>,
    },
}

/// The shelf and the fetches in flight.
#[derive(Debug)]
pub struct ModuleService {
    /// This node: its own pieces' modules come off its own shelf.
    me: PeerId,
    shelf: Shelf,
    fetching: HashMap<OutboundRequestId, (ModuleId, oneshot::Sender<Fetched>)>,
    served: Served,
}

/// Modules this node sent to its peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Answers that carried a module.
    pub modules: u64,
    /// The bytes of those modules.
    pub bytes: u64,
}

impl ModuleService {
    /// The service of node `me`.
    pub fn new(me: PeerId) -> ModuleService {
        ModuleService { me, shelf: Shelf::default(), fetching: HashMap::new(), served: Served::default() }
    }

    /// Modules sent to peers so far.
    pub fn served(&self) -> Served {
        self.served
    }

    /// Carries out `command`.
    pub fn command(&mut self, behaviour: &mut ModuleBehaviour, command: ModuleCommand) {
        match command {
            ModuleCommand::Offer(bytes) => {
                self.shelf.offer(bytes);
            }
            ModuleCommand::Withdraw(id) => self.shelf.withdraw(id),
            ModuleCommand::Fetch { from, id, reply } => {
                let request = ModuleRequest { id: ByteBuf::from(id.0.to_vec()) };
                if from == self.me {
                    let _ = reply.send(answered(from, id, self.shelf.answer(&request)));
                    return;
                }
                let rid = behaviour.send_request(&from, request);
                self.fetching.insert(rid, (id, reply));
            }
        }
    }

    /// Handles an event of the module behaviour.
    pub fn on_event(
        &mut self,
        behaviour: &mut ModuleBehaviour,
        event: request_response::Event<ModuleRequest, ModuleResponse>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message { message: Message::Request { request, channel, .. }, .. } => {
                let answer = self.shelf.answer(&request);
                // The peer may be gone by now: nothing to do about it.
                if let ModuleResponse::Module(bytes) = &answer {
                    self.served.modules += 1;
                    self.served.bytes += bytes.len() as u64;
                }
                let _ = behaviour.send_response(channel, answer);
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                if let Some((id, reply)) = self.fetching.remove(&request_id) {
                    let _ = reply.send(answered(peer, id, response));
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some((id, reply)) = self.fetching.remove(&request_id) {
                    let _ = reply.send(Err(format!("asking {peer} for module {id}: {error}")));
                }
            }
            Event::InboundFailure { .. } | Event::ResponseSent { .. } => {}
        }
    }
}

/// The bytes in `response` from `peer`, or why there are none.
fn answered(peer: PeerId, id: ModuleId, response: ModuleResponse) -> Fetched {
    match response {
        ModuleResponse::Module(bytes) => Ok(bytes.into_vec()),
        ModuleResponse::Unknown => Err(format!("{peer} no longer offers module {id}")),
    }
}
