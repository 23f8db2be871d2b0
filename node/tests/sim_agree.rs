//! The simulator and `--real` run the same scenario and report it the
//! same way: same pieces, same nodes, same faults, no false down
//! judgements, every invariant held. Only timing may differ (real nodes
//! pay real scheduling and loopback costs), and what the two do not both
//! count (advert copies; judgements between workers, which the simulator
//! does not model).

use serde_json::Value;
use std::process::Command;

/// `meshwork simulate --json <words>`, parsed.
fn simulate(words: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_meshwork"))
        .arg("simulate")
        .arg("--json")
        .args(words)
        .output()
        .expect("meshwork runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "meshwork simulate {words:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

#[test]
fn virtual_and_real_runs_of_one_scenario_agree_on_everything_but_timing() {
    let dir = std::env::temp_dir().join(format!("meshwork-sim-agree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("faults.txt");
    std::fs::write(
        &scenario,
        "# a crash, a leave and a join while the jobs run\n300ms crash 4\n400ms leave 5\n500ms join 1\n",
    )
    .unwrap();
    let words = [
        "--nodes",
        "7",
        "--submitters",
        "2",
        "--pieces",
        "120",
        "--piece-cost",
        "uniform:40ms..60ms",
        "--speeds",
        "uniform:0.5..2",
        "--seed",
        "5",
        "--scenario",
        scenario.to_str().unwrap(),
    ];
    let virt = simulate(&words);
    let mut real_words = words.to_vec();
    real_words.push("--real");
    let real = simulate(&real_words);
    std::fs::remove_dir_all(&dir).unwrap();

    for key in ["mode", "nodes", "pieces", "submitters", "seed", "policy", "ideal_s", "pieces_lost", "violations"] {
        assert_eq!(virt[key], real[key], "{key}");
    }
    assert_eq!(real["violations"], Value::Array(vec![]));
    for key in ["crashes", "leaves", "joins", "hangs", "partitions", "false_downs", "disconnects"] {
        assert_eq!(virt["faults"][key], real["faults"][key], "faults.{key}");
    }
    assert_eq!(real["faults"]["false_downs"], 0);
    assert_eq!((real["faults"]["crashes"].as_u64(), real["faults"]["joins"].as_u64()), (Some(1), Some(1)));
    let jobs = |r: &Value| -> Vec<(Value, Value, Value, Value)> {
        let jobs = r["jobs"].as_array().unwrap();
        jobs.iter()
            .map(|j| (j["submitter"].clone(), j["pieces"].clone(), j["outcome"].clone(), j["done"].clone()))
            .collect()
    };
    assert_eq!(jobs(&virt), jobs(&real));
    assert!(jobs(&real).iter().all(|(_, _, outcome, _)| outcome == "ok"), "{:?}", jobs(&real));
    assert_eq!(virt["command"].as_str().unwrap().to_string() + " --real", real["command"].as_str().unwrap());
    let (v, r) = (virt["makespan_s"].as_f64().unwrap(), real["makespan_s"].as_f64().unwrap());
    assert!(r < 2.0 * v + 1.0, "the real run took {r:.3}s, the simulated one {v:.3}s");
}
