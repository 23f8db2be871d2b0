//! The RPC stream's read path: a 4-byte length, checked against the limit,
//! then that many bytes of CBOR decoded as a numbered request frame and as a
//! numbered response frame (what `node/src/net/rpc/frames.rs` reads).
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshwork_protocol::wire::{frame, from_cbor, RequestFrame, ResponseFrame};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((header, rest)) = data.split_first_chunk::<{ frame::HEADER_LEN }>() else { return };
    let Ok(len) = frame::body_len(*header, LIMIT) else { return };
    let Some(body) = rest.get(..len) else { return };
    let _ = from_cbor::<RequestFrame>(body);
    let _ = from_cbor::<ResponseFrame>(body);
});
