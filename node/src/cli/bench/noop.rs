//! B1 (throughput) and B2 (round trip) with `noop` pieces, and the share of
//! pieces that ran in the submitting process itself (`local_fraction`): a
//! figure "over the mesh" means that share is 0.

use super::mesh::{memory_kib, Mesh};
use super::{quiet, round, BenchArgs};
use crate::client::{Client, JobReport};
use crate::tasks::noop;
use serde_json::{json, Value};
use std::time::Instant;

/// The most an idle `meshwork node` may hold resident (issue 10's target);
/// the JSON line says whether the worker kept to it before B1.
const IDLE_RSS_LIMIT_KIB: u64 = 15 * 1024;

/// Pieces of `report` that ran on `me` (this process), as a share.
fn local_share(report: &JobReport, me: &str) -> f64 {
    let local: u32 = report.pieces_per_peer.iter().filter(|(p, _)| p == me).map(|(_, n)| n).sum();
    local as f64 / report.pieces.max(1) as f64
}

/// One job of `n` pieces: seconds, and its report.
pub(super) async fn batched(c: &Client, n: u32) -> anyhow::Result<(f64, JobReport, bool)> {
    let t0 = Instant::now();
    let (count, report) = c.run(&noop::Noop, &noop::NoopInput { pieces: n }, &quiet(), |_, _| {}).await?;
    Ok((t0.elapsed().as_secs_f64(), report, count == u64::from(n)))
}

/// `n` one-piece jobs submitted at once: seconds, pieces run here, all correct.
async fn one_piece_jobs(c: &Client, n: u32) -> anyhow::Result<(f64, u32, bool)> {
    let me = c.peer_id().to_string();
    let (opts, one) = (quiet(), noop::NoopInput { pieces: 1 });
    let t0 = Instant::now();
    let jobs = (0..n).map(|_| c.run(&noop::Noop, &one, &opts, |_, _| {}));
    let results = futures::future::join_all(jobs).await;
    let secs = t0.elapsed().as_secs_f64();
    let mut local = 0;
    let mut correct = true;
    for r in results {
        let (count, report) = r?;
        correct &= count == 1;
        local += report.pieces_per_peer.iter().filter(|(p, _)| *p == me).count() as u32;
    }
    Ok((secs, local, correct))
}

/// Round trips of `n` sequential one-piece jobs, in ms, sorted; and how many ran here.
pub(super) async fn round_trips(c: &Client, n: u32) -> anyhow::Result<(Vec<f64>, usize)> {
    let me = c.peer_id().to_string();
    let mut lat = Vec::with_capacity(n as usize);
    let mut local = 0;
    for _ in 0..n {
        let s = Instant::now();
        let (_, r) = c.run(&noop::Noop, &noop::NoopInput { pieces: 1 }, &quiet(), |_, _| {}).await?;
        lat.push(s.elapsed().as_secs_f64() * 1e3);
        local += r.pieces_per_peer.iter().filter(|(p, _)| *p == me).count();
    }
    lat.sort_by(f64::total_cmp);
    Ok((lat, local))
}

/// Round trips of `n` sequential Status requests to `peer`, in ms, sorted:
/// the transport alone (no job, no execution), to tell where B2's time goes.
async fn status_trips(c: &Client, peer: libp2p::PeerId, n: u32) -> anyhow::Result<Vec<f64>> {
    let mut lat = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let s = Instant::now();
        c.status(peer).await?.map_err(anyhow::Error::msg)?;
        lat.push(s.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    Ok(lat)
}

/// The `q` percentile of sorted samples (nearest rank).
pub(super) fn pct(sorted: &[f64], q: f64) -> f64 {
    let rank = (q / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_fields(lat: &[f64], local: usize, total_s: f64) -> Value {
    json!({
        "lat_total_s": round(total_s), "lat_p50_ms": round(pct(lat, 50.0)), "lat_p99_ms": round(pct(lat, 99.0)),
        "lat_mean_ms": round(lat.iter().sum::<f64>() / lat.len().max(1) as f64),
        "lat_local_fraction": round(local as f64 / lat.len().max(1) as f64),
    })
}

/// B1 and B2 with this process helping (one slot here, one worker).
pub(super) async fn mixed(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let c = mesh.client();
    let me = c.peer_id().to_string();
    let worker = mesh.workers[0].pid();
    let idle = memory_kib(worker);
    let (total, report, correct) = batched(&c, a.n).await?;
    let b1_peak = memory_kib(worker).peak;
    let t1 = Instant::now();
    let (lat, local) = round_trips(&c, a.lat).await?;
    let mut out = json!({
        "system": "meshwork", "workload": "noop", "workers": 2, "n": a.n, "lat_n": a.lat,
        "correct": correct, "ok": correct,
        "total_s": round(total), "tasks_per_s": round(a.n as f64 / total),
        "local_fraction": round(local_share(&report, &me)),
        "batches": report.batches, "pieces_per_peer": report.pieces_per_peer,
        "worker_idle_rss_kib": idle.rss, "worker_idle_anon_kib": idle.anon, "worker_peak_rss_kib_b1": b1_peak,
        "idle_rss_limit_kib": IDLE_RSS_LIMIT_KIB, "idle_rss_ok": idle.rss.is_some_and(|k| k <= IDLE_RSS_LIMIT_KIB),
    });
    merge(&mut out, latency_fields(&lat, local, t1.elapsed().as_secs_f64()));
    Ok(out)
}

/// B1 and B2 with every piece on another process (this one runs nothing).
pub(super) async fn remote(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let c = mesh.client();
    let me = c.peer_id().to_string();
    let (total, report, batched_ok) = batched(&c, a.n).await?;
    let (jobs_s, jobs_local, jobs_ok) = one_piece_jobs(&c, a.n).await?;
    let t1 = Instant::now();
    let (lat, local) = round_trips(&c, a.lat).await?;
    let lat_s = t1.elapsed().as_secs_f64();
    let worker = c.peers().await?.into_iter().find(|p| p.is_live()).and_then(|p| p.peer_id.parse().ok());
    let status = match worker {
        Some(w) => status_trips(&c, w, a.lat).await?,
        None => vec![f64::NAN],
    };
    let correct = batched_ok && jobs_ok;
    let mut out = json!({
        "system": "meshwork", "workload": "noop-remote", "workers": mesh.workers.len(), "n": a.n, "lat_n": a.lat,
        "correct": correct, "ok": correct,
        "total_s": round(total), "tasks_per_s": round(a.n as f64 / total),
        "local_fraction": round(local_share(&report, &me)),
        "batches": report.batches, "pieces_per_peer": report.pieces_per_peer,
        "jobs_total_s": round(jobs_s), "jobs_per_s": round(a.n as f64 / jobs_s),
        "jobs_local_fraction": round(jobs_local as f64 / a.n as f64),
        "status_p50_ms": round(pct(&status, 50.0)), "status_p99_ms": round(pct(&status, 99.0)),
    });
    merge(&mut out, latency_fields(&lat, local, lat_s));
    Ok(out)
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
