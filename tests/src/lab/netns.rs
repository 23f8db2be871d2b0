//! The lab's plumbing: host namespaces with a veth to the switch, the
//! second subnet and its router, running commands inside namespaces, and
//! removing what earlier test processes left behind.

use super::{Host, Lab, PREFIX};
use std::process::{Command, Stdio};

impl Lab {
    pub(super) fn ip(&self, args: &[&str]) {
        if let Err(e) = run("ip", args) {
            panic!("lab {}: {e}", self.name);
        }
    }

    /// Runs `cmd` inside namespace `ns` (a host or the switch), feeding it `stdin`.
    pub(super) fn exec_in(&self, ns: &str, cmd: &[&str], stdin: Option<&str>) {
        let mut args = vec!["netns", "exec", ns];
        args.extend_from_slice(cmd);
        if let Err(e) = run_with_input("ip", &args, stdin) {
            panic!("lab {}: {e}", self.name);
        }
    }

    /// Adds a host on bridge `bridge` with address `ip`/24 and `routes` ((prefix, via) pairs).
    pub(super) fn add_host(&mut self, bridge: &str, ip: &str, routes: &[(&str, &str)]) -> usize {
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
    /// interface (`eth1`, 10.99.1.1) and forwards (`ip_forward=1`). Hosts of
    /// subnet B route 10.99.0.0/24 through it, hosts of subnet A route
    /// 10.99.1.0/24 through its subnet-A address. The kernel does not forward
    /// multicast without a multicast router, so mDNS stays on each subnet.
    /// Returns the new hosts' indices.
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
}

/// SIGKILLs every process in namespace `ns` (all of them started by a lab).
pub(super) fn kill_inside(ns: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", ns]) else { return };
    for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // SAFETY: kill(2) on a process inside one of our own namespaces.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Removes the namespaces and directories of earlier test processes that
/// died without cleaning up: named `mwlab-<pid>-...` with that process gone.
pub(super) fn remove_stale() {
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

/// Runs a command to completion; its stdout, or an error with its stderr.
pub(super) fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    run_with_input(cmd, args, None)
}

/// Like [`run`], feeding the command `stdin`.
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
