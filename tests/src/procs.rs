//! Real `meshwork` processes: built once, started with piped output (each
//! line stamped with the instant it arrived; stderr optionally captured,
//! also through a pseudo-terminal), waited on with deadlines, signalled and
//! killed by PID, always reaped.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The `meshwork` binary of this build profile, built on first use and
/// pinned: the file is kept open and run as `/proc/<this process>/fd/<n>`.
/// Checkouts that share a target directory (`CARGO_TARGET_DIR`) all build
/// to the same `target/<profile>/meshwork`; a build from another checkout
/// while tests run would otherwise swap the binary under them.
pub fn meshwork_bin() -> PathBuf {
    static BIN: OnceLock<(std::fs::File, PathBuf)> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // Test binaries live in target/<profile>/deps, other binaries in target/<profile>.
        let dir = exe.parent().expect("a directory");
        let profile_dir = if dir.ends_with("deps") { dir.parent().expect("target/<profile>") } else { dir };
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The same package selection as `cargo test --workspace`, so features
        // unify the same way and nothing is rebuilt back and forth.
        cmd.args(["build", "-q", "--workspace", "--bin", "meshwork"]);
        // What `cargo test` sets for the test process, not what a `cargo`
        // command run by hand sees. Some build scripts rerun when these
        // change (ring's on CARGO_MANIFEST_DIR), and everything above them
        // would then be rebuilt on every `cargo test` and again here.
        for (var, _) in std::env::vars_os() {
            let set_by_cargo_test = var.to_str().is_some_and(|v| {
                v.starts_with("CARGO_PKG_")
                    || v.starts_with("CARGO_MANIFEST_")
                    || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"].contains(&v)
            });
            if set_by_cargo_test {
                cmd.env_remove(var);
            }
        }
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building meshwork failed");
        let file = std::fs::File::open(profile_dir.join("meshwork")).expect("the meshwork binary just built");
        let pinned = PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd()));
        (file, pinned)
    })
    .1
    .clone()
}

/// Which output stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (when captured, see [`Stderr`]).
    Stderr,
}

/// One line of a process's output and the instant it arrived.
#[derive(Clone, Debug)]
pub struct Line {
    /// When the reader thread received it (good to a millisecond or so).
    pub at: Instant,
    /// Which stream it came from.
    pub stream: Stream,
    /// The text, without the line break.
    pub text: String,
}

/// What happens to a process's standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stderr {
    /// Shared with the test (the default, as [`Proc::start`] does).
    #[default]
    Inherit,
    /// Captured line by line into [`Proc::log`].
    Pipe,
    /// Captured likewise, but through a pseudo-terminal: to the process,
    /// stderr is a terminal.
    Terminal,
}

/// How to start a process with [`Proc::spawn`].
#[derive(Clone, Debug, Default)]
pub struct Spawn {
    /// Network namespace to run in (`ip netns exec <ns> meshwork ...`).
    pub netns: Option<String>,
    /// Where its stderr goes.
    pub stderr: Stderr,
    /// SIGKILL it when the thread that started it ends (`PR_SET_PDEATHSIG`),
    /// so nothing outlives a test process that is itself killed.
    pub die_with_parent: bool,
    /// Environment variables set for it (name, value), on top of the test's.
    pub env: Vec<(String, String)>,
}

/// A running `meshwork` process. Dropping it kills it (SIGKILL) and reaps it.
pub struct Proc {
    child: Child,
    lines: Receiver<Line>,
    /// Every stdout line seen so far.
    pub seen: Vec<String>,
    /// Every line seen so far, stdout and captured stderr, in arrival order.
    pub log: Vec<Line>,
    /// Its own data directory, removed with it (see [`Proc::spawn`]).
    data_home: Option<PathBuf>,
}

impl Proc {
    /// Starts `meshwork <args>` (optionally inside `ip netns exec <ns>`).
    pub fn start(args: &[&str]) -> Proc {
        Proc::start_in(None, args)
    }

    /// Starts `meshwork <args>` in network namespace `ns` when given. It
    /// dies with the calling thread: a test process killed midway (a
    /// timeout, a closed pipe) leaves no node running to load the machine
    /// for the tests after it.
    pub fn start_in(ns: Option<&str>, args: &[&str]) -> Proc {
        Proc::spawn(&Spawn { netns: ns.map(str::to_string), die_with_parent: true, ..Spawn::default() }, args)
    }

    /// Starts `meshwork <args>` as `how` says.
    pub fn spawn(how: &Spawn, args: &[&str]) -> Proc {
        let mut cmd = match &how.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(meshwork_bin());
                c
            }
            None => Command::new(meshwork_bin()),
        };
        cmd.args(args).stdout(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        cmd.envs(how.env.iter().map(|(k, v)| (k, v)));
        // A data directory of its own (a node's default job store is in
        // it), not the user's, shared by every test node.
        let data_home = how.env.iter().all(|(k, _)| k != "XDG_DATA_HOME").then(|| {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            std::env::temp_dir().join(format!("meshwork-test-data-{}-{n}", std::process::id()))
        });
        if let Some(dir) = &data_home {
            cmd.env("XDG_DATA_HOME", dir);
        }
        if how.die_with_parent {
            // SAFETY: prctl(2) is async-signal-safe and touches nothing of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut terminal = None;
        cmd.stderr(match how.stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Pipe => Stdio::piped(),
            Stderr::Terminal => {
                let (master, slave) = pseudo_terminal().expect("a pseudo-terminal");
                terminal = Some(master);
                Stdio::from(slave)
            }
        });
        let mut child = cmd.spawn().expect("starting meshwork");
        // The parent's copy of the terminal's other side: closed, so reading
        // ends when the process's copy closes.
        drop(cmd);
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("piped stdout");
        read_lines(stdout, Stream::Stdout, tx.clone());
        if let Some(stderr) = child.stderr.take() {
            read_lines(stderr, Stream::Stderr, tx);
        } else if let Some(master) = terminal {
            read_lines(master, Stream::Stderr, tx);
        }
        Proc { child, lines, seen: Vec::new(), log: Vec::new(), data_home }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn record(&mut self, line: Line) {
        if line.stream == Stream::Stdout {
            self.seen.push(line.text.clone());
        }
        self.log.push(line);
    }

    /// Takes every line that has arrived, without waiting; false once the
    /// process has closed its output.
    pub fn pump(&mut self) -> bool {
        loop {
            match self.lines.try_recv() {
                Ok(line) => self.record(line),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Waits for a stdout line starting with `prefix`; returns its rest.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let line = self.wait_for(&format!("line starting {prefix:?}"), timeout, |l| {
            l.stream == Stream::Stdout && l.text.starts_with(prefix)
        })?;
        Ok(line.text[prefix.len()..].to_string())
    }

    /// Waits for a new line (either stream) that `matches`; returns it.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matches: impl FnMut(&Line) -> bool,
    ) -> anyhow::Result<Line> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = matches(&line);
                    self.record(line.clone());
                    if hit {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => anyhow::bail!("no {what} within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => anyhow::bail!("process ended before printing {what}"),
            }
        }
    }

    /// Every remaining stdout line, once the process has ended (waits at most `timeout`).
    pub fn output(&mut self, timeout: Duration) -> anyhow::Result<(i32, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.record(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => anyhow::bail!("process still running after {timeout:?}"),
            }
        }
        let status = self.child.wait()?;
        Ok((status.code().unwrap_or(-1), self.seen.join("\n")))
    }

    /// Every stderr line captured so far ([`Stderr::Pipe`]), one per line.
    pub fn stderr(&self) -> String {
        let lines: Vec<&str> =
            self.log.iter().filter(|l| l.stream == Stream::Stderr).map(|l| l.text.as_str()).collect();
        lines.join("\n")
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// CPU time it has used so far (user + system), in seconds (from /proc).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name (which may hold spaces), from field 3 on.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf(3) has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Some(ticks as f64 / per_second.max(1) as f64)
    }

    /// Its resident set size, in KiB (from /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_home {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A process slowed down for as long as this lives: it runs `run` out of
/// every `period` and is stopped (SIGSTOP) for the rest, as a CPU quota
/// would hold it. Its CPU-bound work takes `period / run` times as long,
/// while it still answers the network within a period. The pauses are the
/// fault itself, not a way of waiting for something.
pub struct Throttle<'a> {
    /// The process: borrowed, so it cannot be reaped (and its PID reused)
    /// while the throttle still signals it.
    proc: &'a Proc,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<'a> Throttle<'a> {
    /// Starts throttling `proc`.
    pub fn start(proc: &'a Proc, run: Duration, period: Duration) -> Throttle<'a> {
        let stop = Arc::new(AtomicBool::new(false));
        let (pid, stopping) = (proc.pid() as i32, stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                // SAFETY: kill(2) on a child the borrowed `Proc` has not reaped.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(period.saturating_sub(run));
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
                std::thread::sleep(run);
            }
        });
        Throttle { proc, stop, thread: Some(thread) }
    }
}

impl Drop for Throttle<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.proc.signal(libc::SIGCONT);
    }
}

/// A new pseudo-terminal: its master side (what the test reads) and its
/// slave side (what the process writes to, a terminal to it).
fn pseudo_terminal() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |rc: i32| if rc != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
    // SAFETY: posix_openpt(3) returns a new descriptor (or -1), owned by the File from here on.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above: a descriptor nothing else owns.
    let master = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt(3), unlockpt(3) and ptsname_r(3) on the master we own,
    // the name written into a buffer of the length given.
    unsafe {
        fail(libc::grantpt(fd))?;
        fail(libc::unlockpt(fd))?;
        fail(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()))?;
    }
    // SAFETY: ptsname_r wrote a NUL-terminated name into `name`.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    let slave = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(path)?;
    Ok((master, slave))
}

/// Sends each line of `from` to `to`, stamped with its arrival, on a thread
/// of its own (without a terminal's carriage return).
fn read_lines(from: impl Read + Send + 'static, stream: Stream, to: Sender<Line>) {
    std::thread::spawn(move || {
        for mut text in BufReader::new(from).lines().map_while(Result::ok) {
            if text.ends_with('\r') {
                text.pop();
            }
            if to.send(Line { at: Instant::now(), stream, text }).is_err() {
                break;
            }
        }
    });
}

/// Prints the last lines of a process's output for a failing test (40, or
/// `MESHWORK_LAB_DUMP` lines), without what arrived after the first dump of
/// this thread began (when processes are being killed one after the other,
/// the others' reactions to that are noise).
pub fn dump(who: &str, log: &[Line]) {
    thread_local! {
        static TEARDOWN: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    let teardown = TEARDOWN.with(|t| *t.get().get_or_insert_with(Instant::now));
    let keep = std::env::var("MESHWORK_LAB_DUMP").ok().and_then(|n| n.parse().ok()).unwrap_or(40);
    let lines: Vec<&Line> = log.iter().filter(|l| l.at <= teardown).collect();
    let skip = lines.len().saturating_sub(keep);
    eprintln!("--- {who}: last {} of {} lines", lines.len() - skip, lines.len());
    for l in &lines[skip..] {
        eprintln!("  {:?} {}", l.stream, l.text);
    }
}

/// Starts `meshwork node` on loopback (no mDNS) and returns it with its first listen address.
pub fn node(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity"];
    let id = identity_file();
    args.push(&id);
    args.extend_from_slice(extra);
    let mut p = Proc::start(&args);
    let addr = p.wait_line("listening ", Duration::from_secs(60)).expect("node listening");
    let _ = std::fs::remove_file(&id);
    (p, addr)
}

/// `meshwork peers --json` joined to `join` on loopback (no mDNS), waiting
/// up to `wait_s` for the mesh: its exit code and output.
pub fn peers_json(join: &str, wait_s: u32, timeout: Duration) -> (i32, String) {
    let wait = wait_s.to_string();
    let args = ["peers", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", join, "--json", "--wait", &wait];
    Proc::start(&args).output(timeout).expect("meshwork peers ended")
}

/// A fresh path for a node's identity file, in the temporary directory
/// (the node creates it; remove it once the node listens).
pub fn identity_file() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("mw-test-{}-{n}.key", std::process::id())).to_string_lossy().into_owned()
}
