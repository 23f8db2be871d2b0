//! The summary a real `meshwork run` prints on stderr after its result
//! (issue 11, item 6): a duration as people write one (`10.0 s`, not
//! `10.046471s`), per-peer counts that add up to the job's pieces, and how
//! many of the peers seen were used.

use meshwork_tests::procs::{node, Proc, Spawn, Stderr};
use std::time::Duration;

/// Start of large debug binaries on a busy machine, and a small job.
const T: Duration = Duration::from_secs(60);

/// Is `took` a duration as `human` writes it below a minute: `N ms` or `N.N s`?
fn reads_as_a_duration(took: &str) -> bool {
    let whole = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    if let Some(ms) = took.strip_suffix(" ms") {
        return whole(ms) || ms.split_once('.').is_some_and(|(a, b)| whole(a) && b.len() == 1 && whole(b));
    }
    took.strip_suffix(" s").and_then(|s| s.split_once('.')).is_some_and(|(a, b)| whole(a) && b.len() == 1 && whole(b))
}

#[test]
fn the_summary_says_how_long_in_words_and_its_per_peer_counts_add_up() {
    let (_worker, addr) = node(&["--slots", "1"]);
    let args = ["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", &addr, "--slots", "1"];
    let job = ["--min-peers", "1", "--wait", "30", "primes", "--to", "200000", "--pieces", "8"];
    let mut run = Proc::spawn(
        &Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() },
        &[&args[..], &job].concat(),
    );
    let (code, out) = run.output(T).unwrap();
    let err = run.stderr();
    assert_eq!((code, out.as_str()), (0, "17984 primes in [0, 200000)"), "{err}");
    let line = err.lines().find_map(|l| l.strip_prefix("8 pieces in ")).unwrap_or_else(|| panic!("a summary:\n{err}"));
    let (took, rest) = line.split_once(" · per peer: ").unwrap_or_else(|| panic!("{line}"));
    // The job's time, then the whole time the user waited, the wait for peers included.
    let (job, all) = took.split_once(" (").unwrap_or_else(|| panic!("both times: {line:?}"));
    let all = all.strip_suffix(" with the wait for peers)").unwrap_or_else(|| panic!("the whole time: {line:?}"));
    for took in [job, all] {
        assert!(reads_as_a_duration(took), "the duration reads as people write it: {took:?} in {line:?}");
    }
    let (per_peer, rest) = rest.split_once(" · peers used ").unwrap_or_else(|| panic!("{line}"));
    let seen = rest.split_once(" · retries").map(|(s, _)| s);
    assert!(matches!(seen, Some("1 of 2 seen" | "2 of 2 seen")), "the worker and this machine seen: {line:?}");
    let counts: Vec<u32> = per_peer.split(", ").map(|p| p.rsplit(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(counts.iter().sum::<u32>(), 8, "per-peer counts add up to the pieces: {line:?}");
}

#[test]
fn durations_are_recognised_as_people_write_them() {
    for ok in ["340 ms", "0.4 ms", "10.0 s"] {
        assert!(reads_as_a_duration(ok), "{ok}");
    }
    for bad in ["10.046471s", "0.123s", "10.05 s", "s"] {
        assert!(!reads_as_a_duration(bad), "{bad}");
    }
}
