//! NATs in the lab: a "public" network and private networks, each behind a
//! router that masquerades (nftables) like a home or office router.
//!
//! Layout ([`NatLab::new`]): the public network is the lab's subnet A
//! (10.99.0.0/24 on `br0`): its public hosts first, then one router per
//! private network. Private network `j` is 10.99.`10+j`.0/24 on bridge
//! `bn<j>` of the switch namespace; its router has `eth1` = 10.99.`10+j`.1
//! there and forwards; its hosts route everything through it. Public
//! hosts have no route into any private network, and a router forwards
//! only between its own two networks, so no packet leaves the lab.
//!
//! What each router does (table `ip mwnat` in its namespace):
//! - masquerade what leaves to the public side (`eth0`): [`NatKind::Cone`]
//!   keeps the source port when it is free, so one socket keeps one public
//!   address:port whatever it talks to (endpoint-independent mapping, the
//!   "full cone"-like NAT hole punching needs); [`NatKind::Symmetric`]
//!   picks a random port per connection (`fully-random`), so the address
//!   a peer sees is useless to anyone else and hole punching fails;
//! - drops, silently, every new connection from the public side, to it or
//!   through it: only replies to what the inside opened come in. Silently
//!   matters: a router that answered a hole-punching SYN with a reset
//!   would make the other side's simultaneous open fail.
//!
//! [`NatLab::unplug`] makes a router drop all it forwards (a cut cable
//! behind the router, connection tracking kept) until [`NatLab::replug`].

use super::Lab;
use std::ops::{Deref, DerefMut};

/// How a router maps inside addresses to its public one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// Port-preserving masquerade: endpoint-independent mapping.
    Cone,
    /// A random port per connection: endpoint-dependent mapping.
    Symmetric,
}

/// One private network.
#[derive(Clone, Debug)]
pub struct PrivateNet {
    /// Its router's kind.
    pub kind: NatKind,
    /// Its router (a lab host on the public network).
    pub router: usize,
    /// Its hosts.
    pub hosts: Vec<usize>,
}

/// A lab of a public network and private networks behind NATs.
pub struct NatLab {
    lab: Lab,
    /// Hosts on the public network (routers aside).
    pub public: Vec<usize>,
    /// The private networks, in the order asked for.
    pub nets: Vec<PrivateNet>,
}

impl NatLab {
    /// `public` public hosts and, for each `(kind, hosts)` of `nats`, a
    /// private network of `hosts` hosts behind a `kind` router; None when
    /// the lab cannot run here (see [`Lab::new`]).
    pub fn new(public: usize, nats: &[(NatKind, usize)]) -> Option<NatLab> {
        let mut lab = Lab::new(public + nats.len())?;
        let nets = nats.iter().enumerate().map(|(j, (kind, n))| lab.private_net(public + j, j, *kind, *n)).collect();
        Some(NatLab { lab, public: (0..public).collect(), nets })
    }

    /// Host `k` of private network `net`.
    pub fn inside(&self, net: usize, k: usize) -> usize {
        self.nets[net].hosts[k]
    }

    /// Private network `net`'s router drops everything it would forward.
    pub fn unplug(&self, net: usize) {
        let rules = "table inet mwcut {\n chain cut { type filter hook forward priority -10; policy drop; }\n}\n";
        self.lab.exec_in(&self.lab.hosts[self.nets[net].router].ns, &["nft", "-f", "-"], Some(rules));
    }

    /// Private network `net`'s router forwards again.
    pub fn replug(&self, net: usize) {
        let ns = &self.lab.hosts[self.nets[net].router].ns;
        self.lab.exec_in(ns, &["nft", "delete", "table", "inet", "mwcut"], None);
    }
}

impl Deref for NatLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl DerefMut for NatLab {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }
}

impl Lab {
    /// Makes host `router` (on subnet A) the `kind` NAT router of private
    /// network `j` with `hosts` new hosts; see the module documentation.
    fn private_net(&mut self, router: usize, j: usize, kind: NatKind, hosts: usize) -> PrivateNet {
        let (sw, ns) = (self.switch.clone(), self.hosts[router].ns.clone());
        let (bridge, port, prefix) = (format!("bn{j}"), format!("vn{j}"), format!("10.99.{}", 10 + j));
        self.ip(&["-n", &sw, "link", "add", &bridge, "type", "bridge"]);
        self.ip(&["-n", &sw, "link", "set", &bridge, "up"]);
        self.ip(&["-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth1", "netns", &ns]);
        self.ip(&["-n", &sw, "link", "set", &port, "master", &bridge]);
        self.ip(&["-n", &sw, "link", "set", &port, "up"]);
        self.ip(&["-n", &ns, "addr", "add", &format!("{prefix}.1/24"), "dev", "eth1"]);
        self.ip(&["-n", &ns, "link", "set", "eth1", "up"]);
        // /proc/sys/net belongs to the network namespace of whoever opens it.
        self.exec_in(&ns, &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"], None);
        let masquerade = match kind {
            NatKind::Cone => "masquerade",
            NatKind::Symmetric => "masquerade fully-random",
        };
        let rules = format!(
            "table ip mwnat {{\n\
             chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; oifname \"eth0\" {masquerade}; }}\n\
             chain forward {{ type filter hook forward priority filter; policy accept; iifname \"eth0\" ct state new drop; }}\n\
             chain input {{ type filter hook input priority filter; policy accept; iifname \"eth0\" ct state new drop; }}\n\
             }}\n"
        );
        self.exec_in(&ns, &["nft", "-f", "-"], Some(&rules));
        let gateway = format!("{prefix}.1");
        let hosts = (0..hosts)
            .map(|k| self.add_host(&bridge, &format!("{prefix}.{}", k + 2), &[("default", &gateway)]))
            .collect();
        PrivateNet { kind, router, hosts }
    }
}
