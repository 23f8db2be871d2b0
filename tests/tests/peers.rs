//! `meshwork peers` on real processes (issue 11, rough edges): the nodes
//! of the mesh with the version each runs, and not the short-lived clients
//! (`meshwork run`) that came and went.

use meshwork_tests::procs::{node, peers_json, Proc};
use std::time::Duration;

/// Start of large debug binaries on a busy machine, and a small job.
const T: Duration = Duration::from_secs(60);

#[test]
fn peers_lists_the_nodes_with_their_version_and_not_the_clients_that_left() {
    let (_node, addr) = node(&["--slots", "1"]);
    let id = addr.rsplit("/p2p/").next().unwrap().to_string();
    for slots in ["0", "1"] {
        let run = ["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", &addr, "--slots", slots];
        let (code, out) =
            Proc::start(&[&run[..], &["sleep", "--ms", "10", "--pieces", "2"]].concat()).output(T).unwrap();
        assert_eq!(code, 0, "{out}");
    }
    let (code, json) = peers_json(&addr, 5, T);
    assert_eq!(code, 0, "{json}");
    let peers: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = peers.as_array().unwrap().iter().filter_map(|p| p["peer_id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()], "only the node, not the runs that left: {json}");
    let (_, version) = Proc::start(&["--version"]).output(T).unwrap();
    let version = version.trim().strip_prefix("meshwork ").unwrap();
    assert_eq!(peers[0]["version"], format!("meshwork/{version}"), "{json}");
}
