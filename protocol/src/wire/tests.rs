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
        interval_ms: 1000,
        mesh: 4,
        ..Advert::default()
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
            PieceResult { piece: 3, outcome: Outcome::Repeats("exited with code 3".into()) },
        ],
    });
    for r in [
        res,
        Response::Rejected(Rejected { load, reason: RejectReason::VersionMismatch(2) }),
        Response::Status(advert()),
    ] {
        assert_eq!(from_cbor::<Response>(&to_cbor(&r)).unwrap(), r);
    }
}

#[test]
fn a_failure_that_repeats_reads_as_a_failure_to_peers_that_predate_the_flag() {
    /// A piece result as version 2 first decoded it, without `repeats`.
    #[derive(Debug, Deserialize, Serialize)]
    struct Before {
        piece: u32,
        outcome: Outcome,
    }
    let repeats = PieceResult { piece: 1, outcome: Outcome::Repeats("trapped".into()) };
    let old: Before = from_cbor(&to_cbor(&repeats)).unwrap();
    assert_eq!((old.piece, old.outcome), (1, Outcome::Failed("trapped".into())));
    // An ordinary failure is encoded as before, and an old peer's reads as one.
    let failed = PieceResult { piece: 1, outcome: Outcome::Failed("boom".into()) };
    let old = Before { piece: 1, outcome: Outcome::Failed("boom".into()) };
    assert_eq!(to_cbor(&failed), to_cbor(&old));
    assert_eq!(from_cbor::<PieceResult>(&to_cbor(&old)).unwrap(), failed);
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
    assert!(matches!(bad(|a| a.interval_ms = MAX_INTERVAL_MS + 1), AdvertError::Implausible(_)));
    assert!(matches!(bad(|a| a.mesh = MAX_MESH + 1), AdvertError::Implausible(_)));
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

/// The examples PROTOCOL.md shows, by name.
pub(crate) fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let load = Load { slots: 2, running: 1, queued: 0, capacity: 16384 };
    vec![
        ("advert", to_cbor(&advert())),
        ("status-request", to_cbor(&Request::Status)),
        (
            "run-request",
            to_cbor(&Request::Run(RunRequest {
                version: PROTOCOL_VERSION,
                job: JobId(0x0123_4567_89ab_cdef),
                task: "noop".into(),
                piece_timeout_ms: 300_000,
                pieces: vec![PieceInput { piece: 0, input: vec![0x00] }, PieceInput { piece: 1, input: vec![0x01] }],
            })),
        ),
        ("cancel-request", to_cbor(&Request::Cancel(CancelRequest { job: JobId(7), pieces: None }))),
        ("status-response", to_cbor(&Response::Status(advert()))),
        (
            "results-response",
            to_cbor(&Response::Results(Results {
                load,
                exec_us: 12,
                pieces: vec![
                    PieceResult { piece: 0, outcome: Outcome::Done { output: vec![0x00], conclusive: false } },
                    PieceResult { piece: 1, outcome: Outcome::Failed("boom".into()) },
                    PieceResult { piece: 2, outcome: Outcome::Cancelled },
                ],
            })),
        ),
        (
            "repeats-piece-result",
            to_cbor(&PieceResult { piece: 4, outcome: Outcome::Repeats("exited with code 3".into()) }),
        ),
        ("rejected-response", to_cbor(&Response::Rejected(Rejected { load, reason: RejectReason::Busy }))),
        ("cancelled-response", to_cbor(&Response::Cancelled(load))),
        ("members-request", to_cbor(&Request::Members)),
        ("status-request-frame", to_cbor(&RequestFrame { id: 1, request: Request::Status })),
        ("cancelled-response-frame", to_cbor(&ResponseFrame { id: 1, response: Response::Cancelled(load) })),
        (
            "members-response",
            to_cbor(&Response::Members(vec![Member {
                peer: vec![0x00, 0x24, 0x08, 0x01],
                addrs: vec![serde_bytes::ByteBuf::from(vec![0x04, 10, 0, 0, 5, 0x06, 0x0f, 0xa1])],
            }])),
        ),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn protocol_md_hex_examples_match_the_encoder() {
    let doc = include_str!("../../../PROTOCOL.md");
    for (name, bytes) in examples() {
        let marker = format!("<!-- example: {name} -->");
        let at = doc.find(&marker).unwrap_or_else(|| panic!("PROTOCOL.md lacks example {name}"));
        let block = doc[at..].split("```").nth(1).expect("a code block after the marker");
        let shown: String = block.trim_start_matches("hex").split_whitespace().collect();
        assert_eq!(shown, hex(&bytes), "PROTOCOL.md example {name} is out of date");
    }
}

#[test]
#[ignore = "prints the examples for PROTOCOL.md"]
fn print_examples() {
    for (name, bytes) in examples() {
        println!("{name}\n{}\n", hex(&bytes));
    }
}

#[test]
fn reachability_is_omitted_when_unknown_and_round_trips_otherwise() {
    let unknown = advert();
    let text = String::from_utf8_lossy(&to_cbor(&unknown)).into_owned();
    assert!(!text.contains("reachability"), "an unknown reachability is left out, so the advert encodes as before");
    for r in [Reachability::Public, Reachability::BehindNat] {
        let a = Advert { reachability: r, ..advert() };
        assert_eq!(decode_advert(&to_cbor(&a)).unwrap(), a);
    }
    let behind = Advert { reachability: Reachability::BehindNat, ..advert() };
    let bytes = to_cbor(&behind);
    assert!(String::from_utf8_lossy(&bytes).contains("behind-nat"));
    // A value a later version may add reads as unknown, not as an invalid advert.
    let at = bytes.windows(10).position(|w| w == b"behind-nat").unwrap();
    let mut later = bytes.clone();
    later[at..at + 10].copy_from_slice(b"later-kind");
    assert_eq!(decode_advert(&later).unwrap().reachability, Reachability::Unknown);
}
