//! The mesh (issue: nodes find each other, gossip load, answer RPC), with
//! real libp2p nodes on loopback.

use meshwork::tasks::sleep;
use meshwork::PeerInfo;
use meshwork::{JobOptions, Node};
use meshwork_protocol::wire::{frame, to_cbor, Advert, Request, RequestFrame, PROTOCOL_VERSION};
use meshwork_tests::procs::{node, peers_json};
use meshwork_tests::rogue::Rogue;
use meshwork_tests::{local_config, local_mesh, tcp_addr, wait_connected, wait_peer, wait_until};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_find_each_other_through_one_join_address_and_answer_status() {
    // B and C only know A; C must find B through Kademlia and identify.
    let a = Node::start(local_config(1)).await.unwrap();
    let mut cfg = local_config(2);
    cfg.join = vec![tcp_addr(&a)];
    let b = Node::start(cfg).await.unwrap();
    let mut cfg = local_config(3);
    cfg.join = vec![tcp_addr(&a)];
    let c = Node::start(cfg).await.unwrap();
    let nodes = [a, b, c];
    let took = wait_connected(&nodes, T).await.unwrap();
    eprintln!("three nodes fully connected after {took:?}");
    let peers = nodes[2].client().peers().await.unwrap();
    let b_seen = peers.iter().find(|p| p.peer_id == nodes[1].peer_id().to_string()).expect("C knows B");
    assert_eq!(b_seen.slots, Some(2), "C sees B's advertised slots");
    assert!(b_seen.tasks.contains(&"primes".to_string()));
    let load = nodes[0].client().status(nodes[2].peer_id()).await.unwrap().expect("status answered");
    assert_eq!(load.slots, 3);
    for n in nodes {
        n.shutdown().await;
    }
}

/// Greetings make a newcomer known at once, however many peers greet it
/// together: libp2p-stream drops inbound streams that arrive while its
/// one-slot accept queue is full, so a burst of first streams lost most of
/// them (a newcomer was known to some peers only at their next advert).
/// A dropped stream is now opened again. Adverts here are 30 s apart, so
/// only the greetings can make the mesh within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_greeted_by_many_peers_at_once_is_known_to_all_without_waiting_for_gossip() {
    let config = |join: Option<&Node>| {
        let mut cfg = local_config(1);
        cfg.protocol.advert_interval = Duration::from_secs(30);
        cfg.join = join.map(tcp_addr).into_iter().collect();
        cfg
    };
    let mut nodes = vec![Node::start(config(None)).await.unwrap()];
    for _ in 1..8 {
        let cfg = config(nodes.first());
        nodes.push(Node::start(cfg).await.unwrap());
    }
    let formed = wait_connected(&nodes, Duration::from_secs(10)).await.unwrap();
    let cfg = config(nodes.first());
    nodes.push(Node::start(cfg).await.unwrap());
    let joined = wait_connected(&nodes, Duration::from_secs(5)).await.unwrap();
    eprintln!("8 nodes knew each other after {formed:?}; a 9th was known to all {joined:?} after it started");
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_goes_quiet_is_judged_down_once_it_owes_work_and_comes_back() {
    let (stopped, addr) = node(&["--slots", "1"]);
    let mut cfg = local_config(0);
    cfg.join = vec![addr.parse().unwrap()];
    let watcher = Node::start(cfg).await.unwrap();
    let client = watcher.client();
    let peer = addr.rsplit('/').next().unwrap().to_string();
    let down = |p: &meshwork::PeerInfo| p.down.is_some();
    wait_peer(&client, &peer, "the node's advert", T, PeerInfo::is_live).await.unwrap();
    // SIGSTOP: the connection stays open, the adverts stop: quiet, not dead.
    stopped.signal(libc::SIGSTOP);
    let took = wait_peer(&client, &peer, "the stopped node quiet", T, |p| p.quiet).await.unwrap();
    eprintln!("SIGSTOP → quiet after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let row = client.peers().await.unwrap().into_iter().find(|p| p.peer_id == peer).unwrap();
    assert!(row.down.is_none() && row.connected, "quiet is not down: {row:?}");
    // Work for it: the watcher probes it and, unanswered, judges it down.
    let job = tokio::spawn({
        let c = client.clone();
        async move {
            let opts = JobOptions { stall_timeout: Duration::from_secs(60), ..JobOptions::default() };
            c.run(&sleep::Sleep, &sleep::SleepInput { ms: 10, pieces: 2 }, &opts, |_, _| {}).await
        }
    });
    let judged = wait_peer(&client, &peer, "the stopped node judged down", T, down).await.unwrap();
    eprintln!("SIGSTOP + work → judged down after {judged:?} more");
    assert!(judged < Duration::from_secs(6), "{judged:?}");
    // SIGCONT: it answers again on the same connection, live, and runs the job.
    stopped.signal(libc::SIGCONT);
    let back = wait_peer(&client, &peer, "the node live again", T, PeerInfo::is_live).await.unwrap();
    eprintln!("SIGCONT → live again after {back:?}");
    let (total, report) = job.await.unwrap().unwrap();
    assert_eq!(total, 20);
    assert_eq!(report.pieces_per_peer.len(), 1, "{report:?}");
    // SIGKILL: the connection closes at once.
    stopped.signal(libc::SIGKILL);
    let killed = wait_peer(&client, &peer, "the killed node marked down", T, down).await.unwrap();
    eprintln!("SIGKILL → marked down after {killed:?}");
    drop(stopped);
    watcher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_rpc_messages_are_refused_and_the_node_keeps_serving() {
    let mut nodes = local_mesh(2, 1).await.unwrap();
    wait_connected(&nodes, T).await.unwrap();
    let target = nodes.remove(0);
    let rogue = Rogue::start().await.unwrap();
    rogue.dial(tcp_addr(&target)).await;
    let rogue_id = rogue.peer_id.to_string();
    wait_peer(&target.client(), &rogue_id, "the rogue connected", T, |p| p.connected).await.unwrap();
    let id = target.peer_id();
    let garbage = rogue.send_raw(id, vec![0, 0, 0, 4, 0xff, 0xfe, 0xfd, 0xfc]).await;
    assert!(garbage.is_err(), "garbage got an answer: {garbage:?}");
    let oversized = rogue.send_raw(id, vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await;
    assert!(oversized.is_err(), "oversized got an answer: {oversized:?}");
    let truncated = rogue.send_raw(id, vec![0, 0, 0, 100, 0xa1]).await;
    assert!(truncated.is_err());
    let client = target.client();
    wait_until("three refused messages counted", T, || {
        let c = client.clone();
        async move { c.stats().await.unwrap().malformed_requests >= 3 }
    })
    .await
    .unwrap();
    // A well-formed Status from the rogue still gets an answer, and so does the other node.
    let status_frame = frame::encode(&to_cbor(&RequestFrame { id: 7, request: Request::Status }), 1 << 20).unwrap();
    let status = rogue.send_raw(id, status_frame).await;
    assert!(status.is_ok(), "{status:?}");
    let load = nodes[0].client().status(id).await.unwrap().expect("still serving");
    assert_eq!(load.slots, 1);
    target.shutdown().await;
    nodes.remove(0).shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_adverts_are_dropped_counted_and_never_trusted() {
    let target = Node::start(local_config(1)).await.unwrap();
    let absurd = Advert {
        version: PROTOCOL_VERSION,
        seq: 1,
        slots: 1_000_000,
        running: 0,
        queued: 0,
        capacity: u32::MAX,
        tasks: vec!["primes".into()],
        interval_ms: 1000,
        mesh: 2,
        ..Advert::default()
    };
    // One rogue per payload: after its first invalid advert a peer's gossip
    // score drops below the graylist threshold and nothing more of it is read.
    let client = target.client();
    let mut rogues = Vec::new();
    for (i, payload) in [vec![0xff, 0x00, 0x42], to_cbor(&absurd)].into_iter().enumerate() {
        let rogue = Rogue::start().await.unwrap();
        rogue.dial(tcp_addr(&target)).await;
        wait_until("the rogue publishing", T, || {
            let (p, r) = (payload.clone(), &rogue);
            async move { r.publish(p).await.is_ok() }
        })
        .await
        .unwrap();
        wait_until("the invalid advert counted", T, || {
            let c = client.clone();
            async move { c.stats().await.unwrap().invalid_adverts > i as u64 }
        })
        .await
        .unwrap();
        rogues.push(rogue);
    }
    let rogue = &rogues[1];
    let peers = client.peers().await.unwrap();
    let rogue_row = peers.iter().find(|p| p.peer_id == rogue.peer_id.to_string());
    assert!(rogue_row.is_none_or(|r| r.slots.is_none()), "the absurd advert was not trusted: {rogue_row:?}");
    target.shutdown().await;
}

#[test]
fn node_and_peers_commands_find_each_other_as_processes() {
    let (n, addr) = node(&["--slots", "3"]);
    let peer = addr.rsplit('/').next().unwrap().to_string();
    let rss = n.rss_kib();
    eprintln!("idle node RSS: {rss:?} KiB");
    let (code, out) = peers_json(&addr, 20, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    let table: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = table.as_array().unwrap().iter().find(|r| r["peer_id"] == peer).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(row["slots"], 3);
    assert!(row["addresses"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("127.0.0.1")));
    drop(n);
}
