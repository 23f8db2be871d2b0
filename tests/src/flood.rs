//! A connection flood: many fresh identities, each a bare libp2p swarm
//! that identifies as a meshwork peer and subscribes to the advert topic
//! (so the node gives it everything it gives a member) but never adverts
//! and never answers work. Each holds its connection open and dials again
//! whenever the node closes it, as a persistent attacker would. Tests use
//! it to check that strangers cannot crowd members out of a node (issue 19).

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, Multiaddr, Swarm, SwarmBuilder};
use meshwork::net::behaviour::IDENTIFY_PROTOCOL;
use meshwork::net::muxer;
use meshwork_protocol::wire::ADVERT_TOPIC;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
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
    /// Connections open now.
    open: AtomicUsize,
    /// Connections ever established.
    established: AtomicUsize,
    /// Connections the node closed or refused.
    refused: AtomicUsize,
}

/// A running flood, on a runtime of its own (tests using it can be
/// synchronous, driving `meshwork` processes). Dropping it stops it.
pub struct Flood {
    counts: Arc<Counts>,
    stop: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Flood {
    /// Starts `n` fresh identities, each dialling `target` (a
    /// `/ip4/…/tcp/…/p2p/…` address) and holding the connection.
    pub fn start(target: &str, n: usize) -> anyhow::Result<Flood> {
        let target: Multiaddr = target.parse()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = watch::channel(false);
        for _ in 0..n {
            let swarm = runtime.block_on(async { flooder() })?;
            runtime.spawn(hold(swarm, target.clone(), counts.clone(), stopped.clone()));
        }
        Ok(Flood { counts, stop, runtime: Some(runtime) })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.open.load(Ordering::Relaxed)
    }

    /// Connections ever established.
    pub fn established(&self) -> usize {
        self.counts.established.load(Ordering::Relaxed)
    }

    /// Connections the node closed or refused.
    pub fn refused(&self) -> usize {
        self.counts.refused.load(Ordering::Relaxed)
    }

    /// Closes every connection and ends the flood.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.shut();
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
async fn hold(mut swarm: Swarm<FloodBehaviour>, target: Multiaddr, counts: Arc<Counts>, mut stop: watch::Receiver<bool>) {
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
