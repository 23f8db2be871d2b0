//! RPC framing: every request and response is a 4-byte big-endian length
//! followed by that many bytes of CBOR. The length lets a reader refuse an
//! oversized message before reading it, with an error that says so.

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Default largest message body, in bytes (requests carry piece inputs).
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// A frame that may not be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The body is larger than the limit.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Declared or actual body length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
}

/// The body length a header declares, checked against `limit`.
pub fn body_len(header: [u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    check(len, limit)?;
    Ok(len)
}

/// Prefixes `body` with its length, refusing a body over `limit`.
pub fn encode(body: &[u8], limit: usize) -> Result<Vec<u8>, FrameError> {
    check(body.len(), limit)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

fn check(len: usize, limit: usize) -> Result<(), FrameError> {
    if len > limit || len > u32::MAX as usize {
        return Err(FrameError::TooLarge { len, limit });
    }
    Ok(())
}
