//! `meshwork run exec` on real node processes on loopback: GNU parallel's
//! output for the same command line, refusals, timeouts and cancels that
//! leave no process behind, a worker killed mid-job, capped output, and a
//! long input list.

use meshwork_tests::guests::scratch;
use meshwork_tests::node_proc::{local_mesh, NodeProc};
use meshwork_tests::procs::{meshwork_bin, Proc, Spawn, Stderr, Stream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);

/// `n` nodes that run commands (`--allow-exec`), with `extra` options.
fn exec_mesh(n: usize, extra: &[&str]) -> Vec<NodeProc> {
    let mut args = vec!["--allow-exec"];
    args.extend_from_slice(extra);
    local_mesh(n, &args, T)
}

/// The arguments of `meshwork run` through `join` (mDNS off, submitting only).
fn run_args<'a>(join: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", join, "--slots", "0"];
    all.extend_from_slice(args);
    all
}

/// Runs `meshwork run <args>` through `join` to its end (killed after
/// `limit` by coreutils' `timeout`, so a hang fails instead of blocking).
fn run_exec(join: &str, args: &[&str], limit: Duration) -> Output {
    Command::new("timeout")
        .arg(limit.as_secs().to_string())
        .arg(meshwork_bin())
        .args(run_args(join, args))
        .env("RUST_LOG", "warn")
        .output()
        .expect("running meshwork")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A sleep duration no other process has in its command line, to find ours in /proc.
fn unique() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}.{}{:03}", 40 + NEXT.fetch_add(1, Ordering::Relaxed), std::process::id(), nanos % 1000)
}

/// Pids of running processes with `arg` as a word of their command line.
fn processes_with(arg: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if cmdline.split(|b| *b == 0).any(|w| w == arg.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Waits (at most `T`) until `check` holds; the time it took.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < T, "{what}: not within {T:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// The joblog's rows: each a vector of its nine columns.
fn joblog_rows(path: &Path) -> Vec<Vec<String>> {
    let log = std::fs::read_to_string(path).unwrap();
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"));
    lines.map(|l| l.splitn(9, '\t').map(String::from).collect()).collect()
}

/// GNU parallel, or a failure saying how to install it.
fn parallel() -> Command {
    let found = Command::new("parallel").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "GNU parallel is needed for this comparison: apt-get install parallel");
    let mut c = Command::new("parallel");
    c.arg("--will-cite");
    c
}

#[test]
fn the_same_command_line_gives_gnu_parallels_output_byte_for_byte_spread_over_the_mesh() {
    let dir = scratch("exec-parallel");
    let nodes = exec_mesh(3, &["--slots", "2"]);
    // Inputs whose every replacement string differs, in sizes that finish
    // out of order (the larger the input's number, the sooner it ends).
    let inputs: Vec<String> = (1..=60)
        .map(|i| match i % 4 {
            0 => format!("dir.{i}/sub/file {i}.tar.gz"),
            1 => format!("/abs/p{i}.flac"),
            2 => format!("plain{i}"),
            _ => format!("it's {i}.txt"),
        })
        .collect();
    // The replacement strings are words of their own, so both give them to
    // the command as argv (parallel -q quotes them so); the script only
    // reads its arguments.
    let script = "sleep 0.0$(( (61 - $1) % 7 )); shift; printf \"$@\"";
    let format = "%s|%s|%s|%s|%s|%s\\n";
    let command = ["sh", "-c", script, "sh", "{#}", format, "{}", "{#}", "{.}", "{/}", "{//}", "{/.}"];
    let joblog = dir.join("run.log");
    let mut args = vec!["exec", "--joblog", joblog.to_str().unwrap(), ":::"];
    args.extend(inputs.iter().map(String::as_str));
    args.push("--");
    args.extend(command);
    let mesh = run_exec(&nodes[0].addr, &args, Duration::from_secs(120));
    assert_eq!(mesh.status.code(), Some(0), "stderr: {}", text(&mesh.stderr));
    let reference = parallel().arg("-k").args(["-q"]).args(command).arg(":::").args(&inputs).output().unwrap();
    assert!(reference.status.success(), "parallel: {}", text(&reference.stderr));
    assert_eq!(text(&mesh.stdout), text(&reference.stdout));
    assert_eq!(mesh.stdout, reference.stdout, "byte for byte");
    assert_eq!(text(&mesh.stdout).lines().count(), 60);

    let rows = joblog_rows(&joblog);
    let mut seqs: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=60).collect::<Vec<u64>>(), "one joblog line per input");
    assert!(rows.iter().all(|r| r.len() == 9 && r[6] == "0" && r[7] == "0"), "{rows:?}");
    let hosts: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert!(hosts.len() >= 2, "the commands ran on more than one node: {hosts:?}");
}

#[test]
fn failed_commands_set_the_exit_code_and_are_retried_only_when_asked() {
    let dir = scratch("exec-fail");
    let nodes = exec_mesh(2, &[]);
    let tries = dir.join("tries");
    let script = format!("echo {{}} >> {}; exit {{}}", tries.display());
    let out = run_exec(&nodes[0].addr, &["exec", ":::", "0", "3", "0", "5", "--", "sh", "-c", &script], T);
    assert_eq!(out.status.code(), Some(2), "two failed: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&tries).unwrap().lines().count(), 4, "no retry without --retries");

    std::fs::remove_file(&tries).unwrap();
    let out = run_exec(&nodes[0].addr, &["exec", "--retries", "2", ":::", "0", "3", "--", "sh", "-c", &script], T);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let mut runs: Vec<String> = std::fs::read_to_string(&tries).unwrap().lines().map(String::from).collect();
    runs.sort();
    assert_eq!(runs, ["0", "3", "3", "3"], "the failing command ran 1 + 2 times");
}

#[test]
fn without_a_node_that_allows_exec_the_run_fails_at_once_and_exec_allow_narrows_it() {
    let plain = local_mesh(1, &[], T);
    let out = run_exec(&plain[0].addr, &["--wait", "2", "exec", ":::", "a", "--", "echo"], T);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no peer allows exec (start nodes with --allow-exec)"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());

    let narrow = exec_mesh(1, &["--exec-allow", "echo"]);
    let ok = run_exec(&narrow[0].addr, &["exec", ":::", "allowed", "--", "echo"], T);
    assert_eq!((ok.status.code(), text(&ok.stdout).as_str()), (Some(0), "allowed\n"), "{}", text(&ok.stderr));
    let refused = run_exec(&narrow[0].addr, &["--max-attempts", "1", "exec", ":::", "x", "--", "touch"], T);
    assert_eq!(refused.status.code(), Some(255));
    assert!(text(&refused.stderr).contains("touch is not allowed on this node"), "{}", text(&refused.stderr));
}

#[test]
fn a_timeout_and_a_cancel_kill_the_remote_process_groups_and_leave_nothing_behind() {
    let nodes = exec_mesh(2, &[]);
    let (a, b) = (unique(), unique());
    let script = format!("sleep {a} & sleep {b}");
    let out = run_exec(&nodes[0].addr, &["exec", "--timeout", "1", ":::", "x", "--", "sh", "-c", &script], T);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("timed out after"), "{}", text(&out.stderr));
    wait_until("the timed-out command's group gone", || processes_with(&a).is_empty() && processes_with(&b).is_empty());

    // Ctrl-C on the submitter while every command runs.
    let c = unique();
    let script = format!("sleep {c}");
    let args = run_args(&nodes[0].addr, &["exec", ":::", "1", "2", "--", "sh", "-c", &script]);
    let mut run = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &args);
    wait_until("both commands running", || processes_with(&c).len() == 2);
    run.signal(libc::SIGINT);
    let (code, _) = run.output(T).unwrap();
    assert_eq!(code, 130, "{}", run.stderr());
    let took = wait_until("the cancelled commands gone", || processes_with(&c).is_empty());
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_node_killed_mid_job_has_its_commands_run_elsewhere_and_no_output_is_lost() {
    let nodes = exec_mesh(3, &[]);
    let inputs: Vec<String> = (1..=24).map(|i| i.to_string()).collect();
    let mut args = vec!["exec", ":::"];
    args.extend(inputs.iter().map(String::as_str));
    args.extend(["--", "sh", "-c", "sleep 0.3; echo done {}"]);
    let all = run_args(&nodes[0].addr, &args);
    let mut run = Proc::spawn(&Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() }, &all);
    // The first output means every node is busy with a command.
    run.wait_for("a first output", T, |l| l.stream == Stream::Stdout).unwrap();
    nodes[2].proc.signal(libc::SIGKILL);
    let (code, stdout) = run.output(Duration::from_secs(120)).unwrap();
    assert_eq!(code, 0, "{}", run.stderr());
    let expected: Vec<String> = inputs.iter().map(|i| format!("done {i}")).collect();
    assert_eq!(stdout, expected.join("\n"), "every output once, in order");
}

#[test]
fn huge_output_is_cut_at_the_cap_with_a_note() {
    let nodes = exec_mesh(1, &[]);
    let out = run_exec(
        &nodes[0].addr,
        &["exec", "--max-output", "1000", ":::", "5000000", "--", "head", "-c", "{}", "/dev/zero"],
        T,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 1000);
    assert!(text(&out.stderr).contains("stdout cut after 1000 bytes, 4999000 more dropped"), "{}", text(&out.stderr));
}

#[test]
fn a_hundred_thousand_inputs_of_true_complete() {
    let dir = scratch("exec-many");
    let nodes = exec_mesh(2, &["--slots", "2"]);
    let list = dir.join("inputs");
    let inputs: Vec<String> = (0..100_000).map(|i| format!("input-{i}")).collect();
    std::fs::write(&list, inputs.join("\n") + "\n").unwrap();
    let joblog = dir.join("run.log");
    let args = ["exec", "--joblog", joblog.to_str().unwrap(), "--lines", list.to_str().unwrap(), "--", "true"];
    let out = run_exec(&nodes[0].addr, &args, Duration::from_secs(600));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = joblog_rows(&joblog);
    assert_eq!(rows.len(), 100_000);
    assert!(rows.iter().all(|r| r[6] == "0"));
    // The input was the command's last argument (no replacement string).
    let seq_42 = rows.iter().find(|r| r[0] == "43").unwrap();
    assert_eq!(seq_42[8], "true input-42");
}

#[test]
fn no_keep_order_prints_each_output_whole_as_its_command_finishes() {
    let nodes = exec_mesh(3, &[]);
    let script = "sleep 0.$(( {} * 3 )); echo {}";
    let args = ["exec", "--no-keep-order", ":::", "3", "2", "1", "--", "sh", "-c", script];
    let out = run_exec(&nodes[0].addr, &args, T);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1\n2\n3\n", "in the order they finished");
    let kept = run_exec(&nodes[0].addr, &["exec", ":::", "3", "2", "1", "--", "sh", "-c", script], T);
    assert_eq!(text(&kept.stdout), "3\n2\n1\n", "in input order by default");
}

#[test]
fn halt_now_on_the_first_failure_stops_the_run_and_kills_what_still_runs() {
    let nodes = exec_mesh(2, &["--slots", "2"]);
    let long = unique();
    let script = format!("if [ {{}} = fail ]; then exit 7; fi; sleep {long}");
    let args = ["exec", "--halt", "now,fail=1", ":::", "a", "b", "fail", "c", "--", "sh", "-c", &script];
    let t0 = Instant::now();
    let out = run_exec(&nodes[0].addr, &args, T);
    assert_eq!(out.status.code(), Some(7), "the failing command's exit code: {}", text(&out.stderr));
    assert!(t0.elapsed() < Duration::from_secs(20), "it did not wait for the long commands");
    assert!(text(&out.stderr).contains("halted (--halt fail=1)"), "{}", text(&out.stderr));
    wait_until("the long commands killed", || processes_with(&long).is_empty());
}

#[test]
fn commands_get_a_cleared_environment_with_only_what_is_passed() {
    let nodes = exec_mesh(1, &[]);
    let out = Command::new("timeout")
        .arg("30")
        .arg(meshwork_bin())
        .args(run_args(
            &nodes[0].addr,
            &[
                "exec",
                "--env",
                "MESHWORK_TEST_VAR",
                ":::",
                "x",
                "--",
                "sh",
                "-c",
                "echo \"$MESHWORK_TEST_VAR|$MESHWORK_PIECE|${HOME-unset}|$(pwd)\"",
            ],
        ))
        .env("RUST_LOG", "warn")
        .env("MESHWORK_TEST_VAR", "passed")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(&fields[..3], ["passed", "1", "unset"], "{line}");
    assert!(fields[3].contains("meshwork-exec-"), "a fresh directory: {line}");
}

#[test]
fn exec_user_runs_commands_as_that_user() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root (as CI runs it)");
    let nodes = exec_mesh(1, &["--exec-user", "nobody"]);
    let out = run_exec(&nodes[0].addr, &["exec", ":::", "-u", "--", "id"], T);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let nobody = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .to_string();
    assert_eq!(text(&out.stdout).trim(), nobody);
}
