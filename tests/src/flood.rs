//! A connection flood, from one address: many fresh identities, each a
//! bare libp2p swarm that identifies as a meshwork peer and subscribes to
//! the advert topic (so the node gives it everything it gives a member)
//! but never adverts and never answers work, plus bare TCP connections
//! that never begin their handshake (each takes one of the node's places
//! for pending handshakes until it times out). Each holds its connection
//! and opens another whenever the node closes or refuses it, as a
//! persistent attacker would. Tests use it to check that strangers cannot
//! crowd members out of a node (issue 19).

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, Multiaddr, Swarm, SwarmBuilder};
use meshwork::net::behaviour::IDENTIFY_PROTOCOL;
use meshwork::net::muxer;
use meshwork_protocol::wire::ADVERT_TOPIC;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// How long a flooder waits before dialling again after the node closed
/// its connection or refused it (the attacker's own pace, not a wait for
/// anything in the test).
const REDIAL: Duration = Duration::from_millis(300);

#[derive(NetworkBehaviour)]
struct FloodBehaviour {
    identify: identify::Behaviour,
    gossip: gossipsub::Behaviour,
}

/// Counters shared by the flooders.
#[derive(Debug, Default)]
struct Counts {
    /// Connections of fresh identities open now.
    open: AtomicUsize,
    /// Connections of fresh identities ever established.
    established: AtomicUsize,
    /// Bare TCP connections open now (handshakes never begun).
    stalled: AtomicUsize,
    /// Connections and handshakes the node closed or refused.
    refused: AtomicUsize,
}

/// What a flood sends.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    /// Network namespace to flood from (a lab host's), or the test's own.
    pub netns: Option<String>,
    /// The node, `/ip4/…/tcp/…/p2p/…`.
    pub target: String,
    /// Fresh identities, each holding one connection.
    pub identities: usize,
    /// Bare TCP connections that never begin their handshake, each held
    /// until the node gives up on it (a handshake's place taken for its
    /// whole timeout).
    pub stalled: usize,
}

/// A running flood, on a thread and runtime of its own (so tests using it
/// can be synchronous, and so its sockets can live in another network
/// namespace). Dropping it stops it.
pub struct Flood {
    counts: Arc<Counts>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flood {
    /// Starts the flood `spec` describes.
    pub fn start(spec: FloodSpec) -> anyhow::Result<Flood> {
        let target: Multiaddr = spec.target.parse()?;
        let socket = tcp_socket(&target).ok_or_else(|| anyhow::anyhow!("{target} is not an IPv4 TCP address"))?;
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = watch::channel(false);
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let shared = counts.clone();
        let thread = std::thread::spawn(move || {
            // One thread: every socket is made here, in this namespace.
            let rt = match spec
                .netns
                .as_deref()
                .map_or(Ok(()), enter_netns)
                .and_then(|()| Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?))
            {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            rt.block_on(async move {
                let swarms = match (0..spec.identities).map(|_| flooder()).collect::<anyhow::Result<Vec<_>>>() {
                    Ok(swarms) => swarms,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                for swarm in swarms {
                    tokio::spawn(hold(swarm, target.clone(), shared.clone(), stopped.clone()));
                }
                for _ in 0..spec.stalled {
                    tokio::spawn(stall(socket, shared.clone(), stopped.clone()));
                }
                let _ = ready_tx.send(Ok(()));
                let mut stopped = stopped;
                let _ = stopped.wait_for(|s| *s).await;
            });
        });
        ready.recv()??;
        Ok(Flood { counts, stop, thread: Some(thread) })
    }

    /// Connections of fresh identities open now.
    pub fn open(&self) -> usize {
        self.counts.open.load(Ordering::Relaxed)
    }

    /// Connections of fresh identities ever established.
    pub fn established(&self) -> usize {
        self.counts.established.load(Ordering::Relaxed)
    }

    /// Bare TCP connections open now.
    pub fn stalled(&self) -> usize {
        self.counts.stalled.load(Ordering::Relaxed)
    }

    /// Connections and handshakes the node closed or refused.
    pub fn refused(&self) -> usize {
        self.counts.refused.load(Ordering::Relaxed)
    }

    /// Closes every connection and ends the flood.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Moves the calling thread into network namespace `ns` (made by `ip netns`).
fn enter_netns(ns: &str) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
    // SAFETY: setns(2) on a namespace file we hold open; it changes only
    // this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        anyhow::bail!("setns {ns}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The IPv4 socket address of `addr`.
fn tcp_socket(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(a),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    Some(SocketAddr::from((ip?, port?)))
}

/// Holds a bare TCP connection to `to`, never writing, until the node
/// closes it; then opens another, until told to stop.
async fn stall(to: SocketAddr, counts: Arc<Counts>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok(mut conn) = tokio::net::TcpStream::connect(to).await {
            counts.stalled.fetch_add(1, Ordering::Relaxed);
            let mut byte = [0u8; 1];
            let closed = async {
                // The node's first bytes (if any) are read and ignored.
                while matches!(conn.read(&mut byte).await, Ok(n) if n > 0) {}
            };
            let stopping = tokio::select! {
                _ = stop.changed() => true,
                _ = closed => false,
            };
            counts.stalled.fetch_sub(1, Ordering::Relaxed);
            if stopping {
                return;
            }
        }
        counts.refused.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(REDIAL) => {}
        }
    }
}

/// One fresh identity, as a meshwork peer looks from outside.
fn flooder() -> anyhow::Result<Swarm<FloodBehaviour>> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, muxer::Config::meshwork)?
        .with_behaviour(|key| {
            let cfg = gossipsub::ConfigBuilder::default().build().expect("gossipsub config");
            let mut gossip =
                gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), cfg).expect("gossipsub");
            gossip.subscribe(&IdentTopic::new(ADVERT_TOPIC)).expect("subscribe");
            FloodBehaviour {
                identify: identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())),
                gossip,
            }
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build())
}

/// Keeps `swarm` connected to `target` until told to stop.
async fn hold(
    mut swarm: Swarm<FloodBehaviour>,
    target: Multiaddr,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = swarm.dial(target.clone());
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            event = swarm.select_next_some() => {
                let lost = match event {
                    SwarmEvent::ConnectionEstablished { .. } => {
                        counts.open.fetch_add(1, Ordering::Relaxed);
                        counts.established.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    SwarmEvent::ConnectionClosed { .. } => {
                        counts.open.fetch_sub(1, Ordering::Relaxed);
                        true
                    }
                    SwarmEvent::OutgoingConnectionError { .. } => true,
                    _ => false,
                };
                if lost {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(REDIAL) => {}
                    }
                    let _ = swarm.dial(target.clone());
                }
            }
        }
    }
}
