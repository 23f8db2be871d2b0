//! `meshwork bench exec`: `--n` runs of `true` as one `exec` job over the
//! bench's two worker processes (one slot each, the submitter runs
//! nothing), against GNU `parallel -j2` and `xargs -P2` on this machine:
//! the mesh's cost per command next to the tools it stands in for.

use super::mesh::Mesh;
use super::{quiet, round, BenchArgs};
use crate::client::JobOptions;
use crate::exec::{Exec, ExecPiece};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Commands run at once by each local tool: the mesh's two worker slots.
const JOBS: &str = "2";

pub(super) async fn exec_workload(mesh: &Mesh, a: &BenchArgs) -> anyhow::Result<Value> {
    let pieces: Vec<ExecPiece> = (1..=u64::from(a.n))
        .map(|seq| ExecPiece {
            argv: vec!["true".into(), seq.to_string()],
            seq,
            job: "bench".into(),
            env: Vec::new(),
            timeout_ms: 0,
            max_output: 1024,
            avoid: Vec::new(),
        })
        .collect();
    let opts = JobOptions { backups: false, ..quiet() };
    let t0 = Instant::now();
    let (outputs, _) = mesh.client().run(&Exec::for_submitting(), &pieces, &opts, |_, _| {}).await?;
    let mesh_s = t0.elapsed().as_secs_f64();
    let succeeded = outputs.iter().filter(|o| o.succeeded()).count();
    let parallel_s = timed(Command::new("parallel").args(["--will-cite", "-j", JOBS, "true"]), a.n)?;
    let xargs_s = timed(Command::new("xargs").args(["-P", JOBS, "-n", "1", "true"]), a.n)?;
    let ok = succeeded == a.n as usize;
    let per_run_us = |s: f64| round(s / f64::from(a.n) * 1e6);
    Ok(json!({
        "system": "meshwork", "workload": "exec", "workers": 2, "runs": a.n, "succeeded": succeeded,
        "wall_s": round(mesh_s), "runs_per_s": round(f64::from(a.n) / mesh_s),
        "parallel_s": round(parallel_s), "parallel_runs_per_s": round(f64::from(a.n) / parallel_s),
        "xargs_s": round(xargs_s), "xargs_runs_per_s": round(f64::from(a.n) / xargs_s),
        "us_per_run": per_run_us(mesh_s), "parallel_us_per_run": per_run_us(parallel_s),
        "xargs_us_per_run": per_run_us(xargs_s), "ratio_to_parallel": round(mesh_s / parallel_s),
        "ok": ok, "correct": ok,
    }))
}

/// Wall time of `command` fed the numbers 1..=n, one per line, on stdin.
fn timed(command: &mut Command, n: u32) -> anyhow::Result<f64> {
    let input: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let name = format!("{:?}", command.get_program());
    let t0 = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name} (apt-get install parallel)"))?;
    child.stdin.take().context("stdin")?.write_all(input.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("{name} failed: {status}");
    }
    Ok(t0.elapsed().as_secs_f64())
}
