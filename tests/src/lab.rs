//! A LAN on one machine: network namespaces on a bridge, real `meshwork`
//! processes in them (mDNS on, as on a real LAN), and faults to inject.
//!
//! Layout: one namespace holds the switch (bridge `br0`, plus `br1` for a
//! second subnet); every host is a namespace of its own with `lo` and one
//! veth (`eth0`) whose other end (`vh<i>`) is a port of the bridge.
//! Subnet A is 10.99.0.0/24 (host `i` is 10.99.0.`i+1`), subnet B is
//! 10.99.1.0/24. Addresses exist only inside the namespaces and there is no
//! route out of them: nothing touches the machine's own interfaces and no
//! packet can leave the lab.
//!
//! Names: namespaces are `mwlab-<pid>-<n>-br` and `mwlab-<pid>-<n>-h<i>`
//! (test process id, lab counter); interface names only have to be unique
//! inside their namespace, so they are short and fixed. Dropping the [`Lab`]
//! kills every process still inside its namespaces (by PID, from `ip netns
//! pids`), deletes the namespaces (which deletes veths and bridges) and its
//! temporary directory, also when a test panics. Leftovers of a test process
//! that died without cleaning up (same prefix, a process id that no longer
//! exists) are removed the first time a lab is built.
//!
//! Faults:
//! - a cable cut is the host's bridge port set down (`ip link set vh<i>
//!   down` in the switch namespace); the host keeps its address and process;
//! - packet loss is an nftables table in the host namespace dropping
//!   `numgen random mod 100 < P` of what enters and leaves through its
//!   non-loopback interfaces; healing deletes the table;
//! - a partition is an nftables `bridge`-family table in the switch
//!   namespace dropping frames forwarded from a port of one half to a port
//!   of the other (both directions, multicast included, so mDNS stops at
//!   the cut too). It was chosen over moving half of the ports to a second
//!   bridge because adding or deleting one table is atomic and changes
//!   nothing else: no port leaves or joins a bridge, no link state or
//!   forwarding table changes, so a heal is exactly "frames flow again";
//! - a second subnet: bridge `br1`, one host of subnet A gets a second veth
//!   (`eth1`, 10.99.1.1) and forwards (`ip_forward=1`); hosts of subnet B
//!   route 10.99.0.0/24 through it, hosts of subnet A route 10.99.1.0/24
//!   through its subnet-A address. The kernel does not forward multicast
//!   without a multicast router, so mDNS stays on each subnet.
//!
//! LAN tests are CPU heavy on small machines: [`Lab::new`] holds a global
//! lock for the lab's lifetime, so the labs of one test binary run one at a
//! time.

use crate::procs::{Line, Proc, Spawn, Stderr, Stream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// Prefix of every namespace and temporary directory a lab creates.
const PREFIX: &str = "mwlab-";

/// How long a node may take to print its listen address (the first start
/// of a large debug binary can be slow on a busy machine).
const START: Duration = Duration::from_secs(60);

/// `…` and the last 8 characters of a peer id, as `meshwork run --explain` prints it.
pub fn short(peer: &str) -> String {
    if peer.len() > 12 {
        format!("…{}", &peer[peer.len() - 8..])
    } else {
        peer.to_string()
    }
}

/// One host of the lab.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its network namespace.
    pub ns: String,
    /// Its address (on subnet A or B).
    pub ip: String,
    /// Its port on the bridge (in the switch namespace).
    port: String,
}

/// A LAN of network namespaces; see the module documentation.
pub struct Lab {
    /// `mwlab-<pid>-<n>`.
    name: String,
    /// The switch's namespace.
    switch: String,
    /// Every host namespace created so far (cleaned up on drop).
    hosts: Vec<Host>,
    /// Identity files and the like.
    dir: PathBuf,
    /// Whether subnet B exists.
    subnet_b: bool,
    /// Keeps labs one at a time; released after cleanup.
    _serial: MutexGuard<'static, ()>,
}

/// False (after saying why) when the lab cannot be built because this
/// process is not root; the LAN tests then skip. Everything else that stops
/// a lab from being built is a failure.
pub fn can_run() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // Straight to stderr, not through the test harness's capture, and once.
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the LAN lab tests need root (network namespaces, veths, nftables); \
                 run `sudo -E cargo test -p meshwork-tests --test lan` to include them"
            );
        });
        return false;
    }
    true
}

impl Lab {
    /// A switch and `hosts` hosts on subnet A, or None when not root (see [`can_run`]).
    /// Panics when network namespaces cannot be made.
    pub fn new(hosts: usize) -> Option<Lab> {
        if !can_run() {
            return None;
        }
        static SERIAL: Mutex<()> = Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        static STALE: Once = Once::new();
        STALE.call_once(remove_stale);
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{PREFIX}{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("creating the lab's temporary directory");
        let switch = format!("{name}-br");
        let mut lab = Lab { name, switch: switch.clone(), hosts: Vec::new(), dir, subnet_b: false, _serial: serial };
        if let Err(e) = run("ip", &["netns", "add", &switch]) {
            panic!("the LAN lab needs `ip netns` (iproute2, root, a kernel with network namespaces): {e}");
        }
        lab.ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        lab.ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for i in 0..hosts {
            lab.add_host("br0", &format!("10.99.0.{}", i + 1), &[]);
        }
        Some(lab)
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether the lab has no hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    fn ip(&self, args: &[&str]) {
        if let Err(e) = run("ip", args) {
            panic!("lab {}: {e}", self.name);
        }
    }

    /// Runs `cmd` inside host `ns` (or the switch).
    fn exec_in(&self, ns: &str, cmd: &[&str], stdin: Option<&str>) {
        let mut args = vec!["netns", "exec", ns];
        args.extend_from_slice(cmd);
        if let Err(e) = run_with_input("ip", &args, stdin) {
            panic!("lab {}: {e}", self.name);
        }
    }

    /// Adds a host on bridge `bridge` with address `ip`/24 and `routes` ((prefix, via) pairs).
    fn add_host(&mut self, bridge: &str, ip: &str, routes: &[(&str, &str)]) -> usize {
        let i = self.hosts.len();
        let ns = format!("{}-h{i}", self.name);
        let port = format!("vh{i}");
        self.ip(&["netns", "add", &ns]);
        self.hosts.push(Host { ns: ns.clone(), ip: ip.to_string(), port: port.clone() });
        let sw = self.switch.clone();
        self.ip(&["-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        self.ip(&["-n", &sw, "link", "set", &port, "master", bridge]);
        self.ip(&["-n", &sw, "link", "set", &port, "up"]);
        self.ip(&["-n", &ns, "link", "set", "lo", "up"]);
        self.ip(&["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        self.ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        for (prefix, via) in routes {
            self.ip(&["-n", &ns, "route", "add", prefix, "via", via]);
        }
        i
    }

    /// Builds subnet B (10.99.1.0/24 on bridge `br1`) with `hosts` new hosts,
    /// reachable from subnet A only through host `router`, which gets a second
    /// interface (10.99.1.1) and forwards. Returns the new hosts' indices.
    pub fn add_subnet_b(&mut self, router: usize, hosts: usize) -> Vec<usize> {
        assert!(!self.subnet_b, "subnet B exists already");
        self.subnet_b = true;
        let sw = self.switch.clone();
        let (router_ns, router_ip) = (self.hosts[router].ns.clone(), self.hosts[router].ip.clone());
        self.ip(&["-n", &sw, "link", "add", "br1", "type", "bridge"]);
        self.ip(&["-n", &sw, "link", "set", "br1", "up"]);
        self.ip(&["-n", &sw, "link", "add", "vr", "type", "veth", "peer", "name", "eth1", "netns", &router_ns]);
        self.ip(&["-n", &sw, "link", "set", "vr", "master", "br1"]);
        self.ip(&["-n", &sw, "link", "set", "vr", "up"]);
        self.ip(&["-n", &router_ns, "addr", "add", "10.99.1.1/24", "dev", "eth1"]);
        self.ip(&["-n", &router_ns, "link", "set", "eth1", "up"]);
        // /proc/sys/net belongs to the network namespace of whoever opens it.
        self.exec_in(&router_ns, &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"], None);
        let subnet_a: Vec<String> =
            self.hosts.iter().enumerate().filter(|(i, _)| *i != router).map(|(_, h)| h.ns.clone()).collect();
        for ns in subnet_a {
            self.ip(&["-n", &ns, "route", "add", "10.99.1.0/24", "via", &router_ip]);
        }
        (0..hosts)
            .map(|k| self.add_host("br1", &format!("10.99.1.{}", k + 2), &[("10.99.0.0/24", "10.99.1.1")]))
            .collect()
    }

    /// Cuts host `i`'s cable: its bridge port goes down.
    pub fn cut(&self, i: usize) {
        self.ip(&["-n", &self.switch, "link", "set", &self.hosts[i].port, "down"]);
    }

    /// Plugs host `i`'s cable back in.
    pub fn restore(&self, i: usize) {
        self.ip(&["-n", &self.switch, "link", "set", &self.hosts[i].port, "up"]);
    }

    /// Drops `percent`% of host `i`'s packets, at random, both ways (loopback spared).
    pub fn loss(&self, i: usize, percent: u32) {
        assert!(percent <= 100);
        let rules = format!(
            "table inet mwloss {{\n\
             chain inbound {{ type filter hook input priority 0; policy accept; \
             iifname != \"lo\" numgen random mod 100 < {percent} drop; }}\n\
             chain outbound {{ type filter hook output priority 0; policy accept; \
             oifname != \"lo\" numgen random mod 100 < {percent} drop; }}\n\
             }}\n"
        );
        self.exec_in(&self.hosts[i].ns, &["nft", "-f", "-"], Some(&rules));
    }

    /// Ends host `i`'s packet loss.
    pub fn heal_loss(&self, i: usize) {
        self.exec_in(&self.hosts[i].ns, &["nft", "delete", "table", "inet", "mwloss"], None);
    }

    /// Splits the switch in two: no frame passes between a host of `a` and one of `b`.
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        let ports =
            |half: &[usize]| half.iter().map(|i| format!("\"{}\"", self.hosts[*i].port)).collect::<Vec<_>>().join(", ");
        let (pa, pb) = (ports(a), ports(b));
        let rules = format!(
            "table bridge mwpart {{\n\
             chain cut {{\n\
               type filter hook forward priority 0; policy accept;\n\
               iifname {{ {pa} }} oifname {{ {pb} }} drop\n\
               iifname {{ {pb} }} oifname {{ {pa} }} drop\n\
             }}\n\
             }}\n"
        );
        self.exec_in(&self.switch, &["nft", "-f", "-"], Some(&rules));
    }

    /// Joins the two halves again.
    pub fn heal_partition(&self) {
        self.exec_in(&self.switch, &["nft", "delete", "table", "bridge", "mwpart"], None);
    }

    fn spawn(&self, i: usize, args: &[&str], stderr: Stderr) -> Proc {
        let how = Spawn { netns: Some(self.hosts[i].ns.clone()), stderr, die_with_parent: true };
        Proc::spawn(&how, args)
    }

    fn spawn_node(&self, i: usize, extra: &[&str]) -> (Proc, Instant) {
        static K: AtomicUsize = AtomicUsize::new(0);
        let id = self.dir.join(format!("h{i}-{}.key", K.fetch_add(1, Ordering::Relaxed)));
        let listen = format!("/ip4/{}/tcp/0", self.hosts[i].ip);
        let mut args = vec!["node", "--listen", &listen, "--identity", id.to_str().expect("utf-8 temp path")];
        args.extend_from_slice(extra);
        (self.spawn(i, &args, Stderr::Pipe), Instant::now())
    }

    /// Starts `meshwork node` on host `i` (TCP on the host's address, mDNS
    /// on, a fresh identity, `extra` arguments) and waits until it listens.
    pub fn node(&self, i: usize, extra: &[&str]) -> Node {
        let (proc, started) = self.spawn_node(i, extra);
        Node::listening(proc, i, started)
    }

    /// Starts nodes on all of `hosts` at once, then waits until each listens.
    pub fn nodes(&self, hosts: &[usize], extra: &[&str]) -> Vec<Node> {
        let spawned: Vec<_> = hosts.iter().map(|i| (*i, self.spawn_node(*i, extra))).collect();
        spawned.into_iter().map(|(i, (proc, started))| Node::listening(proc, i, started)).collect()
    }

    /// Starts `meshwork run` on host `i` as a submitter only (`--slots 0`),
    /// on the host's address, mDNS on, `--json`, waiting up to 20 s for
    /// peers; `args` are more options and the task with its arguments.
    /// Its stderr is captured (the `--explain` lines).
    pub fn run(&self, i: usize, args: &[&str]) -> Job {
        let listen = format!("/ip4/{}/tcp/0", self.hosts[i].ip);
        let mut all = vec!["run", "--listen", &listen, "--slots", "0", "--wait", "20", "--json"];
        all.extend_from_slice(args);
        let started = Instant::now();
        Job { proc: self.spawn(i, &all, Stderr::Pipe), host: i, started }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut all: Vec<String> = self.hosts.iter().map(|h| h.ns.clone()).collect();
        all.push(self.switch.clone());
        for ns in &all {
            kill_inside(ns);
        }
        for ns in &all {
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGKILLs every process in namespace `ns` (all of them started by a lab).
fn kill_inside(ns: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", ns]) else { return };
    for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // SAFETY: kill(2) on a process inside one of our own namespaces.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Removes the namespaces and directories of earlier test processes that
/// died without cleaning up: named `mwlab-<pid>-...` with that process gone.
fn remove_stale() {
    let dead = |name: &str| -> bool {
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()) else { return false };
        let Ok(pid) = pid.parse::<i32>() else { return false };
        // SAFETY: signal 0 only checks whether the process exists.
        pid != std::process::id() as i32 && unsafe { libc::kill(pid, 0) } != 0
    };
    if let Ok(list) = run("ip", &["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| dead(n)) {
            eprintln!("lab: removing namespace {ns} left by a test process that no longer exists");
            kill_inside(ns);
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in dir.flatten() {
            if entry.file_name().to_str().is_some_and(dead) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    run_with_input(cmd, args, None)
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn run_with_input(cmd: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("`{cmd} {}` could not start: {e}", args.join(" ")))?;
    if let Some(text) = stdin {
        child.stdin.take().expect("piped stdin").write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "`{cmd} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `meshwork node` process on a lab host.
pub struct Node {
    /// The process (its stdout and stderr lines are in `proc.log`).
    pub proc: Proc,
    /// The host it runs on.
    pub host: usize,
    /// Its listen address, `/ip4/.../tcp/.../p2p/<peer id>`.
    pub addr: String,
    /// Its peer id.
    pub peer: String,
    /// When it was started.
    pub started: Instant,
    /// When it printed its listen address.
    pub listening: Instant,
}

impl Node {
    fn listening(mut proc: Proc, host: usize, started: Instant) -> Node {
        let line = proc
            .wait_for("listen address", START, |l| l.stream == Stream::Stdout && l.text.starts_with("listening "))
            .unwrap_or_else(|e| panic!("node on host {host}: {e}"));
        let addr = line.text["listening ".len()..].to_string();
        let peer = addr.rsplit('/').next().expect("a /p2p/ address").to_string();
        Node { proc, host, addr, peer, started, listening: line.at }
    }

    /// Its peer id shortened as `--explain` prints it.
    pub fn short(&self) -> String {
        short(&self.peer)
    }

    /// Takes the lines printed so far.
    pub fn pump(&mut self) {
        self.proc.pump();
    }

    /// When it first printed `peer-up <peer>` at or after `after`.
    pub fn up_after(&self, peer: &str, after: Instant) -> Option<Instant> {
        self.stdout_after(after).find(|l| l.text.strip_prefix("peer-up ") == Some(peer)).map(|l| l.at)
    }

    /// When and why it first printed `peer-down <peer> <reason>` at or after `after`.
    pub fn down_after(&self, peer: &str, after: Instant) -> Option<(Instant, String)> {
        self.stdout_after(after).find_map(|l| {
            let rest = l.text.strip_prefix("peer-down ")?.strip_prefix(peer)?.strip_prefix(' ')?;
            Some((l.at, rest.to_string()))
        })
    }

    /// If its last line about `peer` is `peer-up`: when that line arrived.
    pub fn live_since(&self, peer: &str) -> Option<Instant> {
        let about = |l: &&Line| {
            let rest = l.text.strip_prefix("peer-up ").or_else(|| l.text.strip_prefix("peer-down "));
            rest.is_some_and(|r| r == peer || r.strip_prefix(peer).is_some_and(|r| r.starts_with(' ')))
        };
        let last = self.proc.log.iter().filter(|l| l.stream == Stream::Stdout).rfind(about)?;
        last.text.starts_with("peer-up ").then_some(last.at)
    }

    fn stdout_after(&self, after: Instant) -> impl Iterator<Item = &Line> {
        self.proc.log.iter().filter(move |l| l.stream == Stream::Stdout && l.at >= after)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.pump();
            dump(&format!("node on host {} ({})", self.host, self.short()), &self.proc.log);
        }
    }
}

/// Prints the last lines of a process's output for a failing test (40, or
/// `MESHWORK_LAB_DUMP` lines), without progress-bar redraws and without
/// what arrived after the first dump of this thread began (when processes
/// are being killed one after the other, the others' reactions to that are
/// noise).
fn dump(who: &str, log: &[Line]) {
    thread_local! {
        static TEARDOWN: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    let teardown = TEARDOWN.with(|t| *t.get().get_or_insert_with(Instant::now));
    let keep = std::env::var("MESHWORK_LAB_DUMP").ok().and_then(|n| n.parse().ok()).unwrap_or(40);
    let lines: Vec<&Line> = log.iter().filter(|l| l.at <= teardown && !l.text.contains(" pieces [")).collect();
    let skip = lines.len().saturating_sub(keep);
    eprintln!("--- {who}: last {} of {} lines", lines.len() - skip, lines.len());
    for l in &lines[skip..] {
        eprintln!("  {:?} {}", l.stream, l.text);
    }
}

/// Polls every node's output (every 20 ms) until `check` gives a value, or fails after `timeout`.
pub fn wait_nodes<T>(
    nodes: &mut [Node],
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&[Node]) -> Option<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        for n in nodes.iter_mut() {
            n.pump();
        }
        if let Some(v) = check(nodes) {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// If every one of `watchers` now sees every one of `peers` (other than
/// itself) live, i.e. its last `peer-up`/`peer-down` line about it is a
/// `peer-up`: when the last of those lines arrived, or `since` if earlier.
pub fn all_live(watchers: &[&Node], peers: &[&str], since: Instant) -> Option<Instant> {
    let mut last = since;
    for w in watchers {
        for p in peers.iter().filter(|p| **p != w.peer) {
            last = last.max(w.live_since(p)?);
        }
    }
    Some(last)
}

/// A `meshwork run` process on a lab host.
pub struct Job {
    /// The process; stderr lines (through a pseudo-terminal) are in `proc.log`.
    pub proc: Proc,
    /// The host it runs on.
    pub host: usize,
    /// When it was started.
    pub started: Instant,
}

impl Job {
    /// Waits for a stderr line (already printed or new) that `matches`.
    pub fn wait_stderr(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<Line> {
        self.proc.pump();
        if let Some(l) = self.proc.log.iter().find(|l| l.stream == Stream::Stderr && matches(&l.text)) {
            return Ok(l.clone());
        }
        self.proc.wait_for(what, timeout, |l| l.stream == Stream::Stderr && matches(&l.text))
    }

    /// Waits for a `--explain` line placing pieces (not a backup) on `peer`.
    pub fn wait_placed_on(&mut self, peer: &str, timeout: Duration) -> anyhow::Result<Line> {
        let arrow = format!("→ {} ", short(peer));
        self.wait_stderr(&format!("pieces placed on {}", short(peer)), timeout, |t| {
            !t.starts_with("backup of") && t.contains(&arrow)
        })
    }

    /// Waits until the process ends; its exit code, JSON and output.
    pub fn finish(&mut self, timeout: Duration) -> anyhow::Result<Outcome> {
        let (code, out) = self.proc.output(timeout)?;
        let ended = self.proc.log.last().map_or_else(Instant::now, |l| l.at);
        let json = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        let stderr = self.proc.log.iter().filter(|l| l.stream == Stream::Stderr).cloned().collect();
        Ok(Outcome { code, json, stderr, took: ended.duration_since(self.started) })
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.proc.pump();
            dump(&format!("meshwork run on host {}", self.host), &self.proc.log);
        }
    }
}

/// What a finished `meshwork run --json` gave.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code.
    pub code: i32,
    /// The JSON object it printed (Null if none).
    pub json: serde_json::Value,
    /// Its stderr lines.
    pub stderr: Vec<Line>,
    /// From start to its last line of output.
    pub took: Duration,
}

impl Outcome {
    /// `result.<key>` as an integer.
    pub fn result(&self, key: &str) -> Option<u64> {
        self.json["result"][key].as_u64()
    }

    /// `summary.<key>` as an integer.
    pub fn summary(&self, key: &str) -> Option<u64> {
        self.json["summary"][key].as_u64()
    }

    /// `summary.wall_s`.
    pub fn wall_s(&self) -> f64 {
        self.json["summary"]["wall_s"].as_f64().unwrap_or(f64::NAN)
    }

    /// `summary.pieces_per_peer` as (peer id, pieces).
    pub fn per_peer(&self) -> Vec<(String, u64)> {
        let rows = self.json["summary"]["pieces_per_peer"].as_array().cloned().unwrap_or_default();
        rows.iter().filter_map(|r| Some((r[0].as_str()?.to_string(), r[1].as_u64()?))).collect()
    }

    /// The first stderr line saying a piece failed on `peer` (and is retried elsewhere).
    pub fn failed_on(&self, peer: &str) -> Option<&Line> {
        let on = format!(" failed on {}: ", short(peer));
        self.stderr.iter().find(|l| l.text.starts_with("piece ") && l.text.contains(&on))
    }

    /// Every stderr line, for failure messages.
    pub fn stderr_text(&self) -> String {
        self.stderr.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
    }
}
