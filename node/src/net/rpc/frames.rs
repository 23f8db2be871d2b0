//! Reading and writing frames on an RPC stream: a 4-byte length, checked
//! against the message limit before anything else, then that many bytes of
//! CBOR. Bodies are read as they arrive (never allocated up front to the
//! declared size), and every body in flight holds its declared size from a
//! byte budget shared by all streams, so no number of slow or lying peers
//! can make a node buffer more than the budget.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use meshwork_protocol::wire::{frame, from_cbor, to_cbor, CborError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FrameError {
    /// The stream failed or ended in the middle of a frame.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The declared length is over the message limit.
    #[error(transparent)]
    TooLarge(#[from] frame::FrameError),
    /// Every byte of the inbound budget is held by other frames.
    #[error("inbound buffer budget of {budget} bytes exhausted (a frame of {len} bytes waits)")]
    Budget {
        /// The frame's declared length.
        len: usize,
        /// The budget.
        budget: usize,
    },
    /// The body is not the CBOR of the expected message.
    #[error(transparent)]
    Cbor(#[from] CborError),
}

/// Bytes that inbound frames may hold at once, across every stream; and,
/// since every frame passes here, the bytes frames carried each way.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    held: AtomicUsize,
    /// Bytes of frames read and written (headers included).
    pub(crate) traffic: Traffic,
}

/// Bytes RPC frames carried, in and out, across every stream.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    read: AtomicU64,
    written: AtomicU64,
}

impl Traffic {
    /// Bytes read and written so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.read.load(Ordering::Relaxed), self.written.load(Ordering::Relaxed))
    }
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget { limit, held: AtomicUsize::new(0), traffic: Traffic::default() })
    }

    /// Takes `len` bytes, or none if that would pass the limit.
    fn take(self: &Arc<Self>, len: usize) -> Option<Held> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| h.checked_add(len).filter(|t| *t <= self.limit))
            .ok()
            .map(|_| Held { budget: self.clone(), len })
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// Bytes taken from a [`Budget`], given back on drop.
struct Held {
    budget: Arc<Budget>,
    len: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.len, Ordering::AcqRel);
    }
}

/// Bytes of a body made ready for one read: the most a frame's memory runs
/// ahead of what the peer actually sent.
const READ_CHUNK: usize = 64 * 1024;

/// Reads one frame; `None` at a clean end of stream (between frames).
pub(crate) async fn read<M: DeserializeOwned>(
    io: &mut (impl AsyncRead + Unpin),
    max_message: usize,
    budget: &Arc<Budget>,
) -> Result<Option<M>, FrameError> {
    let mut header = [0u8; frame::HEADER_LEN];
    let mut got = 0;
    while got < header.len() {
        let n = io.read(&mut header[got..]).await?;
        if n == 0 {
            return match got {
                0 => Ok(None),
                _ => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            };
        }
        got += n;
    }
    let len = frame::body_len(header, max_message)?;
    let _held = budget.take(len).ok_or(FrameError::Budget { len, budget: budget.limit })?;
    // Reserved whole, since the budget allows it, but written (so made
    // resident) only as bytes arrive: a body that grew by doubling held
    // half as much again while each copy was made, and `read_to_end` zeroes
    // all it reserves at once.
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        let got = body.len();
        body.resize(len.min(got + READ_CHUNK), 0);
        match io.read(&mut body[got..]).await? {
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            n => body.truncate(got + n),
        }
    }
    budget.traffic.read.fetch_add((frame::HEADER_LEN + len) as u64, Ordering::Relaxed);
    Ok(Some(from_cbor(&body)?))
}

/// Bytes gathered into one write when several frames wait.
const GATHER_BYTES: usize = 256 * 1024;

/// Writes `first` and whatever `more` has ready at once (up to
/// [`GATHER_BYTES`]) in one write and one flush: under load many frames
/// share a segment, while a lone frame goes out at once. A frame over
/// `max_message` is refused. What was written is counted in `traffic`.
pub(crate) async fn write<M: Serialize>(
    io: &mut (impl AsyncWrite + Unpin),
    first: &M,
    mut more: impl FnMut() -> Option<M>,
    max_message: usize,
    traffic: &Traffic,
) -> Result<(), FrameError> {
    let mut buf = frame::encode(&to_cbor(first), max_message)?;
    while buf.len() < GATHER_BYTES {
        let Some(next) = more() else { break };
        buf.extend_from_slice(&frame::encode(&to_cbor(&next), max_message)?);
    }
    io.write_all(&buf).await?;
    io.flush().await?;
    traffic.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use meshwork_protocol::wire::{Request, RequestFrame};

    fn bytes(frames: &[RequestFrame]) -> Vec<u8> {
        frames.iter().flat_map(|f| frame::encode(&to_cbor(f), 1 << 20).unwrap()).collect()
    }

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let frames =
            vec![RequestFrame { id: 1, request: Request::Status }, RequestFrame { id: 2, request: Request::Members }];
        let budget = Budget::new(1 << 20);
        let mut io = Cursor::new(bytes(&frames));
        for f in &frames {
            assert_eq!(read::<RequestFrame>(&mut io, 1 << 20, &budget).await.unwrap().as_ref(), Some(f));
        }
        assert!(read::<RequestFrame>(&mut io, 1 << 20, &budget).await.unwrap().is_none());
        assert_eq!(budget.held(), 0, "every byte given back");
        assert_eq!(budget.traffic.totals().0, bytes(&frames).len() as u64, "every byte read is counted");
        let mut out = Cursor::new(Vec::new());
        let mut rest = frames[1..].iter().cloned();
        let traffic = Traffic::default();
        write(&mut out, &frames[0], || rest.next(), 1 << 20, &traffic).await.unwrap();
        assert_eq!(traffic.totals().1, out.get_ref().len() as u64, "every byte written is counted");
        assert_eq!(out.into_inner(), bytes(&frames), "waiting frames go in the same write");
    }

    #[tokio::test]
    async fn oversized_truncated_and_garbage_frames_are_refused() {
        let budget = Budget::new(1 << 20);
        let mut big = Cursor::new(vec![0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(read::<RequestFrame>(&mut big, 1024, &budget).await, Err(FrameError::TooLarge(_))));
        let mut cut = Cursor::new(vec![0, 0, 0, 9, 1, 2]);
        assert!(matches!(read::<RequestFrame>(&mut cut, 1024, &budget).await, Err(FrameError::Io(_))));
        let mut half_header = Cursor::new(vec![0, 0]);
        assert!(matches!(read::<RequestFrame>(&mut half_header, 1024, &budget).await, Err(FrameError::Io(_))));
        let mut junk = Cursor::new(vec![0, 0, 0, 2, 0xff, 0x00]);
        assert!(matches!(read::<RequestFrame>(&mut junk, 1024, &budget).await, Err(FrameError::Cbor(_))));
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn the_budget_bounds_what_all_streams_hold_at_once() {
        let budget = Budget::new(100);
        let held = budget.take(95).unwrap();
        let mut io = Cursor::new(bytes(&[RequestFrame { id: 1, request: Request::Status }]));
        let err = read::<RequestFrame>(&mut io, 1 << 20, &budget).await.unwrap_err();
        assert!(matches!(err, FrameError::Budget { .. }), "{err}");
        drop(held);
        let mut io = Cursor::new(bytes(&[RequestFrame { id: 1, request: Request::Status }]));
        assert!(read::<RequestFrame>(&mut io, 1 << 20, &budget).await.unwrap().is_some());
    }
}
