//! README's first command, `meshwork demo`: a real 4-node mesh on this
//! machine counts the primes below 20,000,000 and prints the README's line.

use std::process::Command;

#[test]
fn the_demo_prints_the_readme_result_from_a_real_mesh() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshwork")).arg("demo").output().expect("meshwork runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "meshwork demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1270607 primes in [0, 20000000)"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The result came from a mesh: the three node processes started, and
    // pieces ran on at least three peers (the summary's "per peer: id n, ...").
    let listening = stderr.lines().filter(|l| l.contains(") listening on ")).count();
    assert_eq!(listening, 3, "stderr:\n{stderr}");
    let per_peer = stderr
        .lines()
        .find_map(|l| l.split("per peer: ").nth(1))
        .and_then(|rest| rest.split(" · ").next())
        .unwrap_or_else(|| panic!("no per-peer summary:\n{stderr}"));
    let busy = per_peer.split(", ").filter(|e| e.rsplit(' ').next().is_some_and(|n| n != "0")).count();
    assert!(busy >= 3, "pieces ran on {busy} peers only: {per_peer}");
}
