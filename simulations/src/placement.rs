//! `--placement-only`: balls into bins with the protocol's own
//! [`Chooser`]. M pieces are placed one at a time on N nodes whose loads
//! the chooser sees exactly and which never finish anything; what is left
//! is the policy's spread alone, to hold against theory (with M = N, one
//! random choice gives a max near `ln n / ln ln n`, two choices
//! `ln ln n / ln 2` above the mean).

use crate::config::SimConfig;
use crate::report::PlacementReport;
use meshwork_protocol::policy::{Candidate, Chooser};
use meshwork_protocol::{PeerKey, Policy};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Places `--pieces` on `--nodes` with `--policy` and reports the spread;
/// `command` repeats it.
pub(crate) fn run(args: &SimConfig, command: String) -> PlacementReport {
    let n = args.nodes.max(1);
    let slots = args.slots.max(1);
    let open: Vec<PeerKey> = (0..n).map(PeerKey).collect();
    let mut bins = vec![0u32; n as usize];
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut chooser = Chooser::new(args.policy);
    for _ in 0..args.pieces {
        let describe = |p: PeerKey| Candidate { peer: p, load: bins[p.0 as usize], slots };
        if let Some(c) = chooser.choose(&open, describe, |_| true, &mut rng) {
            bins[c.chosen.peer.0 as usize] += 1;
        }
    }
    let max = bins.iter().copied().max().unwrap_or(0);
    let mean = args.pieces as f64 / n as f64;
    let mut histogram = vec![0u32; max as usize + 1];
    for b in &bins {
        histogram[*b as usize] += 1;
    }
    let ln = (n as f64).ln();
    let predicted_gap = match args.policy {
        _ if n < 16 || slots != 1 => None,
        Policy::P2c => Some(ln.ln() / std::f64::consts::LN_2),
        Policy::Random if args.pieces == n => Some(ln / ln.ln()),
        Policy::LeastLoaded | Policy::RoundRobin => Some(mean.ceil() - mean),
        Policy::Random => None,
    };
    PlacementReport {
        command,
        nodes: n,
        pieces: args.pieces,
        slots,
        seed: args.seed,
        policy: args.policy.to_string(),
        max,
        mean,
        gap: max as f64 - mean,
        predicted_gap,
        histogram,
    }
}
