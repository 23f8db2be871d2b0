//! The same seed and options give the same run, byte for byte; another
//! seed gives another run.

mod common;
use common::{check_ok, simulate};

const OPTS: &[&str] =
    &["--nodes", "60", "--pieces", "3000", "--speeds", "uniform:0.5..2", "--churn", "10%", "--loss", "0.1%"];

fn with_seed(seed: &str) -> Vec<&str> {
    let mut w = OPTS.to_vec();
    w.extend(["--seed", seed]);
    w
}

#[test]
fn same_seed_same_report_and_trace() {
    let (args, a) = simulate(&with_seed("7"));
    check_ok(&args, &a);
    let (_, b) = simulate(&with_seed("7"));
    assert_eq!(a.trace_hash, b.trace_hash);
    let json = |r: &meshwork_simulations::RunReport| serde_json::to_string(r).unwrap();
    assert_eq!(json(&a), json(&b), "the whole report is identical");
    assert!(a.trace_lines > 3000, "the trace follows every placement: {}", a.trace_lines);
}

#[test]
fn another_seed_another_run() {
    let (_, a) = simulate(&with_seed("7"));
    let (_, b) = simulate(&with_seed("8"));
    assert_ne!(a.trace_hash, b.trace_hash);
    assert_ne!(a.makespan_s, b.makespan_s);
}

#[test]
fn the_trace_file_is_what_was_hashed() {
    let path = std::env::temp_dir().join(format!("meshwork-sim-trace-{}.jsonl", std::process::id()));
    let p = path.to_str().unwrap();
    let mut words = with_seed("3");
    words.extend(["--trace", p]);
    let (_, r) = simulate(&words);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &bytes {
        hash = (hash ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    assert_eq!(format!("{hash:016x}"), r.trace_hash);
    let lines: Vec<serde_json::Value> =
        bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, r.trace_lines);
    for ev in ["submitted", "placed", "done", "crash", "leave", "left", "join", "peer_down", "finished"] {
        assert!(lines.iter().any(|l| l["ev"] == ev), "no {ev:?} line");
    }
    let (_, again) = simulate(&with_seed("3"));
    assert_eq!(again.trace_hash, r.trace_hash, "writing the trace does not change the run");
}
