//! A hostile peer: a bare libp2p swarm that speaks meshwork's protocols
//! but sends whatever bytes a test gives it (garbage frames, oversized
//! lengths, lying adverts) and, as a worker, answers run requests however a
//! test likes (unsolicited or duplicate results), or never ([`Silence`]).
//! Its muxer sends data frames as large as the receiver's window, as
//! js-libp2p's yamux does. It identifies as a meshwork peer, so nodes list it as a member and
//! `meshwork run` processes find and dial it like any worker. Tests use it
//! to check a node survives all of it. The floods of issue 19 (slow frame
//! fills, address pushes, a lying Kademlia peer, identity churn) are in
//! [`attacks`].

mod attacks;

pub use attacks::{churn, fake_addrs, Fill, Knocks};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, identify, noise, tcp, Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder};
use meshwork::net::behaviour::IDENTIFY_PROTOCOL;
use meshwork::net::muxer;
use meshwork_protocol::wire::{
    frame, from_cbor, to_cbor, Advert, Load, Request, RequestFrame, Response, ResponseFrame, ADVERT_TOPIC,
    KAD_PROTOCOL, RPC_PROTOCOL,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(NetworkBehaviour)]
struct RogueBehaviour {
    identify: identify::Behaviour,
    gossip: gossipsub::Behaviour,
    rpc: libp2p_stream::Behaviour,
    /// A Kademlia server whose routing table holds only made-up peers
    /// ([`Rogue::kad_stub`]).
    kad: Toggle<kad::Behaviour<MemoryStore>>,
    /// The stub's made-up peers, which its own Kademlia would otherwise
    /// dial (it bootstraps from its routing table): only the node under
    /// attack is to dial them.
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
}

/// How a rogue worker answers a request: `None` never answers it (the
/// stream stays open and the next requests are read).
pub type Answer = Box<dyn Fn(Request) -> Option<Response> + Send + Sync>;

/// Which requests a silent liar leaves unanswered (issue 20): it answers
/// `Status` with its advert, so health probes never judge it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// Takes `Run` batches and never answers them; answers everything else.
    Runs,
    /// Answers `Status` only: no rejection, no result, no cancellation.
    AllButStatus,
}

impl Silence {
    /// A worker that advertises `advert` and keeps silent as `self` says.
    pub fn answer(self, advert: Advert) -> Answer {
        Box::new(move |req| match (req, self) {
            (Request::Status, _) => Some(Response::Status(advert.clone())),
            (_, Silence::AllButStatus) | (Request::Run(_), Silence::Runs) => None,
            (Request::Cancel(_), Silence::Runs) => Some(Response::Cancelled(Load::default())),
            (Request::Members, Silence::Runs) => Some(Response::Members(Vec::new())),
        })
    }
}

enum Cmd {
    Dial(Multiaddr),
    Advertise(Advert),
    Publish(Vec<u8>, oneshot::Sender<Result<(), String>>),
    Connected(PeerId, oneshot::Sender<bool>),
}

/// A running hostile peer.
pub struct Rogue {
    tx: mpsc::Sender<Cmd>,
    /// Its peer id.
    pub peer_id: PeerId,
    control: libp2p_stream::Control,
    /// Kademlia lookups it answered (as a [`Rogue::kad_stub`]).
    kad_answers: Arc<AtomicU64>,
}

impl Rogue {
    /// Starts the rogue peer on loopback.
    pub async fn start() -> anyhow::Result<Rogue> {
        Rogue::start_with(Vec::new()).await
    }

    /// Starts a rogue that also serves meshwork's Kademlia protocol and
    /// answers every lookup with `fakes` (made-up peers, each with its
    /// addresses), whatever was asked: a DHT stub that floods whoever
    /// queries it with addresses to dial.
    pub async fn kad_stub(fakes: Vec<(PeerId, Vec<Multiaddr>)>) -> anyhow::Result<Rogue> {
        anyhow::ensure!(!fakes.is_empty(), "a stub with nothing to tell");
        Rogue::start_with(fakes).await
    }

    /// Lookups it answered so far as a [`Rogue::kad_stub`].
    pub fn kad_answers(&self) -> u64 {
        self.kad_answers.load(Ordering::Relaxed)
    }

    /// A way to read [`Rogue::kad_answers`] that outlives the rogue (for
    /// the final count, once it is gone).
    pub fn kad_answers_later(&self) -> impl Fn() -> u64 + Send + 'static {
        let answers = self.kad_answers.clone();
        move || answers.load(Ordering::Relaxed)
    }

    async fn start_with(fakes: Vec<(PeerId, Vec<Multiaddr>)>) -> anyhow::Result<Rogue> {
        let mut swarm: Swarm<RogueBehaviour> = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, muxer::Config::whole_window_frames)?
            .with_behaviour(|key| {
                let cfg = gossipsub::ConfigBuilder::default()
                    .validation_mode(gossipsub::ValidationMode::Strict)
                    .build()
                    .expect("gossipsub config");
                let mut gossip =
                    gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), cfg).expect("gossipsub");
                gossip.subscribe(&IdentTopic::new(ADVERT_TOPIC)).expect("subscribe");
                let me = key.public().to_peer_id();
                let kad = (!fakes.is_empty()).then(|| {
                    let mut kad = kad::Behaviour::with_config(
                        me,
                        MemoryStore::new(me),
                        kad::Config::new(StreamProtocol::new(KAD_PROTOCOL)),
                    );
                    kad.set_mode(Some(kad::Mode::Server));
                    // At most 20 peers (one answer's worth), each with as
                    // many addresses as the caller gave: kad keeps them all.
                    for (peer, addrs) in &fakes {
                        for a in addrs {
                            kad.add_address(peer, a.clone());
                        }
                    }
                    kad
                });
                let mut blocked = allow_block_list::Behaviour::default();
                for (peer, _) in &fakes {
                    blocked.block_peer(*peer);
                }
                RogueBehaviour {
                    identify: identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())),
                    gossip,
                    rpc: libp2p_stream::Behaviour::new(),
                    kad: kad.into(),
                    blocked,
                }
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let peer_id = *swarm.local_peer_id();
        let control = swarm.behaviour().rpc.new_control();
        let (tx, rx) = mpsc::channel(16);
        let kad_answers = Arc::new(AtomicU64::new(0));
        tokio::spawn(drive(swarm, rx, kad_answers.clone()));
        Ok(Rogue { tx, peer_id, control, kad_answers })
    }

    /// Connects to `addr`.
    pub async fn dial(&self, addr: Multiaddr) {
        let _ = self.tx.send(Cmd::Dial(addr)).await;
    }

    /// Is it connected to `peer`?
    pub async fn is_connected(&self, peer: PeerId) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Connected(peer, tx)).await;
        rx.await.unwrap_or(false)
    }

    /// Sends `request` as frame number 1 on a new RPC stream to `peer` and
    /// reads the answer (the stream stays open meanwhile, as a requester's does).
    pub async fn request(&self, peer: PeerId, request: Request, timeout: Duration) -> Result<Response, String> {
        let mut control = self.control.clone();
        let stream = control.open_stream(peer, StreamProtocol::new(RPC_PROTOCOL)).await.map_err(|e| e.to_string())?;
        let (mut r, mut w) = stream.split();
        let framed =
            frame::encode(&to_cbor(&RequestFrame { id: 1, request }), usize::MAX).map_err(|e| e.to_string())?;
        w.write_all(&framed).await.map_err(|e| format!("writing the request: {e}"))?;
        w.flush().await.map_err(|e| format!("writing the request: {e}"))?;
        match tokio::time::timeout(timeout, read_frame(&mut r)).await {
            Ok(Some(body)) => from_cbor::<ResponseFrame>(&body).map(|f| f.response).map_err(|e| e.to_string()),
            Ok(None) => Err("the stream closed without an answer".into()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    /// Answers every inbound RPC request with `answer` (a lying worker).
    pub async fn serve(&self, answer: Answer) {
        let mut control = self.control.clone();
        let Ok(mut incoming) = control.accept(StreamProtocol::new(RPC_PROTOCOL)) else { return };
        tokio::spawn(async move {
            let answer = std::sync::Arc::new(answer);
            while let Some((_, stream)) = incoming.next().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    while let Some(body) = read_frame(&mut r).await {
                        let Ok(f) = from_cbor::<RequestFrame>(&body) else { return };
                        let Some(response) = answer(f.request) else { continue };
                        let reply = ResponseFrame { id: f.id, response };
                        let framed = frame::encode(&to_cbor(&reply), usize::MAX).expect("small response");
                        if w.write_all(&framed).await.is_err() || w.flush().await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }

    /// Publishes `advert` every 500 ms from now on, with an increasing seq.
    pub async fn advertise(&self, advert: Advert) {
        let _ = self.tx.send(Cmd::Advertise(advert)).await;
    }

    /// Publishes `bytes` on the advert topic (fails until a subscriber is known).
    pub async fn publish(&self, bytes: Vec<u8>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Publish(bytes, tx)).await;
        rx.await.map_err(|e| e.to_string())?
    }

    /// Writes `bytes` verbatim on a new RPC stream to `peer`, closes its
    /// side, and reads one frame back: its body, or why there was none (the
    /// node closed the stream).
    pub async fn send_raw(&self, peer: PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut control = self.control.clone();
        let stream = control.open_stream(peer, StreamProtocol::new(RPC_PROTOCOL)).await.map_err(|e| e.to_string())?;
        let (mut r, mut w) = stream.split();
        w.write_all(&bytes).await.map_err(|e| e.to_string())?;
        w.close().await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(10), read_frame(&mut r)).await {
            Ok(Some(body)) => Ok(body),
            Ok(None) => Err("the node closed the stream".into()),
            Err(_) => Err("no answer within 10 s".into()),
        }
    }
}

/// One frame's body, or `None` once the stream ends or fails.
async fn read_frame(r: &mut (impl futures::AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut header = [0u8; frame::HEADER_LEN];
    r.read_exact(&mut header).await.ok()?;
    let len = frame::body_len(header, 1 << 24).ok()?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.ok()?;
    Some(body)
}

async fn drive(mut swarm: Swarm<RogueBehaviour>, mut rx: mpsc::Receiver<Cmd>, kad_answers: Arc<AtomicU64>) {
    let mut advert: Option<Advert> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(a) = &mut advert {
                    a.seq += 1;
                    let _ = swarm.behaviour_mut().gossip.publish(IdentTopic::new(ADVERT_TOPIC), to_cbor(a));
                }
            }
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Dial(a)) => { let _ = swarm.dial(a); }
                Some(Cmd::Connected(peer, reply)) => { let _ = reply.send(swarm.is_connected(&peer)); }
                Some(Cmd::Advertise(a)) => advert = Some(a),
                Some(Cmd::Publish(b, reply)) => {
                    let r = swarm.behaviour_mut().gossip.publish(IdentTopic::new(ADVERT_TOPIC), b);
                    let _ = reply.send(r.map(|_| ()).map_err(|e| e.to_string()));
                }
            },
            event = swarm.select_next_some() => {
                if let libp2p::swarm::SwarmEvent::Behaviour(RogueBehaviourEvent::Kad(kad::Event::InboundRequest {
                    request: kad::InboundRequest::FindNode { .. },
                })) = event
                {
                    kad_answers.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
