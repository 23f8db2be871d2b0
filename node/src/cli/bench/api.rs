//! `api`: B1 and B2 submitted through the job service's HTTP API (`POST
//! /api/jobs`, the result watched on `/api/jobs/{id}/events`) against the
//! same jobs given to the node directly, on the same remote-only mesh as
//! `noop-remote` (this process runs nothing; two workers do every piece).
//! The difference is what the service costs: the job, its pieces' inputs
//! and every output written to the store before they count, the events
//! and HTTP. `store_us_per_piece` is that difference for B1, per piece.
//!
//! The API is served by this process on loopback, so the HTTP requests
//! cross a socket but not a process; the pieces cross to the workers.

use super::mesh::Mesh;
use super::noop::{batched, pct, round_trips};
use super::{round, BenchArgs};
use crate::cli::job_kind;
use crate::http::{self, ApiState};
use crate::metrics::Metrics;
use crate::service::{JobView, Retention, Service};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

/// B1 and B2 through the API and directly.
pub(super) async fn api_workload(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let c = mesh.client();
    let dir = std::env::temp_dir().join(format!("meshwork-bench-api-{}", std::process::id()));
    let service = Service::start(c.clone(), &dir, job_kind, Retention::default())?;
    let state = ApiState { client: c.clone(), metrics: Arc::new(Metrics::new()), jobs: Ok(service) };
    let listener = http::bind(Some("127.0.0.1:0".parse().expect("an address"))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(http::serve(listener, http::app(state, None)));

    let (direct_s, _, direct_ok) = batched(&c, a.n).await?;
    let (direct_lat, _) = round_trips(&c, a.lat).await?;
    let (n, lat_n, api) = (a.n, a.lat, base.clone());
    let through = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, bool, Vec<f64>)> {
        let t0 = Instant::now();
        let done = run_job(&api, n)?;
        let batched_s = t0.elapsed().as_secs_f64();
        let mut lat = Vec::with_capacity(lat_n as usize);
        for _ in 0..lat_n {
            let s = Instant::now();
            run_job(&api, 1)?;
            lat.push(s.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(f64::total_cmp);
        Ok((batched_s, done, lat))
    })
    .await??;
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    let (api_s, api_ok, api_lat) = through;
    let correct = direct_ok && api_ok;
    Ok(json!({
        "system": "meshwork", "workload": "api", "workers": mesh.workers.len(), "n": a.n, "lat_n": a.lat,
        "correct": correct, "ok": correct,
        "direct_tasks_per_s": round(a.n as f64 / direct_s), "api_tasks_per_s": round(a.n as f64 / api_s),
        "store_us_per_piece": round((api_s - direct_s) * 1e6 / a.n as f64),
        "direct_lat_p50_ms": round(pct(&direct_lat, 50.0)), "direct_lat_p99_ms": round(pct(&direct_lat, 99.0)),
        "api_lat_p50_ms": round(pct(&api_lat, 50.0)), "api_lat_p99_ms": round(pct(&api_lat, 99.0)),
    }))
}

/// Submits a `noop` job of `pieces` through the API at `base` and follows
/// its events until it ends; whether it is done with the right result.
fn run_job(base: &str, pieces: u32) -> anyhow::Result<bool> {
    let body = json!({ "task": "noop", "args": ["--pieces", pieces.to_string()] });
    let view: JobView = ureq::post(&format!("{base}/api/jobs")).send_json(body)?.into_json()?;
    let events = ureq::get(&format!("{base}/api/jobs/{}/events", view.id)).call()?;
    for line in std::io::BufReader::new(events.into_reader()).lines() {
        let line = line.context("reading the job's events")?;
        let Some(data) = line.strip_prefix("data:") else { continue };
        let view: JobView = serde_json::from_str(data.trim())?;
        if view.state.finished() {
            let result: Value = ureq::get(&format!("{base}/api/jobs/{}/result", view.id)).call()?.into_json()?;
            return Ok(result["result"]["pieces"] == pieces);
        }
    }
    bail!("the events of job {} ended before it did", view.id)
}
