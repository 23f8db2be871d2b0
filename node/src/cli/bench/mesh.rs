//! The benchmark's mesh: this process (which submits, with `slots` slots of
//! its own, 0 for submit-only) and `workers` `meshwork node` processes with
//! one slot each, on loopback with mDNS off. Workers can be killed by PID;
//! a supervised worker runs under README's restart loop, which starts it
//! again with the same identity. Each worker keeps wasm modules in a fresh
//! cache of its own, so a benchmark's first wasm job fetches them.

use crate::client::Client;
use crate::node::{Node, NodeConfig};
use crate::tasks::builtin_registry;
use anyhow::{bail, Context};
use libp2p::identity::Keypair;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// README's supervised node: `meshwork node` started again 100 ms after it
/// exits, for ever (systemd's `Restart=always` with its default `RestartSec`).
const RESTART_LOOP: &str = r#"while :; do "$@"; sleep 0.1; done"#;

/// One `meshwork node` process, or its restart loop.
pub(super) struct Worker {
    child: Child,
    identity: PathBuf,
    supervised: bool,
}

impl Worker {
    /// The process we started: the node, or the shell running its loop.
    pub(super) fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// The `meshwork node` process running now.
    pub(super) fn node_pid(&self) -> Option<u32> {
        let pid = self.pid();
        if !self.supervised {
            return Some(pid);
        }
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }
}

/// This process's node plus the worker processes.
pub(super) struct Mesh {
    pub(super) node: Node,
    pub(super) workers: Vec<Worker>,
    pub(super) join: String,
}

impl Mesh {
    /// Starts the submitter with `slots` slots and `workers` worker processes
    /// (given `extra` options), and waits until it sees them all.
    pub(super) async fn start(
        slots: u32,
        workers: usize,
        supervised: bool,
        busy_poll: Duration,
        extra: &[&str],
    ) -> anyhow::Result<Mesh> {
        let mut cfg = NodeConfig::new(Keypair::generate_ed25519(), builtin_registry());
        cfg.busy_poll = busy_poll;
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid")];
        cfg.behaviour.mdns = false;
        cfg.transport.quic = false;
        cfg.protocol = cfg.protocol.with_slots(slots);
        let node = Node::start(cfg).await?;
        let join = node.listen_addrs()[0].to_string();
        let mut mesh = Mesh { node, workers: Vec::new(), join };
        for i in 0..workers {
            let identity = std::env::temp_dir().join(format!("meshwork-bench-{}-{i}.key", std::process::id()));
            let child = spawn_worker(&identity, &mesh.join, supervised, extra).await?;
            mesh.workers.push(Worker { child, identity, supervised });
        }
        mesh.wait_for_workers(workers).await?;
        Ok(mesh)
    }

    pub(super) fn client(&self) -> Client {
        self.node.client()
    }

    /// Waits until `n` workers are live.
    pub(super) async fn wait_for_workers(&self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.client().peers().await?.iter().filter(|p| p.is_live()).count() < n {
            if Instant::now() > deadline {
                bail!("the worker nodes did not join within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    pub(super) async fn stop(mut self) {
        for w in &mut self.workers {
            let node = w.node_pid();
            if w.supervised {
                // The loop first, so that it does not start the node again.
                let _ = w.child.kill().await;
            }
            if let Some(pid) = node {
                // SAFETY: kill(2) on a process we started.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(5), w.child.wait()).await.is_err() {
                let _ = w.child.kill().await;
            }
            let _ = std::fs::remove_file(&w.identity);
            let _ = std::fs::remove_dir_all(modules_dir(&w.identity));
        }
        self.node.shutdown().await;
    }
}

/// `meshwork node --slots 1` on loopback, joined to `join` (under
/// [`RESTART_LOOP`] if `supervised`), with `extra` options; returns once it listens.
async fn spawn_worker(identity: &Path, join: &str, supervised: bool, extra: &[&str]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding the meshwork binary")?;
    let mut cmd = if supervised {
        let mut sh = Command::new("sh");
        sh.args(["-c", RESTART_LOOP, "sh"]).arg(exe);
        sh
    } else {
        Command::new(exe)
    };
    let mut child = cmd
        .args([
            "node",
            "--no-mdns",
            "--no-http",
            "--slots",
            "1",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--join",
            join,
            "--identity",
        ])
        .arg(identity)
        .arg("--cache-dir")
        .arg(modules_dir(identity))
        .args(extra)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a worker node")?;
    let mut lines = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
    while let Some(line) = lines.next_line().await? {
        if line.starts_with("listening ") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(child);
        }
    }
    bail!("a worker node exited before listening")
}

/// The wasm module cache of the worker with `identity`.
fn modules_dir(identity: &Path) -> PathBuf {
    identity.with_extension("modules")
}

/// A process's memory, in KiB (from /proc; `None` where it cannot be read).
pub(super) struct MemoryKib {
    /// Resident now.
    pub rss: Option<u64>,
    /// The anonymous part of `rss`: the process's own heap and stacks. The
    /// rest is mapped files, mostly the binary's code the kernel mapped in,
    /// shared with every other process running the same binary.
    pub anon: Option<u64>,
    /// The most ever resident.
    pub peak: Option<u64>,
}

pub(super) fn memory_kib(pid: u32) -> MemoryKib {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
    };
    MemoryKib { rss: field("VmRSS:"), anon: field("RssAnon:"), peak: field("VmHWM:") }
}
