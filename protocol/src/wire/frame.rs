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

/// Bytes a [`Decoder`] asks for at once while reading a body: a body grows
/// by at most this much ahead of the bytes that arrived.
const BODY_STEP: usize = 64 * 1024;

/// Frames out of a byte stream that arrives in parts of any size, as the
/// node reads its RPC streams. The length is checked as soon as its 4 bytes
/// are in, before any byte of the body is kept, and the body grows only as
/// its bytes arrive (a liar declaring 16 MiB and sending 10 bytes makes a
/// reader write ~10 bytes, not 16 MiB). It never asks for more than the
/// current frame needs, so a reader never takes bytes of the next frame.
///
/// A reader asks [`Decoder::space`] where to put the next bytes, reads into
/// it, and says how many came with [`Decoder::filled`]; [`Decoder::push`]
/// does both for bytes already in hand.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    header: [u8; HEADER_LEN],
    header_got: usize,
    /// Once the header is in, the body so far.
    body: Option<Body>,
    /// Bytes of `space` handed out and not yet accounted for by `filled`.
    lent: usize,
}

/// A body being read.
#[derive(Debug)]
struct Body {
    /// The declared length.
    len: usize,
    /// The bytes that arrived, then zeroes still to be filled (each byte is
    /// zeroed once, however few bytes every read brings).
    buf: Vec<u8>,
    /// Bytes that arrived.
    got: usize,
}

impl Decoder {
    /// A decoder refusing bodies over `limit` bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder { limit, header: [0; HEADER_LEN], header_got: 0, body: None, lent: 0 }
    }

    /// The declared body length of the frame being read, once its header is in.
    pub fn declared(&self) -> Option<usize> {
        self.body.as_ref().map(|b| b.len)
    }

    /// Whether no part of a frame has arrived: where a stream may end cleanly.
    pub fn between_frames(&self) -> bool {
        self.header_got == 0 && self.body.is_none()
    }

    /// Where the next bytes go: never more than the frame's current part
    /// (header or body) still needs, nor more than [`BODY_STEP`].
    pub fn space(&mut self) -> &mut [u8] {
        match &mut self.body {
            None => {
                self.lent = HEADER_LEN - self.header_got;
                &mut self.header[self.header_got..]
            }
            Some(b) => {
                if b.got == b.buf.len() {
                    b.buf.resize(b.got + (b.len - b.got).min(BODY_STEP), 0);
                }
                self.lent = b.buf.len() - b.got;
                &mut b.buf[b.got..]
            }
        }
    }

    /// `n` bytes of the last [`Decoder::space`] were filled. Returns a
    /// frame's body once it is whole; an error once a header declares more
    /// than the limit (the stream is then unusable).
    ///
    /// # Panics
    /// If `n` is more than the space last handed out.
    pub fn filled(&mut self, n: usize) -> Result<Option<Vec<u8>>, FrameError> {
        assert!(n <= self.lent, "filled {n} bytes of a space of {}", self.lent);
        self.lent = 0;
        match &mut self.body {
            None => {
                self.header_got += n;
                if self.header_got < HEADER_LEN {
                    return Ok(None);
                }
                self.header_got = 0;
                let len = body_len(self.header, self.limit)?;
                // Reserved whole (a reader holds the declared length from
                // its byte budget anyway, and growing by doubling would copy
                // and hold half as much again), but written, so made
                // resident, only as bytes arrive.
                self.body = Some(Body { len, buf: Vec::with_capacity(len), got: 0 });
            }
            Some(b) => b.got += n,
        }
        match &self.body {
            Some(b) if b.got == b.len => Ok(self.body.take().map(|b| b.buf)),
            _ => Ok(None),
        }
    }

    /// Takes bytes from the front of `bytes`, at most what the current
    /// frame part needs: how many it took, and a body if one is whole.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(usize, Option<Vec<u8>>), FrameError> {
        let space = self.space();
        let n = space.len().min(bytes.len());
        space[..n].copy_from_slice(&bytes[..n]);
        Ok((n, self.filled(n)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every body `stream` holds, fed in parts of `step` bytes.
    fn decode(stream: &[u8], step: usize, limit: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut dec = Decoder::new(limit);
        let mut bodies = Vec::new();
        for mut part in stream.chunks(step) {
            while !part.is_empty() {
                let (took, body) = dec.push(part)?;
                part = &part[took..];
                bodies.extend(body);
            }
        }
        assert!(dec.between_frames(), "the stream ended between frames");
        Ok(bodies)
    }

    #[test]
    fn frames_come_out_whole_whatever_the_parts_they_arrive_in() {
        let bodies: Vec<Vec<u8>> = vec![b"first".to_vec(), Vec::new(), vec![7; 200_000], b"last".to_vec()];
        let stream: Vec<u8> = bodies.iter().flat_map(|b| encode(b, 1 << 20).unwrap()).collect();
        for step in [1, 2, 3, 4, 5, 7, 4096, 65_536, stream.len()] {
            assert_eq!(decode(&stream, step, 1 << 20).unwrap(), bodies, "in parts of {step} bytes");
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_any_body_byte_is_kept() {
        let mut dec = Decoder::new(100);
        assert_eq!(dec.push(&[0, 0]).unwrap(), (2, None));
        let err = dec.push(&[0, 101, 1, 2, 3]).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { len: 101, limit: 100 });
    }

    #[test]
    fn a_body_grows_with_what_arrived_not_with_what_was_declared() {
        let mut dec = Decoder::new(DEFAULT_MAX_MESSAGE);
        dec.push(&(DEFAULT_MAX_MESSAGE as u32).to_be_bytes()).unwrap();
        assert_eq!(dec.declared(), Some(DEFAULT_MAX_MESSAGE));
        assert_eq!(dec.push(&[1; 10]).unwrap(), (10, None));
        let touched = dec.body.as_ref().map(|b| b.buf.len()).unwrap();
        assert!(touched <= BODY_STEP, "{touched} bytes written for 10 received");
        assert!(!dec.between_frames());
    }
}
