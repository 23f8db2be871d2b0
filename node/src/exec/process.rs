//! Running one command on a worker: in a process group of its own, so a
//! timeout, a cancel or its end can kill everything it started; its
//! stdout and stderr kept up to a cap (the rest read and dropped, so it
//! never blocks on a full pipe).

use meshwork_protocol::task::CancelFlag;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// The program's path.
    pub program: PathBuf,
    /// argv\[0\]: the name it was asked for by (multi-call programs read it).
    pub name: String,
    /// argv\[1..\].
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub dir: PathBuf,
    /// Run as this uid and gid (`--exec-user`).
    pub user: Option<(u32, u32)>,
    /// Kill it after this long.
    pub timeout: Option<Duration>,
    /// Bytes of stdout, and of stderr, kept.
    pub max_output: usize,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it (9 after a timeout or cancel).
    pub signal: Option<i32>,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
    /// It was cancelled and killed.
    pub cancelled: bool,
    /// When it started (Unix time).
    pub started: SystemTime,
    /// How long it ran.
    pub runtime: Duration,
    /// Its stdout, up to the cap, and how many bytes were dropped after it.
    pub stdout: Capped,
    /// Its stderr, likewise.
    pub stderr: Capped,
}

/// A stream's first bytes, and how many more there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capped {
    /// The first `max_output` bytes.
    pub bytes: Vec<u8>,
    /// Bytes read and dropped after them.
    pub dropped: u64,
}

/// The longest wait between two looks at a running command: cancel and
/// timeouts are seen within this.
const LONGEST_POLL: Duration = Duration::from_millis(10);

/// Runs `spawn` to its end (or until `cancel`, or its timeout).
pub fn run(spawn: &Spawn, cancel: &CancelFlag) -> std::io::Result<Finished> {
    let mut command = Command::new(&spawn.program);
    command
        .arg0(&spawn.name)
        .args(&spawn.args)
        .env_clear()
        .envs(spawn.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spawn.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some((uid, gid)) = spawn.user {
        // As root, std also drops the supplementary groups before setuid.
        command.uid(uid).gid(gid);
    }
    let started = SystemTime::now();
    let begun = Instant::now();
    let mut child = command.spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let max = spawn.max_output;
    std::thread::scope(|s| {
        let out = s.spawn(move || drain(&mut stdout, max));
        let err = s.spawn(move || drain(&mut stderr, max));
        let (status, timed_out, cancelled) = wait(&mut child, spawn.timeout, begun, cancel);
        let runtime = begun.elapsed();
        let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
        let status = status?;
        Ok(Finished {
            code: status.code(),
            signal: status.signal(),
            timed_out,
            cancelled,
            started,
            runtime,
            stdout,
            stderr,
        })
    })
}

/// Waits for the command to end, killing its whole group on a timeout or
/// cancel, and in any case once its leader has ended (what it left running
/// in the background would hold the pipes open and outlive the piece).
fn wait(
    child: &mut Child,
    timeout: Option<Duration>,
    begun: Instant,
    cancel: &CancelFlag,
) -> (std::io::Result<ExitStatus>, bool, bool) {
    let group = child.id() as libc::pid_t;
    let mut pause = Duration::from_micros(50);
    let (mut timed_out, mut cancelled) = (false, false);
    loop {
        match exited(group) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return (Err(e), false, false),
        }
        if timeout.is_some_and(|t| begun.elapsed() >= t) {
            timed_out = true;
            break;
        }
        if cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(LONGEST_POLL);
    }
    // The leader is not reaped yet, so the group's id cannot have been
    // given to another process.
    // SAFETY: killpg has no memory effects.
    unsafe { libc::killpg(group, libc::SIGKILL) };
    (child.wait(), timed_out, cancelled)
}

/// Has the process ended? (Without reaping it: `WNOWAIT`.)
fn exited(pid: libc::pid_t) -> std::io::Result<bool> {
    // SAFETY: waitid writes only into `info`, which lives on this stack.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: si_pid is valid for the SIGCHLD-style infos waitid fills.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Reads `from` to its end, keeping the first `max` bytes.
fn drain(from: &mut impl Read, max: usize) -> Capped {
    let mut kept = Capped::default();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = max.saturating_sub(kept.bytes.len()).min(n);
                kept.bytes.extend_from_slice(&buf[..room]);
                kept.dropped += (n - room) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(program: &str, args: &[&str]) -> Spawn {
        Spawn {
            program: program.into(),
            name: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            dir: std::env::temp_dir(),
            user: None,
            timeout: None,
            max_output: 1 << 20,
        }
    }

    #[test]
    fn output_and_exit_code_come_back() {
        let f = run(&spawn("/bin/sh", &["-c", "echo out; echo err >&2; exit 3"]), &CancelFlag::new()).unwrap();
        assert_eq!((f.code, f.signal, f.timed_out), (Some(3), None, false));
        assert_eq!((f.stdout.bytes.as_slice(), f.stderr.bytes.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    }

    #[test]
    fn output_past_the_cap_is_counted_and_dropped() {
        let mut s = spawn("/bin/sh", &["-c", "head -c 100000 /dev/zero"]);
        s.max_output = 1000;
        let f = run(&s, &CancelFlag::new()).unwrap();
        assert_eq!((f.stdout.bytes.len(), f.stdout.dropped), (1000, 99_000));
    }

    #[test]
    fn the_environment_is_only_what_was_given() {
        let f = run(&spawn("/usr/bin/env", &[]), &CancelFlag::new()).unwrap();
        assert_eq!(String::from_utf8_lossy(&f.stdout.bytes), "PATH=/usr/bin:/bin\n");
    }

    /// Is any process running with `arg` in its command line? Waits up to
    /// 5 s for them to go (a killed process takes a moment to exit).
    fn still_running(arg: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|w| w == arg.as_bytes()))
            });
            if !found || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A sleep duration no other process uses, to find it in /proc.
    fn unique_sleep() -> String {
        format!("30.{}{}", std::process::id(), rand::random::<u32>())
    }

    #[test]
    fn a_timeout_kills_the_whole_group_including_what_it_started() {
        let (a, b) = (unique_sleep(), unique_sleep());
        let mut s = spawn("/bin/sh", &["-c", &format!("sleep {a} & sleep {b}")]);
        s.timeout = Some(Duration::from_millis(200));
        let f = run(&s, &CancelFlag::new()).unwrap();
        assert!(f.timed_out, "{f:?}");
        assert_eq!(f.signal, Some(libc::SIGKILL));
        assert!(f.runtime < Duration::from_secs(5), "{:?}", f.runtime);
        assert!(!still_running(&a) && !still_running(&b), "a process of the group outlived the timeout");
    }

    #[test]
    fn cancel_stops_a_running_command() {
        let cancel = CancelFlag::new();
        cancel.cancel();
        let f = run(&spawn("/bin/sleep", &["30"]), &cancel).unwrap();
        assert!(f.cancelled && f.runtime < Duration::from_secs(5), "{f:?}");
    }

    #[test]
    fn a_background_child_holding_the_pipes_does_not_hold_the_piece() {
        let a = unique_sleep();
        let f = run(&spawn("/bin/sh", &["-c", &format!("sleep {a} & echo started")]), &CancelFlag::new()).unwrap();
        assert_eq!(f.code, Some(0));
        assert!(!still_running(&a), "its background child outlived it");
        assert_eq!(f.stdout.bytes, b"started\n");
        assert!(f.runtime < Duration::from_secs(5), "{:?}", f.runtime);
    }
}
