//! Large messages between libp2p stacks (issue 20, item 3): a peer whose
//! yamux sends data frames as large as the receive window (as js-libp2p's
//! does) sends an 8 MiB `Run` request to a real `meshwork node` process
//! and gets its answer, on a connection that stays up. rust-yamux refuses
//! any frame over 1 MiB by closing the connection; meshwork pins its
//! streams' receive windows at 256 KiB, so no sender's frame can be larger.
//! The same 8 MiB piece also goes from a `meshwork run` process to the node.

use meshwork::net::muxer::STREAM_WINDOW;
use meshwork_protocol::wire::{to_cbor, Outcome, PieceInput, Request, Response, RunRequest, PROTOCOL_VERSION};
use meshwork_protocol::JobId;
use meshwork_tests::node_proc::NodeProc;
use meshwork_tests::rogue::Rogue;
use meshwork_tests::run_proc::RunProc;
use meshwork_tests::wait_until;
use std::time::Duration;

/// Deadline of a wait that should take a few seconds at most.
const T: Duration = Duration::from_secs(30);
const MIB: usize = 1 << 20;
/// Words in the text: "meshwork " is 9 bytes.
const WORDS: usize = 8 * MIB / 9;

#[test]
fn an_8_mib_run_request_sent_in_window_sized_frames_is_answered() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let node = NodeProc::start_local("node", None, &[]);
    let node_id = node.peer.parse().unwrap();
    let text = "meshwork ".repeat(WORDS);
    let run = Request::Run(RunRequest {
        version: PROTOCOL_VERSION,
        job: JobId(1),
        task: "wordcount".into(),
        piece_timeout_ms: 60_000,
        pieces: vec![PieceInput { piece: 0, input: to_cbor(&text) }],
    });
    assert!(to_cbor(&run).len() >= 8 * MIB, "an 8 MiB request");
    let answer = rt.block_on(async {
        let rogue = Rogue::start().await.unwrap();
        rogue.dial(node.addr.parse().unwrap()).await;
        wait_until("the rogue connected", T, || rogue.is_connected(node_id)).await.unwrap();
        let answer = rogue.request(node_id, run, T).await;
        // The connection survived: the next request on it is answered too.
        let status = rogue.request(node_id, Request::Status, T).await;
        assert!(matches!(status, Ok(Response::Status(_))), "{status:?}");
        assert!(rogue.is_connected(node_id).await, "the connection stayed up");
        answer
    });
    let Ok(Response::Results(results)) = answer else { panic!("no results for the 8 MiB batch: {answer:?}") };
    assert!(matches!(results.pieces[..], [ref p] if p.piece == 0 && matches!(p.outcome, Outcome::Done { .. })));
    eprintln!("8 MiB run request in frames of up to {} KiB answered", STREAM_WINDOW / 1024);

    // Between two meshwork processes: one 8 MiB piece (just under the
    // submitter's batch limit of half the 16 MiB message limit).
    let dir = std::env::temp_dir().join(format!("mw-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.txt");
    std::fs::write(&file, "meshwork ".repeat(WORDS - 16)).unwrap();
    let args = ["wordcount", file.to_str().unwrap(), "--pieces", "1"];
    let out = RunProc::start_local(&node.addr, &[&["--min-peers", "1"][..], &args].concat()).finish(T * 2).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    out.assert_exact(1);
    assert_eq!(out.pieces_of(&node.peer), 1, "{}", out.json);
    assert_eq!(out.result("total_words"), Some((WORDS - 16) as u64), "{}", out.json);
}
