//! meshwork across NATs: real `meshwork` processes in private networks
//! behind NAT routers of the lab (`meshwork_tests::lab::nat`), reaching
//! each other through a relay on the public network (`meshwork node
//! --relay`) and, where the NATs allow, directly once DCUtR punched a hole.
//!
//! Every scenario checks the job's result (each piece once, the right
//! total) and the path the pieces took, as the NATed worker reports it:
//! `piece_path` (the first pieces from a peer and each change of path),
//! `pieces_from` (pieces per path, once the submitter's last connection
//! closed) and `hole_punch` events of `meshwork node --json`. The figures
//! (time to the first piece on the NATed worker, relayed/direct shares)
//! are printed with `eprintln!` (`--nocapture`); the hole-punch success
//! rate over 20 tries per pair of NAT kinds is the ignored
//! `hole_punch_success_rate` (`--ignored --nocapture`).
//!
//! Needs root, `ip netns` and `nft` with NAT support (skipped with a
//! message otherwise, failed under `CI=true`).

use meshwork_tests::lab::nat::{NatKind, NatLab};
use meshwork_tests::node_proc::{short, NodeProc};
use meshwork_tests::procs::{Spawn, Stream};
use meshwork_tests::run_proc::{RunOutput, RunProc};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
/// Deadline of a whole job.
const JOB: Duration = Duration::from_secs(90);

/// The JSON events named `kind` a node printed so far, with their arrival.
fn events(node: &mut NodeProc, kind: &str) -> Vec<(Instant, Value)> {
    node.proc.pump();
    let parse = |text: &str| serde_json::from_str::<Value>(text).ok().filter(|v| v["event"] == kind);
    node.proc.log.iter().filter(|l| l.stream == Stream::Stdout).filter_map(|l| Some((l.at, parse(&l.text)?))).collect()
}

/// Waits for an event named `kind` that `matches` (already printed or new).
fn wait_event(
    node: &mut NodeProc,
    kind: &str,
    timeout: Duration,
    matches: impl Fn(&Value) -> bool,
) -> (Instant, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(e) = events(node, kind).into_iter().find(|(_, v)| matches(v)) {
            return e;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let label = node.label.clone();
        let found = node.proc.wait_for(kind, left, |l| l.text.contains(&format!("\"event\":\"{kind}\"")));
        if let Err(e) = found {
            panic!("{label}: no matching {kind} event: {e}");
        }
    }
}

/// The public relay node (no slots: it takes no pieces), `extra` arguments.
fn relay(lab: &NatLab, extra: &[&str]) -> NodeProc {
    let mut args = vec!["--relay", "--slots", "0", "--no-mdns"];
    args.extend_from_slice(extra);
    lab.node(lab.public[0], &args)
}

/// A two-slot worker on `host` (behind a NAT) joining through `relay`;
/// returns once it listens through the relay.
fn natted_worker(lab: &NatLab, host: usize, relay: &NodeProc, extra: &[&str]) -> NodeProc {
    let mut args = vec!["--no-mdns", "--join", &relay.addr, "--slots", "2"];
    args.extend_from_slice(extra);
    let mut worker = lab.node(host, &args);
    wait_event(&mut worker, "relayed", T, |_| true);
    worker
}

/// `meshwork run --json --explain` on `host`, submitting only, joining
/// through `relay`, waiting for `min_peers` workers at most `wait` seconds;
/// `args` are more options and the task with its arguments.
fn submit(lab: &NatLab, host: usize, relay: &NodeProc, min_peers: u32, wait: u32, args: &[&str]) -> RunProc {
    let listen = format!("/ip4/{}/tcp/0", lab.host(host).ip);
    let (min, wait) = (min_peers.to_string(), wait.to_string());
    let mut all = vec!["run", "--no-mdns", "--listen", &listen, "--join", &relay.addr, "--slots", "0"];
    all.extend(["--min-peers", &min, "--wait", &wait, "--json", "--explain"]);
    all.extend_from_slice(args);
    let how = Spawn { netns: Some(lab.host(host).ns.clone()), die_with_parent: true, ..Spawn::default() };
    RunProc::spawn(how, format!("meshwork run on host {host}"), &all)
}

/// A finished `sleep` job: exit 0, every piece once, the total right.
fn finished_sleep(job: &mut RunProc, pieces: u64, ms: u64) -> RunOutput {
    let out = job.finish(JOB).unwrap();
    out.assert_exact(pieces);
    assert_eq!(out.result("total_ms"), Some(pieces * ms), "{}", out.json);
    out
}

/// What a worker said about the pieces of the one submitter it served:
/// when the first arrived, the paths in order, and (direct, relayed) counts.
struct PiecesSeen {
    first: Instant,
    paths: Vec<String>,
    direct: u64,
    relayed: u64,
}

/// Waits until `worker` counted the pieces of the submitter that sent it
/// pieces (its `pieces_from`, once that submitter's connections closed).
fn pieces_seen(worker: &mut NodeProc) -> PiecesSeen {
    let (_, counts) = wait_event(worker, "pieces_from", T, |_| true);
    let peer = counts["peer"].as_str().expect("a peer id").to_string();
    let paths = events(worker, "piece_path");
    let mine: Vec<&(Instant, Value)> = paths.iter().filter(|(_, v)| v["peer"] == peer.as_str()).collect();
    PiecesSeen {
        first: mine.first().expect("a piece_path event before pieces_from").0,
        paths: mine.iter().map(|(_, v)| v["path"].as_str().unwrap_or("?").to_string()).collect(),
        direct: counts["direct"].as_u64().expect("a count"),
        relayed: counts["relayed"].as_u64().expect("a count"),
    }
}

fn share(seen: &PiecesSeen) -> String {
    let all = (seen.direct + seen.relayed).max(1) as f64;
    format!(
        "{} relayed ({:.0}%), {} direct ({:.0}%)",
        seen.relayed,
        100.0 * seen.relayed as f64 / all,
        seen.direct,
        100.0 * seen.direct as f64 / all
    )
}

/// The outcomes of `worker`'s hole punches with `peer` (Ok: direct).
fn punches(worker: &mut NodeProc, peer: &str) -> Vec<Result<(), String>> {
    let about = |(_, v): (Instant, Value)| {
        (v["peer"] == peer).then(|| v["error"].as_str().map_or(Ok(()), |e| Err(e.to_string())))
    };
    events(worker, "hole_punch").into_iter().filter_map(about).collect()
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// The submitter can only dial the worker's relayed address; DCUtR then
/// punches a hole (a `hole_punch` event only follows a relayed connection)
/// and the relayed connection is closed. In the lab the hole is punched
/// within milliseconds, before the first piece is sent, so every piece
/// usually goes direct; pieces sent before it would count as relayed.
#[test]
fn nat_a_worker_behind_a_cone_nat_takes_work_through_a_punched_hole() {
    let Some(lab) = NatLab::new(1, &[(NatKind::Cone, 1), (NatKind::Cone, 1)]) else { return };
    let mut relay = relay(&lab, &[]);
    let mut worker = natted_worker(&lab, lab.inside(1, 0), &relay, &[]);
    let mut job = submit(&lab, lab.inside(0, 0), &relay, 1, 20, &["sleep", "--ms", "100", "--pieces", "40"]);
    finished_sleep(&mut job, 40, 100);
    let seen = pieces_seen(&mut worker);
    let submitter = events(&mut worker, "pieces_from")[0].1["peer"].as_str().unwrap().to_string();
    let punched = punches(&mut worker, &submitter);
    eprintln!(
        "scenario 1 (cone ↔ cone): first piece on the NATed worker {} after the submitter started; pieces {}; \
         paths {:?}; hole punches {:?}",
        secs(seen.first.saturating_duration_since(job.started)),
        share(&seen),
        seen.paths,
        punched
    );
    assert!(punched.contains(&Ok(())), "a cone NAT on both sides lets DCUtR punch a hole: {punched:?}");
    assert_eq!(seen.paths.last().map(String::as_str), Some("direct"), "pieces end up direct: {:?}", seen.paths);
    assert!(seen.direct > 0, "{}", share(&seen));

    // AutoNAT: the relay finds itself reachable, the worker behind a NAT.
    wait_event(&mut relay, "reachability", T, |v| v["reachability"] == "public");
    wait_event(&mut worker, "reachability", T, |v| v["reachability"] == "behind-nat");
}

#[test]
fn nat_a_symmetric_nat_defeats_hole_punching_and_pieces_stay_relayed() {
    let Some(lab) = NatLab::new(1, &[(NatKind::Cone, 1), (NatKind::Symmetric, 1)]) else { return };
    let relay = relay(&lab, &[]);
    let (cone, symmetric) = (lab.inside(0, 0), lab.inside(1, 0));
    // Both ways: a worker behind each NAT, a job from behind the other one.
    for (worker_host, submitter_host, name) in
        [(symmetric, cone, "cone → symmetric"), (cone, symmetric, "symmetric → cone")]
    {
        let mut worker = natted_worker(&lab, worker_host, &relay, &[]);
        let mut job = submit(&lab, submitter_host, &relay, 1, 20, &["sleep", "--ms", "50", "--pieces", "20"]);
        finished_sleep(&mut job, 20, 50);
        let seen = pieces_seen(&mut worker);
        let submitter = events(&mut worker, "pieces_from")[0].1["peer"].as_str().unwrap().to_string();
        let punched = punches(&mut worker, &submitter);
        eprintln!(
            "scenario 2 ({name}): first piece on the NATed worker {} after the submitter started; pieces {}; \
             hole punches {:?}",
            secs(seen.first.saturating_duration_since(job.started)),
            share(&seen),
            punched
        );
        // Expected: relayed. The symmetric NAT gives each connection a new
        // port, so the addresses exchanged through the relay are wrong.
        assert!(!punched.contains(&Ok(())), "no hole through a symmetric NAT: {punched:?}");
        assert_eq!((seen.direct, seen.relayed), (0, 20), "every piece relayed: {}", share(&seen));
        drop(worker);
    }
}

#[test]
fn nat_the_relay_killed_mid_job_direct_work_goes_on_and_relayed_pieces_are_retried() {
    let nats = [(NatKind::Cone, 1), (NatKind::Cone, 1), (NatKind::Symmetric, 1)];
    let Some(lab) = NatLab::new(1, &nats) else { return };
    let relay = relay(&lab, &[]);
    let mut direct = natted_worker(&lab, lab.inside(1, 0), &relay, &[]);
    let relayed = natted_worker(&lab, lab.inside(2, 0), &relay, &[]);
    let start = Instant::now();
    let mut job =
        submit(&lab, lab.inside(0, 0), &relay, 2, 20, &["--no-backups", "sleep", "--ms", "300", "--pieces", "40"]);
    job.wait_placed_on(&relayed.peer, start, T).unwrap();
    job.wait_placed_on(&direct.peer, start, T).unwrap();
    let submitter =
        wait_event(&mut direct, "piece_path", T, |v| v["path"] == "direct").1["peer"].as_str().unwrap().to_string();
    relay.proc.signal(libc::SIGKILL);
    let killed = Instant::now();
    let out = finished_sleep(&mut job, 40, 300);
    let retried = out.retried_on(&relayed.peer);
    let elsewhere: Vec<_> = out.retries().into_iter().filter(|r| r.2 != relayed.peer).collect();
    let after = out.placed_on_after(&direct.peer, killed);
    eprintln!(
        "scenario 3 (relay killed): {} pieces of the relayed worker retried ({}), the direct worker took {} \
         pieces after the kill; pieces per worker: direct {} / relayed {}; job {:.2}s",
        retried.len(),
        retried
            .first()
            .map_or("-".into(), |r| format!("first {} after the kill", secs(r.0.saturating_duration_since(killed)))),
        after,
        out.pieces_of(&direct.peer),
        out.pieces_of(&relayed.peer),
        out.wall_s()
    );
    assert!(!retried.is_empty(), "the relayed worker's pieces were retried: {}", out.json);
    assert!(elsewhere.is_empty(), "pieces retried away from the direct worker: {elsewhere:?}");
    assert!(after > 0, "the direct worker kept taking pieces after the relay died: {}", out.json);
    assert!(punches(&mut direct, &submitter).contains(&Ok(())));
}

#[test]
fn nat_a_router_dropping_everything_for_10s_gets_its_worker_marked_down_and_back() {
    let nats = [(NatKind::Cone, 1), (NatKind::Cone, 1), (NatKind::Cone, 1)];
    let Some(lab) = NatLab::new(1, &nats) else { return };
    let relay = relay(&lab, &[]);
    let victim = natted_worker(&lab, lab.inside(1, 0), &relay, &[]);
    let other = natted_worker(&lab, lab.inside(2, 0), &relay, &[]);
    let start = Instant::now();
    let mut job =
        submit(&lab, lab.inside(0, 0), &relay, 2, 20, &["--no-backups", "sleep", "--ms", "300", "--pieces", "60"]);
    job.wait_placed_on(&victim.peer, start, T).unwrap();
    lab.unplug(1);
    let cut = Instant::now();
    let out = finished_sleep(&mut job, 60, 300);
    let outage = Duration::from_secs(10).saturating_sub(cut.elapsed());
    std::thread::sleep(outage); // the fault's length, not a synchronisation
    lab.replug(1);
    let healed = Instant::now();
    let retried = out.retried_on(&victim.peer);
    assert!(!retried.is_empty(), "the cut-off worker's pieces were re-placed: {}", out.json);
    let elsewhere: Vec<_> = out.retries().into_iter().filter(|r| r.2 != victim.peer).collect();
    assert!(elsewhere.is_empty(), "pieces retried away from the healthy worker: {elsewhere:?}");
    let replaced = retried[0].0.saturating_duration_since(cut);

    // Back: a new job reaches the victim again.
    let mut again = submit(&lab, lab.inside(0, 0), &relay, 2, 20, &["sleep", "--ms", "100", "--pieces", "20"]);
    let back = again.wait_placed_on(&victim.peer, healed, T).unwrap();
    finished_sleep(&mut again, 20, 100);
    eprintln!(
        "scenario 4 (router drops all for 10s): pieces re-placed {} after the cut ({} retried, cause {:?}); \
         job {:.2}s; a new job placed pieces on it {} after the router forwarded again; other worker {}",
        secs(replaced),
        retried.len(),
        retried[0].2,
        out.wall_s(),
        secs(back.at.saturating_duration_since(healed)),
        short(&other.peer)
    );
}

#[test]
fn nat_a_relay_without_the_mesh_key_cannot_relay_into_a_private_mesh() {
    let Some(lab) = NatLab::new(2, &[(NatKind::Cone, 1), (NatKind::Cone, 1)]) else { return };
    let dir = std::env::temp_dir().join(format!("mwnat-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("swarm.key");
    let key = key.to_str().unwrap();
    let status =
        std::process::Command::new(meshwork_tests::procs::meshwork_bin()).args(["keygen", key]).status().unwrap();
    assert!(status.success());
    let private = ["--secret-file", key];

    // A relay outside the mesh (no key): the worker cannot even reach it.
    let mut outsider = relay(&lab, &[]);
    let mut worker_args = vec!["--no-mdns", "--join", &outsider.addr, "--slots", "2"];
    worker_args.extend(private);
    let mut worker = lab.node(lab.inside(1, 0), &worker_args);
    let mut args = vec!["--or-run-anyway"];
    args.extend(private);
    args.extend(["sleep", "--ms", "10", "--pieces", "4"]);
    let mut job = submit(&lab, lab.inside(0, 0), &outsider, 1, 5, &args);
    let out = job.finish(JOB).unwrap();
    assert_ne!(out.code, 0, "no worker reachable, the job cannot run: {}", out.json);
    assert!(events(&mut worker, "relayed").is_empty(), "the worker listened through a relay without the key");
    assert!(events(&mut worker, "piece_path").is_empty(), "the worker got pieces");
    outsider.proc.pump();
    let log = outsider.proc.stderr();
    assert!(log.contains("could not connect"), "the keyless relay says why peers could not connect:\n{log}");
    drop(worker);

    // The same with a relay in the mesh: the job runs on the worker.
    let mut member_args = vec!["--relay", "--slots", "0", "--no-mdns"];
    member_args.extend(private);
    let member = lab.node(lab.public[1], &member_args);
    let worker = natted_worker(&lab, lab.inside(1, 0), &member, &private);
    let mut args: Vec<&str> = private.to_vec();
    args.extend(["sleep", "--ms", "10", "--pieces", "4"]);
    let mut job = submit(&lab, lab.inside(0, 0), &member, 1, 20, &args);
    let out = finished_sleep(&mut job, 4, 10);
    assert_eq!(out.pieces_of(&worker.peer), 4, "{}", out.json);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nat_pieces_larger_than_the_relays_byte_limit_fail_with_a_clear_error() {
    let Some(lab) = NatLab::new(1, &[(NatKind::Cone, 1), (NatKind::Symmetric, 1)]) else { return };
    let relay = relay(&lab, &["--relay-circuit-bytes", "65536"]);
    let worker = natted_worker(&lab, lab.inside(1, 0), &relay, &[]);
    let dir = std::env::temp_dir().join(format!("mwnat-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("words.txt");
    std::fs::write(&text, "the quick brown fox jumps over the lazy dog\n".repeat(8000)).unwrap();
    let started = Instant::now();
    let args = ["wordcount", text.to_str().unwrap(), "--pieces", "2"];
    let mut job = submit(&lab, lab.inside(0, 0), &relay, 1, 20, &args);
    let out = job.finish(JOB).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!("{}\n{}", out.json, out.stderr_text());
    eprintln!(
        "a 176 KiB piece through a relay of 64 KiB circuits: exit {} after {}",
        out.code,
        secs(started.elapsed())
    );
    assert_ne!(out.code, 0, "the job cannot succeed: {said}");
    assert!(said.contains("exceed the relay's limit of 65536 bytes per circuit"), "the error says why: {said}");
    assert_eq!(out.pieces_of(&worker.peer), 0);
}

/// Hole punching, 20 tries per pair of NAT kinds: each try is a new
/// submitter (a new peer) behind one NAT running a one-piece job on a
/// worker behind the other; it succeeds if the worker reports a direct
/// connection to it. Prints the rates and the times to the first piece.
#[test]
#[ignore = "a measurement (about 4 minutes); run with --ignored --nocapture"]
fn hole_punch_success_rate() {
    use NatKind::{Cone, Symmetric};
    const TRIES: usize = 20;
    for (submitter_kind, worker_kind) in [(Cone, Cone), (Cone, Symmetric), (Symmetric, Cone), (Symmetric, Symmetric)] {
        let Some(lab) = NatLab::new(1, &[(submitter_kind, 1), (worker_kind, 1)]) else { return };
        let relay = relay(&lab, &[]);
        let mut worker = natted_worker(&lab, lab.inside(1, 0), &relay, &[]);
        let (mut punched, mut firsts, mut seen) = (0, Vec::new(), Vec::<String>::new());
        for _ in 0..TRIES {
            let mut job = submit(&lab, lab.inside(0, 0), &relay, 1, 20, &["sleep", "--ms", "1000", "--pieces", "1"]);
            finished_sleep(&mut job, 1, 1000);
            let new = |v: &Value| !seen.iter().any(|p| v["peer"] == p.as_str());
            let (_, counts) = wait_event(&mut worker, "pieces_from", T, new);
            let peer = counts["peer"].as_str().unwrap().to_string();
            seen.push(peer.clone());
            let paths = events(&mut worker, "piece_path");
            if let Some((at, _)) = paths.iter().find(|(_, v)| v["peer"] == peer.as_str()) {
                firsts.push(at.saturating_duration_since(job.started));
            }
            if punches(&mut worker, &peer).contains(&Ok(())) {
                punched += 1;
            }
        }
        firsts.sort();
        eprintln!(
            "hole punching {submitter_kind:?} → {worker_kind:?}: {punched}/{TRIES} direct; time to first piece \
             median {} (min {}, max {})",
            secs(firsts[firsts.len() / 2]),
            secs(firsts[0]),
            secs(firsts[firsts.len() - 1])
        );
    }
}
