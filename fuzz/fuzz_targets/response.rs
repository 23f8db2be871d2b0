//! Every response a peer can send, decoded from arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshwork_protocol::wire::{from_cbor, to_cbor, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(res) = from_cbor::<Response>(data) {
        assert_eq!(from_cbor::<Response>(&to_cbor(&res)).as_ref(), Ok(&res));
    }
});
