//! Reading and writing frames on an RPC stream: a 4-byte length, checked
//! against the message limit before anything else, then that many bytes of
//! CBOR. Bodies are written as their bytes arrive (never made resident up
//! front at the declared size), and every body in flight holds its declared size from a
//! byte budget shared by all streams, so no number of slow or lying peers
//! can make a node buffer more than the budget.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::PeerId;
use meshwork_protocol::wire::frame::{self, Decoder};
use meshwork_protocol::wire::{from_cbor, to_cbor, CborError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The inbound budget, or the peer's half of it, is held by other frames.
    #[error(
        "inbound buffer budget of {budget} bytes exhausted, or this peer's half of it (a frame of {len} bytes waits)"
    )]
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

/// Bytes that inbound frames may hold at once, across every stream, and
/// per peer: no peer holds more than half, so one that fills its frames and
/// never finishes them (a slow fill) leaves the other half to everyone
/// else, and their requests are still read. Also, since every frame passes
/// here, the bytes frames carried each way.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    held: AtomicUsize,
    /// Bytes held per peer (peers holding none are not listed).
    by_peer: Mutex<HashMap<PeerId, usize>>,
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
        Arc::new(Budget { limit, held: AtomicUsize::new(0), by_peer: Mutex::default(), traffic: Traffic::default() })
    }

    /// Takes `len` bytes for a frame of `peer`'s, or none if that would
    /// pass the limit, or half of it for that peer.
    fn take(self: &Arc<Self>, peer: PeerId, len: usize) -> Option<Held> {
        let mut by_peer = self.by_peer.lock().expect("budget lock");
        let mine = by_peer.get(&peer).copied().unwrap_or(0);
        let held = self.held.load(Ordering::Acquire);
        if held.checked_add(len)? > self.limit || mine.checked_add(len)? > self.limit / 2 {
            return None;
        }
        by_peer.insert(peer, mine + len);
        self.held.fetch_add(len, Ordering::AcqRel);
        Some(Held { budget: self.clone(), peer, len })
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// Bytes taken from a [`Budget`], given back on drop.
struct Held {
    budget: Arc<Budget>,
    peer: PeerId,
    len: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut by_peer = self.budget.by_peer.lock().expect("budget lock");
        if let Some(mine) = by_peer.get_mut(&self.peer) {
            *mine -= self.len;
            if *mine == 0 {
                by_peer.remove(&self.peer);
            }
        }
        self.budget.held.fetch_sub(self.len, Ordering::AcqRel);
    }
}

/// Reads one frame; `None` at a clean end of stream (between frames). The
/// bytes go through `frame::Decoder` (fuzzed in parts of any size by the
/// `frame_stream` target), which writes a body only as its bytes arrive.
pub(crate) async fn read<M: DeserializeOwned>(
    io: &mut (impl AsyncRead + Unpin),
    max_message: usize,
    budget: &Arc<Budget>,
    peer: PeerId,
) -> Result<Option<M>, FrameError> {
    let mut decoder = Decoder::new(max_message);
    let mut held = None;
    loop {
        let n = io.read(decoder.space()).await?;
        if n == 0 {
            return match decoder.between_frames() {
                true => Ok(None),
                false => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            };
        }
        let body = decoder.filled(n)?;
        if let (None, Some(len)) = (&held, decoder.declared()) {
            held = Some(budget.take(peer, len).ok_or(FrameError::Budget { len, budget: budget.limit })?);
        }
        if let Some(body) = body {
            budget.traffic.read.fetch_add((frame::HEADER_LEN + body.len()) as u64, Ordering::Relaxed);
            return Ok(Some(from_cbor(&body)?));
        }
    }
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
            assert_eq!(
                read::<RequestFrame>(&mut io, 1 << 20, &budget, PeerId::random()).await.unwrap().as_ref(),
                Some(f)
            );
        }
        assert!(read::<RequestFrame>(&mut io, 1 << 20, &budget, PeerId::random()).await.unwrap().is_none());
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
        assert!(matches!(
            read::<RequestFrame>(&mut big, 1024, &budget, PeerId::random()).await,
            Err(FrameError::TooLarge(_))
        ));
        let mut cut = Cursor::new(vec![0, 0, 0, 9, 1, 2]);
        assert!(matches!(
            read::<RequestFrame>(&mut cut, 1024, &budget, PeerId::random()).await,
            Err(FrameError::Io(_))
        ));
        let mut half_header = Cursor::new(vec![0, 0]);
        assert!(matches!(
            read::<RequestFrame>(&mut half_header, 1024, &budget, PeerId::random()).await,
            Err(FrameError::Io(_))
        ));
        let mut junk = Cursor::new(vec![0, 0, 0, 2, 0xff, 0x00]);
        assert!(matches!(
            read::<RequestFrame>(&mut junk, 1024, &budget, PeerId::random()).await,
            Err(FrameError::Cbor(_))
        ));
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn the_budget_bounds_what_all_streams_hold_at_once_and_each_peer_to_half() {
        let (hog, other) = (PeerId::random(), PeerId::random());
        let status = || Cursor::new(bytes(&[RequestFrame { id: 1, request: Request::Status }]));
        let budget = Budget::new(100);
        let hogged = budget.take(hog, 50).unwrap();
        let err = read::<RequestFrame>(&mut status(), 1 << 20, &budget, hog).await.unwrap_err();
        assert!(matches!(err, FrameError::Budget { .. }), "past its half: {err}");
        assert!(read::<RequestFrame>(&mut status(), 1 << 20, &budget, other).await.unwrap().is_some());
        let taken = budget.take(other, 45).unwrap();
        let err = read::<RequestFrame>(&mut status(), 1 << 20, &budget, other).await.unwrap_err();
        assert!(matches!(err, FrameError::Budget { .. }), "past the whole: {err}");
        drop((hogged, taken));
        assert_eq!(budget.held(), 0);
        assert!(budget.by_peer.lock().unwrap().is_empty(), "peers holding nothing are forgotten");
        assert!(read::<RequestFrame>(&mut status(), 1 << 20, &budget, hog).await.unwrap().is_some());
    }
}
