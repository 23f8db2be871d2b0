//! Several `meshwork node` processes on one machine (issue 11, item 3):
//! each used to load the same default identity file and appear to the
//! mesh as one peer. The file is now locked while a node runs: a second
//! node given the same `--identity` refuses to start, and a second node
//! left to the default gets an identity of its own.

use meshwork_tests::procs::{identity_file, Proc, Spawn, Stderr};
use std::time::Duration;

/// Start of a large debug binary on a busy machine.
const T: Duration = Duration::from_secs(60);

/// Starts `meshwork node` on loopback with `args`, its data directory (the
/// default identity's home) in `data`; waits for its peer id.
fn start(data: &str, args: &[&str]) -> (Proc, String) {
    let mut all = vec!["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];
    all.extend_from_slice(args);
    let how = Spawn {
        stderr: Stderr::Pipe,
        die_with_parent: true,
        env: vec![("XDG_DATA_HOME".into(), data.into())],
        ..Spawn::default()
    };
    let mut p = Proc::spawn(&how, &all);
    let addr = p.wait_line("listening ", T).unwrap_or_else(|e| panic!("node {all:?}: {e}\n{}", p.stderr()));
    let peer = addr.rsplit('/').next().unwrap().to_string();
    (p, peer)
}

/// A fresh directory to stand for a machine's data directory.
fn data_dir(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("mw-identity-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.to_str().unwrap().to_string()
}

#[test]
fn a_second_node_with_the_same_identity_file_refuses_to_start() {
    let data = data_dir("explicit");
    let key = identity_file();
    let (_first, _) = start(&data, &["--identity", &key]);
    let how = Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() };
    let args = ["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", &key];
    let mut second = Proc::spawn(&how, &args);
    let (code, out) = second.output(T).unwrap_or_else(|e| panic!("the second node: {e}\n{}", second.stderr()));
    let err = second.stderr();
    assert_eq!(code, 3, "exit code; stdout {out:?}, stderr:\n{err}");
    assert!(err.contains(&key) && err.contains("in use"), "the error names the file in use:\n{err}");
    std::fs::remove_file(&key).unwrap();
}

#[test]
fn nodes_left_to_the_default_identity_are_different_peers_and_the_first_keeps_it() {
    let data = data_dir("default");
    let (first, a) = start(&data, &[]);
    let (_second, b) = start(&data, &[]);
    assert_ne!(a, b, "two nodes on one machine, one peer id");
    // The file is the first node's: a node started once it has stopped is
    // the same peer again.
    drop(first);
    let (_third, c) = start(&data, &[]);
    assert_eq!(c, a, "the default identity is kept across restarts");
    std::fs::remove_dir_all(&data).unwrap();
}
