//! Real `meshwork` processes: built once, started with piped output, waited
//! on with deadlines, signalled and killed by PID, always reaped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `meshwork` binary of this build profile, built on first use.
pub fn meshwork_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "meshwork", "--bin", "meshwork"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building meshwork failed");
        profile_dir.join("meshwork")
    })
    .clone()
}

/// A running `meshwork` process. Dropping it kills it (SIGKILL) and reaps it.
pub struct Proc {
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line seen so far.
    pub seen: Vec<String>,
}

impl Proc {
    /// Starts `meshwork <args>` (optionally inside `ip netns exec <ns>`).
    pub fn start(args: &[&str]) -> Proc {
        Proc::start_in(None, args)
    }

    /// Starts `meshwork <args>` in network namespace `ns` when given.
    pub fn start_in(ns: Option<&str>, args: &[&str]) -> Proc {
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(meshwork_bin());
                c
            }
            None => Command::new(meshwork_bin()),
        };
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().expect("starting meshwork");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines, seen: Vec::new() }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix`; returns its rest.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.to_string());
                    }
                }
                Err(RecvTimeoutError::Timeout) => anyhow::bail!("no line starting {prefix:?} within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => anyhow::bail!("process ended before printing {prefix:?}"),
            }
        }
    }

    /// Every remaining stdout line, once the process has ended (waits at most `timeout`).
    pub fn output(&mut self, timeout: Duration) -> anyhow::Result<(i32, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => anyhow::bail!("process still running after {timeout:?}"),
            }
        }
        let status = self.child.wait()?;
        Ok((status.code().unwrap_or(-1), self.seen.join("\n")))
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, signal) };
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
    }
}

/// Starts `meshwork node` on loopback (no mDNS) and returns it with its first listen address.
pub fn node(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity"];
    let id = std::env::temp_dir().join(format!("mw-test-{}-{}.key", std::process::id(), unique()));
    let id = id.to_string_lossy().to_string();
    args.push(&id);
    args.extend_from_slice(extra);
    let mut p = Proc::start(&args);
    let addr = p.wait_line("listening ", Duration::from_secs(60)).expect("node listening");
    let _ = std::fs::remove_file(&id);
    (p, addr)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
