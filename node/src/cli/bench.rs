//! `meshwork bench <workload>`: the workloads of the peer baselines
//! (`shared/bench/peers`: Celery, Dask, Ray) run on meshwork, each printing
//! one JSON line in the same shape so `summarize.py` reads both.
//!
//! The mesh is two nodes on this machine, one slot each (2 workers in all,
//! like the peers' two worker processes): this process, which also submits,
//! and one `meshwork node` process. Loopback only, mDNS off.
//!
//! - `noop` (B1, B2): one job of `--n` trivial pieces (throughput), then
//!   `--lat` sequential single-piece jobs (round trip).
//! - `primes` (B3): primes below `--limit` in `--pieces` pieces; `single`
//!   runs the same kernel in this process, without a mesh.
//! - `fault` (B4): `primes` once, then again with the node process killed
//!   (SIGKILL) at `--kill-frac` of the first run's time and restarted at
//!   once with the same identity, as a service manager would (the peers'
//!   supervisors restart their killed workers too).

use super::UsageError;
use crate::client::{Client, JobOptions};
use crate::node::{Node, NodeConfig};
use crate::tasks::{builtin_registry, noop, primes, run_locally};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use libp2p::identity::Keypair;
use meshwork_protocol::JobEvent;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// π(20,000,000), the peers' check.
const PRIMES_BELOW_20M: u64 = 1_270_607;

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Workload {
    /// B1 throughput and B2 round trip.
    Noop,
    /// B3 on the 2-node mesh.
    Primes,
    /// B3's reference: the kernel in one process, no mesh.
    Single,
    /// B4: B3 with a worker killed mid-job.
    Fault,
}

/// Arguments of `meshwork bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    workload: Workload,
    /// Pieces of the throughput job (B1).
    #[arg(long, default_value_t = 10_000)]
    n: u32,
    /// Sequential single-piece jobs (B2).
    #[arg(long, default_value_t = 1_000)]
    lat: u32,
    /// Count primes below this (B3, B4).
    #[arg(long, default_value_t = 20_000_000)]
    limit: u64,
    /// Pieces of the primes job.
    #[arg(long, default_value_t = 64)]
    pieces: u32,
    /// When to kill the worker, as a fraction of the no-fault time (B4).
    #[arg(long, default_value_t = 0.4)]
    kill_frac: f64,
}

pub(super) async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.n == 0 || args.lat == 0 || args.pieces == 0 || !(0.0..1.0).contains(&args.kill_frac) {
        bail!(UsageError("--n, --lat and --pieces must be positive and --kill-frac in [0, 1)".into()));
    }
    let mut out = match args.workload {
        Workload::Single => single(&args),
        w => {
            let started = Instant::now();
            let mut mesh = Mesh::start().await?;
            let startup = started.elapsed().as_secs_f64();
            let mut out = match w {
                Workload::Noop => noop_workload(&mesh, &args).await,
                Workload::Primes => primes_workload(&mesh, &args).await,
                _ => fault_workload(&mut mesh, &args).await,
            }?;
            out["startup_s"] = round(startup);
            mesh.stop().await;
            out
        }
    };
    out["version"] = json!(format!("meshwork {}", env!("CARGO_PKG_VERSION")));
    let ok = out["ok"].as_bool().unwrap_or(false);
    println!("{out}");
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_FAILED) })
}

fn round(x: f64) -> Value {
    json!((x * 1e6).round() / 1e6)
}

/// This process's node plus one `meshwork node` process.
struct Mesh {
    node: Node,
    worker: Child,
    identity: PathBuf,
    join: String,
}

impl Mesh {
    async fn start() -> anyhow::Result<Mesh> {
        let identity = std::env::temp_dir().join(format!("meshwork-bench-{}.key", std::process::id()));
        let mut cfg = NodeConfig::new(Keypair::generate_ed25519(), builtin_registry());
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")];
        cfg.behaviour.mdns = false;
        cfg.transport.quic = false;
        cfg.protocol = cfg.protocol.with_slots(1);
        let node = Node::start(cfg).await?;
        let join = node.listen_addrs()[0].to_string();
        let worker = spawn_worker(&identity, &join).await?;
        let mesh = Mesh { node, worker, identity, join };
        mesh.wait_for_worker().await?;
        Ok(mesh)
    }

    fn client(&self) -> Client {
        self.node.client()
    }

    async fn wait_for_worker(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.client().peers().await?.iter().any(|p| p.is_live()) {
            if Instant::now() > deadline {
                bail!("the worker node did not join within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    fn worker_pid(&self) -> u32 {
        self.worker.id().unwrap_or(0)
    }

    /// SIGKILL the worker process and start it again with the same identity.
    async fn kill_and_restart(&mut self) -> anyhow::Result<u32> {
        let pid = self.worker_pid();
        self.worker.kill().await.context("killing the worker")?;
        self.worker = spawn_worker(&self.identity, &self.join).await?;
        Ok(pid)
    }

    async fn stop(mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.worker_pid() as i32, libc::SIGTERM) };
        if tokio::time::timeout(Duration::from_secs(5), self.worker.wait()).await.is_err() {
            let _ = self.worker.kill().await;
        }
        self.node.shutdown().await;
        let _ = std::fs::remove_file(&self.identity);
    }
}

/// `meshwork node --slots 1` on loopback, joined to `join`; returns once it listens.
async fn spawn_worker(identity: &Path, join: &str) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding the meshwork binary")?;
    let mut child = Command::new(exe)
        .args(["node", "--no-mdns", "--slots", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", join, "--identity"])
        .arg(identity)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the worker node")?;
    let mut lines = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
    while let Some(line) = lines.next_line().await? {
        if line.starts_with("listening ") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(child);
        }
    }
    bail!("the worker node exited before listening")
}

/// Resident and peak memory of a process, in KiB (from /proc).
fn memory_kib(pid: u32) -> (Option<u64>, Option<u64>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn quiet() -> JobOptions {
    JobOptions::default()
}

async fn noop_workload(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let c = mesh.client();
    let (idle_rss, _) = memory_kib(mesh.worker_pid());
    let t0 = Instant::now();
    let (n, report) = c.run(&noop::Noop, &noop::NoopInput { pieces: a.n }, &quiet(), |_, _| {}).await?;
    let total = t0.elapsed().as_secs_f64();
    let (_, b1_peak) = memory_kib(mesh.worker_pid());
    let mut lat = Vec::with_capacity(a.lat as usize);
    let mut local = 0;
    let me = c.peer_id().to_string();
    let t1 = Instant::now();
    for _ in 0..a.lat {
        let s = Instant::now();
        let (_, r) = c.run(&noop::Noop, &noop::NoopInput { pieces: 1 }, &quiet(), |_, _| {}).await?;
        lat.push(s.elapsed().as_secs_f64() * 1e3);
        local += r.pieces_per_peer.iter().filter(|(p, _)| *p == me).count();
    }
    let lat_total = t1.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((q / 100.0 * lat.len() as f64 + 0.5).round() as usize).clamp(1, lat.len()) - 1];
    Ok(json!({
        "system": "meshwork", "workload": "noop", "workers": 2, "n": a.n, "lat_n": a.lat,
        "correct": n == a.n as u64, "ok": n == a.n as u64,
        "total_s": round(total), "tasks_per_s": round(a.n as f64 / total),
        "batches": report.batches, "pieces_per_peer": report.pieces_per_peer,
        "lat_total_s": round(lat_total), "lat_p50_ms": round(pct(50.0)), "lat_p99_ms": round(pct(99.0)),
        "lat_mean_ms": round(lat.iter().sum::<f64>() / lat.len() as f64),
        "lat_local_fraction": round(local as f64 / a.lat as f64),
        "worker_idle_rss_kib": idle_rss, "worker_peak_rss_kib_b1": b1_peak,
    }))
}

fn primes_input(a: &BenchArgs) -> primes::PrimesInput {
    primes::PrimesInput { from: 0, to: a.limit, pieces: a.pieces }
}

fn expected(a: &BenchArgs) -> Option<u64> {
    (a.limit == 20_000_000).then_some(PRIMES_BELOW_20M)
}

fn single(a: &BenchArgs) -> Value {
    let input = primes::PrimesInput { pieces: 1, ..primes_input(a) };
    let t0 = Instant::now();
    let count = run_locally(&primes::Primes, &input);
    let wall = t0.elapsed().as_secs_f64();
    let correct = count.as_ref().ok().is_some_and(|c| expected(a).is_none_or(|e| *c == e));
    json!({
        "system": "meshwork-single", "workload": "primes", "workers": 1, "limit": a.limit,
        "wall_s": round(wall), "count": count.ok(), "correct": correct, "ok": correct,
    })
}

async fn primes_workload(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let t0 = Instant::now();
    let (count, report) = mesh.client().run(&primes::Primes, &primes_input(a), &quiet(), |_, _| {}).await?;
    let wall = t0.elapsed().as_secs_f64();
    let correct = expected(a).is_none_or(|e| count == e);
    Ok(json!({
        "system": "meshwork", "workload": "primes", "workers": 2, "limit": a.limit, "pieces": a.pieces,
        "wall_s": round(wall), "count": count, "correct": correct, "ok": correct,
        "pieces_per_peer": report.pieces_per_peer,
    }))
}

async fn fault_workload(mesh: &mut Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let c = mesh.client();
    let t0 = Instant::now();
    let (first, _) = c.run(&primes::Primes, &primes_input(a), &quiet(), |_, _| {}).await?;
    let nofault = t0.elapsed().as_secs_f64();
    // The worker's id, to spot the pieces it held when it died.
    let victim = c.peers().await?.into_iter().find(|p| p.is_live()).map(|p| p.peer_id).unwrap_or_default();
    let names = c.names().clone();
    let placed: std::sync::Mutex<Vec<(Instant, Vec<u32>, String)>> = Default::default();
    let retried: std::sync::Mutex<Vec<u32>> = Default::default();
    let opts = JobOptions { explain: true, ..quiet() };
    let t1 = Instant::now();
    let kill_at = Duration::from_secs_f64(nofault * a.kill_frac);
    let input = primes_input(a);
    let mut killed = None;
    let result = {
        let job = c.run(&primes::Primes, &input, &opts, |_, e| match e {
            JobEvent::Placed { peer, pieces, .. } => placed.lock().unwrap_or_else(|p| p.into_inner()).push((
                Instant::now(),
                pieces.clone(),
                names.name(*peer),
            )),
            JobEvent::Retried { piece, .. } => retried.lock().unwrap_or_else(|p| p.into_inner()).push(*piece),
            _ => {}
        });
        tokio::pin!(job);
        loop {
            tokio::select! {
                r = &mut job => break r,
                _ = tokio::time::sleep_until((t1 + kill_at).into()), if killed.is_none() => {
                    killed = Some((mesh.kill_and_restart().await?, t1.elapsed().as_secs_f64()));
                }
            }
        }
    };
    let fault = t1.elapsed().as_secs_f64();
    // Work lost: how long the pieces the victim held had been running when it died.
    let kill_instant = t1 + killed.map_or(Duration::ZERO, |(_, t)| Duration::from_secs_f64(t));
    let retried = retried.into_inner().unwrap_or_default();
    let lost: f64 = placed
        .into_inner()
        .unwrap_or_default()
        .iter()
        .filter(|(at, pieces, peer)| {
            *peer == victim && *at < kill_instant && pieces.iter().any(|p| retried.contains(p))
        })
        .map(|(at, _, _)| kill_instant.duration_since(*at).as_secs_f64())
        .fold(0.0, f64::max);
    let (count, completed) = match &result {
        Ok((n, _)) => (Some(*n), true),
        Err(_) => (None, false),
    };
    let correct = completed && count.is_some_and(|n| expected(a).is_none_or(|e| n == e) && n == first);
    Ok(json!({
        "system": "meshwork", "workload": "fault", "workers": 2, "limit": a.limit, "pieces": a.pieces,
        "kill_frac": a.kill_frac, "nofault_s": round(nofault), "nofault_correct": expected(a).is_none_or(|e| first == e),
        "completed": completed, "count": count, "correct": correct, "fault_s": round(fault),
        "slowdown": round(fault / nofault), "killed_pid": killed.map(|k| k.0), "kill_t_s": killed.map(|k| round(k.1)),
        "retried_pieces": retried.len(), "lost_work_s": round(lost),
        "extra_beyond_lost_s": round(fault - nofault - lost),
        "error": result.err().map(|e| e.to_string()),
        "ok": completed && correct && killed.is_some(),
    }))
}
