//! A hostile peer: a bare libp2p swarm that speaks meshwork's protocols
//! but sends whatever bytes a test gives it (garbage frames, oversized
//! lengths, lying adverts) and, as a worker, answers run requests however a
//! test likes (unsolicited or duplicate results). Tests use it to check a
//! node survives all of it.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder};
use meshwork_protocol::wire::{frame, from_cbor, to_cbor, Advert, Request, Response, ADVERT_TOPIC, RPC_PROTOCOL};
use std::collections::HashMap;
use std::io;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Writes requests verbatim; reads a response to the end of the stream.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        io.read_to_end(&mut v).await?;
        Ok(v)
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        io.take(1 << 20).read_to_end(&mut v).await?;
        if v.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
        }
        Ok(v)
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&res).await
    }
}

#[derive(NetworkBehaviour)]
struct RogueBehaviour {
    identify: identify::Behaviour,
    gossip: gossipsub::Behaviour,
    rpc: request_response::Behaviour<RawCodec>,
}

/// How a rogue worker answers a run request.
pub type Answer = Box<dyn Fn(Request) -> Response + Send>;

enum Cmd {
    Dial(Multiaddr),
    Serve(Answer),
    Advertise(Advert),
    Publish(Vec<u8>, oneshot::Sender<Result<(), String>>),
    Send(PeerId, Vec<u8>, oneshot::Sender<Result<Vec<u8>, String>>),
}

/// A running hostile peer.
pub struct Rogue {
    tx: mpsc::Sender<Cmd>,
    /// Its peer id.
    pub peer_id: PeerId,
}

impl Rogue {
    /// Starts the rogue peer on loopback.
    pub async fn start() -> anyhow::Result<Rogue> {
        let mut swarm: Swarm<RogueBehaviour> = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)?
            .with_behaviour(|key| {
                let cfg = gossipsub::ConfigBuilder::default()
                    .validation_mode(gossipsub::ValidationMode::Strict)
                    .build()
                    .expect("gossipsub config");
                let mut gossip =
                    gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), cfg).expect("gossipsub");
                gossip.subscribe(&IdentTopic::new(ADVERT_TOPIC)).expect("subscribe");
                RogueBehaviour {
                    identify: identify::Behaviour::new(identify::Config::new("/rogue/1".into(), key.public())),
                    gossip,
                    rpc: request_response::Behaviour::with_codec(
                        RawCodec,
                        [(StreamProtocol::new(RPC_PROTOCOL), ProtocolSupport::Full)],
                        request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
                    ),
                }
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let peer_id = *swarm.local_peer_id();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(drive(swarm, rx));
        Ok(Rogue { tx, peer_id })
    }

    /// Connects to `addr`.
    pub async fn dial(&self, addr: Multiaddr) {
        let _ = self.tx.send(Cmd::Dial(addr)).await;
    }

    /// Answers every inbound RPC request with `answer` (a lying worker).
    pub async fn serve(&self, answer: Answer) {
        let _ = self.tx.send(Cmd::Serve(answer)).await;
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

    /// Sends `bytes` verbatim as an RPC request to `peer`; the raw response or the failure.
    pub async fn send_raw(&self, peer: PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Send(peer, bytes, tx)).await;
        rx.await.map_err(|e| e.to_string())?
    }
}

async fn drive(mut swarm: Swarm<RogueBehaviour>, mut rx: mpsc::Receiver<Cmd>) {
    let mut pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, String>>> = HashMap::new();
    let mut answer: Option<Answer> = None;
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
                Some(Cmd::Serve(a)) => answer = Some(a),
                Some(Cmd::Advertise(a)) => advert = Some(a),
                Some(Cmd::Publish(b, reply)) => {
                    let r = swarm.behaviour_mut().gossip.publish(IdentTopic::new(ADVERT_TOPIC), b);
                    let _ = reply.send(r.map(|_| ()).map_err(|e| e.to_string()));
                }
                Some(Cmd::Send(peer, bytes, reply)) => {
                    let id = swarm.behaviour_mut().rpc.send_request(&peer, bytes);
                    pending.insert(id, reply);
                }
            },
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(RogueBehaviourEvent::Rpc(e)) = event {
                    match e {
                        request_response::Event::Message { message: request_response::Message::Response { request_id, response }, .. } => {
                            if let Some(r) = pending.remove(&request_id) { let _ = r.send(Ok(response)); }
                        }
                        request_response::Event::OutboundFailure { request_id, error, .. } => {
                            if let Some(r) = pending.remove(&request_id) { let _ = r.send(Err(error.to_string())); }
                        }
                        request_response::Event::Message { message: request_response::Message::Request { request, channel, .. }, .. } => {
                            let decoded = request.get(frame::HEADER_LEN..).and_then(|b| from_cbor::<Request>(b).ok());
                            if let (Some(answer), Some(req)) = (&answer, decoded) {
                                let body = to_cbor(&answer(req));
                                let framed = frame::encode(&body, usize::MAX).expect("small response");
                                let _ = swarm.behaviour_mut().rpc.send_response(channel, framed);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
