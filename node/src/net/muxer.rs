//! The stream muxer: yamux, configured so that frames from any stack fit.
//!
//! rust-yamux 0.14 (under libp2p-yamux 0.48) closes the **whole connection**
//! on an inbound data frame whose body is over 1 MiB (`MAX_FRAME_BODY_LEN`,
//! a constant). It sends frames of at most 16 KiB itself, but a sender may
//! send a frame as large as the window the receiver granted, and
//! js-libp2p's yamux does. rust-yamux grants 256 KiB per stream at first
//! and, on a fast stream, keeps doubling that (up to its 1 GiB budget per
//! connection), so a few MiB into a large message a JS peer's frames pass
//! 1 MiB and the connection dies, with every request on it.
//!
//! `libp2p::yamux::Config` sets only the stream count, so meshwork builds
//! its muxer from the `yamux` crate (the same version libp2p uses), with a
//! connection receive window of exactly streams × 256 KiB: every stream
//! keeps the spec's initial 256 KiB window for good (the auto-tuning finds
//! no room to grow), so no peer may ever send a frame over 256 KiB. A
//! 256 KiB window per stream still carries hundreds of MB/s on a LAN, and
//! it bounds what one connection can make this node buffer at 128 MiB
//! instead of 1 GiB.

use futures::{ready, AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::{future, iter};

/// Streams per connection: yamux's default. Far above what meshwork opens
/// (one RPC stream per direction, plus gossip, identify, Kademlia, ping).
pub const MAX_STREAMS: usize = 512;

/// The receive window of every stream: the yamux spec's initial window.
/// No frame a peer sends us can be larger.
pub const STREAM_WINDOW: usize = yamux::DEFAULT_CREDIT as usize;

/// Inbound streams buffered while the swarm is not asking for them, as in
/// libp2p-yamux (yamux's own backlog of unacknowledged streams).
const MAX_BUFFERED_INBOUND_STREAMS: usize = 256;

/// A yamux configuration, usable wherever libp2p takes a muxer upgrade.
#[derive(Clone, Debug)]
pub struct Config(yamux::Config);

impl Config {
    /// meshwork's muxer: every stream's receive window pinned at
    /// [`STREAM_WINDOW`] (see the module documentation).
    pub fn meshwork() -> Config {
        let mut cfg = yamux::Config::default();
        cfg.set_max_num_streams(MAX_STREAMS);
        cfg.set_max_connection_receive_window(Some(MAX_STREAMS * STREAM_WINDOW));
        Config(cfg)
    }

    /// rust-yamux's defaults (auto-tuned windows), but sending data frames
    /// as large as the receiver's window allows, as js-libp2p's yamux does:
    /// a peer of another stack, for tests.
    pub fn whole_window_frames() -> Config {
        let mut cfg = yamux::Config::default();
        cfg.set_split_send_size(usize::MAX);
        Config(cfg)
    }
}

impl Config {
    /// The muxer over `io`, as the side that dialled (`Client`) or listened.
    fn connect<C>(self, io: C, mode: yamux::Mode) -> future::Ready<Result<Muxer<C>, std::io::Error>>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        future::ready(Ok(Muxer::new(yamux::Connection::new(io, self.0, mode))))
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        iter::once("/yamux/1.0.0")
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = std::io::Error;
    type Future = future::Ready<Result<Muxer<C>, std::io::Error>>;

    fn upgrade_inbound(self, io: C, _: Self::Info) -> Self::Future {
        self.connect(io, yamux::Mode::Server)
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = std::io::Error;
    type Future = future::Ready<Result<Muxer<C>, std::io::Error>>;

    fn upgrade_outbound(self, io: C, _: Self::Info) -> Self::Future {
        self.connect(io, yamux::Mode::Client)
    }
}

/// A yamux connection as libp2p's [`StreamMuxer`] (what libp2p-yamux's
/// `Muxer` does, over a connection configured here).
#[derive(Debug)]
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    /// Inbound streams that arrived while the swarm polled the connection
    /// for something else (yamux makes progress only by accepting them).
    inbound: VecDeque<yamux::Stream>,
    inbound_waker: Option<Waker>,
}

impl<C> Muxer<C> {
    fn new(connection: yamux::Connection<C>) -> Muxer<C> {
        Muxer { connection, inbound: VecDeque::new(), inbound_waker: None }
    }
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_next_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<yamux::Stream, yamux::ConnectionError>> {
        match ready!(self.connection.poll_next_inbound(cx)) {
            Some(stream) => Poll::Ready(stream),
            None => Poll::Ready(Err(yamux::ConnectionError::Closed)),
        }
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    type Substream = yamux::Stream;
    type Error = yamux::ConnectionError;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<yamux::Stream, Self::Error>> {
        let this = self.get_mut();
        if let Some(stream) = this.inbound.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        if let Poll::Ready(res) = this.poll_next_inbound(cx) {
            return Poll::Ready(res);
        }
        this.inbound_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<yamux::Stream, Self::Error>> {
        self.get_mut().connection.poll_new_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().connection.poll_close(cx)
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let stream = ready!(this.poll_next_inbound(cx))?;
        if this.inbound.len() < MAX_BUFFERED_INBOUND_STREAMS {
            this.inbound.push_back(stream);
            if let Some(waker) = this.inbound_waker.take() {
                waker.wake();
            }
        } else {
            tracing::warn!(stream = %stream, "inbound stream dropped: too many waiting");
        }
        // Let other work run, then come back for more.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
