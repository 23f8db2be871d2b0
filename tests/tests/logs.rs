//! Log lines of a real `meshwork node` (issue 11, item 4): colour codes
//! only when stderr is a terminal and `NO_COLOR` is not set, so a log file
//! or a pipe gets plain text.

use meshwork_tests::procs::{identity_file, Proc, Spawn, Stderr, Stream};
use std::time::Duration;

/// Start of a large debug binary on a busy machine.
const T: Duration = Duration::from_secs(60);

/// The line a node logs once it runs, its stderr going to `stderr`, with `env` set.
fn node_running_line(stderr: Stderr, env: &[(&str, &str)]) -> String {
    let mut vars = vec![("RUST_LOG".to_string(), "meshwork=info".to_string())];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let how = Spawn { stderr, die_with_parent: true, env: vars, ..Spawn::default() };
    let key = identity_file();
    let mut node = Proc::spawn(&how, &["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", &key]);
    let line = node
        .wait_for("the \"node running\" log line", T, |l| l.stream == Stream::Stderr && l.text.contains("node running"))
        .unwrap_or_else(|e| panic!("{e}\n{}", node.stderr()));
    std::fs::remove_file(&key).unwrap();
    line.text
}

#[test]
fn logs_to_a_pipe_are_plain_text() {
    let line = node_running_line(Stderr::Pipe, &[]);
    assert!(!line.contains('\x1b'), "colour codes in a log going to a pipe: {line:?}");
}

#[test]
fn logs_to_a_terminal_are_coloured_unless_no_color_is_set() {
    let line = node_running_line(Stderr::Terminal, &[]);
    assert!(line.contains('\x1b'), "a terminal gets colours: {line:?}");
    let line = node_running_line(Stderr::Terminal, &[("NO_COLOR", "1")]);
    assert!(!line.contains('\x1b'), "NO_COLOR=1 turns them off: {line:?}");
}
