//! What `meshwork node --json` (stdout) and `meshwork run --json` (stderr)
//! print, as types. Tests read these events, never the human wording, so
//! rewording a message cannot break a test and a test cannot pass on a
//! message that merely looks right. Unknown fields are ignored; an unknown
//! kind of event is kept as `Other` so new events do not break old tests.

use serde::Deserialize;
use std::time::Instant;

/// One event of `meshwork node --json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    /// It listens on `addr` (with `/p2p/<peer id>`).
    Listening {
        /// The address.
        addr: String,
    },
    /// Its HTTP API is at `url`.
    Http {
        /// `http://<ip>:<port>`.
        url: String,
    },
    /// A worker is live (again).
    PeerUp {
        /// Its peer id.
        peer: String,
    },
    /// A worker is down.
    PeerDown {
        /// Its peer id.
        peer: String,
        /// Why, in words.
        reason: String,
    },
    /// A live worker's adverts stopped.
    PeerQuiet {
        /// Its peer id.
        peer: String,
    },
    /// A quiet worker was heard from again.
    PeerHeard {
        /// Its peer id.
        peer: String,
    },
    /// What AutoNAT found of the node itself: `public`, `behind-nat`
    /// or `unknown`.
    Reachability {
        /// The verdict.
        reachability: String,
    },
    /// Up/down events the node lost (its report fell behind).
    Missed {
        /// How many.
        count: u64,
    },
    /// A kind of event this test kit does not know.
    #[serde(other)]
    Other,
}

impl NodeEvent {
    /// The event of one output line, if it is one.
    pub fn parse(line: &str) -> Option<NodeEvent> {
        line.starts_with('{').then(|| serde_json::from_str(line).ok()).flatten()
    }

    /// The peer it is about, if any.
    pub fn peer(&self) -> Option<&str> {
        match self {
            NodeEvent::PeerUp { peer }
            | NodeEvent::PeerDown { peer, .. }
            | NodeEvent::PeerQuiet { peer }
            | NodeEvent::PeerHeard { peer } => Some(peer),
            NodeEvent::Listening { .. }
            | NodeEvent::Http { .. }
            | NodeEvent::Reachability { .. }
            | NodeEvent::Missed { .. }
            | NodeEvent::Other => None,
        }
    }
}

/// One job event of `meshwork run --json` (placements, unplaceable pieces
/// and progress only with `--explain`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// A batch went to `peer`.
    Placed {
        /// Its peer id.
        peer: String,
        /// The pieces.
        pieces: Vec<u32>,
        /// A speculative copy of a straggler.
        backup: bool,
    },
    /// A piece failed on `peer` and goes elsewhere.
    Retried {
        /// The piece.
        piece: u32,
        /// Its peer id.
        peer: String,
        /// Why, in words.
        cause: String,
    },
    /// `peer` refused the job's pieces (not for being busy).
    Refused {
        /// Its peer id.
        peer: String,
        /// Why, in words.
        reason: String,
    },
    /// No peer can take `piece` now.
    Unplaceable {
        /// The piece.
        piece: u32,
        /// Why, in words.
        why: String,
    },
    /// Pieces done so far.
    Progress {
        /// Done.
        done: u32,
        /// In all.
        total: u32,
    },
    /// Something worth saying before the job started (e.g. too few peers).
    Warning {
        /// What.
        message: String,
    },
    /// A kind of event this test kit does not know.
    #[serde(other)]
    Other,
}

impl JobEvent {
    /// The event of one stderr line, if it is one.
    pub fn parse(line: &str) -> Option<JobEvent> {
        line.starts_with('{').then(|| serde_json::from_str(line).ok()).flatten()
    }
}

/// An event and when its line arrived.
#[derive(Clone, Debug)]
pub struct Stamped<E> {
    /// When the reader thread received the line.
    pub at: Instant,
    /// The event.
    pub event: E,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_job_lines_parse_and_anything_else_does_not() {
        let down = r#"{"event":"peer_down","peer":"P","reason":"left"}"#;
        assert_eq!(NodeEvent::parse(down), Some(NodeEvent::PeerDown { peer: "P".into(), reason: "left".into() }));
        assert_eq!(NodeEvent::parse(r#"{"event":"something_new","x":1}"#), Some(NodeEvent::Other));
        assert_eq!(NodeEvent::parse("peer-up P"), None);
        let http = r#"{"event":"http","url":"http://127.0.0.1:7070"}"#;
        assert_eq!(NodeEvent::parse(http), Some(NodeEvent::Http { url: "http://127.0.0.1:7070".into() }));
        let placed =
            r#"{"event":"placed","job":"j","peer":"P","pieces":[3],"backup":false,"load":0,"slots":1,"considered":[]}"#;
        assert_eq!(
            JobEvent::parse(placed),
            Some(JobEvent::Placed { peer: "P".into(), pieces: vec![3], backup: false })
        );
        assert_eq!(JobEvent::parse("WARN something"), None);
    }
}
