//! The modules this node offers to its peers: a submitter puts a job's
//! module on the shelf for as long as the job runs, and answers the
//! workers' `/meshwork/module/1` requests from it. Nothing else is served:
//! a peer cannot read anything but the modules of jobs this node submitted.

use super::cache::ModuleId;
use libp2p::request_response;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::sync::Arc;

/// The module protocol (PROTOCOL.md, "Modules").
pub const MODULE_PROTOCOL: StreamProtocol = StreamProtocol::new("/meshwork/module/1");

/// A worker asks for a module by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRequest {
    /// The module's id (32 bytes).
    pub id: ByteBuf,
}

/// The submitter's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModuleResponse {
    /// The module's bytes.
    Module(ByteBuf),
    /// This node offers no module with that id (any more).
    Unknown,
}

/// The request-response behaviour for modules, its messages CBOR, an
/// answer at most `max_module` bytes (plus framing).
pub fn behaviour(max_module: usize) -> request_response::cbor::Behaviour<ModuleRequest, ModuleResponse> {
    let codec = request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(128)
        .set_response_size_maximum(max_module as u64 + 1024);
    request_response::Behaviour::with_codec(
        codec,
        [(MODULE_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default(),
    )
}

/// Modules on offer, each with the number of jobs that use it.
#[derive(Debug, Default)]
pub struct Shelf {
    offered: HashMap<ModuleId, (Arc<Vec<u8>>, usize)>,
}

impl Shelf {
    /// Offers `bytes` (one more job uses them).
    pub fn offer(&mut self, bytes: Arc<Vec<u8>>) -> ModuleId {
        let id = ModuleId::of(&bytes);
        self.offered.entry(id).or_insert((bytes, 0)).1 += 1;
        id
    }

    /// One job using `id` ended; the last one takes it off the shelf.
    pub fn withdraw(&mut self, id: ModuleId) {
        if let Some((_, users)) = self.offered.get_mut(&id) {
            *users -= 1;
            if *users == 0 {
                self.offered.remove(&id);
            }
        }
    }

    /// The answer to `request`.
    pub fn answer(&self, request: &ModuleRequest) -> ModuleResponse {
        let Ok(id) = <[u8; 32]>::try_from(request.id.as_slice()) else { return ModuleResponse::Unknown };
        match self.offered.get(&ModuleId(id)) {
            Some((bytes, _)) => ModuleResponse::Module(ByteBuf::from(bytes.to_vec())),
            None => ModuleResponse::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_is_served_while_a_job_uses_it_and_never_anything_else() {
        let mut shelf = Shelf::default();
        let bytes = Arc::new(b"\0asm module bytes".to_vec());
        let id = shelf.offer(bytes.clone());
        shelf.offer(bytes.clone());
        let ask = |id: &[u8]| ModuleRequest { id: ByteBuf::from(id.to_vec()) };
        assert_eq!(shelf.answer(&ask(&id.0)), ModuleResponse::Module(ByteBuf::from(bytes.to_vec())));
        assert_eq!(shelf.answer(&ask(&[0; 32])), ModuleResponse::Unknown);
        assert_eq!(shelf.answer(&ask(b"short")), ModuleResponse::Unknown);
        shelf.withdraw(id);
        assert!(matches!(shelf.answer(&ask(&id.0)), ModuleResponse::Module(_)), "a second job still uses it");
        shelf.withdraw(id);
        assert_eq!(shelf.answer(&ask(&id.0)), ModuleResponse::Unknown);
    }
}
