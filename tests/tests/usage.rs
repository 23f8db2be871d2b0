//! Bad arguments to `meshwork run` (issue 11, item 5), with real processes:
//! every output path, input file and number is checked before the run
//! joins the mesh, and fails with exit code 2 naming what is wrong.
//!
//! Each run is pointed at a mesh that never answers (a TCP listener that
//! accepts nothing) with `--min-peers 1 --wait 600`: a run that joined
//! before checking its arguments would still be waiting when the deadline
//! below passes, ten minutes before it could fail.

use meshwork_tests::procs::{Proc, Spawn, Stderr};
use std::net::TcpListener;
use std::time::Duration;

/// From start to exit of a run that only parses its arguments; the first
/// start of a large debug binary on a busy machine can take seconds.
const T: Duration = Duration::from_secs(60);

/// Runs `meshwork run` aimed at `silent` with `args`; its exit code and stderr.
fn run(silent: &TcpListener, args: &[&str]) -> (i32, String) {
    let port = silent.local_addr().unwrap().port();
    let join = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", libp2p::PeerId::random());
    let mut all = vec!["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", &join];
    all.extend(["--min-peers", "1", "--wait", "600"]);
    all.extend_from_slice(args);
    let mut p = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &all);
    let (code, _) = p.output(T).unwrap_or_else(|e| panic!("meshwork {}: {e}", all.join(" ")));
    (code, p.stderr())
}

#[test]
fn bad_paths_and_numbers_exit_2_before_joining() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    let image = ["mandelbrot", "--width", "64", "--height", "64", "--out"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        ([&image[..], &["/nonexistent/dir/x.png"]].concat(), "/nonexistent/dir"),
        ([&image[..], &[dir]].concat(), "is a directory"),
        (vec!["wordcount", "/nonexistent/words.txt"], "/nonexistent/words.txt"),
        (vec!["wordcount", dir], "is a directory"),
        (vec!["--piece-timeout", "0", "sleep"], "--piece-timeout"),
        (vec!["--piece-timeout=-1", "sleep"], "--piece-timeout"),
        (vec!["--stall-timeout=-5", "sleep"], "--stall-timeout"),
        (vec!["--max-attempts", "0", "sleep"], "--max-attempts"),
        (vec!["--max-attempts=-1", "sleep"], "--max-attempts"),
        (vec!["--max-piece-time", "0", "sleep"], "--max-piece-time"),
        (vec!["--secret-file", "/nonexistent/mesh.key", "sleep"], "/nonexistent/mesh.key"),
        (vec!["sleep", "--pieces", "0"], "--pieces"),
    ];
    let mut wrong = Vec::new();
    for (args, names) in &cases {
        let (code, stderr) = run(&silent, args);
        if code != 2 || !stderr.contains(names) {
            wrong.push(format!("{args:?}: exit {code}, want 2 and an error naming {names:?}; stderr:\n{stderr}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn help_lists_the_exit_codes() {
    let (code, out) = Proc::start(&["--help"]).output(T).unwrap();
    assert_eq!(code, 0);
    for code in ["0 done", "1 the job", "2 bad arguments", "3 no mesh", "130 cancelled"] {
        assert!(out.contains(code), "`meshwork --help` lists exit code {code:?}:\n{out}");
    }
}

/// `meshwork simulate` with `args` after a run big enough to take minutes;
/// its exit code and stderr.
fn simulate(args: &[&str]) -> (i32, String) {
    let mut all = vec!["simulate", "--nodes", "5000", "--pieces", "5000000"];
    all.extend_from_slice(args);
    let mut p = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &all);
    let (code, _) = p.output(T).unwrap_or_else(|e| panic!("meshwork {}: {e}", all.join(" ")));
    (code, p.stderr())
}

#[test]
fn simulate_checks_what_it_reads_and_writes_before_it_starts() {
    let dir = std::env::temp_dir().join(format!("mw-usage-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad-scenario.txt");
    std::fs::write(&bad, "3s explode 17\n").unwrap();
    let (d, bad) = (dir.to_str().unwrap(), bad.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--plot", "/nonexistent/dir/p.svg"], "/nonexistent/dir"),
        (vec!["--plot", d], "is a directory"),
        (vec!["--trace", "/nonexistent/dir/t.jsonl"], "/nonexistent/dir"),
        (vec!["--trace", d], "is a directory"),
        (vec!["--scenario", "/nonexistent/s.txt"], "/nonexistent/s.txt"),
        (vec!["--scenario", d], d),
        (vec!["--scenario", bad], "explode"),
        (vec!["--placement-only", "--plot", "p.svg"], "--placement-only"),
    ];
    let mut wrong = Vec::new();
    for (args, names) in &cases {
        let (code, stderr) = simulate(args);
        if code != 2 || !stderr.contains(names) {
            wrong.push(format!("{args:?}: exit {code}, want 2 and an error naming {names:?}; stderr:\n{stderr}"));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn keygen_refuses_a_missing_directory_and_an_existing_file_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("mw-usage-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("mesh.key");
    let key = key.to_str().unwrap();
    let (code, out) = Proc::start(&["keygen", key]).output(T).unwrap();
    assert_eq!(code, 0, "{out}");
    let missing = dir.join("no/such/dir/mesh.key");
    let cases = [(missing.to_str().unwrap(), "no/such/dir"), (key, "already exists")];
    let mut wrong = Vec::new();
    for (path, names) in cases {
        let mut p = Proc::spawn(&Spawn { stderr: Stderr::Pipe, ..Spawn::default() }, &["keygen", path]);
        let (code, _) = p.output(T).unwrap();
        if code != 2 || !p.stderr().contains(names) {
            wrong.push(format!("keygen {path}: exit {code}, want 2 naming {names:?}:\n{}", p.stderr()));
        }
    }
    assert!(!dir.join("no").exists(), "keygen created directories");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn a_secret_file_in_another_format_is_a_usage_error_that_says_what_is_wrong() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!("mw-usage-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (raw, short) = (dir.join("raw.key"), dir.join("short.key"));
    std::fs::write(&raw, [0xa5u8; 32]).unwrap();
    std::fs::write(&short, "/key/swarm/psk/1.0.0/\n/base16/\n0123456789abcdef\n").unwrap();
    let cases = [(raw.to_str().unwrap(), "binary data"), (short.to_str().unwrap(), "64 hex digits")];
    let mut wrong = Vec::new();
    for (path, names) in cases {
        let (code, stderr) = run(&silent, &["--secret-file", path, "sleep"]);
        if code != 2 || !stderr.contains(names) || !stderr.contains("not a meshwork secret file") {
            wrong.push(format!("--secret-file {path}: exit {code}, want 2 naming {names:?}:\n{stderr}"));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn an_unknown_task_lists_the_tasks_and_task_help_says_what_its_words_mean() {
    let mut p = Proc::spawn(&Spawn { stderr: Stderr::Pipe, ..Spawn::default() }, &["run", "prime", "--to", "10"]);
    let (code, _) = p.output(T).unwrap();
    let stderr = p.stderr();
    assert_eq!(code, 2, "{stderr}");
    for task in ["Tasks:", "primes ", "mandelbrot ", "hash-search ", "wordcount ", "wasm "] {
        assert!(stderr.contains(task), "an unknown task lists {task:?}:\n{stderr}");
    }
    let (code, help) = Proc::start(&["run", "wordcount", "--help"]).output(T).unwrap();
    assert_eq!(code, 0);
    assert!(help.contains("A word is a run of letters and digits"), "{help}");
    let (code, help) = Proc::start(&["run", "hash-search", "--help"]).output(T).unwrap();
    assert_eq!(code, 0);
    assert!(help.contains("--difficulty <BITS>") && !help.contains("<DIFFICULTY>"), "{help}");
    assert!(help.contains("--difficulty BITS leading zero bits"), "the summary names the flag: {help}");
    // The task's own options first, then the run's, then the mesh's.
    let at = |what: &str| help.find(what).unwrap_or_else(|| panic!("{what:?} in:\n{help}"));
    assert!(at("--difficulty") < at("Run options:") && at("Run options:") < at("--min-peers <N>"), "{help}");
    assert!(at("--min-peers <N>") < at("Mesh options:") && at("Mesh options:") < at("--join <MULTIADDR>"), "{help}");
}

#[test]
fn commands_do_not_list_options_that_do_not_apply_to_them() {
    let (code, help) = Proc::start(&["simulate", "--help"]).output(T).unwrap();
    assert_eq!(code, 0);
    for option in ["--listen", "--join", "--no-mdns"] {
        assert!(!help.contains(option), "simulate lists {option}:\n{help}");
    }
    assert!(help.contains("--secret-file"), "simulate --real takes a secret file:\n{help}");
    let (code, help) = Proc::start(&["peers", "--help"]).output(T).unwrap();
    assert_eq!(code, 0);
    for option in ["--accept-from", "--max-pieces-per-peer", "--max-piece-time"] {
        assert!(!help.contains(option), "peers lists {option}:\n{help}");
    }
    assert!(help.contains("--join"), "{help}");
}
