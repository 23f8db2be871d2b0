//! What the machine answers on the driver's behalf: results too large for
//! one message, and Status requests asked for a client.

use crate::wire::{Outcome, PieceInput, Request, Response, RunRequest, PROTOCOL_VERSION};
use crate::*;
use std::time::Duration;

const PEER: PeerKey = PeerKey(1);

fn machine(max_message: usize) -> Machine {
    let mut cfg = Config::new(PeerKey(0), 1).with_slots(1);
    cfg.tasks = vec!["t".into()];
    cfg.max_message = max_message;
    Machine::new(cfg, Time::ZERO)
}

fn actions(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

/// Runs a one-piece batch for [`PEER`] whose output is `len` bytes; the outcome sent back.
fn run_with_output(m: &mut Machine, len: usize) -> Outcome {
    let run = RunRequest {
        version: PROTOCOL_VERSION,
        job: JobId(1),
        task: "t".into(),
        piece_timeout_ms: 60_000,
        pieces: vec![PieceInput { piece: 0, input: vec![] }],
    };
    m.handle_request(PEER, InboundId(1), Request::Run(run), Time::ZERO);
    let exec = actions(m).into_iter().find_map(|a| if let Action::Execute(e) = a { Some(e) } else { None });
    let exec = exec.expect("the batch was accepted and started");
    let output = Outcome::Done { output: vec![7; len], conclusive: false };
    m.handle_execution(exec.id, vec![output], Duration::from_millis(1), Time::ZERO);
    let answer = actions(m).into_iter().find_map(|a| match a {
        Action::Respond { to: PEER, id: InboundId(1), response: Response::Results(r) } => Some(r),
        _ => None,
    });
    answer.expect("the batch was answered").pieces.remove(0).outcome
}

#[test]
fn results_over_the_message_limit_go_back_as_failures_that_say_why() {
    let mut m = machine(1000);
    let outcome = run_with_output(&mut m, 2000);
    assert!(matches!(&outcome, Outcome::Failed(why) if why.contains("exceeds the message limit")), "{outcome:?}");
}

#[test]
fn results_within_the_message_limit_go_back_whole() {
    let mut m = machine(1000);
    assert_eq!(run_with_output(&mut m, 500), Outcome::Done { output: vec![7; 500], conclusive: false });
}

#[test]
fn a_status_answer_goes_to_the_client_not_the_scheduler() {
    let mut m = machine(1000);
    let id = m.ask_status(PEER, Time::ZERO);
    let sent = actions(&mut m);
    assert!(
        sent.iter().any(|a| matches!(a, Action::Send { to: PEER, id: i, request: Request::Status } if *i == id)),
        "{sent:?}"
    );
    let mut theirs = machine(1000);
    let Some(Action::Respond { response, .. }) = ({
        theirs.handle_request(PeerKey(0), InboundId(9), Request::Status, Time::ZERO);
        actions(&mut theirs).into_iter().find(|a| matches!(a, Action::Respond { .. }))
    }) else {
        panic!("no Status answer")
    };
    m.handle_response(id, response, Time::ZERO);
    assert_eq!(m.poll_status(), Some(StatusAnswer { id, load: Ok(theirs.load()) }));
    assert_eq!(m.poll_status(), None);
    assert!(m.poll_event().is_none(), "no job event");
    assert!(m.peer(PEER, Time::ZERO).is_none_or(|v| v.tasks.is_empty()), "not taken for an advert");
}

#[test]
fn a_failed_or_odd_status_request_says_why() {
    let mut m = machine(1000);
    let lost = m.ask_status(PEER, Time::ZERO);
    let odd = m.ask_status(PEER, Time::ZERO);
    m.handle_failure(lost, "stream closed", Time::ZERO);
    m.handle_response(odd, Response::Members(Vec::new()), Time::ZERO);
    assert_eq!(
        m.poll_status(),
        Some(StatusAnswer { id: lost, load: Err(StatusError::Failed("stream closed".into())) })
    );
    let Some(StatusAnswer { id, load: Err(StatusError::Unexpected(what)) }) = m.poll_status() else {
        panic!("the odd answer is an error")
    };
    assert_eq!((id, what.as_str()), (odd, "Members([])"));
    assert!(m.peers(Time::ZERO).iter().all(|v| v.down.is_none()), "a lost Status request judges nobody");
}

#[test]
fn this_node_answers_its_own_status_at_once() {
    let mut m = machine(1000);
    let id = m.ask_status(PeerKey(0), Time::ZERO);
    assert!(!actions(&mut m).iter().any(|a| matches!(a, Action::Send { .. })), "nothing goes on the wire");
    assert_eq!(m.poll_status(), Some(StatusAnswer { id, load: Ok(m.load()) }));
}
