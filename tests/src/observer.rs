//! An in-process node that watches a mesh of `meshwork` processes from a
//! synchronous test: it joins with no slots (so no job ever places a piece
//! on it) and asks workers for their load with a Status request, which a
//! worker answers from its own counters, not from a gossiped figure that
//! may be a second old.

use crate::{local_config, wait_peer, wait_until};
use meshwork::{Node, PeerInfo};
use meshwork_protocol::wire::Load;
use std::time::Duration;
use tokio::runtime::Runtime;

/// The watching node and the runtime that drives it (on threads of its
/// own, so it keeps answering while the test blocks on a process).
pub struct Observer {
    runtime: Runtime,
    node: Option<Node>,
}

impl Observer {
    /// Joins the mesh through `join` and waits until every one of
    /// `workers` (peer ids) is live to it.
    pub fn join(join: &str, workers: &[&str], timeout: Duration) -> anyhow::Result<Observer> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let mut cfg = local_config(0);
        cfg.join = vec![join.parse()?];
        let node = runtime.block_on(Node::start(cfg))?;
        let observer = Observer { runtime, node: Some(node) };
        let client = observer.client();
        for w in workers {
            let what = format!("worker {w} live to the observer");
            observer.runtime.block_on(wait_peer(&client, w, &what, timeout, PeerInfo::is_live))?;
        }
        Ok(observer)
    }

    fn client(&self) -> meshwork::Client {
        self.node.as_ref().expect("running until dropped").client()
    }

    /// `worker`'s load as it reports it now.
    pub fn load(&self, worker: &str) -> anyhow::Result<Load> {
        self.runtime.block_on(load_of(&self.client(), worker))
    }

    /// Waits until every one of `workers` reports a load for which `holds`
    /// is true; returns how long that took.
    pub fn wait_loads(
        &self,
        workers: &[&str],
        what: &str,
        timeout: Duration,
        holds: impl Fn(&Load) -> bool,
    ) -> anyhow::Result<Duration> {
        let (client, holds) = (&self.client(), &holds);
        let all = || async move {
            for w in workers {
                if !load_of(client, w).await.is_ok_and(|l| holds(&l)) {
                    return false;
                }
            }
            true
        };
        self.runtime.block_on(wait_until(what, timeout, all))
    }
}

/// `worker`'s answer to a Status request from `client`.
async fn load_of(client: &meshwork::Client, worker: &str) -> anyhow::Result<Load> {
    let answer = client.status(worker.parse()?).await?;
    answer.map_err(|e| anyhow::anyhow!("Status of {worker}: {e}"))
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            self.runtime.block_on(node.shutdown());
        }
    }
}
