//! A broken mesh must not silently become a local run (issue 11, item 2),
//! with real processes on loopback: a `meshwork run --join` that never
//! connects exits 3 naming the address and why (refused, wrong peer id, a
//! handshake that failed on a different `--secret-file`), and so does a
//! run that finds fewer than `--min-peers` peers, unless told
//! `--or-run-anyway`. Each of these used to print a correct result
//! computed by the run's own process alone, and exit 0. A long-running
//! `meshwork node` keeps dialling, but warns why it is not reached.

use meshwork_tests::procs::{identity_file, node, Proc, Spawn, Stderr, Stream};
use std::net::TcpListener;
use std::time::Duration;

/// From start to exit of a run: its `--wait` (2 s) plus the start of a
/// large debug binary on a busy machine.
const T: Duration = Duration::from_secs(60);

/// `meshwork run` on loopback with one slot of its own, through `join`,
/// with `extra` options, counting a few primes: its exit code, stdout and stderr.
fn run(join: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", join, "--slots", "1"];
    args.extend(["--wait", "2"]);
    args.extend_from_slice(extra);
    args.extend(["primes", "--to", "1000", "--pieces", "4"]);
    let mut p = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &args);
    let (code, out) = p.output(T).unwrap_or_else(|e| panic!("meshwork {}: {e}", args.join(" ")));
    (code, out, p.stderr())
}

/// Asserts a run exited 3 without a result, its error holding each of `says`.
fn assert_no_mesh((code, out, err): (i32, String, String), says: &[&str]) {
    assert_eq!(code, 3, "exit code of a run that reached no mesh; stdout {out:?}, stderr:\n{err}");
    assert!(out.is_empty(), "no result from this machine alone: {out:?}");
    for s in says {
        assert!(err.contains(s), "the error says {s:?}:\n{err}");
    }
}

/// A `meshwork node` on loopback with `extra` options whose stderr is
/// kept: the process and its listen address.
fn node_piped(extra: &[&str]) -> (Proc, String) {
    let key = identity_file();
    let mut args = vec!["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", &key];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &args);
    let addr = p.wait_line("listening ", T).expect("node listening");
    let _ = std::fs::remove_file(&key);
    (p, addr)
}

/// A new key file written by `meshwork keygen`.
fn keygen(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("mw-join-{}-{name}.key", std::process::id()));
    let path = path.to_str().unwrap().to_string();
    let _ = std::fs::remove_file(&path);
    let (code, out) = Proc::start(&["keygen", &path]).output(T).unwrap();
    assert_eq!(code, 0, "keygen: {out}");
    path
}

#[test]
fn a_join_address_where_nothing_listens_is_refused_by_name() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let join = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", libp2p::PeerId::random());
    assert_no_mesh(run(&join, &[]), &[&join, "connection refused"]);
}

#[test]
fn a_join_address_with_the_wrong_peer_id_says_who_is_there() {
    let (_node, addr) = node(&[]);
    let (at, real) = addr.rsplit_once("/p2p/").unwrap();
    let join = format!("{at}/p2p/{}", libp2p::PeerId::random());
    assert_no_mesh(run(&join, &[]), &[&join, "wrong peer id", real]);
}

#[test]
fn a_mesh_with_another_secret_fails_the_handshake_and_says_so() {
    let (ours, theirs) = (keygen("ours"), keygen("theirs"));
    let (mut node, addr) = node_piped(&["--secret-file", &theirs]);
    assert_no_mesh(run(&addr, &["--secret-file", &ours]), &[&addr, "handshake failed", "--secret-file"]);
    // The node that was dialled says so too, at the default log level.
    let warned = node.wait_for("the dialled node's warning", T, |l| {
        l.stream == Stream::Stderr && l.text.contains("could not connect") && l.text.contains("--secret-file")
    });
    warned.unwrap_or_else(|e| panic!("{e}:\n{}", node.stderr()));
    assert_no_mesh(run(&addr, &[]), &[&addr, "handshake failed", "--secret-file"]);
    // The same key joins: the check above is about the key, not the node.
    let (code, out, err) = run(&addr, &["--secret-file", &theirs, "--min-peers", "1"]);
    assert_eq!((code, out.as_str()), (0, "168 primes in [0, 1000)"), "{err}");
    for key in [ours, theirs] {
        std::fs::remove_file(key).unwrap();
    }
}

#[test]
fn fewer_than_min_peers_fails_unless_told_to_run_anyway() {
    let (_node, addr) = node(&[]);
    assert_no_mesh(run(&addr, &["--min-peers", "2"]), &["only 1 of 2 peers run primes", "--or-run-anyway"]);
    let (code, out, err) = run(&addr, &["--min-peers", "2", "--or-run-anyway"]);
    assert_eq!((code, out.as_str()), (0, "168 primes in [0, 1000)"), "{err}");
    assert!(err.contains("only 1 of 2 peers run primes"), "a warning says so:\n{err}");
}

#[test]
fn a_node_whose_join_address_refuses_warns_why_and_keeps_running() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let join = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", libp2p::PeerId::random());
    let key = identity_file();
    let args = ["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", &key, "--join", &join];
    let mut node = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &args);
    let warned = node.wait_for("a warning naming the join address", T, |l| {
        l.stream == Stream::Stderr && l.text.contains("cannot reach the mesh")
    });
    let err = node.stderr();
    warned.unwrap_or_else(|e| panic!("{e}:\n{err}"));
    assert!(err.contains(&join) && err.contains("connection refused"), "the warning says where and why:\n{err}");
    assert!(node.pump(), "the node keeps running:\n{err}");
    std::fs::remove_file(&key).unwrap();
}
