//! The member list a node hands to one that joined through it
//! ([`Request::Members`](meshwork_protocol::wire::Request::Members)), and
//! reading such a list back. Bounded both ways: at most
//! [`MAX_MEMBERS`] members of [`MAX_MEMBER_ADDRS`] addresses each, and
//! entries that do not parse are skipped.

use libp2p::{Multiaddr, PeerId};
use meshwork_protocol::wire::{Member, MAX_MEMBERS, MAX_MEMBER_ADDRS};
use serde_bytes::ByteBuf;

/// The list to send: `members` (live peers with their known addresses,
/// most recent last), the requester left out.
pub(crate) fn list(members: impl Iterator<Item = (PeerId, Vec<Multiaddr>)>, requester: PeerId) -> Vec<Member> {
    members
        .filter(|(p, addrs)| *p != requester && !addrs.is_empty())
        .take(MAX_MEMBERS)
        .map(|(p, addrs)| Member {
            peer: p.to_bytes(),
            addrs: addrs.iter().rev().take(MAX_MEMBER_ADDRS).map(|a| ByteBuf::from(a.to_vec())).collect(),
        })
        .collect()
}

/// The members of a received list that parse, at most [`MAX_MEMBERS`].
pub(crate) fn read(list: Vec<Member>) -> Vec<(PeerId, Vec<Multiaddr>)> {
    list.into_iter()
        .take(MAX_MEMBERS)
        .filter_map(|m| {
            let peer = PeerId::from_bytes(&m.peer).ok()?;
            let addrs: Vec<Multiaddr> = m
                .addrs
                .into_iter()
                .take(MAX_MEMBER_ADDRS)
                .filter_map(|a| Multiaddr::try_from(a.into_vec()).ok())
                .collect();
            (!addrs.is_empty()).then_some((peer, addrs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_within_bounds() {
        let me = PeerId::random();
        let addr = |p: u16| format!("/ip4/10.0.0.1/tcp/{p}").parse::<Multiaddr>().unwrap();
        let peers: Vec<(PeerId, Vec<Multiaddr>)> = (0..MAX_MEMBERS + 5)
            .map(|i| (PeerId::random(), (0..6).map(|p| addr(i as u16 * 10 + p)).collect()))
            .collect();
        let sent = list(peers.iter().cloned().chain([(me, vec![addr(1)])]), me);
        assert_eq!(sent.len(), MAX_MEMBERS);
        let got = read(sent);
        assert_eq!(got.len(), MAX_MEMBERS);
        assert!(got.iter().all(|(p, a)| *p != me && a.len() == MAX_MEMBER_ADDRS));
        assert_eq!(got[0].1[0], addr(5), "the most recent address first");
        let junk = vec![Member { peer: vec![1, 2, 3], addrs: vec![ByteBuf::from(vec![0xff])] }];
        assert!(read(junk).is_empty());
    }
}
