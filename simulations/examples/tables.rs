//! `cargo run --release -p meshwork-simulations --example tables -- [SECTION...]`:
//! reruns the commands behind the tables of `simulations/README.md` and
//! prints the tables as markdown, so every figure there can be regenerated.
//! Sections: `liveness` (the old failure and the current rule), `scale`
//! (10,000 nodes; minutes), `policies`, `placement`; all by default.
//! Wall times depend on the machine; every other figure on the options only.

use meshwork_simulations::{run, Report, RunReport, SimArgs, SimOutcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let all = ["liveness", "scale", "policies", "placement"];
    let asked: Vec<String> = std::env::args().skip(1).collect();
    let sections: Vec<&str> = if asked.is_empty() { all.to_vec() } else { asked.iter().map(String::as_str).collect() };
    for section in sections {
        match section {
            "liveness" => liveness(),
            "scale" => scale(),
            "policies" => policies(),
            "placement" => placement(),
            other => {
                eprintln!("unknown section {other:?}; expected one of {all:?}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}

/// Runs `meshwork simulate <words>`.
fn simulate(words: &[String]) -> SimOutcome {
    let args = SimArgs::try_parse_from(words).unwrap_or_else(|e| panic!("{words:?}: {e}"));
    run(&args).unwrap_or_else(|e| panic!("{}: {e}", args.repro_command()))
}

fn full(o: &SimOutcome) -> &RunReport {
    match &o.report {
        Report::Run(r) => r,
        Report::Placement(_) => panic!("expected a full simulation"),
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3} s"))
}

fn liveness() {
    let base = "--submitters N --pieces N --piece-cost fixed:30s --piece-timeout 60s";
    println!("Every node submits one 30 s piece, so every node judges every other for 30 s:");
    println!("`meshwork simulate --nodes N {base} [--hosts 1 --colocation-penalty] [--advert-expiry 3s]`\n");
    println!("| nodes | old rule, 1 IP, penalty: judged down (falsely) | disconnects | adverts heard | current rule, 1 IP, penalty: judged down (falsely) | adverts heard | current rule, no penalty: judged down (falsely) | adverts heard |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in [8, 12, 16, 20] {
        let run = |extra: &str| {
            let o = simulate(&words(&format!("--nodes {n} {} {extra}", base.replace('N', &n.to_string()))));
            let r = full(&o);
            assert!(r.violations.is_empty(), "{}: {:?}", r.command, r.violations);
            let heard =
                format!("{} of {}", r.messages.adverts_delivered.unwrap_or(0), r.messages.adverts * (n - 1) as u64);
            (format!("{} ({})", r.faults.marked_down, r.faults.false_downs), r.faults.disconnects, heard)
        };
        let old = run("--hosts 1 --colocation-penalty --advert-expiry 3s");
        let current = run("--hosts 1 --colocation-penalty");
        let lan = run("");
        println!("| {n} | {} | {} | {} | {} | {} | {} | {} |", old.0, old.1, old.2, current.0, current.2, lan.0, lan.2);
    }
    println!();
}

fn scale() {
    let cmd =
        "--nodes 10000 --pieces 1000000 --piece-cost uniform:50ms..150ms --speeds uniform:0.5..2 --slots 2 --churn 5%";
    println!("`meshwork simulate {cmd} --seed S`\n");
    println!("| seed | wall | events | events/s | makespan | ideal | ratio | retried | backups (won) | judged down (falsely) | messages/node/s | lost |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    // One seed: a 10,000-node run takes minutes of wall time.
    {
        let seed = 1;
        let o = simulate(&words(&format!("{cmd} --seed {seed}")));
        let r = full(&o);
        let wall = o.wall.as_secs_f64();
        println!(
            "| {seed} | {wall:.1} s | {:.2} M | {:.0} k | {} | {:.3} s | {} | {} | {} ({}) | {} ({}) | {:.0} | {} |",
            o.events as f64 / 1e6,
            o.events as f64 / wall / 1e3,
            secs(r.makespan_s),
            r.ideal_s,
            r.makespan_over_ideal.map_or("-".into(), |v| format!("{v:.3}")),
            r.pieces_retried,
            r.backups_launched,
            r.backups_won,
            r.faults.marked_down,
            r.faults.false_downs,
            r.messages.per_node_per_s,
            r.pieces_lost
        );
        let m = &r.messages;
        println!(
            "\nmessages: {} requests, {} responses, {} adverts published, {} copies, {} IWANTs, {} delivered; \
             utilization {:.1} %; {} crashed, {} left, {} joined",
            m.requests,
            m.responses,
            m.adverts,
            m.advert_copies.unwrap_or(0),
            m.gossip_iwants.unwrap_or(0),
            m.adverts_delivered.unwrap_or(0),
            r.utilization_mean * 100.0,
            r.faults.crashes,
            r.faults.leaves,
            r.faults.joins
        );
    }
    println!();
}

fn policies() {
    let cmd = "--nodes 200 --pieces 20000 --submitters 8 --slots 4 --advert-delay 500ms --advert-interval 1s";
    println!("`meshwork simulate {cmd} --policy P --json`\n");
    println!("| policy | makespan | / ideal | peak load | max/mean load | utilization | messages/piece |");
    println!("|---|---|---|---|---|---|---|");
    for policy in ["p2c", "least-loaded", "random", "round-robin"] {
        let o = simulate(&words(&format!("{cmd} --policy {policy}")));
        let r = full(&o);
        println!(
            "| {policy} | {} | {} | {} | {:.2} | {:.1} % | {:.2} |",
            secs(r.makespan_s),
            r.makespan_over_ideal.map_or("-".into(), |v| format!("{v:.3}")),
            r.load.peak,
            r.load.max_over_mean,
            r.utilization_mean * 100.0,
            r.messages.per_piece
        );
    }
    println!();
}

fn placement() {
    println!("`meshwork simulate --placement-only --nodes 10000 --pieces 10000 --policy P --seed 3`\n");
    println!("| policy | max | max − mean | theory |");
    println!("|---|---|---|---|");
    for policy in ["p2c", "random", "least-loaded", "round-robin"] {
        let o = simulate(&words(&format!("--placement-only --nodes 10000 --pieces 10000 --policy {policy} --seed 3")));
        let Report::Placement(p) = &o.report else { panic!("expected placement") };
        let theory = p.predicted_gap.map_or("-".into(), |g| format!("{g:.1}"));
        println!("| {policy} | {} | {:.2} | {theory} |", p.max, p.gap);
    }
    println!();
}
