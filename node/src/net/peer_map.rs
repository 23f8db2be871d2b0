//! The state machine names peers by small numbers; libp2p by `PeerId`.
//! Key 0 is always this node. Keys are only ever added, so clients can read
//! the names through a shared [`PeerNames`] without asking the driver.

use libp2p::PeerId;
use meshwork_protocol::PeerKey;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub(crate) struct PeerMap {
    names: PeerNames,
    keys: HashMap<PeerId, PeerKey>,
}

impl PeerMap {
    pub(crate) fn new(me: PeerId) -> PeerMap {
        let mut map = PeerMap { names: PeerNames::default(), keys: HashMap::new() };
        map.key(me);
        map
    }

    /// The key of `peer`, assigning the next one on first sight.
    pub(crate) fn key(&mut self, peer: PeerId) -> PeerKey {
        if let Some(k) = self.keys.get(&peer) {
            return *k;
        }
        let mut ids = self.names.0.write().unwrap_or_else(|e| e.into_inner());
        ids.push(peer);
        let key = PeerKey(ids.len() as u32 - 1);
        self.keys.insert(peer, key);
        key
    }

    pub(crate) fn id(&self, key: PeerKey) -> Option<PeerId> {
        self.names.id(key)
    }

    pub(crate) fn names(&self) -> PeerNames {
        self.names.clone()
    }
}

/// Read access to the key → peer id mapping.
#[derive(Clone, Debug, Default)]
pub struct PeerNames(Arc<RwLock<Vec<PeerId>>>);

impl PeerNames {
    /// The peer id behind `key`.
    pub fn id(&self, key: PeerKey) -> Option<PeerId> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(key.0 as usize).copied()
    }

    /// `key` as a peer id string (or `#n` if unknown).
    pub fn name(&self, key: PeerKey) -> String {
        self.id(key).map_or_else(|| key.to_string(), |id| id.to_string())
    }
}
