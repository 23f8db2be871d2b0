use super::validate::decode_advert;
use super::*;

pub(crate) fn advert() -> Advert {
    Advert {
        version: PROTOCOL_VERSION,
        seq: 7,
        slots: 2,
        running: 1,
        queued: 3,
        capacity: 16,
        tasks: vec!["primes".into()],
    }
}

#[test]
fn messages_round_trip_through_cbor() {
    let run = Request::Run(RunRequest {
        version: PROTOCOL_VERSION,
        job: JobId(42),
        task: "noop".into(),
        piece_timeout_ms: 1000,
        pieces: vec![PieceInput { piece: 3, input: vec![1, 2, 3] }],
    });
    for req in [Request::Status, run, Request::Cancel(CancelRequest { job: JobId(1), pieces: Some(vec![2]) })] {
        assert_eq!(from_cbor::<Request>(&to_cbor(&req)).unwrap(), req);
    }
    let load = advert().load();
    let res = Response::Results(Results {
        load,
        exec_us: 5,
        pieces: vec![
            PieceResult { piece: 0, outcome: Outcome::Done { output: vec![9], conclusive: true } },
            PieceResult { piece: 1, outcome: Outcome::Failed("x".into()) },
            PieceResult { piece: 2, outcome: Outcome::Cancelled },
        ],
    });
    for r in
        [res, Response::Rejected(Rejected { load, reason: RejectReason::VersionMismatch(2) }), Response::Status(load)]
    {
        assert_eq!(from_cbor::<Response>(&to_cbor(&r)).unwrap(), r);
    }
}

#[test]
fn byte_payloads_are_cbor_byte_strings() {
    let bytes = to_cbor(&PieceInput { piece: 0, input: vec![0xAB; 3] });
    // major type 2 (byte string) of length 3, not an array of integers
    assert!(bytes.windows(4).any(|w| w == [0x43, 0xAB, 0xAB, 0xAB]), "{bytes:02x?}");
}

#[test]
fn garbage_and_trailing_bytes_are_errors() {
    assert!(matches!(from_cbor::<Request>(&[0xff, 0x00, 0x13]), Err(CborError::Malformed(_))));
    let mut b = to_cbor(&Request::Status);
    b.push(0);
    assert_eq!(from_cbor::<Request>(&b), Err(CborError::TrailingBytes(1)));
}

#[test]
fn adverts_are_validated() {
    assert_eq!(decode_advert(&to_cbor(&advert())), Ok(advert()));
    let bad = |f: fn(&mut Advert)| {
        let mut a = advert();
        f(&mut a);
        decode_advert(&to_cbor(&a)).unwrap_err()
    };
    assert!(matches!(bad(|a| a.version = 9), AdvertError::Version(9)));
    assert!(matches!(bad(|a| a.slots = 1_000_000), AdvertError::Implausible(_)));
    assert!(matches!(bad(|a| a.running = 3), AdvertError::Implausible(_)));
    assert!(matches!(bad(|a| a.queued = u32::MAX), AdvertError::Implausible(_)));
    assert!(matches!(bad(|a| a.capacity = u32::MAX), AdvertError::Implausible(_)));
    assert!(matches!(bad(|a| a.tasks = vec!["Bad Name".into()]), AdvertError::Implausible(_)));
    assert!(matches!(bad(|a| a.tasks = vec!["t".into(); 65]), AdvertError::Implausible(_)));
    assert!(matches!(decode_advert(&[0u8; 5000]), Err(AdvertError::TooLarge(5000))));
    assert!(matches!(decode_advert(b"\xa1\x61x\x01"), Err(AdvertError::Cbor(_))));
}

#[test]
fn frames_carry_a_length_and_refuse_oversized_bodies() {
    let f = frame::encode(b"abc", 10).unwrap();
    assert_eq!(f, [0, 0, 0, 3, b'a', b'b', b'c']);
    assert_eq!(frame::body_len([0, 0, 0, 3], 10), Ok(3));
    let err = frame::body_len([0, 0, 1, 0], 10).unwrap_err();
    assert_eq!(err.to_string(), "message of 256 bytes exceeds the limit of 10 bytes");
    assert!(frame::encode(&[0; 11], 10).is_err());
}
