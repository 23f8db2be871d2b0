//! A node's state machine fed whatever a hostile peer could send: requests,
//! responses to its own requests, adverts, peer up/down and time, in any
//! order. It must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshwork_protocol::wire::{decode_advert, from_cbor, Request, Response};
use meshwork_protocol::{Action, Config, InboundId, JobSpec, Machine, PeerKey, RequestId, Time};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let mut cfg = Config::new(PeerKey(0), 1).with_slots(2);
    cfg.tasks = vec!["t".into()];
    let mut m = Machine::new(cfg, Time::ZERO);
    let mut now = Time::ZERO;
    let _ = m.submit(JobSpec::new("t", vec![vec![1]; 4]), now);
    let mut sent: Vec<RequestId> = Vec::new();
    // Each record: op byte, peer byte, length byte, body.
    let mut rest = data;
    while let [op, peer, len, tail @ ..] = rest {
        let (body, next) = tail.split_at((*len as usize).min(tail.len()));
        rest = next;
        let peer = PeerKey(1 + (*peer as u32 % 4));
        now = now + Duration::from_millis(*len as u64 * 10);
        match op % 6 {
            0 => m.handle_peer_up(peer, now),
            1 => m.handle_peer_down(peer, now),
            2 => {
                if let Ok(a) = decode_advert(body) {
                    let _ = m.handle_advert(peer, &a, now);
                }
            }
            3 => {
                if let Ok(req) = from_cbor::<Request>(body) {
                    m.handle_request(peer, InboundId(*len as u64), req, now);
                }
            }
            4 => {
                if let (Ok(res), Some(id)) = (from_cbor::<Response>(body), sent.get(*len as usize % sent.len().max(1))) {
                    m.handle_response(*id, res, now);
                }
            }
            _ => m.handle_timeout(now),
        }
        while let Some(action) = m.poll_action() {
            if let Action::Send { id, .. } = action {
                sent.push(id);
            }
        }
        while m.poll_event().is_some() {}
        while m.poll_peer_event().is_some() {}
    }
});
