//! The RPC codec's read path: a 4-byte length, checked against the limit,
//! then that many bytes of CBOR decoded as a request and as a response.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshwork_protocol::wire::{frame, from_cbor, Request, Response};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((header, rest)) = data.split_first_chunk::<{ frame::HEADER_LEN }>() else { return };
    let Ok(len) = frame::body_len(*header, LIMIT) else { return };
    let Some(body) = rest.get(..len) else { return };
    let _ = from_cbor::<Request>(body);
    let _ = from_cbor::<Response>(body);
});
