//! A `meshwork node --json` process and what it said about its peers, as
//! typed events stamped with their arrival: on loopback ([`NodeProc::start_local`])
//! or on a lab host (`Lab::node`). Waits poll every node's output with a
//! deadline; [`downs_within`] watches a mesh for a deliberate window.

use crate::events::{NodeEvent, Stamped};
use crate::procs::{dump, identity_file, Proc, Spawn, Stream};
use std::time::{Duration, Instant};

/// How long a node may take to print its listen address (the first start
/// of a large debug binary can be slow on a busy machine).
pub const START: Duration = Duration::from_secs(60);

/// `…` and the last 8 characters of a peer id, as people read them.
pub fn short(peer: &str) -> String {
    if peer.len() > 12 {
        format!("…{}", &peer[peer.len() - 8..])
    } else {
        peer.to_string()
    }
}

/// How a node sees a peer, from its last event about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// `peer_up` or `peer_heard`.
    Live,
    /// `peer_quiet`: its adverts stopped.
    Quiet,
    /// `peer_down`.
    Down,
}

/// A `meshwork node --json` process.
pub struct NodeProc {
    /// The process.
    pub proc: Proc,
    /// Who it is in failure messages ("node on host 2").
    pub label: String,
    /// Its listen address, `/ip4/.../tcp/.../p2p/<peer id>`.
    pub addr: String,
    /// Its peer id.
    pub peer: String,
    /// When it was started.
    pub started: Instant,
    /// When it printed its listen address.
    pub listening: Instant,
    /// Every event it printed, in order.
    pub events: Vec<Stamped<NodeEvent>>,
    /// Lines of `proc.log` already parsed into `events`.
    parsed: usize,
}

impl NodeProc {
    /// Waits until `proc` (a `meshwork node --json` started at `started`)
    /// prints its listen address. Panics, naming `label`, if it does not.
    pub fn listening(proc: Proc, label: String, started: Instant) -> NodeProc {
        let mut node = NodeProc {
            proc,
            label,
            addr: String::new(),
            peer: String::new(),
            started,
            listening: started,
            events: Vec::new(),
            parsed: 0,
        };
        let line = node
            .proc
            .wait_for("listen address", START, |l| {
                l.stream == Stream::Stdout && matches!(NodeEvent::parse(&l.text), Some(NodeEvent::Listening { .. }))
            })
            .unwrap_or_else(|e| panic!("{}: {e}", node.label));
        node.pump();
        let Some(NodeEvent::Listening { addr }) = NodeEvent::parse(&line.text) else { unreachable!("matched above") };
        node.peer = addr.rsplit('/').next().expect("a /p2p/ address").to_string();
        node.addr = addr;
        node.listening = line.at;
        node.label = format!("{} ({})", node.label, short(&node.peer));
        node
    }

    /// Starts `meshwork node --json` on loopback (TCP, mDNS off, a fresh
    /// identity, `--slots 1` unless `extra` gives `--slots`), joining `join`
    /// if given, with `extra` arguments.
    pub fn start_local(label: &str, join: Option<&str>, extra: &[&str]) -> NodeProc {
        NodeProc::start_local_with(label, join, extra, &[])
    }

    /// [`NodeProc::start_local`] with environment variables `env` set.
    pub fn start_local_with(label: &str, join: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> NodeProc {
        let id = identity_file();
        let mut args = vec!["node", "--json", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", &id];
        if !extra.contains(&"--slots") {
            args.extend(["--slots", "1"]);
        }
        if let Some(j) = join {
            args.extend(["--join", j]);
        }
        args.extend_from_slice(extra);
        let started = Instant::now();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let proc = Proc::spawn(&Spawn { env, ..Spawn::default() }, &args);
        let node = NodeProc::listening(proc, label.to_string(), started);
        let _ = std::fs::remove_file(&id);
        node
    }

    /// The URL of its HTTP API, once it printed it (right after its listen
    /// addresses). Panics if it does not within [`START`].
    pub fn http_url(&mut self) -> String {
        let url = |n: &NodeProc| {
            n.events.iter().find_map(|e| match &e.event {
                NodeEvent::Http { url } => Some(url.clone()),
                _ => None,
            })
        };
        let label = self.label.clone();
        wait_nodes(std::slice::from_mut(self), "its HTTP URL", START, |n| url(&n[0]))
            .unwrap_or_else(|e| panic!("{label}: {e}"))
    }

    /// Its peer id shortened for people.
    pub fn short(&self) -> String {
        short(&self.peer)
    }

    /// Takes the lines printed so far and parses the new ones. Panics if
    /// the node says it missed events: what it says is then incomplete.
    pub fn pump(&mut self) {
        self.proc.pump();
        for line in &self.proc.log[self.parsed..] {
            if line.stream != Stream::Stdout {
                continue;
            }
            if let Some(event) = NodeEvent::parse(&line.text) {
                if let NodeEvent::Missed { count } = event {
                    panic!("{} missed {count} peer events: its report cannot be judged", self.label);
                }
                self.events.push(Stamped { at: line.at, event });
            }
        }
        self.parsed = self.proc.log.len();
    }

    /// The reachability verdicts it printed, in order.
    pub fn reachabilities(&self) -> Vec<&str> {
        let verdicts = self.events.iter().map(|e| &e.event);
        verdicts
            .filter_map(|e| match e {
                NodeEvent::Reachability { reachability } => Some(reachability.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Its events about `peer` from `after` on.
    pub fn about<'a>(&'a self, peer: &'a str, after: Instant) -> impl Iterator<Item = &'a Stamped<NodeEvent>> + 'a {
        self.events.iter().filter(move |e| e.at >= after && e.event.peer() == Some(peer))
    }

    /// When it first printed `peer_up <peer>` at or after `after`.
    pub fn up_after(&self, peer: &str, after: Instant) -> Option<Instant> {
        self.about(peer, after).find(|e| matches!(e.event, NodeEvent::PeerUp { .. })).map(|e| e.at)
    }

    /// When it first printed `peer_quiet <peer>` at or after `after`.
    pub fn quiet_after(&self, peer: &str, after: Instant) -> Option<Instant> {
        self.about(peer, after).find(|e| matches!(e.event, NodeEvent::PeerQuiet { .. })).map(|e| e.at)
    }

    /// When and why it first printed `peer_down <peer>` at or after `after`.
    pub fn down_after(&self, peer: &str, after: Instant) -> Option<(Instant, String)> {
        self.about(peer, after).find_map(|e| match &e.event {
            NodeEvent::PeerDown { reason, .. } => Some((e.at, reason.clone())),
            _ => None,
        })
    }

    /// Every `peer_down` it printed at or after `after`: (when, about whom, why).
    pub fn downs_after(&self, after: Instant) -> Vec<(Instant, String, String)> {
        let down = |e: &Stamped<NodeEvent>| match &e.event {
            NodeEvent::PeerDown { peer, reason } if e.at >= after => Some((e.at, peer.clone(), reason.clone())),
            _ => None,
        };
        self.events.iter().filter_map(down).collect()
    }

    /// How it sees `peer` now (its last event about it) and since when.
    pub fn sees(&self, peer: &str) -> Option<(Seen, Instant)> {
        let last = self.events.iter().rfind(|e| e.event.peer() == Some(peer))?;
        let seen = match last.event {
            NodeEvent::PeerUp { .. } | NodeEvent::PeerHeard { .. } => Seen::Live,
            NodeEvent::PeerQuiet { .. } => Seen::Quiet,
            _ => Seen::Down,
        };
        Some((seen, last.at))
    }

    /// If it sees `peer` live (not quiet, not down): since when.
    pub fn live_since(&self, peer: &str) -> Option<Instant> {
        self.sees(peer).and_then(|(seen, at)| (seen == Seen::Live).then_some(at))
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.proc.pump();
            dump(&self.label, &self.proc.log);
        }
    }
}

/// `n` nodes on loopback ([`NodeProc::start_local`] with `extra`, labelled
/// "node 0", "node 1", ...) joined through the first, each live at every
/// other within `timeout`.
pub fn local_mesh(n: usize, extra: &[&str], timeout: Duration) -> Vec<NodeProc> {
    let first = NodeProc::start_local("node 0", None, extra);
    let join = first.addr.clone();
    let mut nodes = vec![first];
    for i in 1..n {
        nodes.push(NodeProc::start_local(&format!("node {i}"), Some(&join), extra));
    }
    let since = nodes[0].started;
    wait_all_live(&mut nodes, since, timeout).unwrap_or_else(|e| panic!("{e}"));
    nodes
}

/// Polls every node's output (every 20 ms) until `check` gives a value, or fails after `timeout`.
pub fn wait_nodes<T>(
    nodes: &mut [NodeProc],
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&[NodeProc]) -> Option<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        nodes.iter_mut().for_each(NodeProc::pump);
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
/// itself) live: when the last of those views began, or `since` if later.
pub fn all_live(watchers: &[&NodeProc], peers: &[&str], since: Instant) -> Option<Instant> {
    let mut last = since;
    for w in watchers {
        for p in peers.iter().filter(|p| **p != w.peer) {
            last = last.max(w.live_since(p)?);
        }
    }
    Some(last)
}

/// Waits until every node sees every other one live; returns when the last
/// of those views began (`since` at the earliest). On timeout the error
/// names the pairs still apart and how each sees the other.
pub fn wait_all_live(nodes: &mut [NodeProc], since: Instant, timeout: Duration) -> anyhow::Result<Instant> {
    let peers: Vec<String> = nodes.iter().map(|n| n.peer.clone()).collect();
    let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
    let done = wait_nodes(nodes, "every node live at every other", timeout, |ns| {
        all_live(&ns.iter().collect::<Vec<_>>(), &peers, since)
    });
    done.map_err(|e| {
        let apart: Vec<String> = nodes
            .iter()
            .flat_map(|w| nodes.iter().filter(move |p| p.peer != w.peer).map(move |p| (w, p)))
            .filter(|(w, p)| w.live_since(&p.peer).is_none())
            .map(|(w, p)| format!("{} sees {} as {:?}", w.label, p.label, w.sees(&p.peer).map(|s| s.0)))
            .collect();
        anyhow::anyhow!("{e}: {}", apart.join(", "))
    })
}

/// Reads every node's output for `window` (a deliberate observation
/// period, not a synchronisation) and returns the `peer_down` lines printed
/// since `since` about a peer for which `counts` holds, as (who, about
/// whom, why); stops at the first.
pub fn downs_within(
    nodes: &mut [NodeProc],
    since: Instant,
    window: Duration,
    counts: impl Fn(&str) -> bool,
) -> Vec<(String, String, String)> {
    let found = wait_nodes(nodes, "a peer_down", window, |ns| {
        let downs: Vec<_> = ns
            .iter()
            .flat_map(|n| n.downs_after(since).into_iter().map(|(_, p, why)| (n.label.clone(), p, why)))
            .filter(|(_, p, _)| counts(p))
            .map(|(who, p, why)| (who, short(&p), why))
            .collect();
        (!downs.is_empty()).then_some(downs)
    });
    found.unwrap_or_default()
}
