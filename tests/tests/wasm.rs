//! `meshwork run wasm` on real node processes on loopback: a user's module,
//! built from C or Rust, runs its pieces on the workers, which fetch it from the
//! submitter; hostile modules fail their job with a clear error and leave
//! the workers idle and working.

use meshwork_tests::events::JobEvent;
use meshwork_tests::guests::{build_c, build_rust, primes_below, scratch, write_wat};
use meshwork_tests::node_proc::{local_mesh, wait_all_live, NodeProc};
use meshwork_tests::run_proc::RunProc;
use std::path::Path;
use std::time::Duration;

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of a whole job.
const JOB: Duration = Duration::from_secs(180);

/// Node `i` of a wasm test, with a module cache of its own in `dir` (so
/// it fetches every module itself), joining `join` if given.
fn wasm_node(i: usize, join: Option<&str>, dir: &Path) -> NodeProc {
    let cache = dir.join(format!("cache-{i}"));
    NodeProc::start_local(&format!("node {i}"), join, &["--cache-dir", cache.to_str().unwrap()])
}

/// `n` nodes on loopback, each with its own module cache, live at each other.
fn wasm_mesh(n: usize, dir: &Path) -> Vec<NodeProc> {
    let mut nodes = vec![wasm_node(0, None, dir)];
    let join = nodes[0].addr.clone();
    nodes.extend((1..n).map(|i| wasm_node(i, Some(&join), dir)));
    let since = nodes[0].started;
    wait_all_live(&mut nodes, since, T).unwrap_or_else(|e| panic!("{e}"));
    nodes
}

/// The arguments of a prime-counting job over `0..to` in `pieces`, summed
/// by the reducer.
fn count_primes(primes: &Path, sum: &Path, to: u64, pieces: u32) -> Vec<String> {
    let (primes, sum) = (primes.to_str().unwrap(), sum.to_str().unwrap());
    let (range, pieces) = (format!("0..{to}"), pieces.to_string());
    ["--min-peers", "3", "wasm", primes, "--range", &range, "--pieces", &pieces, "--reduce", sum]
        .map(String::from)
        .to_vec()
}

/// Starts `meshwork run` with `args` through `join`.
fn start(join: &str, args: &[String]) -> RunProc {
    RunProc::start_local(join, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Waits until the job has `n` pieces done; when it said so.
fn wait_done(run: &mut RunProc, n: u32) -> std::time::Instant {
    let done = |e: &JobEvent| matches!(e, JobEvent::Progress { done, .. } if *done >= n);
    run.wait_event(&format!("{n} pieces done"), run.started, JOB, done).unwrap().at
}

#[test]
fn a_worker_killed_mid_wasm_job_has_its_pieces_run_elsewhere_and_the_count_is_right() {
    let dir = scratch("wasm-kill");
    let (primes, sum) = (build_c("primes", &dir), build_c("sum", &dir));
    let nodes = wasm_mesh(3, &dir);
    let args = count_primes(&primes, &sum, 20_000_000, 48);
    let mut run = start(&nodes[0].addr, &args);
    // The victim runs pieces of the module: some are done, and one more is
    // placed on it; it dies holding it.
    let victim = nodes[2].peer.clone();
    let progressed = wait_done(&mut run, 3);
    run.wait_placed_on(&victim, progressed, JOB).unwrap();
    nodes[2].proc.signal(libc::SIGKILL);
    let out = run.finish(JOB).unwrap();
    assert_eq!(out.json["result"]["output"], "1270607", "{}", out.json);
    out.assert_exact(48);
    assert!(!out.retried_on(&victim).is_empty(), "the victim's piece went elsewhere: {}", out.stderr_text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_that_joins_mid_wasm_job_fetches_the_module_and_takes_pieces() {
    let dir = scratch("wasm-join");
    let (primes, sum) = (build_c("primes", &dir), build_c("sum", &dir));
    let nodes = wasm_mesh(3, &dir);
    let args = count_primes(&primes, &sum, 40_000_000, 64);
    let mut run = start(&nodes[0].addr, &args);
    wait_done(&mut run, 3);
    let late = wasm_node(3, Some(&nodes[0].addr), &dir);
    run.wait_placed_on(&late.peer, late.started, JOB).unwrap();
    let out = run.finish(JOB).unwrap();
    assert_eq!(out.json["result"]["output"], primes_below(40_000_000).to_string(), "{}", out.json);
    out.assert_exact(64);
    assert!(out.pieces_of(&late.peer) >= 1, "the late node ran none: {}", out.json);
    // Its own cache, empty when it started: it fetched the module.
    let kept = std::fs::read_dir(dir.join("cache-3")).map_or(0, |d| d.count());
    assert_eq!(kept, 1, "the late node keeps the module it fetched");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `module` with a custom section of `pad` bytes appended: the same
/// program, `pad` bytes larger on the wire.
fn padded(module: &[u8], pad: usize) -> Vec<u8> {
    let name = b"padding";
    let mut section = vec![name.len() as u8];
    section.extend(name);
    section.resize(section.len() + pad, 0);
    let mut out = module.to_vec();
    out.push(0); // a custom section, its size in LEB128
    let mut size = section.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        out.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    out.extend(section);
    out
}

/// The primes a `--range` job without a reducer counted: the sum of its lines.
fn counted(out: &meshwork_tests::run_proc::RunOutput) -> u64 {
    let lines = out.json["result"]["output"].as_str().unwrap_or_default().lines();
    lines.map(|l| l.parse::<u64>().unwrap()).sum()
}

#[test]
fn a_two_megabyte_module_crosses_the_network_once_per_worker_and_not_again_for_the_next_job() {
    let dir = scratch("wasm-bytes");
    let big = dir.join("big.wasm");
    std::fs::write(&big, padded(&std::fs::read(build_c("primes", &dir)).unwrap(), 2 << 20)).unwrap();
    let size = std::fs::metadata(&big).unwrap().len();
    let nodes = wasm_mesh(3, &dir);
    let args = ["--min-peers", "3", "wasm", big.to_str().unwrap(), "--range", "0..2000000", "--pieces", "64"];
    let out = RunProc::start_local(&nodes[0].addr, &args).finish(JOB).unwrap();
    out.assert_exact(64);
    assert_eq!(counted(&out), 148_933, "{}", out.json);
    // One module per worker that got pieces: at least those whose results
    // won, at most those given any (a backup's loser may have fetched it
    // too, or been cancelled before it had to).
    let ran = out.per_peer().iter().filter(|(_, n)| *n > 0).count() as u64;
    let mut given: Vec<&str> = (out.events.iter())
        .filter_map(|e| match &e.event {
            JobEvent::Placed { peer, .. } => Some(peer.as_str()),
            _ => None,
        })
        .collect();
    given.sort_unstable();
    given.dedup();
    let sent = &out.json["summary"]["modules_sent"];
    let count = sent["count"].as_u64().unwrap_or_default();
    assert!(ran >= 2 && (ran..=given.len() as u64).contains(&count), "{count} sent: {}", out.json);
    assert_eq!(sent["bytes"], count * size, "{}", out.json);
    // The workers keep it: the next job with it sends it to none of them
    // again (only to a worker that had none of the first job's pieces).
    let out = RunProc::start_local(&nodes[0].addr, &args).finish(JOB).unwrap();
    out.assert_exact(64);
    let again = out.json["summary"]["modules_sent"]["count"].as_u64().unwrap_or_default();
    assert!(count + again <= 3, "sent again: {}", out.json);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_c_prime_counter_runs_over_three_nodes_and_its_reducer_finds_the_count() {
    let dir = scratch("wasm-primes");
    let (primes, sum) = (build_c("primes", &dir), build_c("sum", &dir));
    let nodes = wasm_mesh(3, &dir);
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
    assert_eq!(out.json["summary"]["modules_sent"]["count"], 3, "{}", out.json);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_rust_prime_counter_runs_over_three_nodes_and_its_pieces_add_up_to_the_count() {
    let dir = scratch("wasm-rust");
    let primes = build_rust("primes", &dir);
    let nodes = wasm_mesh(3, &dir);
    let args = ["--min-peers", "3", "wasm", primes.to_str().unwrap(), "--range", "0..20000000", "--pieces", "24"];
    let out = RunProc::start_local(&nodes[0].addr, &args).finish(JOB).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr_text());
    out.assert_exact(24);
    // One count per piece, which together are every prime of the range.
    let lines = out.json["result"]["output"].as_str().unwrap_or_default().lines().count();
    assert_eq!((lines, counted(&out)), (24, 1_270_607), "{}", out.json);
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

/// A guest that says why on stderr and exits with code 3, whatever its piece.
const FAILING: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "no such input\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 14))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 3))))"#;

#[test]
fn a_guest_that_exits_non_zero_fails_its_job_at_once_with_its_exit_code_and_stderr() {
    let dir = scratch("wasm-exit");
    let failing = write_wat("failing", FAILING, &dir);
    let nodes = local_mesh(3, &[], T);
    // Ten attempts on three workers: retried like any failure, each piece
    // would run on every worker, and the job would stall, not fail.
    let args = [
        "--min-peers",
        "3",
        "--max-attempts",
        "10",
        "wasm",
        failing.to_str().unwrap(),
        "--range",
        "0..12",
        "--pieces",
        "12",
    ];
    let mut run = RunProc::start_local(&nodes[0].addr, &args);
    let out = run.finish(JOB).unwrap();
    assert_eq!(out.code, 1, "the job fails: {}", out.stderr_text());
    let error = out.json["error"].as_str().unwrap_or_default();
    assert!(error.contains("exited with code 3") && error.contains("no such input"), "{}", out.json);
    assert!(error.contains("repeats"), "{}", out.json);
    // Confirmed by the second worker to report it: usually after 3 or 4
    // pieces placed, and however slow a worker is, fewer than the job's
    // 12 pieces x 3 workers it takes to find every piece failing everywhere.
    let placed: u64 = nodes.iter().map(|n| out.placed_on_after(&n.peer, run.started)).sum();
    assert!(placed < 24, "{placed} pieces placed before the job failed: {}", out.stderr_text());
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
