//! `meshwork bench <workload>`: the workloads of the peer baselines
//! (`shared/bench/peers`: Celery, Dask, Ray) run on meshwork, each printing
//! one JSON line in the same shape so `summarize.py` reads both.
//!
//! The mesh is this process (which submits) and `meshwork node` processes
//! on this machine, one slot each, loopback only, mDNS off (see `mesh`):
//!
//! - `noop` (B1, B2 as first measured): this process with one slot of its
//!   own plus one worker, so ties and tiny batches may run in this process;
//!   the JSON says how many (`local_fraction`, `lat_local_fraction`).
//! - `noop-remote` (B1, B2 over the mesh): this process runs nothing
//!   (`--slots 0`), two workers do everything, so every piece crosses a
//!   process boundary: one job of `--n` pieces (batched), `--n` one-piece
//!   jobs submitted at once (one request each, like the peers' tasks), and
//!   `--lat` sequential one-piece jobs (round trip).
//! - `primes` (B3): primes below `--limit` in `--pieces` pieces; `single`
//!   runs the same kernel in this process, without a mesh.
//! - `fault` (B4): `primes` once, then again with a worker process killed
//!   (SIGKILL) at `--kill-frac` of the first run's time; the clock that
//!   times the kill is read when the signal is sent. `--restart none`: the
//!   job finishes on the survivors. `--restart supervisor`: every worker
//!   runs under the restart loop README gives for a supervised node (the
//!   peers' supervisors restart their killed workers too: Celery's pool,
//!   Dask's nanny, Ray's raylet), which brings it back by itself.
//! - `wasm`: `primes` as the C prime counter of `examples/wasm/` (built,
//!   `--module`) on the same mesh, range and pieces: its wall time cold
//!   (workers fetch and compile the module) and cached, the native task's,
//!   and the median cost of a piece's fresh guest instance.
//! - `exec`: `--n` runs of `true` as one `exec` job on two workers started
//!   with `--allow-exec` (this process runs nothing), against GNU
//!   `parallel -j2` and `xargs -P2` on this machine.
//! - `api`: `noop-remote`'s B1 and B2 submitted through the job service's
//!   HTTP API, against the same jobs given to the node directly.

mod api;
mod exec;
mod mesh;
mod noop;
mod wasm;

use super::UsageError;
use crate::client::JobOptions;
use crate::tasks::{primes, run_locally};
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use mesh::Mesh;
use meshwork_protocol::JobEvent;
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// π(20,000,000), the peers' check.
const PRIMES_BELOW_20M: u64 = 1_270_607;

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Workload {
    /// B1 throughput and B2 round trip, this process helping.
    Noop,
    /// B1 throughput and B2 round trip, every piece on another process.
    NoopRemote,
    /// B3 on the 2-node mesh.
    Primes,
    /// B3's reference: the kernel in one process, no mesh.
    Single,
    /// B4: B3 with a worker killed mid-job.
    Fault,
    /// B3 as the C prime counter compiled to wasm (`--module`), against B3.
    Wasm,
    /// `--n` runs of `true` on the mesh, against GNU parallel and xargs.
    Exec,
    /// B1 and B2 through the job service's HTTP API, against direct.
    Api,
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
    /// Who brings the killed worker back (B4).
    #[arg(long, value_enum, default_value_t = Restart::Supervisor)]
    restart: Restart,
    /// The prime counter as a wasm module (`wasm`): `clang
    /// --target=wasm32-wasi -O2 -o primes.wasm examples/wasm/primes.c`.
    #[arg(long, value_name = "PRIMES.wasm", required_if_eq("workload", "wasm"))]
    module: Option<std::path::PathBuf>,
    /// Microseconds every node of the bench mesh polls the network without
    /// sleeping after each RPC message (`meshwork node --busy-poll`).
    #[arg(long, default_value_t = crate::node::DEFAULT_BUSY_POLL.as_micros() as u64, value_name = "MICROS")]
    busy_poll: u64,
}

/// Who restarts a killed worker in B4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Restart {
    /// Nobody: the job finishes on the survivors.
    None,
    /// The worker's own restart loop (README's supervised node).
    Supervisor,
}

pub(super) async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.n == 0 || args.lat == 0 || args.pieces == 0 || !(0.0..1.0).contains(&args.kill_frac) {
        bail!(UsageError("--n, --lat and --pieces must be positive and --kill-frac in [0, 1)".into()));
    }
    let mut out = match args.workload {
        Workload::Single => single(&args),
        w => {
            let started = Instant::now();
            let remote = matches!(w, Workload::NoopRemote | Workload::Exec | Workload::Api);
            let (slots, workers) = if remote { (0, 2) } else { (1, 1) };
            let supervised = w == Workload::Fault && args.restart == Restart::Supervisor;
            let busy_poll = args.busy_poll.to_string();
            let mut extra = vec!["--busy-poll", &busy_poll];
            if w == Workload::Exec {
                extra.push("--allow-exec");
            }
            let busy_poll = Duration::from_micros(args.busy_poll);
            let mesh = Mesh::start(slots, workers, supervised, busy_poll, &extra).await?;
            let startup = started.elapsed().as_secs_f64();
            let mut out = match w {
                Workload::Noop => noop::mixed(&mesh, &args).await,
                Workload::NoopRemote => noop::remote(&mesh, &args).await,
                Workload::Primes => primes_workload(&mesh, &args).await,
                Workload::Wasm => {
                    let module = args.module.as_deref().context("the wasm workload needs --module")?;
                    wasm::wasm_workload(&mesh, &args, module).await
                }
                Workload::Exec => exec::exec_workload(&mesh, &args).await,
                Workload::Api => api::api_workload(&mesh, &args).await,
                _ => fault_workload(&mesh, &args).await,
            }?;
            out["startup_s"] = round(startup);
            out["busy_poll_us"] = json!(args.busy_poll);
            mesh.stop().await;
            out
        }
    };
    out["version"] = json!(format!("meshwork {}", env!("CARGO_PKG_VERSION")));
    let ok = out["ok"].as_bool().unwrap_or(false);
    println!("{out}");
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_FAILED) })
}

pub(super) fn round(x: f64) -> Value {
    json!((x * 1e6).round() / 1e6)
}

pub(super) fn quiet() -> JobOptions {
    JobOptions::default()
}

/// SIGKILL the first worker's `meshwork node` process (under a supervisor,
/// the loop's current child, which the loop then starts again by itself).
fn kill_worker(mesh: &Mesh) -> anyhow::Result<u32> {
    let pid = mesh.workers[0].node_pid().context("finding the worker's node process")?;
    // SAFETY: kill(2) on a process we started (directly or through its loop).
    if unsafe { libc::kill(pid as i32, libc::SIGKILL) } != 0 {
        bail!("killing worker {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(pid)
}

fn primes_input(a: &BenchArgs) -> primes::PrimesInput {
    primes::PrimesInput { from: 0, to: a.limit, pieces: a.pieces }
}

/// The right count for `--limit`: the peers' check for 20,000,000, else
/// the kernel run once in this process, so every run of every size is checked.
fn expected(a: &BenchArgs) -> anyhow::Result<u64> {
    if a.limit == 20_000_000 {
        return Ok(PRIMES_BELOW_20M);
    }
    let input = primes::PrimesInput { pieces: 1, ..primes_input(a) };
    run_locally(&primes::Primes, &input).map_err(|e| anyhow::anyhow!("the reference count failed: {e}"))
}

fn single(a: &BenchArgs) -> Value {
    let input = primes::PrimesInput { pieces: 1, ..primes_input(a) };
    let t0 = Instant::now();
    let count = run_locally(&primes::Primes, &input);
    let wall = t0.elapsed().as_secs_f64();
    // The kernel is its own reference except for the one size the peers know.
    let correct = count.as_ref().ok().is_some_and(|c| a.limit != 20_000_000 || *c == PRIMES_BELOW_20M);
    json!({
        "system": "meshwork-single", "workload": "primes", "workers": 1, "limit": a.limit,
        "wall_s": round(wall), "count": count.ok(), "correct": correct, "ok": correct,
    })
}

/// B3, with where its wall time went: `exec_s` is the time the workers
/// report executing pieces, so `exec_s / (2 × wall_s)` is the share of the
/// two slots' time spent computing (the rest is start-up, round trips and
/// the tail) and `exec_s` against `single` is the work the split and the
/// shared machine added.
async fn primes_workload(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let expected = expected(a)?;
    let first_placed: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let opts = JobOptions { explain: true, ..quiet() };
    let t0 = Instant::now();
    let (count, report) = mesh
        .client()
        .run(&primes::Primes, &primes_input(a), &opts, |_, e| {
            if matches!(e, JobEvent::Placed { .. }) {
                first_placed.get_or_init(Instant::now);
            }
        })
        .await?;
    let wall = t0.elapsed().as_secs_f64();
    let correct = count == expected;
    let start = first_placed.get().map(|t| t.duration_since(t0).as_secs_f64());
    Ok(json!({
        "system": "meshwork", "workload": "primes", "workers": 2, "limit": a.limit, "pieces": a.pieces,
        "wall_s": round(wall), "count": count, "correct": correct, "ok": correct,
        "pieces_per_peer": report.pieces_per_peer, "exec_s": round(report.exec_s),
        "slot_utilization": round(report.exec_s / (2.0 * wall)), "first_placed_s": start.map(round),
    }))
}

async fn fault_workload(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let expected = expected(a)?;
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
                    let at = t1.elapsed().as_secs_f64();
                    killed = Some((kill_worker(mesh)?, at));
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
    let correct = completed && count == Some(expected);
    Ok(json!({
        "system": "meshwork", "workload": "fault", "workers": 2, "limit": a.limit, "pieces": a.pieces,
        "restart": a.restart.to_possible_value().map(|v| v.get_name().to_owned()),
        "kill_frac": a.kill_frac, "nofault_s": round(nofault), "nofault_correct": first == expected,
        "completed": completed, "count": count, "correct": correct, "fault_s": round(fault),
        "slowdown": round(fault / nofault), "killed_pid": killed.map(|k| k.0), "kill_t_s": killed.map(|k| round(k.1)),
        "retried_pieces": retried.len(), "lost_work_s": round(lost),
        "extra_beyond_lost_s": round(fault - nofault - lost),
        "error": result.err().map(|e| e.to_string()),
        "ok": completed && correct && killed.is_some(),
    }))
}
