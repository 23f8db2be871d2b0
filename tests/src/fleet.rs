//! Many real `meshwork node` processes on loopback (mDNS off, all joined
//! through the first), and what each printed about its peers: every
//! `peer-up` and `peer-down` line, stamped with when it arrived.

use crate::procs::{node, Proc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One node process and what it said about its peers.
pub struct Member {
    /// The process.
    pub proc: Proc,
    /// Its peer id.
    pub id: String,
    /// Its listen address (with `/p2p/`).
    pub addr: String,
    /// Peer ids it reported up, first time each.
    pub up: BTreeMap<String, Instant>,
    /// Peer ids it reported down, with the reason and when.
    pub down: Vec<(String, String, Instant)>,
    /// Killed by the test (its reports stop).
    pub killed: Option<Instant>,
}

impl Member {
    /// Starts `meshwork node --slots 1 [--join join] extra…`.
    pub fn start(join: Option<&str>, extra: &[&str]) -> Member {
        let mut args = vec!["--slots", "1"];
        if let Some(j) = join {
            args.extend(["--join", j]);
        }
        args.extend_from_slice(extra);
        let (proc, addr) = node(&args);
        let id = addr.rsplit('/').next().unwrap_or_default().to_string();
        Member { proc, id, addr, up: BTreeMap::new(), down: Vec::new(), killed: None }
    }

    /// Reads what arrived.
    pub fn pump(&mut self) {
        self.proc.pump();
        for line in self.proc.log.drain(..) {
            if let Some(p) = line.text.strip_prefix("peer-up ") {
                self.up.entry(p.to_string()).or_insert(line.at);
            } else if let Some(rest) = line.text.strip_prefix("peer-down ") {
                let (p, why) = rest.split_once(' ').unwrap_or((rest, ""));
                self.down.push((p.to_string(), why.to_string(), line.at));
            }
        }
    }

    /// SIGKILLs it.
    pub fn kill(&mut self) {
        self.proc.signal(libc::SIGKILL);
        self.killed = Some(Instant::now());
    }

    /// When it reported `peer` down, if it did.
    pub fn saw_down(&self, peer: &str) -> Option<Instant> {
        self.down.iter().find(|(p, _, _)| p == peer).map(|d| d.2)
    }
}

/// A mesh of node processes.
pub struct Fleet {
    /// The nodes, the first one the one everybody joined.
    pub members: Vec<Member>,
}

impl Fleet {
    /// Starts `n` nodes, the first alone, the others joining it.
    pub fn start(n: usize, extra: &[&str]) -> Fleet {
        let first = Member::start(None, extra);
        let join = first.addr.clone();
        let mut members = vec![first];
        for _ in 1..n {
            members.push(Member::start(Some(&join), extra));
        }
        Fleet { members }
    }

    /// The address everybody joined.
    pub fn join_addr(&self) -> &str {
        &self.members[0].addr
    }

    /// Adds a node joining the first.
    pub fn add(&mut self, extra: &[&str]) -> &Member {
        let m = Member::start(Some(&self.members[0].addr.clone()), extra);
        self.members.push(m);
        self.members.last().expect("just pushed")
    }

    /// The members still running.
    pub fn alive(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.killed.is_none())
    }

    /// Reads everybody's output until `done` holds or `timeout` passes;
    /// returns when it held.
    pub fn wait(&mut self, timeout: Duration, done: impl Fn(&Fleet) -> bool) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            self.members.iter_mut().for_each(Member::pump);
            if done(self) {
                return Some(Instant::now());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// CPU time the running members have used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.alive().filter_map(|m| m.proc.cpu_seconds()).sum()
    }

    /// Does every running node report every other running node up?
    pub fn formed(&self) -> bool {
        self.alive().all(|m| self.alive().filter(|o| o.id != m.id).all(|o| m.up.contains_key(&o.id)))
    }

    /// Every `peer-down` a running node printed at or after `since` about a
    /// member of the fleet that was not killed (or about a killed one
    /// before it was killed): (who, about whom, why). Clients (`meshwork
    /// run`) coming and going are not members. `since` separates the
    /// mesh's forming (fifty nodes starting at once on two cores, where a
    /// handshake may time out and its connection close) from the formed mesh.
    pub fn false_downs(&self, since: Instant) -> Vec<(String, String, String)> {
        let members: BTreeMap<&str, Option<Instant>> = self.members.iter().map(|m| (m.id.as_str(), m.killed)).collect();
        self.alive()
            .flat_map(|m| {
                m.down
                    .iter()
                    .filter(|(_, _, at)| *at >= since)
                    .filter(|(p, _, at)| members.get(p.as_str()).is_some_and(|k| k.is_none_or(|k| *at < k)))
                    .map(|(p, why, _)| (m.id.clone(), p.clone(), why.clone()))
            })
            .collect()
    }
}
