//! The scale benchmark: N real `meshwork node` processes on this machine
//! (loopback, mDNS off, one slot each, all joined through the first), idle.
//! For each N it prints one JSON line:
//!
//! - `form_s`: until every node has printed `peer-up` for every other;
//! - per node, medians over the nodes, during `--idle` seconds with no job:
//!   `cpu_pct` (of one core), `rss_kib`, `segments_per_s` and `bytes_per_s`
//!   (TCP data segments and payload bytes sent plus received over all the
//!   node's connections, as the kernel counts them: `ss -ti`);
//! - `join_s`: a new node started → every node printed `peer-up` for it;
//! - `kill_s`: one node SIGKILLed → every other printed `peer-down` for it;
//! - `false_downs`: `peer-down` lines about nodes that were alive, once the
//!   mesh had formed; `forming_downs`: the same while it was forming (all N
//!   processes start at once: a handshake that times out closes its
//!   connection).
//!
//! `--svg FILE --from FILE.jsonl` draws the per-node curves from saved lines
//! instead of measuring (docs/scale.svg from docs/bench-data/scale.jsonl).
//!
//! ```sh
//! cargo run --release -p meshwork-tests --bin scale-bench -- --nodes 25,50,100,200 | tee scale.jsonl
//! ```

use anyhow::bail;
use clap::Parser;
use meshwork_tests::fleet::Fleet;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Measures idle cost, join and failure detection of meshes of real nodes.
#[derive(Parser)]
struct Args {
    /// Mesh sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [25u32, 50, 100, 200])]
    nodes: Vec<u32>,
    /// Idle seconds measured per size.
    #[arg(long, default_value_t = 20)]
    idle: u64,
    /// Seconds left alone after the mesh formed, before the idle window
    /// (the first adverts, DHT refreshes and gossip grafts settle).
    #[arg(long, default_value_t = 15)]
    settle: u64,
    /// Longest wait for a mesh to form, a join or a kill to be seen, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Draw the per-node curves of these saved JSON lines to --svg, and
    /// print their table, instead of measuring.
    #[arg(long, requires = "svg")]
    from: Option<PathBuf>,
    /// Where to draw them.
    #[arg(long, requires = "from")]
    svg: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let (Some(from), Some(svg)) = (&args.from, &args.svg) {
        let rows = meshwork_tests::scale_plot::load(from)?;
        print!("{}", meshwork_tests::scale_plot::table(&rows));
        return meshwork_tests::scale_plot::draw(&rows, svg);
    }
    // Build the binary before any clock starts.
    meshwork_tests::procs::meshwork_bin();
    let mut failed = false;
    for &n in &args.nodes {
        let row = measure(n, &args)?;
        failed |= !row["ok"].as_bool().unwrap_or(false);
        println!("{row}");
    }
    if failed {
        bail!("a mesh did not hold (false down-judgements or a timeout): see the lines above");
    }
    Ok(())
}

/// CPU ticks and memory of a process, from /proc, and its TCP traffic.
#[derive(Clone, Copy, Default)]
struct Counters {
    ticks: u64,
    segments: u64,
    bytes: u64,
    rss_kib: u64,
}

impl Counters {
    /// Every member's counters, with the instants (half way through each
    /// reading) of its /proc figures and of its TCP figures: `ss` over tens
    /// of thousands of sockets takes seconds, which must neither count as
    /// idle time nor be left out of it.
    fn snapshot(pids: &[u32]) -> (Vec<Option<Counters>>, Instant, Instant) {
        let midway = |start: Instant| start + start.elapsed() / 2;
        let start = Instant::now();
        let procs: Vec<Option<Counters>> = pids.iter().map(|pid| Counters::proc(*pid)).collect();
        let proc_at = midway(start);
        let start = Instant::now();
        let tcp = tcp_traffic();
        let tcp_at = midway(start);
        let counters = pids
            .iter()
            .zip(procs)
            .map(|(pid, c)| {
                let (segments, bytes) = tcp.get(pid).copied().unwrap_or_default();
                Some(Counters { segments, bytes, ..c? })
            })
            .collect();
        (counters, proc_at, tcp_at)
    }

    fn proc(pid: u32) -> Option<Counters> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())?;
        Some(Counters { ticks, rss_kib, ..Counters::default() })
    }
}

/// TCP data segments and payload bytes, sent plus received, per process,
/// over its established connections (`ss -tinpH`: the kernel's counts).
fn tcp_traffic() -> HashMap<u32, (u64, u64)> {
    let out = Command::new("ss").args(["-tinpH", "state", "established"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let mut per_pid: HashMap<u32, (u64, u64)> = HashMap::new();
    let mut pid = None;
    for line in text.lines() {
        if let Some(at) = line.find("pid=") {
            pid = line[at + 4..].split(|c: char| !c.is_ascii_digit()).next().and_then(|p| p.parse().ok());
            continue;
        }
        let Some(p) = pid.take() else { continue };
        let field = |name: &str| -> u64 {
            line.split_whitespace().find_map(|kv| kv.strip_prefix(name)).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let e = per_pid.entry(p).or_default();
        e.0 += field("data_segs_out:") + field("data_segs_in:");
        e.1 += field("bytes_sent:") + field("bytes_received:");
    }
    per_pid
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn measure(n: u32, args: &Args) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs(args.timeout);
    let started = Instant::now();
    let mut fleet = Fleet::start(n as usize, &[]);
    let formed = fleet.wait(timeout, Fleet::formed);
    let form_s = formed.map(|t| t.duration_since(started).as_secs_f64());

    // Idle: per-node cost over the window, once formation has settled.
    fleet.wait(Duration::from_secs(args.settle), |_| false);
    let pids: Vec<u32> = fleet.members.iter().map(|m| m.proc.pid()).collect();
    // Each snapshot is timed at the middle of its reading: `ss` over tens
    // of thousands of sockets takes seconds, which must not count as idle
    // time (nor be left out of it).
    let (before, proc0, tcp0) = Counters::snapshot(&pids);
    fleet.wait(Duration::from_secs(args.idle), |_| false);
    let (after, proc1, tcp1) = Counters::snapshot(&pids);
    let secs = proc1.duration_since(proc0).as_secs_f64();
    let tcp_secs = tcp1.duration_since(tcp0).as_secs_f64();
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let per = |f: fn(&Counters) -> u64, secs: f64| {
        median(
            before
                .iter()
                .zip(&after)
                .filter_map(|(b, a)| Some(f(a.as_ref()?).saturating_sub(f(b.as_ref()?)) as f64 / secs))
                .collect(),
        )
    };
    let cpu_pct = per(|c| c.ticks, secs) / hz * 100.0;
    let segments_per_s = per(|c| c.segments, tcp_secs);
    let bytes_per_s = per(|c| c.bytes, tcp_secs);
    let rss_kib = median(after.iter().flatten().map(|c| c.rss_kib as f64).collect());

    // A newcomer: until everyone reports it up.
    let t_join = Instant::now();
    let new_id = fleet.add(&[]).id.clone();
    let joined = fleet.wait(timeout, |f| f.alive().filter(|m| m.id != new_id).all(|m| m.up.contains_key(&new_id)));
    let join_s = joined.map(|t| t.duration_since(t_join).as_secs_f64());

    // A victim: until every other reports it down.
    let victim = fleet.members.len() / 2;
    let victim_id = fleet.members[victim].id.clone();
    fleet.members[victim].kill();
    let t_kill = Instant::now();
    let seen_down = fleet.wait(timeout, |f| f.alive().all(|m| m.saw_down(&victim_id).is_some()));
    let kill_s = seen_down.map(|t| t.duration_since(t_kill).as_secs_f64());
    let forming_downs = fleet.false_downs(started).len();
    let false_downs = formed.map_or(forming_downs, |t| fleet.false_downs(t).len());
    let ok = form_s.is_some() && join_s.is_some() && kill_s.is_some() && false_downs == 0;
    Ok(json!({
        "bench": "scale", "nodes": n, "ok": ok, "idle_s": secs,
        "form_s": form_s, "cpu_pct": cpu_pct, "rss_kib": rss_kib,
        "segments_per_s": segments_per_s, "bytes_per_s": bytes_per_s,
        "join_s": join_s, "kill_s": kill_s, "false_downs": false_downs, "forming_downs": forming_downs - false_downs,
    }))
}
