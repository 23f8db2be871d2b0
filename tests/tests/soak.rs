//! A long-lived node after many short-lived clients (issue 11, item 4):
//! every `meshwork run` is a peer that connects, submits and leaves. 200 of
//! them, as real processes, against one node must leave nothing behind: no
//! open connection, no peer being dialled again, no row in its peer table,
//! and no dial at all once they are gone.

use meshwork::NodeStats;
use meshwork_tests::procs::Proc;
use meshwork_tests::{local_config, tcp_addr, wait_until};
use std::time::Duration;

/// Short-lived runs in all, started `WAVE` at a time.
const RUNS: u32 = 200;
const WAVE: u32 = 10;
/// One run, from start to exit, on a busy machine.
const T: Duration = Duration::from_secs(120);
/// Long enough for the redial schedule's first three dials (1 s, 2 s, 4 s
/// after a loss) to happen if anything were still dialled.
const QUIET: Duration = Duration::from_secs(8);

/// The primes below `to`, counted the slow way (the reference for each run).
fn primes_below(to: u64) -> u64 {
    (2..to).filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_short_lived_runs_leave_no_connection_row_or_dial_behind() {
    let node = meshwork::Node::start(local_config(1)).await.unwrap();
    let addr = format!("{}/p2p/{}", tcp_addr(&node), node.peer_id());
    let c = node.client();
    let before: NodeStats = c.stats().await.unwrap();
    assert_eq!((before.connections, c.peers().await.unwrap().len()), (0, 0), "a node alone");

    for wave in 0..RUNS / WAVE {
        let runs: Vec<_> = (0..WAVE)
            .map(|i| {
                // A different range per run: each answer proves its own run.
                let to = (1_000 + 37 * (wave * WAVE + i)).to_string();
                let args = ["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", &addr, "--slots", "0"];
                let proc = Proc::start(&[&args[..], &["primes", "--to", &to, "--pieces", "2"]].concat());
                (to, proc)
            })
            .collect();
        tokio::task::spawn_blocking(move || {
            for (to, mut proc) in runs {
                let (code, out) = proc.output(T).unwrap();
                let want = format!("{} primes in [0, {to})", primes_below(to.parse().unwrap()));
                assert!(code == 0 && out.contains(&want), "run up to {to}: exit {code}, wanted {want:?}:\n{out}");
            }
        })
        .await
        .unwrap();
    }

    let gone = wait_until("every client's connection to close and its row to go", Duration::from_secs(30), || {
        let c = c.clone();
        async move {
            let stats = c.stats().await.unwrap();
            stats.connections == 0 && stats.redialling == 0 && c.peers().await.unwrap().is_empty()
        }
    })
    .await;
    if let Err(e) = gone {
        let (stats, peers) = (c.stats().await.unwrap(), c.peers().await.unwrap());
        panic!("{e}: {stats:?}, {} rows, first {:?}", peers.len(), peers.first());
    }
    let dials = c.stats().await.unwrap().dials;
    let redialled = wait_until("a dial after the clients left", QUIET, || {
        let c = c.clone();
        async move { c.stats().await.unwrap().dials > dials }
    })
    .await;
    assert!(redialled.is_err(), "the node dialled again after its clients had gone ({dials} dials before)");
    node.shutdown().await;
}
