//! The transport stack: TCP + noise + yamux (behind the pnet handshake when
//! the mesh is private; yamux configured by [`muxer`]), QUIC when it is not
//! (pnet cannot cover QUIC, so a private mesh turns QUIC off rather than
//! leave a door open). Circuits through relays (`net::nat`) are one more
//! transport, secured the same way: a relay only carries bytes, so the
//! pnet handshake and noise run end to end, between the two peers.

use crate::net::muxer;
use futures::future::Either;
use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, Transport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::{noise, quic, relay, tcp, PeerId};

/// What the stack carries.
pub type Stack = Boxed<(PeerId, StreamMuxerBox)>;

/// Which transports to build.
#[derive(Clone, Debug, Default)]
pub struct TransportConfig {
    /// Private-mesh key: every TCP connection runs the pnet handshake first.
    pub psk: Option<PreSharedKey>,
    /// Build QUIC (never with a `psk`).
    pub quic: bool,
}

/// Builds the transport stack for `key`, with `relayed`, the relay
/// client's transport (its behaviour goes into the swarm's behaviour).
pub fn build(key: &Keypair, cfg: &TransportConfig, relayed: relay::client::Transport) -> Result<Stack, noise::Error> {
    let noise = noise::Config::new(key)?;
    let tcp = tcp::tokio::Transport::new(tcp::Config::new().nodelay(true));
    let mut stack = combine(secure(relayed, cfg.psk, &noise), secure(tcp, cfg.psk, &noise));
    if cfg.quic && cfg.psk.is_none() {
        let quic = quic::tokio::Transport::new(quic::Config::new(key))
            .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)))
            .boxed();
        stack = combine(stack, quic);
    }
    Ok(stack)
}

/// Adds the pnet handshake (for a private mesh), then noise and yamux.
fn secure<T>(raw: T, psk: Option<PreSharedKey>, noise: &noise::Config) -> Stack
where
    T: Transport + Send + Unpin + 'static,
    T::Output: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T::Error: std::error::Error + Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    match psk {
        Some(psk) => upgrade(raw.and_then(move |socket, _| PnetConfig::new(psk).handshake(socket)), noise),
        None => upgrade(raw, noise),
    }
}

fn upgrade<T>(raw: T, noise: &noise::Config) -> Stack
where
    T: Transport + Send + Unpin + 'static,
    T::Output: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T::Error: std::error::Error + Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    raw.upgrade(Version::V1Lazy)
        .authenticate(noise.clone())
        .multiplex(muxer::Config::meshwork())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed()
}

fn combine(a: Stack, b: Stack) -> Stack {
    a.or_transport(b)
        .map(|out, _| match out {
            Either::Left(o) | Either::Right(o) => o,
        })
        .boxed()
}
