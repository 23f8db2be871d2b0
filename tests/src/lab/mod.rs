//! A LAN on one machine: network namespaces on a bridge, real `meshwork`
//! processes in them (mDNS on, as on a real LAN), and faults to inject.
//!
//! - [`prereq`]: whether the lab can run here (root, `ip netns`, `nft`);
//!   a missing prerequisite skips the LAN tests, or fails them under `CI=true`.
//! - [`netns`]: the namespaces, veths, bridges and routes, and cleaning up.
//! - [`faults`]: cable cuts, packet loss and partitions.
//! - [`nat`]: private networks behind NAT routers, and a public one.
//! - this module: [`Lab`] itself, and starting `meshwork node --json`
//!   ([`NodeProc`]) and `meshwork run --json` ([`RunProc`]) on its hosts;
//!   what they print is read by [`crate::node_proc`] and [`crate::run_proc`].
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
//! LAN tests are CPU heavy on small machines: [`Lab::new`] holds a global
//! lock for the lab's lifetime, so the labs of one test binary run one at a
//! time.

pub mod faults;
pub mod nat;
pub mod netns;
pub mod prereq;

use crate::node_proc::NodeProc;
use crate::procs::{Proc, Spawn, Stderr};
use crate::run_proc::RunProc;
use netns::{remove_stale, run};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Instant;

/// Prefix of every namespace and temporary directory a lab creates.
const PREFIX: &str = "mwlab-";

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

impl Lab {
    /// A switch and `hosts` hosts on subnet A, or None when the lab cannot
    /// run here and the tests skip (see [`prereq::can_run`]). Panics when
    /// network namespaces cannot be made.
    pub fn new(hosts: usize) -> Option<Lab> {
        if !prereq::can_run() {
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

    fn spawn_node(&self, i: usize, extra: &[&str]) -> (Proc, Instant) {
        static K: AtomicUsize = AtomicUsize::new(0);
        let id = self.dir.join(format!("h{i}-{}.key", K.fetch_add(1, Ordering::Relaxed)));
        let listen = format!("/ip4/{}/tcp/0", self.hosts[i].ip);
        let mut args = vec!["node", "--json", "--listen", &listen, "--identity", id.to_str().expect("utf-8 temp path")];
        args.extend_from_slice(extra);
        let how = Spawn {
            netns: Some(self.hosts[i].ns.clone()),
            stderr: Stderr::Pipe,
            die_with_parent: true,
            ..Spawn::default()
        };
        (Proc::spawn(&how, &args), Instant::now())
    }

    /// Starts `meshwork node --json` on host `i` (TCP on the host's address,
    /// mDNS on, a fresh identity, `extra` arguments) and waits until it listens.
    pub fn node(&self, i: usize, extra: &[&str]) -> NodeProc {
        let (proc, started) = self.spawn_node(i, extra);
        NodeProc::listening(proc, format!("node on host {i}"), started)
    }

    /// Starts nodes on all of `hosts` at once, then waits until each listens.
    pub fn nodes(&self, hosts: &[usize], extra: &[&str]) -> Vec<NodeProc> {
        let spawned: Vec<_> = hosts.iter().map(|i| (*i, self.spawn_node(*i, extra))).collect();
        spawned
            .into_iter()
            .map(|(i, (proc, started))| NodeProc::listening(proc, format!("node on host {i}"), started))
            .collect()
    }

    /// Starts `meshwork run --json --explain` on host `i` as a submitter
    /// only (`--slots 0`), on the host's address, mDNS on, waiting up to
    /// 20 s for peers; `args` are more options and the task with its
    /// arguments.
    pub fn run(&self, i: usize, args: &[&str]) -> RunProc {
        let listen = format!("/ip4/{}/tcp/0", self.hosts[i].ip);
        // A host mDNS has not brought in within --wait must not fail the job
        // (the tests check where its pieces went): start with whoever is there.
        let mut all =
            vec!["run", "--listen", &listen, "--slots", "0", "--wait", "20", "--or-run-anyway", "--json", "--explain"];
        all.extend_from_slice(args);
        let how = Spawn { netns: Some(self.hosts[i].ns.clone()), die_with_parent: true, ..Spawn::default() };
        RunProc::spawn(how, format!("meshwork run on host {i}"), &all)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut all: Vec<String> = self.hosts.iter().map(|h| h.ns.clone()).collect();
        all.push(self.switch.clone());
        for ns in &all {
            netns::kill_inside(ns);
        }
        for ns in &all {
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
