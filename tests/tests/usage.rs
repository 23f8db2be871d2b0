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
