//! Placement policies: which of the peers with room gets the next batch.
//!
//! `p2c` (power of two choices) is what meshwork ships: draw two peers at
//! random, take the less loaded. With gossip that is always a little stale it
//! avoids the herd that `least-loaded` causes (everyone piles onto the peer
//! that looked idle a moment ago) while keeping the maximum load near
//! `ln ln n` above the mean. The others exist to compare against.

use crate::ids::PeerKey;
use rand::Rng;
use std::cmp::Ordering;
use std::str::FromStr;

/// A placement policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Two random candidates, the less loaded wins.
    #[default]
    P2c,
    /// The least loaded candidate of all (ties at random).
    LeastLoaded,
    /// A random candidate.
    Random,
    /// Candidates in turn.
    RoundRobin,
}

impl Policy {
    /// Every policy, in CLI order.
    pub const ALL: [Policy; 4] = [Policy::P2c, Policy::LeastLoaded, Policy::Random, Policy::RoundRobin];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::P2c => "p2c",
            Policy::LeastLoaded => "least-loaded",
            Policy::Random => "random",
            Policy::RoundRobin => "round-robin",
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown policy {s:?}; expected p2c, least-loaded, random or round-robin"))
    }
}

/// A peer as placement sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Who.
    pub peer: PeerKey,
    /// Pieces it has (estimated: its last report corrected by our own in flight).
    pub load: u32,
    /// Its slots (> 0 for every candidate).
    pub slots: u32,
}

impl Candidate {
    /// Compares load per slot without floating point.
    pub fn cmp_load(&self, other: &Candidate) -> Ordering {
        (self.load as u64 * other.slots as u64).cmp(&(other.load as u64 * self.slots as u64))
    }
}

/// The peer picked, with the candidates that were weighed (for `--explain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The winner.
    pub chosen: Candidate,
    /// Every candidate weighed, the winner included.
    pub considered: Vec<Candidate>,
}

/// Random draws before falling back to a scan (only exclusions make draws miss).
const DRAWS: usize = 8;

/// Applies a [`Policy`]; keeps the round-robin cursor.
#[derive(Clone, Debug, Default)]
pub struct Chooser {
    policy: Policy,
    cursor: usize,
    prefer: Option<PeerKey>,
}

impl Chooser {
    /// A chooser for `policy`.
    pub fn new(policy: Policy) -> Chooser {
        Chooser { policy, cursor: 0, prefer: None }
    }

    /// Breaks ties between equally loaded candidates in favour of `peer`
    /// (the submitter itself: a piece it runs needs no network).
    pub fn preferring(mut self, peer: PeerKey) -> Chooser {
        self.prefer = Some(peer);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Picks one of `open` (peers with room) that `allowed` accepts.
    pub fn choose<R: Rng>(
        &mut self,
        open: &[PeerKey],
        describe: impl Fn(PeerKey) -> Candidate,
        allowed: impl Fn(PeerKey) -> bool,
        rng: &mut R,
    ) -> Option<Choice> {
        if open.is_empty() {
            return None;
        }
        match self.policy {
            Policy::P2c => {
                let a = draw(open, &allowed, rng, None)?;
                let b = draw(open, &allowed, rng, Some(a));
                let a = describe(a);
                let Some(b) = b.map(&describe) else {
                    return Some(Choice { chosen: a, considered: vec![a] });
                };
                let chosen = match b.cmp_load(&a) {
                    Ordering::Less => b,
                    Ordering::Equal if Some(b.peer) == self.prefer => b,
                    _ => a,
                };
                Some(Choice { chosen, considered: vec![a, b] })
            }
            Policy::Random => {
                let a = describe(draw(open, &allowed, rng, None)?);
                Some(Choice { chosen: a, considered: vec![a] })
            }
            Policy::LeastLoaded => {
                let mut best: Option<Candidate> = None;
                let mut ties = 0u32;
                for c in open.iter().copied().filter(|p| allowed(*p)).map(&describe) {
                    match best.map(|b| c.cmp_load(&b)) {
                        None | Some(Ordering::Less) => {
                            best = Some(c);
                            ties = 1;
                        }
                        Some(Ordering::Equal) if best.is_some_and(|b| Some(b.peer) == self.prefer) => {}
                        Some(Ordering::Equal) => {
                            ties += 1;
                            if Some(c.peer) == self.prefer || rng.random_range(0..ties) == 0 {
                                best = Some(c);
                            }
                        }
                        Some(Ordering::Greater) => {}
                    }
                }
                best.map(|b| Choice { chosen: b, considered: vec![b] })
            }
            Policy::RoundRobin => {
                let n = open.len();
                (0..n).find_map(|i| {
                    let peer = open[(self.cursor + i) % n];
                    allowed(peer).then(|| {
                        self.cursor = (self.cursor + i + 1) % n;
                        let c = describe(peer);
                        Choice { chosen: c, considered: vec![c] }
                    })
                })
            }
        }
    }
}

/// A random allowed peer other than `not`: a few random draws, then a scan
/// from a random start so the fallback is not biased to the front.
fn draw<R: Rng>(
    open: &[PeerKey],
    allowed: &impl Fn(PeerKey) -> bool,
    rng: &mut R,
    not: Option<PeerKey>,
) -> Option<PeerKey> {
    let ok = |p: PeerKey| Some(p) != not && allowed(p);
    for _ in 0..DRAWS {
        let p = open[rng.random_range(0..open.len())];
        if ok(p) {
            return Some(p);
        }
    }
    let start = rng.random_range(0..open.len());
    (0..open.len()).map(|i| open[(start + i) % open.len()]).find(|p| ok(*p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn loads(n: u32, bins: &[u32]) -> impl Fn(PeerKey) -> Candidate + '_ {
        let _ = n;
        move |p| Candidate { peer: p, load: bins[p.0 as usize], slots: 1 }
    }

    /// Balls into bins: n balls, n bins. One choice gives a max near
    /// ln n / ln ln n (~7 for n = 10,000); two choices give ~ln ln n / ln 2 (~4).
    #[test]
    fn two_choices_beat_one_on_max_load() {
        let n = 10_000u32;
        let open: Vec<PeerKey> = (0..n).map(PeerKey).collect();
        let max = |policy| {
            let mut bins = vec![0u32; n as usize];
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut chooser = Chooser::new(policy);
            for _ in 0..n {
                let c = chooser.choose(&open, loads(n, &bins), |_| true, &mut rng).unwrap();
                bins[c.chosen.peer.0 as usize] += 1;
            }
            *bins.iter().max().unwrap()
        };
        let (p2c, random) = (max(Policy::P2c), max(Policy::Random));
        assert!(p2c <= 4, "p2c max load {p2c}");
        assert!(random >= 6, "random max load {random}");
        assert_eq!(max(Policy::LeastLoaded), 1);
        assert_eq!(max(Policy::RoundRobin), 1);
    }

    #[test]
    fn exclusions_are_respected() {
        let open: Vec<PeerKey> = (0..50).map(PeerKey).collect();
        let bins = vec![0u32; 50];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for policy in Policy::ALL {
            let mut chooser = Chooser::new(policy);
            for _ in 0..100 {
                let c = chooser.choose(&open, loads(50, &bins), |p| p.0 == 33, &mut rng).unwrap();
                assert_eq!(c.chosen.peer, PeerKey(33), "{policy}");
            }
            assert!(chooser.choose(&open, loads(50, &bins), |_| false, &mut rng).is_none());
        }
    }

    #[test]
    fn ties_go_to_the_preferred_peer() {
        let open: Vec<PeerKey> = (0..2).map(PeerKey).collect();
        let bins = vec![0u32; 2];
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for policy in [Policy::P2c, Policy::LeastLoaded] {
            let mut chooser = Chooser::new(policy).preferring(PeerKey(1));
            for _ in 0..20 {
                let c = chooser.choose(&open, loads(2, &bins), |_| true, &mut rng).unwrap();
                assert_eq!(c.chosen.peer, PeerKey(1), "{policy}");
            }
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
        }
        assert!("fastest".parse::<Policy>().is_err());
    }
}
