//! The node as a service (issue 15), on real `meshwork node` processes on
//! loopback: its HTTP API (`/api/peers`, `/metrics` read with a real
//! Prometheus parser), who may use it (bearer tokens off loopback), and
//! its logs (plain text in a file, JSON lines with `--log-format json`).

use meshwork_tests::api::{get, request_with, scrape, value};
use meshwork_tests::node_proc::{local_mesh, NodeProc};
use meshwork_tests::procs::{identity_file, meshwork_bin, peers_json, Proc, Spawn, Stderr, Stream};
use meshwork_tests::run_proc::{Local, RunProc};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Start of large debug binaries on a busy machine, a mesh forming, a small job.
const T: Duration = Duration::from_secs(60);

fn pieces(scrape: &prometheus_parse::Scrape, outcome: &str) -> f64 {
    value(scrape, "meshwork_pieces_total", &[("task", "primes"), ("outcome", outcome)])
}

#[test]
fn metrics_count_the_pieces_each_worker_ran() {
    let mut nodes = local_mesh(2, &[], T);
    let urls: Vec<String> = nodes.iter_mut().map(NodeProc::http_url).collect();
    let before: Vec<_> = urls.iter().map(|u| scrape(u)).collect();
    let pieces_in_job = 12;
    let job = ["--no-backups", "primes", "--to", "120000", "--pieces", "12"];
    let out = RunProc::start_local_as(&nodes[0].addr, Local { slots: 0, explain: false }, &job).finish(T).unwrap();
    out.assert_exact(pieces_in_job);
    for (i, node) in nodes.iter().enumerate() {
        let after = scrape(&urls[i]);
        let ran = pieces(&after, "done") - pieces(&before[i], "done");
        assert_eq!(
            ran as u64,
            out.pieces_of(&node.peer),
            "{}: pieces it ran, by its metrics and by the run",
            node.label
        );
        assert_eq!(pieces(&after, "failed"), 0.0, "{}", node.label);
        for direction in ["in", "out"] {
            let bytes = |s| value(s, "meshwork_rpc_bytes_total", &[("direction", direction)]);
            // Each piece's request and answer carry at least a frame header.
            let moved = bytes(&after) - bytes(&before[i]);
            assert!(moved >= 4.0 * ran, "{}: {moved} RPC bytes {direction} for {ran} pieces", node.label);
        }
        assert_eq!(value(&after, "meshwork_slots", &[]), 1.0, "{}", node.label);
        assert_eq!(value(&after, "meshwork_live_peers", &[]), 1.0, "{}: the other node", node.label);
        let rtt = after.samples.iter().find(|s| s.metric == "meshwork_rpc_round_trip_seconds");
        match rtt.map(|s| &s.value) {
            Some(prometheus_parse::Value::Histogram(buckets)) => {
                assert!(buckets.last().is_some_and(|b| b.less_than == f64::INFINITY && b.count >= 1.0), "{buckets:?}")
            }
            other => panic!("{}: no round-trip histogram (the greeting Status was answered): {other:?}", node.label),
        }
    }
}

#[test]
fn api_peers_is_what_meshwork_peers_prints() {
    let mut nodes = local_mesh(3, &[], T);
    let url = nodes[0].http_url();
    let r = get(&url, "/api/peers", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let api: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let ids = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|p| p["peer_id"].as_str().unwrap().to_string()).collect()
    };
    let others: BTreeSet<String> = nodes[1..].iter().map(|n| n.peer.clone()).collect();
    assert_eq!(ids(&api), others, "node 0 lists the other nodes: {api:#}");
    let (code, printed) = peers_json(&nodes[0].addr, 5, T);
    assert_eq!(code, 0, "{printed}");
    let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let fields = |v: &serde_json::Value| -> BTreeSet<String> { v[0].as_object().unwrap().keys().cloned().collect() };
    assert_eq!(fields(&api), fields(&printed), "the same rows as `meshwork peers --json`");
    assert!(ids(&printed).is_superset(&ids(&api)));
}

#[test]
fn two_nodes_left_to_the_default_address_both_serve() {
    let mut a = NodeProc::start_local("node a", None, &[]);
    let mut b = NodeProc::start_local("node b", None, &[]);
    let (ua, ub) = (a.http_url(), b.http_url());
    assert_ne!(ua, ub);
    for url in [&ua, &ub] {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert_eq!(get(url, "/metrics", None).status, 200, "{url}");
    }
}

/// A token file holding `token`, removed when dropped.
struct TokenFile(String);

impl TokenFile {
    fn new(token: &str) -> TokenFile {
        let path = format!("{}.token", identity_file());
        std::fs::write(&path, format!("{token}\n")).unwrap();
        TokenFile(path)
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn off_loopback_a_token_is_required_and_every_request_must_carry_it() {
    let how = Spawn { stderr: Stderr::Pipe, ..Spawn::default() };
    let mut refused = Proc::spawn(&how, &["node", "--no-mdns", "--http", "0.0.0.0:0"]);
    assert_eq!(refused.output(T).unwrap().0, 2, "refused before starting, as bad arguments");
    assert!(refused.stderr().contains("--http-token-file"), "says what to do: {}", refused.stderr());

    let token = TokenFile::new("correct-horse");
    let mut node = NodeProc::start_local("node", None, &["--http", "127.0.0.1:0", "--http-token-file", &token.0]);
    let url = node.http_url();
    for path in ["/api/peers", "/metrics"] {
        assert_eq!(get(&url, path, None).status, 401, "{path} without a token");
        assert_eq!(get(&url, path, Some("correct-horsf")).status, 401, "{path} with a wrong token");
        assert_eq!(get(&url, path, Some("correct-horse")).status, 200, "{path} with the token");
    }
    // A browser: the token once in the URL, then the cookie it was given.
    let wrong = request_with("GET", &url, "/?token=correct-horsf", &[], None);
    assert_eq!(wrong.status, 401, "a wrong token in the URL");
    let first = request_with("GET", &url, "/?token=correct-horse", &[], None);
    assert_eq!(first.status, 200, "the page, with the token in its URL");
    let cookie = first.head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).expect("a cookie");
    assert!(cookie.starts_with("meshwork_token=correct-horse;") && cookie.contains("HttpOnly"), "{cookie}");
    let with = |c: &str| request_with("GET", &url, "/api/peers", &[("Cookie", c)], None).status;
    assert_eq!(with("meshwork_token=correct-horse"), 200, "the page's later requests carry the cookie");
    assert_eq!(with("other=1; meshwork_token=correct-horsf"), 401, "a wrong cookie");

    // An address given explicitly and taken: an error, not another port.
    let taken = url.strip_prefix("http://").unwrap();
    let mut clash = Proc::spawn(&how, &["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", taken]);
    assert_eq!(clash.output(T).unwrap().0, 3, "{}", clash.stderr());
    assert!(clash.stderr().contains(taken), "names the address: {}", clash.stderr());
}

#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let path = format!("{}.log", identity_file());
    let key = identity_file();
    let mut child = std::process::Command::new(meshwork_bin())
        .args(["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", &key])
        .env("RUST_LOG", "meshwork=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    let log = loop {
        let log = std::fs::read_to_string(&path).unwrap();
        if log.contains("node running") {
            break log;
        }
        assert!(Instant::now() < deadline, "no \"node running\" line in the log within {T:?}: {log:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&key);
    assert!(!log.contains("\x1b["), "colour codes in a log file: {log:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let how = Spawn {
        stderr: Stderr::Terminal,
        env: vec![("RUST_LOG".into(), "meshwork=info".into())],
        die_with_parent: true,
        ..Spawn::default()
    };
    let key = identity_file();
    let args = ["--log-format", "json", "node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", &key];
    let mut node = Proc::spawn(&how, &args);
    node.wait_for("the \"node running\" log line", T, |l| {
        l.stream == Stream::Stderr && l.text.contains("node running")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", node.stderr()));
    std::fs::remove_file(&key).unwrap();
    let stderr = node.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(!stderr.contains('\x1b'), "no colour codes, even on a terminal: {stderr:?}");
}
