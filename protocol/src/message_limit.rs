//! Results that would not fit in one RPC message.
//!
//! A worker's answer carries every output of its batch; one that exceeds
//! the message limit would be refused by the transport and break the
//! stream, leaving the submitter with no answer at all. Instead each
//! finished piece of such a batch becomes a failure that says why, so the
//! submitter gets a clear error (and its retry rules apply) over a healthy
//! stream.

use crate::wire::{Outcome, Response};

/// Bytes one piece's entry costs besides its output (index, tags, lengths).
const PER_PIECE: usize = 32;
/// Bytes the rest of a results message costs (load, timing, framing).
const PER_MESSAGE: usize = 64;

/// `response`, with every finished piece failed instead if the batch's
/// outputs would push it over `limit` bytes. Other responses pass unchanged.
pub(crate) fn fit(response: Response, limit: usize) -> Response {
    let Response::Results(mut results) = response else { return response };
    let size: usize = results.pieces.iter().map(|p| PER_PIECE + output_len(&p.outcome)).sum();
    if size + PER_MESSAGE > limit {
        for p in &mut results.pieces {
            let len = output_len(&p.outcome);
            if matches!(p.outcome, Outcome::Done { .. }) {
                p.outcome = Outcome::Failed(format!(
                    "output of {len} bytes (batch {size}) exceeds the message limit of {limit} bytes"
                ));
            }
        }
    }
    Response::Results(results)
}

fn output_len(o: &Outcome) -> usize {
    match o {
        Outcome::Done { output, .. } => output.len(),
        Outcome::Failed(s) | Outcome::Repeats(s) => s.len(),
        Outcome::Cancelled => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Load, PieceResult, Results};

    fn results(outcomes: Vec<Outcome>) -> Response {
        let pieces = outcomes.into_iter().enumerate().map(|(i, outcome)| PieceResult { piece: i as u32, outcome });
        Response::Results(Results { load: Load::default(), exec_us: 1, pieces: pieces.collect() })
    }

    fn outcomes(r: Response) -> Vec<Outcome> {
        let Response::Results(r) = r else { panic!("not results: {r:?}") };
        r.pieces.into_iter().map(|p| p.outcome).collect()
    }

    fn done(len: usize) -> Outcome {
        Outcome::Done { output: vec![7; len], conclusive: false }
    }

    #[test]
    fn a_batch_within_the_limit_is_untouched() {
        let batch = vec![done(100), Outcome::Failed("no".into()), done(100)];
        assert_eq!(outcomes(fit(results(batch.clone()), 1000)), batch);
    }

    #[test]
    fn a_batch_over_the_limit_fails_its_finished_pieces_and_says_why() {
        let got = outcomes(fit(results(vec![done(600), Outcome::Cancelled, done(600)]), 1000));
        assert_eq!(got[1], Outcome::Cancelled, "only finished pieces change");
        for o in [&got[0], &got[2]] {
            assert!(
                matches!(o, Outcome::Failed(why) if why.contains("600 bytes") && why.contains("limit of 1000 bytes")),
                "{got:?}"
            );
        }
    }

    #[test]
    fn other_responses_pass_unchanged() {
        let r = fit(Response::Cancelled(Load::default()), 0);
        assert!(matches!(r, Response::Cancelled(_)));
    }
}
