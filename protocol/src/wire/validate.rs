//! What a receiver accepts in an advert. Adverts arrive from anyone on the
//! topic, so every number is bounded before it can influence placement.

use super::{from_cbor, Advert, CborError, PROTOCOL_VERSION};

/// Largest encoded advert accepted, in bytes.
pub const MAX_ADVERT_BYTES: usize = 4096;
/// Most slots a peer may claim.
pub const MAX_SLOTS: u32 = 4096;
/// Most pieces a peer may claim to accept at once.
pub const MAX_CAPACITY: u32 = 1 << 24;
/// Longest advert interval a peer may announce, in milliseconds.
pub const MAX_INTERVAL_MS: u32 = 60_000;
/// Largest mesh a peer may claim to see.
pub const MAX_MESH: u32 = 1 << 20;
/// Most task names in one advert.
pub const MAX_TASKS: usize = 64;
/// Longest task name, in bytes.
pub const MAX_TASK_NAME: usize = 64;

/// Why an advert was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdvertError {
    /// Larger than [`MAX_ADVERT_BYTES`].
    #[error("advert of {0} bytes exceeds {MAX_ADVERT_BYTES}")]
    TooLarge(usize),
    /// Not the CBOR of an advert.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// Another protocol version.
    #[error("advert of protocol version {0}, we speak {PROTOCOL_VERSION}")]
    Version(u16),
    /// A number out of its plausible range.
    #[error("implausible advert: {0}")]
    Implausible(String),
    /// Older than one already seen from this peer.
    #[error("advert seq {got} is not newer than {seen}")]
    Stale {
        /// The advert's seq.
        got: u64,
        /// The newest seq seen.
        seen: u64,
    },
}

/// Decodes and validates an advert received from the network.
pub fn decode_advert(bytes: &[u8]) -> Result<Advert, AdvertError> {
    if bytes.len() > MAX_ADVERT_BYTES {
        return Err(AdvertError::TooLarge(bytes.len()));
    }
    let advert: Advert = from_cbor(bytes)?;
    advert.validate()?;
    Ok(advert)
}

impl Advert {
    /// Checks version, bounds and task names.
    pub fn validate(&self) -> Result<(), AdvertError> {
        let implausible = |what: String| Err(AdvertError::Implausible(what));
        if self.version != PROTOCOL_VERSION {
            return Err(AdvertError::Version(self.version));
        }
        if self.slots > MAX_SLOTS {
            return implausible(format!("{} slots (max {MAX_SLOTS})", self.slots));
        }
        if self.running > self.slots {
            return implausible(format!("{} running on {} slots", self.running, self.slots));
        }
        if self.capacity > MAX_CAPACITY || self.capacity < self.slots {
            return implausible(format!("capacity {} for {} slots", self.capacity, self.slots));
        }
        if self.running as u64 + self.queued as u64 > self.capacity as u64 {
            return implausible(format!(
                "{} running + {} queued over capacity {}",
                self.running, self.queued, self.capacity
            ));
        }
        if self.interval_ms > MAX_INTERVAL_MS {
            return implausible(format!("interval of {} ms (max {MAX_INTERVAL_MS})", self.interval_ms));
        }
        if self.mesh > MAX_MESH {
            return implausible(format!("a mesh of {} nodes (max {MAX_MESH})", self.mesh));
        }
        if self.tasks.len() > MAX_TASKS {
            return implausible(format!("{} tasks (max {MAX_TASKS})", self.tasks.len()));
        }
        if let Some(bad) = self.tasks.iter().find(|t| !valid_task_name(t)) {
            return implausible(format!("task name {bad:?}"));
        }
        Ok(())
    }
}

/// Task names are short and plain: `[a-z0-9_-]`, 1 to [`MAX_TASK_NAME`] bytes.
pub fn valid_task_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TASK_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
