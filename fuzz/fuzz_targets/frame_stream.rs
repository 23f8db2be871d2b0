//! The node's RPC reader, `frame::Decoder`, fed a stream in parts of sizes
//! the fuzzer chooses (as TCP and yamux may cut it): it must give the same
//! frames, and refuse at the same frame, as cutting the whole stream at
//! once; each body is then decoded as a request and a response frame.
//!
//! Input: one byte `k`, then `k % 8 + 1` part sizes (a byte each, 0 read as
//! 1, used in turn), then the stream.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshwork_protocol::wire::frame::{self, Decoder};
use meshwork_protocol::wire::{from_cbor, RequestFrame, ResponseFrame};

const LIMIT: usize = 1 << 20;

/// The frames of the whole stream, and whether it ends with a refused header.
fn at_once(mut stream: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut bodies = Vec::new();
    while let Some((header, rest)) = stream.split_first_chunk::<{ frame::HEADER_LEN }>() {
        let Ok(len) = frame::body_len(*header, LIMIT) else { return (bodies, true) };
        let Some(body) = rest.get(..len) else { break };
        bodies.push(body.to_vec());
        stream = &rest[len..];
    }
    (bodies, false)
}

/// The same through a decoder, in parts of `sizes` bytes in turn.
fn in_parts(stream: &[u8], sizes: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut dec = Decoder::new(LIMIT);
    let mut bodies = Vec::new();
    let mut sizes = sizes.iter().cycle();
    let mut rest = stream;
    while !rest.is_empty() {
        let step = usize::from(*sizes.next().expect("at least one size")).max(1);
        let (mut part, after) = rest.split_at(step.min(rest.len()));
        rest = after;
        while !part.is_empty() {
            match dec.push(part) {
                Ok((took, body)) => {
                    part = &part[took..];
                    bodies.extend(body);
                }
                Err(_) => return (bodies, true),
            }
        }
    }
    (bodies, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let n = usize::from(k % 8) + 1;
    if rest.len() < n {
        return;
    }
    let (sizes, stream) = rest.split_at(n);
    let whole = at_once(stream);
    assert_eq!(in_parts(stream, sizes), whole, "parts of {sizes:?}");
    for body in &whole.0 {
        let _ = from_cbor::<RequestFrame>(body);
        let _ = from_cbor::<ResponseFrame>(body);
    }
});
