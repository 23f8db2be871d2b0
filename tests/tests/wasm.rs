//! `meshwork run wasm` on real node processes on loopback: a user's module,
//! built from C, runs its pieces on the workers, which fetch it from the
//! submitter; hostile modules fail their job with a clear error and leave
//! the workers idle and working.

use meshwork_tests::guests::{build_c, scratch, write_wat};
use meshwork_tests::node_proc::local_mesh;
use meshwork_tests::run_proc::RunProc;
use std::time::Duration;

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of a whole job.
const JOB: Duration = Duration::from_secs(180);

#[test]
fn the_c_prime_counter_runs_over_three_nodes_and_its_reducer_finds_the_count() {
    let dir = scratch("wasm-primes");
    let (primes, sum) = (build_c("primes", &dir), build_c("sum", &dir));
    let nodes = local_mesh(3, &[], T);
    let args = [
        "--min-peers",
        "3",
        "wasm",
        primes.to_str().unwrap(),
        "--range",
        "0..20000000",
        "--pieces",
        "24",
        "--reduce",
        sum.to_str().unwrap(),
    ];
    let out = RunProc::start_local(&nodes[0].addr, &args).finish(JOB).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr_text());
    assert_eq!(out.json["result"]["output"], "1270607", "{}", out.json);
    out.assert_exact(24);
    // Every worker fetched the module and ran pieces of it.
    let busy = out.per_peer().iter().filter(|(_, n)| *n > 0).count();
    assert_eq!(busy, 3, "pieces ran on {busy} of 3 workers: {}", out.json);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_endless_guest_fails_its_job_at_the_piece_deadline_and_the_workers_go_on() {
    let dir = scratch("wasm-endless");
    let endless = write_wat("endless", r#"(module (func (export "_start") (loop $l (br $l))))"#, &dir);
    let nodes = local_mesh(2, &[], T);
    let args = [
        "--min-peers",
        "2",
        "--piece-timeout",
        "1",
        "--max-attempts",
        "2",
        "wasm",
        endless.to_str().unwrap(),
        "--range",
        "0..4",
        "--pieces",
        "2",
    ];
    let out = RunProc::start_local(&nodes[0].addr, &args).finish(JOB).unwrap();
    assert_ne!(out.code, 0, "an endless guest cannot succeed: {}", out.json);
    assert!(out.stderr_text().contains("deadline"), "{}", out.stderr_text());
    // The workers stopped the guests (or they would still spin) and take work.
    let primes = build_c("primes", &dir);
    let again = ["--min-peers", "2", "wasm", primes.to_str().unwrap(), "--range", "0..1000", "--pieces", "4"];
    let out = RunProc::start_local(&nodes[0].addr, &again).finish(JOB).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr_text());
    let total: u64 = out.json["result"]["output"].as_str().unwrap().lines().map(|l| l.parse::<u64>().unwrap()).sum();
    assert_eq!(total, 168, "{}", out.json);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_module_that_imports_more_than_wasi_is_refused_before_joining() {
    let dir = scratch("wasm-imports");
    let evil = write_wat("evil", r#"(module (import "env" "open_socket" (func)) (func (export "_start")))"#, &dir);
    let nodes = local_mesh(1, &[], T);
    let out =
        RunProc::start_local(&nodes[0].addr, &["wasm", evil.to_str().unwrap(), "--range", "0..4"]).finish(T).unwrap();
    assert_eq!(out.code, 2, "{}", out.stderr_text());
    assert!(out.stderr_text().contains("open_socket"), "{}", out.stderr_text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_started_with_no_wasm_is_not_given_wasm_pieces() {
    let dir = scratch("wasm-refused");
    let primes = build_c("primes", &dir);
    let nodes = local_mesh(1, &["--no-wasm"], T);
    let args = ["--min-peers", "1", "wasm", primes.to_str().unwrap(), "--range", "0..1000", "--pieces", "2"];
    // The only worker does not run wasm: no peer for the job, said once the
    // run's --wait (30 s) is over.
    let out = RunProc::start_local(&nodes[0].addr, &args).finish(JOB).unwrap();
    assert_eq!(out.code, 3, "{}", out.stderr_text());
    assert!(out.stderr_text().contains("wasm"), "{}", out.stderr_text());
    let _ = std::fs::remove_dir_all(&dir);
}
