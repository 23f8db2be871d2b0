//! The RPC protocol ([`RPC_PROTOCOL`]) on long-lived libp2p streams.
//!
//! A node opens one stream to each peer it asks things of and keeps it:
//! numbered [`RequestFrame`]s go out on it and [`ResponseFrame`]s with the
//! same numbers come back on it, in any order. Compared with a stream per
//! request (libp2p request-response), a round trip costs one frame each
//! way instead of a stream opening and two closings, and no timer thread
//! is woken per request; deadlines are the state machine's business.
//!
//! Each stream half runs as a task on the node's runtime; they talk to the
//! driver through [`RpcEvent`]s, and the driver talks to them through
//! [`Rpc`]. Inbound frames are bounded (`frames`): by the message limit
//! each, and by one byte budget for all streams together.

mod frames;

pub(crate) use frames::{Budget, FrameError};

use futures::{AsyncReadExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::Control;
use meshwork_protocol::wire::{Request, RequestFrame, Response, ResponseFrame, RPC_PROTOCOL};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Answers queued for one inbound stream before it counts as not reading them.
const MAX_QUEUED_ANSWERS: usize = 1024;

/// A request we sent, as the driver numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OutboundId(pub(crate) u64);

/// Where an inbound request came from, to answer it on the same stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Inbound {
    stream: u64,
    id: u64,
}

/// What the stream tasks tell the driver.
#[derive(Debug)]
pub(crate) enum RpcEvent {
    /// A peer opened a stream to us: answers to its requests go here.
    Opened { stream: u64, answers: mpsc::Sender<ResponseFrame> },
    /// A peer asked something.
    Request { peer: PeerId, from: Inbound, request: Request },
    /// A peer answered one of our requests.
    Response { id: OutboundId, response: Response },
    /// Our stream to `peer` (generation `generation`) ended: its unanswered
    /// requests never will be.
    OutboundClosed { peer: PeerId, generation: u64, error: String },
    /// A peer's stream to us ended.
    InboundClosed { stream: u64 },
    /// An inbound frame was refused (oversized, malformed, over budget) or
    /// its stream failed mid-frame; the stream is closed.
    Refused { peer: PeerId, error: FrameError },
}

/// Our stream to one peer.
struct Outbound {
    generation: u64,
    requests: mpsc::UnboundedSender<RequestFrame>,
}

/// The driver's side of the RPC streams.
pub(crate) struct Rpc {
    control: Control,
    events: mpsc::UnboundedSender<RpcEvent>,
    max_message: usize,
    budget: Arc<Budget>,
    outbound: HashMap<PeerId, Outbound>,
    /// Requests sent and not answered: to whom, on which stream generation.
    pending: HashMap<OutboundId, (PeerId, u64)>,
    answers: HashMap<u64, mpsc::Sender<ResponseFrame>>,
    next_id: u64,
    generations: u64,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc").field("pending", &self.pending.len()).finish_non_exhaustive()
    }
}

impl Rpc {
    /// Starts accepting inbound streams; events come on the returned channel.
    pub(crate) fn start(
        mut control: Control,
        max_message: usize,
        budget: Arc<Budget>,
    ) -> Result<(Rpc, mpsc::UnboundedReceiver<RpcEvent>), libp2p_stream::AlreadyRegistered> {
        let (events, rx) = mpsc::unbounded_channel();
        let incoming = control.accept(StreamProtocol::new(RPC_PROTOCOL))?;
        tokio::spawn(accept(incoming, events.clone(), max_message, budget.clone()));
        let rpc = Rpc {
            control,
            events,
            max_message,
            budget,
            outbound: HashMap::new(),
            pending: HashMap::new(),
            answers: HashMap::new(),
            next_id: 1,
            generations: 0,
        };
        Ok((rpc, rx))
    }

    /// Sends `request` to `peer` (opening our stream to it if needed).
    pub(crate) fn request(&mut self, peer: PeerId, request: Request) -> OutboundId {
        let id = OutboundId(self.next_id);
        self.next_id += 1;
        let mut frame = RequestFrame { id: id.0, request };
        if let Some(out) = self.outbound.get(&peer) {
            match out.requests.send(frame) {
                Ok(()) => {
                    self.pending.insert(id, (peer, out.generation));
                    return id;
                }
                // That stream just ended; its close event is on its way.
                Err(mpsc::error::SendError(back)) => frame = back,
            }
        }
        self.generations += 1;
        let generation = self.generations;
        let (requests, queue) = mpsc::unbounded_channel();
        let _ = requests.send(frame);
        self.outbound.insert(peer, Outbound { generation, requests });
        self.pending.insert(id, (peer, generation));
        let task = OutboundTask {
            control: self.control.clone(),
            peer,
            generation,
            queue,
            events: self.events.clone(),
            max_message: self.max_message,
            budget: self.budget.clone(),
            unconfirmed: Vec::new(),
        };
        tokio::spawn(task.run());
        id
    }

    /// Answers an inbound request; false if its stream is gone or not reading.
    pub(crate) fn answer(&mut self, to: Inbound, response: Response) -> bool {
        let Some(answers) = self.answers.get(&to.stream) else { return false };
        if answers.try_send(ResponseFrame { id: to.id, response }).is_ok() {
            return true;
        }
        // Full: a peer that asks without reading answers gets its stream closed.
        self.answers.remove(&to.stream);
        false
    }

    /// Takes an event from the tasks into account. Returns the requests
    /// that will never be answered (their stream ended), and lets through
    /// the answers to requests still pending.
    pub(crate) fn on_event(&mut self, event: &RpcEvent) -> Vec<OutboundId> {
        match event {
            RpcEvent::Opened { stream, answers } => {
                self.answers.insert(*stream, answers.clone());
            }
            RpcEvent::InboundClosed { stream } => {
                self.answers.remove(stream);
            }
            RpcEvent::OutboundClosed { peer, generation, .. } => {
                if self.outbound.get(peer).is_some_and(|o| o.generation == *generation) {
                    self.outbound.remove(peer);
                }
                let lost: Vec<OutboundId> =
                    self.pending.iter().filter(|(_, (p, g))| p == peer && g == generation).map(|(id, _)| *id).collect();
                for id in &lost {
                    self.pending.remove(id);
                }
                return lost;
            }
            RpcEvent::Request { .. } | RpcEvent::Response { .. } | RpcEvent::Refused { .. } => {}
        }
        Vec::new()
    }

    /// Is `id` still waiting for its answer? (Forgets it: each is answered once.)
    pub(crate) fn answered(&mut self, id: OutboundId) -> bool {
        self.pending.remove(&id).is_some()
    }

    /// Bytes inbound frames hold now.
    pub(crate) fn buffered(&self) -> usize {
        self.budget.held()
    }

    /// Bytes of frames read and written so far.
    pub(crate) fn traffic(&self) -> (u64, u64) {
        self.budget.traffic.totals()
    }
}

/// Accepts peers' streams, one reader task and one writer task each.
async fn accept(
    mut incoming: libp2p_stream::IncomingStreams,
    events: mpsc::UnboundedSender<RpcEvent>,
    max_message: usize,
    budget: Arc<Budget>,
) {
    static STREAMS: AtomicU64 = AtomicU64::new(1);
    while let Some((peer, stream)) = incoming.next().await {
        let key = STREAMS.fetch_add(1, Ordering::Relaxed);
        let (mut reader, mut writer) = stream.split();
        let (answers, mut queue) = mpsc::channel::<ResponseFrame>(MAX_QUEUED_ANSWERS);
        if events.send(RpcEvent::Opened { stream: key, answers }).is_err() {
            return;
        }
        let written = budget.clone();
        tokio::spawn(async move {
            while let Some(frame) = queue.recv().await {
                let more = || queue.try_recv().ok();
                if frames::write(&mut writer, &frame, more, max_message, &written.traffic).await.is_err() {
                    break;
                }
            }
        });
        let (events, budget) = (events.clone(), budget.clone());
        tokio::spawn(async move {
            loop {
                match frames::read::<RequestFrame>(&mut reader, max_message, &budget, peer).await {
                    Ok(Some(f)) => {
                        let from = Inbound { stream: key, id: f.id };
                        let _ = events.send(RpcEvent::Request { peer, from, request: f.request });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        let _ = events.send(RpcEvent::Refused { peer, error });
                        break;
                    }
                }
            }
            let _ = events.send(RpcEvent::InboundClosed { stream: key });
        });
    }
}

/// Times a stream is opened again when the peer dropped it before it
/// answered anything. libp2p-stream hands inbound streams to our accept
/// loop through a channel of one slot and drops the streams that arrive
/// while it is full: a node that many peers greet at once (a newcomer
/// dialling a whole mesh, a mesh forming) drops all but a few of their
/// first streams. Nothing was answered on a dropped stream, so its
/// requests are simply sent again on a new one, after a pause that doubles
/// from [`REOPEN_PAUSE`] up to [`REOPEN_PAUSE_MAX`], each drawn at random
/// between half and all of it so that the peers that collided once do not
/// collide again (about 3 s in all).
const OPEN_ATTEMPTS: u32 = 10;
/// The first pause before opening a dropped stream again.
const REOPEN_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two openings.
const REOPEN_PAUSE_MAX: Duration = Duration::from_secs(1);

/// The pause before opening attempt `attempt` (from 1).
fn reopen_pause(attempt: u32) -> Duration {
    let full = REOPEN_PAUSE.saturating_mul(1 << (attempt - 1).min(16)).min(REOPEN_PAUSE_MAX);
    full.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// Our stream to one peer: opened on first use, its requests written as
/// they come, its answers read as they come.
struct OutboundTask {
    control: Control,
    peer: PeerId,
    generation: u64,
    queue: mpsc::UnboundedReceiver<RequestFrame>,
    events: mpsc::UnboundedSender<RpcEvent>,
    max_message: usize,
    budget: Arc<Budget>,
    /// Requests written on a stream that has not answered anything yet:
    /// written again on the next stream if this one was dropped unanswered.
    unconfirmed: Vec<RequestFrame>,
}

/// How a stream ended.
enum Ended {
    /// After at least one answer (or by this node): the stream is done.
    Done(String),
    /// Before any answer: the peer may have dropped it unread.
    Unanswered(String),
}

impl OutboundTask {
    async fn run(mut self) {
        let (peer, generation) = (self.peer, self.generation);
        let mut error = String::new();
        for attempt in 0..OPEN_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(reopen_pause(attempt)).await;
            }
            match self.control.open_stream(peer, StreamProtocol::new(RPC_PROTOCOL)).await {
                Ok(stream) => match self.serve(stream).await {
                    Ended::Done(e) => {
                        error = e;
                        break;
                    }
                    Ended::Unanswered(e) => error = e,
                },
                Err(e) => {
                    error = e.to_string();
                    break;
                }
            }
        }
        self.queue.close();
        let _ = self.events.send(RpcEvent::OutboundClosed { peer, generation, error });
    }

    /// Writes requests (first those a dropped stream left unanswered) and
    /// reads answers until either side fails; says how it ended.
    async fn serve(&mut self, stream: Stream) -> Ended {
        let (mut reader, mut writer) = stream.split();
        let (events, peer, max_message) = (self.events.clone(), self.peer, self.max_message);
        let budget = self.budget.clone();
        let answered = Arc::new(AtomicBool::new(false));
        let confirmed = answered.clone();
        let mut answers = tokio::spawn(async move {
            loop {
                match frames::read::<ResponseFrame>(&mut reader, max_message, &budget, peer).await {
                    Ok(Some(f)) => {
                        confirmed.store(true, Ordering::Relaxed);
                        let _ = events.send(RpcEvent::Response { id: OutboundId(f.id), response: f.response });
                    }
                    Ok(None) => return "the peer closed the stream".to_string(),
                    Err(error) => {
                        let why = error.to_string();
                        let _ = events.send(RpcEvent::Refused { peer, error });
                        return why;
                    }
                }
            }
        });
        let ended = |e: String| if answered.load(Ordering::Relaxed) { Ended::Done(e) } else { Ended::Unanswered(e) };
        let mut resend = std::mem::take(&mut self.unconfirmed).into_iter();
        loop {
            let next = match resend.next() {
                Some(frame) => Some(frame),
                None => tokio::select! {
                    done = &mut answers => return ended(done.unwrap_or_else(|e| e.to_string())),
                    next = self.queue.recv() => next,
                },
            };
            let Some(frame) = next else {
                answers.abort();
                return Ended::Done("closed by this node".to_string());
            };
            let keep = !answered.load(Ordering::Relaxed);
            if keep {
                self.unconfirmed.push(frame.clone());
            } else {
                self.unconfirmed.clear();
            }
            let (queue, unconfirmed) = (&mut self.queue, &mut self.unconfirmed);
            let more = || {
                let f = resend.next().or_else(|| queue.try_recv().ok())?;
                if keep {
                    unconfirmed.push(f.clone());
                }
                Some(f)
            };
            if let Err(e) = frames::write(&mut writer, &frame, more, max_message, &self.budget.traffic).await {
                answers.abort();
                return ended(e.to_string());
            }
        }
    }
}
