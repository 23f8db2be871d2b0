//! Every request a peer can send, decoded from arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshwork_protocol::wire::{from_cbor, to_cbor, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = from_cbor::<Request>(data) {
        // What decodes must encode and decode to itself.
        assert_eq!(from_cbor::<Request>(&to_cbor(&req)).as_ref(), Ok(&req));
    }
});
