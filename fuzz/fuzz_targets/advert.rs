//! Adverts from the gossip topic: size check, CBOR, validation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meshwork_protocol::wire::decode_advert;

fuzz_target!(|data: &[u8]| {
    if let Ok(advert) = decode_advert(data) {
        assert!(advert.running <= advert.slots);
    }
});
