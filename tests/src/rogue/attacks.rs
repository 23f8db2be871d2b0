//! The floods of issue 19, as a hostile peer sends them: RPC frames that
//! never finish, identify pushes full of made-up addresses, and fresh
//! identities that connect and leave. (The Kademlia stub is
//! [`Rogue::kad_stub`].) Made-up addresses are all on loopback
//! (`127.x.y.z`, port 9, where nothing listens): a node that dials them
//! gets a refusal at once and no packet leaves the machine.

use super::Rogue;
use crate::wait_until;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use meshwork_protocol::wire::{Request, Response, KAD_PROTOCOL, RPC_PROTOCOL};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// identify's push protocol: a peer tells us its addresses changed.
const IDENTIFY_PUSH: &str = "/ipfs/id/push/1.0.0";
/// Largest identify message libp2p-identify reads.
const MAX_IDENTIFY: usize = 4096;

/// `n` distinct made-up addresses, `/ip4/127.a.b.c/tcp/9`.
pub fn fake_addrs(n: usize) -> Vec<Multiaddr> {
    (0..n)
        .map(|i| {
            let (a, b, c) = (1 + (i >> 16) % 254, (i >> 8) & 0xff, i & 0xff);
            format!("/ip4/127.{a}.{b}.{c}/tcp/9").parse().expect("a valid address")
        })
        .collect()
}

/// TCP listeners on loopback that count the connections made to them and
/// close each at once: addresses a node can be lured into dialling, whose
/// dials are counted.
pub struct Knocks {
    /// Where they listen.
    pub addrs: Vec<Multiaddr>,
    /// Connections made to each.
    counts: Arc<Vec<AtomicUsize>>,
    _tasks: JoinSet<()>,
}

impl Knocks {
    /// `n` listeners.
    pub async fn open(n: usize) -> anyhow::Result<Knocks> {
        let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let (mut addrs, mut tasks) = (Vec::new(), JoinSet::new());
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addrs.push(format!("/ip4/127.0.0.1/tcp/{}", listener.local_addr()?.port()).parse()?);
            let counts = counts.clone();
            tasks.spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                    drop(socket);
                }
            });
        }
        Ok(Knocks { addrs, counts, _tasks: tasks })
    }

    /// Connections made to them so far, in all.
    pub fn count(&self) -> usize {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// How many of them were connected to so far.
    pub fn knocked(&self) -> usize {
        self.counts.iter().filter(|c| c.load(Ordering::Relaxed) > 0).count()
    }
}

/// RPC streams that declared frames they never finish, held open for as
/// long as this lives.
pub struct Fill {
    streams: usize,
    progress: Arc<FillProgress>,
    _tasks: JoinSet<()>,
}

#[derive(Default)]
struct FillProgress {
    /// Streams on which every byte was written (the node read them).
    written: AtomicUsize,
    /// Streams the node closed before taking every byte.
    refused: AtomicUsize,
    /// Bytes the node took, over all streams.
    bytes: AtomicU64,
}

impl Fill {
    /// Streams written in full and streams refused, so far.
    pub fn settled(&self) -> (usize, usize) {
        (self.progress.written.load(Ordering::Relaxed), self.progress.refused.load(Ordering::Relaxed))
    }

    /// True once every stream is either written in full or refused.
    pub fn done(&self) -> bool {
        let (written, refused) = self.settled();
        written + refused == self.streams
    }

    /// Bytes the node took so far.
    pub fn bytes(&self) -> u64 {
        self.progress.bytes.load(Ordering::Relaxed)
    }
}

impl Rogue {
    /// Opens `streams` RPC streams to `peer`; on each, declares a frame of
    /// `declared` bytes and writes `sent` of them (in 64 KiB writes, as
    /// fast as the node takes them), then holds the stream open. The
    /// streams stay until the returned [`Fill`] (or the rogue) is dropped.
    pub async fn slow_fill(&self, peer: PeerId, streams: usize, declared: u32, sent: usize) -> anyhow::Result<Fill> {
        let progress = Arc::new(FillProgress::default());
        let mut tasks = JoinSet::new();
        for _ in 0..streams {
            let mut control = self.control.clone();
            let stream = control.open_stream(peer, StreamProtocol::new(RPC_PROTOCOL)).await?;
            let progress = progress.clone();
            tasks.spawn(async move {
                let (_r, mut w) = stream.split();
                let chunk = vec![0u8; 64 * 1024];
                let mut result = w.write_all(&declared.to_be_bytes()).await;
                let mut left = sent;
                while result.is_ok() && left > 0 {
                    let n = left.min(chunk.len());
                    result = w.write_all(&chunk[..n]).await.and(w.flush().await);
                    if result.is_ok() {
                        progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    left -= n;
                }
                let counter = if result.is_ok() { &progress.written } else { &progress.refused };
                counter.fetch_add(1, Ordering::Relaxed);
                // Hold the stream (both halves) until the task is aborted.
                futures::future::pending::<()>().await;
            });
        }
        Ok(Fill { streams, progress, _tasks: tasks })
    }

    /// Pushes `addrs` to `peer` as this rogue's listen addresses, in as
    /// many identify pushes as they take (each up to identify's 4 KiB),
    /// one after the other, each read by the node before the next goes.
    /// Each says the rogue serves meshwork's DHT, so that a node that
    /// believes it hands the addresses to Kademlia. Returns the number of pushes.
    pub async fn push_addrs(&self, peer: PeerId, addrs: &[Multiaddr]) -> anyhow::Result<usize> {
        let mut pushes = 0;
        let mut rest = addrs;
        while !rest.is_empty() {
            let mut msg = Vec::new();
            field(&mut msg, 5, meshwork::net::behaviour::IDENTIFY_PROTOCOL.as_bytes());
            for protocol in [KAD_PROTOCOL, RPC_PROTOCOL] {
                field(&mut msg, 3, protocol.as_bytes());
            }
            let mut taken = 0;
            for a in rest {
                if msg.len() + a.as_ref().len() + 4 > MAX_IDENTIFY {
                    break;
                }
                field(&mut msg, 2, a.as_ref());
                taken += 1;
            }
            rest = &rest[taken..];
            let mut framed = Vec::new();
            varint(&mut framed, msg.len());
            framed.extend_from_slice(&msg);
            let mut control = self.control.clone();
            let mut stream = control.open_stream(peer, StreamProtocol::new(IDENTIFY_PUSH)).await?;
            stream.write_all(&framed).await?;
            stream.close().await?;
            // The node drops the stream once it has read the push.
            let mut sink = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink)).await;
            anyhow::ensure!(read.is_ok(), "push {pushes} not read within 10 s");
            pushes += 1;
        }
        Ok(pushes)
    }
}

/// A length-delimited protobuf field (`tag`, wire type 2).
fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag << 3 | 2);
    varint(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `n` fresh identities connect to the node `peer` at `addr`, `at_once`
/// at a time; each is answered a Status request (so the node has set up
/// everything a peer costs it) and then leaves.
pub async fn churn(addr: &Multiaddr, peer: PeerId, n: usize, at_once: usize) -> anyhow::Result<()> {
    let mut left = n;
    while left > 0 {
        let batch = left.min(at_once);
        left -= batch;
        let visits = (0..batch).map(|_| async {
            // A node greeted by many peers at once drops some of their
            // first streams unread (see meshwork's `net::rpc`), and now and
            // then a connection among many closes under a visitor: such a
            // visit is made again, by another fresh identity.
            let mut failed = Vec::new();
            while failed.len() < 3 {
                match visit(addr, peer).await {
                    Ok(()) => return Ok(()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            Err(anyhow::anyhow!("a fresh identity could not visit: {failed:?}"))
        });
        for visit in futures::future::join_all(visits).await {
            visit?;
        }
    }
    Ok(())
}

/// A fresh identity connects, is answered a Status request, and leaves.
async fn visit(addr: &Multiaddr, peer: PeerId) -> anyhow::Result<()> {
    let rogue = Rogue::start().await?;
    rogue.dial(addr.clone()).await;
    wait_until("a fresh identity connected", Duration::from_secs(20), || rogue.is_connected(peer)).await?;
    match rogue.request(peer, Request::Status, Duration::from_secs(20)).await {
        Ok(Response::Status(_)) => Ok(()),
        other => Err(anyhow::anyhow!("its Status: {other:?}")),
    }
}
