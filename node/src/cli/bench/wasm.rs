//! `meshwork bench wasm`: the C prime counter (`examples/wasm/primes.c`,
//! given built as `--module`) as a wasm job on the bench's mesh, against
//! the built-in `primes` task on the same range and pieces; and what one
//! piece's fresh guest instance costs.

use super::mesh::Mesh;
use super::{expected, primes_input, quiet, round, BenchArgs};
use crate::tasks::primes;
use crate::wasm::args::WasmArgs;
use crate::wasm::{Limits, ModuleId, PieceCall, Sandbox, Wasm};
use anyhow::Context;
use meshwork_protocol::task::CancelFlag;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// `(module (func (export "_start")))`: a guest that does nothing, so its
/// run is the instance's cost alone.
const EMPTY: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
    0x03, 0x02, 0x01, 0x00, // functions: one of type 0
    0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export "_start"
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: an empty body
];

/// Runs timed to find a median.
const SAMPLES: usize = 2000;

pub(super) async fn wasm_workload(mesh: &Mesh, a: &BenchArgs, module: &Path) -> anyhow::Result<Value> {
    let expected = expected(a)?;
    let job_args = WasmArgs {
        module: module.to_path_buf(),
        range: Some(format!("0..{}", a.limit)),
        pieces: a.pieces,
        lines: None,
        stdin: false,
        per_piece: 1,
        files: Vec::new(),
        args: Vec::new(),
        reduce: None,
        out_dir: None,
    };
    let sandbox = Sandbox::new(Limits::default(), 1)?;
    let run = job_args.prepare(&sandbox)?;
    let bytes = run.module.clone();
    let costs = {
        let sandbox = sandbox.clone();
        tokio::task::spawn_blocking(move || instance_costs(&sandbox, &bytes)).await??
    };

    let c = mesh.client();
    let module = Arc::new(run.module.clone());
    let id = ModuleId::of(&module);
    c.offer_module(module).await;
    let task = Wasm::for_submitting(sandbox);
    let job = run.job(id, c.peer_id().to_bytes());
    let timed = async || -> anyhow::Result<(f64, u64)> {
        let t0 = Instant::now();
        let (outputs, _) = c.run(&task, &job, &quiet(), |_, _| {}).await?;
        let count = outputs.iter().map(|o| String::from_utf8_lossy(o).trim().parse::<u64>()).sum::<Result<_, _>>();
        Ok((t0.elapsed().as_secs_f64(), count.context("a piece's output is not a count")?))
    };
    // The first run includes every worker's fetch and compile of the module.
    let (cold, count) = timed().await?;
    let t0 = Instant::now();
    let (native_count, _) = c.run(&primes::Primes, &primes_input(a), &quiet(), |_, _| {}).await?;
    let native = t0.elapsed().as_secs_f64();
    let (cached, cached_count) = timed().await?;
    c.withdraw_module(id).await;
    let correct = count == expected && cached_count == expected && native_count == expected;
    Ok(json!({
        "system": "meshwork", "workload": "wasm", "workers": 2, "limit": a.limit, "pieces": a.pieces,
        "wall_s": round(cold), "cached_s": round(cached), "native_s": round(native),
        "ratio": round(cold / native), "cached_ratio": round(cached / native),
        "instantiate_us_median": round(costs.0), "piece_overhead_us_median": round(costs.1), "samples": SAMPLES,
        "count": count, "correct": correct, "ok": correct,
    }))
}

/// Median µs of a run of a guest that does nothing (a fresh instance, its
/// WASI context and the call), and of an empty piece of `module` (the
/// prime counter given an empty range: a C program's start, its stdin
/// read and its line of output besides).
fn instance_costs(sandbox: &Sandbox, module: &[u8]) -> anyhow::Result<(f64, f64)> {
    let median_us = |bytes: &[u8], stdin: &[u8]| -> anyhow::Result<f64> {
        let guest = sandbox.compile(bytes)?;
        let call = PieceCall { stdin, pieces: 1, ..PieceCall::default() };
        let mut us = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t0 = Instant::now();
            sandbox.run(&guest, &call, &CancelFlag::new())?;
            us.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        us.sort_by(f64::total_cmp);
        Ok(us[SAMPLES / 2])
    };
    Ok((median_us(EMPTY, b"")?, median_us(module, b"0 0\n")?))
}
