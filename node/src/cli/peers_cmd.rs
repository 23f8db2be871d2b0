//! `meshwork peers`: join briefly, listen to the adverts, print the table.

use super::mesh::{join, reach};
use super::PeerOpts;
use crate::client::PeerInfo;
use clap::Args;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Adverts come every second; a table unchanged this long is complete.
const SETTLED: Duration = Duration::from_millis(1500);

/// Arguments of `meshwork peers`.
#[derive(Debug, Args)]
pub struct PeersArgs {
    #[command(flatten)]
    peer: PeerOpts,
    /// Longest time to listen for adverts, in seconds (it stops earlier
    /// once the table stops growing).
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = super::checks::secs)]
    wait: f64,
    /// Print JSON (an array of peers) instead of a table.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(args: PeersArgs) -> anyhow::Result<ExitCode> {
    let node = join(&args.peer, 0).await?;
    let client = node.client();
    let deadline = Instant::now() + Duration::from_secs_f64(args.wait);
    if !args.peer.net.join.is_empty() {
        if let Err(e) = reach(&client, &args.peer.net.join, deadline).await {
            node.shutdown().await;
            return Err(e);
        }
    }
    let (mut count, mut since) = (0, Instant::now());
    let peers = loop {
        let peers = mesh_nodes(client.peers().await?);
        if peers.len() != count {
            (count, since) = (peers.len(), Instant::now());
        }
        // Every member the joined node named is listed (or its list is
        // not in yet): on a busy machine the dials of a large mesh take
        // longer than the settling time between two peers appearing.
        let (members, awaited) = client.members_met().await?;
        let all_met = !awaited && members.iter().all(|m| peers.iter().any(|p| p.peer_id == m.to_string()));
        if Instant::now() >= deadline || (count > 0 && all_met && since.elapsed() >= SETTLED) {
            break peers;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    node.shutdown().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&peers)?);
    } else {
        print_table(&peers);
    }
    Ok(if peers.is_empty() { ExitCode::from(super::EXIT_MESH) } else { ExitCode::SUCCESS })
}

/// The rows of `meshwork peers` (and of `GET /api/peers`): the peers
/// that advertised, other than short-lived clients (`run`, `peers`: no
/// tasks) that have left.
pub(crate) fn mesh_nodes(peers: Vec<PeerInfo>) -> Vec<PeerInfo> {
    peers.into_iter().filter(|p| p.slots.is_some() && (p.connected || !p.tasks.is_empty())).collect()
}

fn print_table(peers: &[PeerInfo]) {
    if peers.is_empty() {
        eprintln!("no peers heard (is mDNS blocked? try --join <multiaddr>)");
        return;
    }
    println!(
        "{:<54} {:<34} {:>5} {:>7} {:>6} {:>8} {:>8}  {:<10} {:<7}  {:<24} STATUS",
        "PEER", "ADDRESS", "SLOTS", "RUNNING", "QUEUED", "ADVERT", "RTT", "REACH", "PATH", "VERSION"
    );
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    for p in peers {
        let addr = p.addresses.first().cloned().unwrap_or_else(|| "-".into());
        let age = p.advert_age_ms.map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
        let rtt = p.rtt_us.map_or("-".into(), |us| format!("{:.2}ms", us as f64 / 1000.0));
        let status = match &p.down {
            Some(d) => format!("down: {d}"),
            None if p.tasks.is_empty() => "up (client: runs no tasks)".to_string(),
            None => "up".to_string(),
        };
        let version = p.version.as_deref().map_or("-", |v| v.strip_prefix("meshwork/").unwrap_or(v));
        println!(
            "{:<54} {:<34} {:>5} {:>7} {:>6} {:>8} {:>8}  {:<10} {:<7}  {version:<24} {status}",
            p.peer_id,
            short_addr(&addr),
            opt(p.slots),
            opt(p.running),
            opt(p.queued),
            age,
            rtt,
            p.reachability.as_str(),
            p.path.map_or("-", |p| p.as_str()),
        );
    }
}

fn short_addr(addr: &str) -> String {
    addr.split("/p2p/").next().unwrap_or(addr).to_string()
}
