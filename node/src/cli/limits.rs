//! Who may submit work to this node and how much it takes: the options of
//! every peer-starting command that bound what other peers can make it do.

use anyhow::Context;
use clap::Args;
use libp2p::PeerId;
use std::path::Path;
use std::time::Duration;

/// Limits and the submitter allow-list.
#[derive(Debug, Clone, Args)]
pub struct LimitOpts {
    /// Which peers this node runs pieces for: `any` (every member of the
    /// mesh), peer ids, or files listing one peer id per line (repeatable).
    #[arg(long, value_name = "any|PEER_ID|FILE", global = true)]
    pub accept_from: Vec<String>,
    /// Largest RPC message sent or accepted, in bytes.
    #[arg(long, default_value_t = meshwork_protocol::wire::frame::DEFAULT_MAX_MESSAGE, value_name = "BYTES", global = true)]
    pub max_message: usize,
    /// Most pieces accepted at once from one submitter [default: the node's capacity].
    #[arg(long, value_name = "N", global = true)]
    pub max_pieces_per_peer: Option<u32>,
    /// Longest time one piece may run here before it is failed and its slot freed, in seconds.
    #[arg(long, default_value_t = 3600.0, value_name = "SECS", global = true, value_parser = super::checks::positive_secs)]
    pub max_piece_time: f64,
    /// Most connections at once.
    #[arg(long, default_value_t = 1024, value_name = "N", global = true)]
    pub max_connections: u32,
}

impl LimitOpts {
    /// The allowed submitters (`None`: any member of the mesh).
    pub fn allowed(&self) -> anyhow::Result<Option<Vec<PeerId>>> {
        if self.accept_from.is_empty() || self.accept_from.iter().any(|a| a == "any") {
            return Ok(None);
        }
        let mut ids = Vec::new();
        for arg in &self.accept_from {
            match arg.parse::<PeerId>() {
                Ok(id) => ids.push(id),
                Err(_) => ids.extend(read_ids(Path::new(arg))?),
            }
        }
        Ok(Some(ids))
    }

    /// `--max-piece-time` as a duration.
    pub fn max_piece_time(&self) -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(self.max_piece_time)
            .map_err(|_| anyhow::anyhow!("--max-piece-time must be a positive number of seconds"))
    }
}

/// Peer ids from a file, one per line; `#` starts a comment.
fn read_ids(path: &Path) -> anyhow::Result<Vec<PeerId>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--accept-from {}: not a peer id, and not a readable file", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            l.parse::<PeerId>()
                .map_err(|e| anyhow::anyhow!("{}:{}: {l:?} is not a peer id ({e})", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(accept: &[&str]) -> LimitOpts {
        LimitOpts {
            accept_from: accept.iter().map(|s| s.to_string()).collect(),
            max_message: 1,
            max_pieces_per_peer: None,
            max_piece_time: 1.0,
            max_connections: 1,
        }
    }

    #[test]
    fn accept_from_takes_any_ids_and_files() {
        assert_eq!(opts(&[]).allowed().unwrap(), None);
        assert_eq!(opts(&["any"]).allowed().unwrap(), None);
        let (a, b) = (PeerId::random(), PeerId::random());
        let file = std::env::temp_dir().join(format!("mw-accept-{}", std::process::id()));
        std::fs::write(&file, format!("# friends\n{b}\n\n")).unwrap();
        let got = opts(&[&a.to_string(), file.to_str().unwrap()]).allowed().unwrap();
        assert_eq!(got, Some(vec![a, b]));
        std::fs::write(&file, "not-a-peer\n").unwrap();
        let err = opts(&[file.to_str().unwrap()]).allowed().unwrap_err().to_string();
        assert!(err.contains(":1: \"not-a-peer\" is not a peer id"), "{err}");
        std::fs::remove_file(&file).unwrap();
        assert!(opts(&["/nonexistent/x"]).allowed().unwrap_err().to_string().contains("not a readable file"));
    }
}
