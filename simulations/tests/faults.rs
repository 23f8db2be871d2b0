//! Scripted faults: partitions, hangs, crashes, leaves, joins.

mod common;
use common::{check_ok, simulate};

fn scenario(name: &str) -> String {
    format!("{}/tests/scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_partition_then_heal_still_completes_the_job_correctly() {
    let path = scenario("partition.txt");
    let (args, r) = simulate(&["--nodes", "100", "--pieces", "6000", "--scenario", &path]);
    check_ok(&args, &r);
    assert_eq!(r.faults.partitions, 1);
    assert!(r.faults.marked_down >= 40, "the cut-off half was judged down: {:?}", r.faults);
    assert_eq!(r.faults.false_downs, 0, "and nobody on the submitter's side: {:?}", r.faults);
    assert!(r.pieces_retried >= 1, "pieces held across the cut were retried");
    // 6000 pieces of ~100 ms on 100 nodes is ~6 s of work; half the mesh is
    // gone for 5 s (longer than a probe's timeout, so all of it is judged
    // down), then comes back after the heal.
    let m = r.makespan_s.unwrap();
    assert!(m > 6.5 && m < 12.0, "makespan {m}");
}

#[test]
fn a_mixed_scenario_runs_every_kind_of_fault() {
    let path = scenario("mixed.txt");
    let (args, r) = simulate(&["--nodes", "60", "--pieces", "3000", "--scenario", &path, "--seed", "5"]);
    check_ok(&args, &r);
    let f = &r.faults;
    assert_eq!((f.crashes, f.leaves, f.joins, f.hangs, f.partitions), (1, 3, 5, 1, 1), "{f:?}");
    assert_eq!(f.false_downs, 0, "{f:?}");
}

#[test]
fn a_scenario_naming_a_missing_node_is_an_error_with_its_line() {
    let path = std::env::temp_dir().join(format!("meshwork-sim-bad-{}.txt", std::process::id()));
    std::fs::write(&path, "# nodes 0..9 exist\n1s crash 3\n2s crash 12\n").unwrap();
    let args = meshwork_simulations::SimArgs::try_parse_from([
        "--nodes",
        "10",
        "--pieces",
        "500",
        "--scenario",
        path.to_str().unwrap(),
    ])
    .unwrap();
    let err = meshwork_simulations::run(&args).unwrap_err().to_string();
    std::fs::write(&path, "1s crash 3\n2s explode 4\n").unwrap();
    let err2 = meshwork_simulations::run(&args).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(err.contains("line 3: node 12 does not exist"), "{err}");
    assert!(err2.contains("line 2: unknown event \"explode\""), "{err2}");
}
