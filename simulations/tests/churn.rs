//! Under churn (crashes and graceful leaves, each replaced by a fresh
//! node) no piece is lost, every job completes, and retries go elsewhere.

mod common;
use common::{check_ok, simulate};

#[test]
fn no_piece_is_lost_under_five_percent_churn() {
    for seed in ["1", "2", "3", "4"] {
        let (args, r) = simulate(&[
            "--nodes",
            "200",
            "--pieces",
            "20000",
            "--churn",
            "5%",
            "--speeds",
            "uniform:0.5..2",
            "--seed",
            seed,
        ]);
        check_ok(&args, &r);
        assert_eq!(r.faults.crashes + r.faults.leaves, 10, "seed {seed}");
        assert!(r.faults.joins >= 5, "seed {seed}: replacements joined (those due after the end do not)");
        assert!(r.pieces_retried >= 1, "seed {seed}: crashes cost pieces that were retried");
        let ratio = r.makespan_over_ideal.unwrap();
        assert!(ratio < 1.3, "seed {seed}: makespan {ratio:.3} × ideal\nrepro: {}", args.repro_command());
    }
}

#[test]
fn heavy_churn_and_loss_still_lose_nothing() {
    let (args, r) = simulate(&[
        "--nodes",
        "80",
        "--pieces",
        "4000",
        "--churn",
        "40%",
        "--loss",
        "1%",
        "--piece-timeout",
        "2s",
        "--speeds",
        "lognormal:1,0.5",
        "--seed",
        "11",
    ]);
    check_ok(&args, &r);
    assert!(r.messages.lost > 0);
}

#[test]
fn a_hung_node_is_detected_and_its_pieces_move() {
    let (args, r) = simulate(&[
        "--nodes",
        "20",
        "--pieces",
        "1000",
        "--scenario",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios/hang.txt"),
    ]);
    check_ok(&args, &r);
    assert_eq!(r.faults.hangs, 3);
    assert!(r.faults.marked_down >= 3, "probes found the hung nodes: {:?}", r.faults);
    assert_eq!(r.faults.false_downs, 0, "only the hung nodes were judged down: {:?}", r.faults);
    assert!(r.pieces_retried >= 3, "their pieces went elsewhere");
}
