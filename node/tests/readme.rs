//! README's sample outputs come from the binary, so they cannot drift: each
//! `meshwork simulate ...` command README shows is run (the simulator is
//! deterministic: one seed, byte-identical reports) and its report must be
//! the block README prints under it.
//!
//! After a deliberate change to the report, regenerate the blocks with
//! `MESHWORK_README_UPDATE=1 cargo test -p meshwork --test readme`.

use std::path::Path;
use std::process::Command;

/// A command README shows and the output block printed under it.
struct Sample {
    /// The command line, as README spells it.
    command: String,
    /// Line range (0-based, exclusive end) of the output block's body.
    body: std::ops::Range<usize>,
}

/// Every fenced `sh` block holding one `meshwork simulate` line and
/// followed directly by a bare fenced block: the sample output.
fn samples(lines: &[&str]) -> Vec<Sample> {
    let fence = |i: usize, tag: &str| lines.get(i).is_some_and(|l| l.trim_end() == format!("```{tag}"));
    let close = |from: usize| (from..lines.len()).find(|&j| fence(j, ""));
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if fence(i, "sh") && lines.get(i + 1).is_some_and(|l| l.starts_with("meshwork simulate ")) && fence(i + 2, "") {
            let mut next = i + 3;
            while lines.get(next).is_some_and(|l| l.trim().is_empty()) {
                next += 1;
            }
            if fence(next, "") {
                let end = close(next + 1).expect("an output block README never closes");
                found.push(Sample { command: lines[i + 1].to_string(), body: next + 1..end });
                i = end;
            }
        }
        i += 1;
    }
    found
}

/// The report `command` prints today (stdout), without writing a plot.
fn run(command: &str) -> String {
    let mut words = command.split_whitespace().skip(1).peekable();
    let mut args = Vec::new();
    while let Some(w) = words.next() {
        if w == "--plot" {
            words.next();
            continue;
        }
        args.push(w);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_meshwork")).args(&args).output().expect("meshwork runs");
    assert!(out.status.success(), "`{command}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("the report is UTF-8")
}

#[test]
fn readme_simulate_samples_are_what_the_binary_prints() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).expect("README.md");
    let lines: Vec<&str> = text.lines().collect();
    let samples = samples(&lines);
    assert!(!samples.is_empty(), "README shows no `meshwork simulate` command with its output");
    let update = std::env::var_os("MESHWORK_README_UPDATE").is_some();
    let mut rewritten: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut stale = Vec::new();
    // Last first, so earlier ranges stay valid while later ones are replaced.
    for s in samples.iter().rev() {
        let printed = run(&s.command);
        let shown = lines[s.body.clone()].join("\n") + "\n";
        if printed != shown {
            stale.push(format!("`{}` prints:\n{printed}README shows:\n{shown}", s.command));
            rewritten.splice(s.body.clone(), printed.lines().map(str::to_string));
        }
    }
    if update && !stale.is_empty() {
        std::fs::write(&path, rewritten.join("\n") + "\n").expect("rewriting README.md");
        return;
    }
    assert!(
        stale.is_empty(),
        "README's sample output is stale (regenerate: MESHWORK_README_UPDATE=1 cargo test -p meshwork --test readme):\n{}",
        stale.join("\n")
    );
}
