//! Private meshes and hostile peers: who may join, who may submit, limits,
//! and a node that keeps serving legitimate work through all of it.

use libp2p::pnet::PreSharedKey;
use libp2p::Multiaddr;
use meshwork::tasks::{builtin_registry, primes};
use meshwork::{JobOptions, Node, NodeConfig, RunError};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use meshwork_protocol::wire::{Advert, Outcome, PieceResult, Request, Response, Results, PROTOCOL_VERSION};
use meshwork_protocol::{JobError, JobEvent};
use meshwork_tests::rogue::Rogue;
use meshwork_tests::{local_config, tcp_addr, wait_connected, wait_peer, wait_until};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn keyed(psk: Option<PreSharedKey>, join: Option<Multiaddr>) -> NodeConfig {
    let mut cfg = local_config(1);
    cfg.transport.psk = psk;
    cfg.transport.quic = true; // asked for, but a key turns it off
    if psk.is_none() {
        cfg.listen.push("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap());
    }
    cfg.join = join.into_iter().collect();
    cfg
}

async fn sees(node: &Node, other: &Node) -> bool {
    let id = other.peer_id().to_string();
    node.client().peers().await.unwrap().iter().any(|p| p.peer_id == id && p.is_live())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_nodes_with_the_key_join_a_private_mesh_over_tcp_or_quic() {
    let key = PreSharedKey::new([7; 32]);
    let a = Node::start(keyed(Some(key), None)).await.unwrap();
    assert!(
        a.listen_addrs().iter().all(|m| !m.to_string().contains("quic")),
        "a keyed node listens on no QUIC address: {:?}",
        a.listen_addrs()
    );
    let tcp = tcp_addr(&a);
    let port =
        tcp.iter().find_map(|p| if let libp2p::multiaddr::Protocol::Tcp(p) = p { Some(p) } else { None }).unwrap();
    let quic: Multiaddr = format!("/ip4/127.0.0.1/udp/{port}/quic-v1/p2p/{}", a.peer_id()).parse().unwrap();
    // Same key: joins and works.
    let friend = Node::start(keyed(Some(key), Some(tcp.clone()))).await.unwrap();
    wait_connected(&[a, friend], T).await.map(|_| ()).unwrap_or_else(|e| panic!("{e}"));
    // No key (TCP and QUIC), wrong key (TCP): never connected.
    let a = Node::start(keyed(Some(key), None)).await.unwrap();
    let tcp = tcp_addr(&a);
    let mut no_key = keyed(None, Some(tcp.clone()));
    no_key.join.push(quic);
    let no_key = Node::start(no_key).await.unwrap();
    let wrong = Node::start(keyed(Some(PreSharedKey::new([8; 32])), Some(tcp))).await.unwrap();
    for outsider in [&no_key, &wrong] {
        let joined = wait_until("an outsider joining", Duration::from_secs(4), || async {
            sees(outsider, &a).await || sees(&a, outsider).await
        })
        .await;
        assert!(joined.is_err(), "an outsider connected to the private mesh");
    }
    for n in [a, no_key, wrong] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitter_not_allowed_is_refused_and_its_pieces_go_elsewhere() {
    let submitter = Node::start(local_config(1)).await.unwrap();
    let mut cfg = local_config(1);
    cfg.accept_from = Some(vec![libp2p::PeerId::random()]);
    cfg.join = vec![tcp_addr(&submitter)];
    let picky = Node::start(cfg).await.unwrap();
    let nodes = [submitter, picky];
    wait_connected(&nodes, T).await.unwrap();
    let picky_id = nodes[1].peer_id().to_string();
    let names = nodes[0].client().names().clone();
    let mut refused = Vec::new();
    let input = primes::PrimesInput { from: 0, to: 200_000, pieces: 16 };
    let (count, report) = nodes[0]
        .client()
        .run(&primes::Primes, &input, &JobOptions::default(), |_, e| {
            if let JobEvent::Refused { peer, reason, .. } = e {
                refused.push((names.name(*peer), reason.to_string()));
            }
        })
        .await
        .unwrap();
    assert_eq!(count, 17_984);
    assert!(report.pieces_per_peer.iter().all(|(p, _)| *p != picky_id), "{report:?}");
    assert!(report.rejections >= 1);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, picky_id);
    assert!(refused[0].1.contains("--accept-from"), "{refused:?}");
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_fail_clearly_and_the_job_completes_elsewhere() {
    let submitter = Node::start(local_config(1)).await.unwrap();
    let mut cfg = local_config(1);
    cfg.behaviour.max_message = 4096;
    cfg.join = vec![tcp_addr(&submitter)];
    let small = Node::start(cfg).await.unwrap();
    let nodes = [submitter, small];
    wait_connected(&nodes, T).await.unwrap();
    // Pieces of 3 KiB: a batch of two is over the small node's 4 KiB limit.
    let text = "lorem ipsum dolor sit amet ".repeat(2000);
    let dir = std::env::temp_dir().join(format!("mw-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("t.txt");
    std::fs::write(&file, &text).unwrap();
    let input = meshwork::tasks::wordcount::WordcountInput { file, top: 1, pieces: 16 };
    let (summary, _) = nodes[0]
        .client()
        .run(&meshwork::tasks::wordcount::Wordcount, &input, &JobOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(summary.total_words, 10_000);
    let refused = nodes[1].client().stats().await.unwrap().malformed_requests;
    eprintln!("the small node refused {refused} oversized batches");
    // The submitter's own limit: a piece larger than it can ever send is refused up front.
    let mut tiny = local_config(1);
    tiny.behaviour.max_message = 1024;
    tiny.protocol.max_batch_bytes = 512;
    let tiny = Node::start(tiny).await.unwrap();
    let err = tiny
        .client()
        .run(&meshwork::tasks::wordcount::Wordcount, &input, &JobOptions::default(), |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Submit(_)), "{err}");
    assert!(err.to_string().contains("message limit"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
    for n in nodes.into_iter().chain([tiny]) {
        n.shutdown().await;
    }
}

/// A task that misbehaves on purpose.
struct Faulty;

#[derive(Serialize, Deserialize)]
enum Kind {
    Fine(u64),
    Panic,
    /// Spins until its deadline, ignoring the cancellation flag.
    Spin,
}

impl Task for Faulty {
    const NAME: &'static str = "faulty";
    type Input = Vec<u8>;
    type Piece = Kind;
    type Output = u64;
    type Result = u64;
    fn split(&self, kinds: &Vec<u8>) -> Result<Vec<Kind>, TaskError> {
        Ok(kinds
            .iter()
            .map(|k| match k {
                b'p' => Kind::Panic,
                b's' => Kind::Spin,
                _ => Kind::Fine(1),
            })
            .collect())
    }
    fn run(&self, piece: Kind, _: &CancelFlag) -> Result<u64, TaskError> {
        match piece {
            Kind::Fine(n) => Ok(n),
            Kind::Panic => panic!("boom"),
            Kind::Spin => {
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_secs(4) {
                    std::hint::spin_loop();
                }
                Ok(0)
            }
        }
    }
    fn merge(&self, _: &Vec<u8>, outputs: Vec<u64>) -> Result<u64, TaskError> {
        Ok(outputs.iter().sum())
    }
}

fn faulty_config(slots: u32) -> NodeConfig {
    let mut cfg = local_config(slots);
    let mut registry = builtin_registry();
    registry.register(Faulty);
    cfg.registry = registry;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_runaway_pieces_are_contained_while_legit_work_goes_on() {
    let victim = Node::start(faulty_config(2)).await.unwrap();
    let mut cfg = faulty_config(0);
    cfg.join = vec![tcp_addr(&victim)];
    let attacker = Node::start(cfg).await.unwrap();
    let mut cfg = local_config(0);
    cfg.join = vec![tcp_addr(&victim)];
    let honest = Node::start(cfg).await.unwrap();
    let nodes = [victim, attacker, honest];
    wait_connected(&nodes, T).await.unwrap();
    let attack = {
        let c = nodes[1].client();
        tokio::spawn(async move {
            // The panic must fail the piece by itself, whatever the deadline:
            // a generous one, so a loaded machine cannot make it a timeout.
            let once = JobOptions { max_attempts: 1, ..JobOptions::default() };
            let panics = c.run(&Faulty, &b"ffpf".to_vec(), &once, |_, _| {}).await;
            let deadline = JobOptions { piece_timeout: Duration::from_secs(1), ..once };
            let spins = c.run(&Faulty, &b"sf".to_vec(), &deadline, |_, _| {}).await;
            (panics, spins)
        })
    };
    let input = primes::PrimesInput { from: 0, to: 100_000, pieces: 8 };
    let (count, _) = nodes[2].client().run(&primes::Primes, &input, &JobOptions::default(), |_, _| {}).await.unwrap();
    assert_eq!(count, 9592, "the honest job is right while the attack runs");
    let (panics, spins) = attack.await.unwrap();
    let err = panics.unwrap_err();
    assert!(matches!(&err, RunError::Job { error: JobError::PieceFailed(f), .. } if f.piece == 2), "{err}");
    assert!(err.to_string().contains("task panicked: boom"), "{err}");
    let err = spins.unwrap_err();
    assert!(err.to_string().contains("deadline"), "{err}");
    // The runaway piece's slot was freed, and the victim still answers and
    // works. The spin goes on for 4 s from its start, but its slot is given
    // back once the submitter's Cancel (sent at the 1 s deadline) arrives:
    // waited for, within a bound that ends well before the spin does.
    let (honest, victim) = (nodes[2].client(), nodes[0].peer_id());
    wait_until("the runaway piece's slot freed before its spin ends", Duration::from_secs(2), || async {
        honest.status(victim).await.ok().and_then(Result::ok).is_some_and(|load| load.running == 0)
    })
    .await
    .unwrap();
    let (count, _) = nodes[2].client().run(&primes::Primes, &input, &JobOptions::default(), |_, _| {}).await.unwrap();
    assert_eq!(count, 9592);
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_and_duplicate_results_from_a_lying_worker_are_ignored() {
    let submitter = Node::start(local_config(1)).await.unwrap();
    let liar = Rogue::start().await.unwrap();
    liar.serve(Box::new(|req| {
        let Request::Run(run) = req else { return Some(Response::Status(Default::default())) };
        let given: Vec<u32> = run.pieces.iter().map(|p| p.piece).collect();
        // A piece of the job it was not given, and one that is not in the job at all.
        let stranger = (0..).find(|i| !given.contains(i)).unwrap_or(0);
        let lie = |piece| PieceResult { piece, outcome: Outcome::Done { output: vec![0], conclusive: true } };
        let mut pieces = vec![lie(stranger), lie(1_000_000)];
        for &p in &given {
            // Its own piece: failed, then claimed done as well (a duplicate).
            pieces.push(PieceResult { piece: p, outcome: Outcome::Failed("lying".into()) });
            pieces.push(PieceResult { piece: p, outcome: Outcome::Done { output: vec![0], conclusive: false } });
        }
        Some(Response::Results(Results { load: Default::default(), exec_us: 1, pieces }))
    }))
    .await;
    liar.dial(tcp_addr(&submitter)).await;
    let advert = Advert {
        version: PROTOCOL_VERSION,
        seq: 0,
        slots: 4,
        running: 0,
        queued: 0,
        capacity: 64,
        tasks: vec!["primes".into()],
        ..Advert::default()
    };
    liar.advertise(advert).await;
    let c = submitter.client();
    let liar_id = liar.peer_id.to_string();
    wait_peer(&c, &liar_id, "the liar advertising", T, meshwork::PeerInfo::is_live).await.unwrap();
    let input = primes::PrimesInput { from: 0, to: 100_000, pieces: 16 };
    let opts = JobOptions { max_attempts: 3, ..JobOptions::default() };
    let (count, report) = c.run(&primes::Primes, &input, &opts, |_, _| {}).await.unwrap();
    assert_eq!(count, 9592, "lies changed nothing");
    assert!(report.unsolicited >= 2, "{report:?}");
    assert!(report.retries >= 1, "{report:?}");
    assert!(report.pieces_per_peer.iter().all(|(p, _)| *p != liar_id), "{report:?}");
    submitter.shutdown().await;
}
