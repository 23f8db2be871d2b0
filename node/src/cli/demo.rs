//! `meshwork demo`: a real mesh on this machine in one command. It starts
//! `--nodes` `meshwork node` processes on loopback (mDNS off, so nothing
//! leaves the machine), joins them, runs `primes` across all of them and
//! prints the result, then stops every process it started.

use super::Cli;
use anyhow::{bail, Context};
use clap::{Args, Parser};
use std::process::{ExitCode, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Arguments of `meshwork demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Node processes to start (this process runs pieces too).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Count the primes below this number.
    #[arg(long, default_value_t = 20_000_000)]
    to: u64,
    /// Pieces to split the job into.
    #[arg(long, default_value_t = 64)]
    pieces: u32,
}

/// A node process; killed if still running when dropped.
struct Proc {
    child: Child,
    addr: String,
}

pub(super) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.nodes == 0 {
        bail!(super::UsageError("--nodes must be at least 1".into()));
    }
    let dir = std::env::temp_dir().join(format!("meshwork-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut procs: Vec<Proc> = Vec::new();
    for i in 0..args.nodes {
        let join = procs.first().map(|p| p.addr.clone());
        let p = start_node(i, &dir, join.as_deref()).await?;
        eprintln!("node {} (pid {}) listening on {}", i + 1, p.child.id().unwrap_or(0), p.addr);
        procs.push(p);
    }
    let first = procs[0].addr.clone();
    let run = [
        "meshwork",
        "run",
        "--join",
        &first,
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--slots",
        "1",
        "--min-peers",
        &args.nodes.to_string(),
        "--wait",
        "30",
        "primes",
        "--to",
        &args.to.to_string(),
        "--pieces",
        &args.pieces.to_string(),
    ];
    eprintln!("running: {}", run[1..].join(" "));
    let code = match Cli::try_parse_from(run)?.command {
        super::Command::Run(a) => super::run_cmd::run(a).await,
        other => bail!("demo built a {other:?} command"),
    };
    for p in &mut procs {
        stop(p).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    code
}

/// Starts `meshwork node` on loopback and waits for its first listen address.
async fn start_node(i: usize, dir: &std::path::Path, join: Option<&str>) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe().context("finding the meshwork binary")?;
    let mut cmd = Command::new(exe);
    // No HTTP API: the demo's nodes live for one job, and would only
    // contend for the default port and job store of a node the user runs.
    cmd.args(["node", "--no-mdns", "--no-http", "--slots", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity"])
        .arg(dir.join(format!("node{i}.key")))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn");
    }
    if let Some(j) = join {
        cmd.args(["--join", j]);
    }
    let mut child = cmd.spawn().context("starting a node process")?;
    let stdout = child.stdout.take().context("node stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix("listening ") {
                return Ok(addr.to_string());
            }
        }
        bail!("node {} exited before listening", i + 1)
    })
    .await
    .with_context(|| format!("node {} did not start within 30 s", i + 1))??;
    // Keep reading its stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Proc { child, addr })
}

/// SIGTERM, then SIGKILL if it has not exited within 5 s.
async fn stop(p: &mut Proc) {
    if let Some(pid) = p.child.id() {
        // SAFETY: kill(2) on a pid we started and have not reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    if tokio::time::timeout(Duration::from_secs(5), p.child.wait()).await.is_err() {
        let _ = p.child.kill().await;
    }
}
