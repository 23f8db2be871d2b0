//! Faults the lab injects, each undone by its counterpart:
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
//!   forwarding table changes, so a heal is exactly "frames flow again".
//!
//! A hung process is not a network fault: stop it with
//! `proc.signal(libc::SIGSTOP)` and resume it with `SIGCONT`.

use super::Lab;

impl Lab {
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
}
