//! `meshwork node`: a long-running member of the mesh. It reports on
//! stdout, one line each, its listen addresses and every change in how it
//! sees its peers: text for people by default, JSON objects for scripts
//! and tests with `--json` (the same events, so neither has to parse the
//! other's wording).

use super::job_kind;
use super::mesh::reach;
use super::{slots_or_cores, terminated, usage, PeerOpts};
use crate::client::{Client, MeshEvent};
use crate::exec::ExecPolicy;
use crate::http::{self, auth::check_exposure, ApiState, Token};
use crate::metrics::Metrics;
use crate::net::identity::{self, Identity, IdentityError};
use crate::net::nat::{Path, RelayLimits};
use crate::node::{Node, WasmConfig};
use crate::service::{Retention, Service};
use anyhow::Context;
use clap::Args;
use libp2p::Multiaddr;
use meshwork_protocol::wire::Reachability;
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// How long a node gives its `--join` addresses before it warns that none
/// was reached (as long as `meshwork run` waits by default).
const JOIN_WARNING: Duration = Duration::from_secs(3);

/// Arguments of `meshwork node`.
#[derive(Debug, Args)]
#[command(after_long_help = "Output (stdout, one line per event; --json gives the JSON form):
  listening <multiaddr>           {\"event\":\"listening\",\"addr\":\"<multiaddr>\"}
  http <url>                      {\"event\":\"http\",\"url\":\"<url>\"}
  peer-up <peer id>               {\"event\":\"peer_up\",\"peer\":\"<peer id>\"}
  peer-down <peer id> <reason>    {\"event\":\"peer_down\",\"peer\":\"<peer id>\",\"reason\":\"<reason>\"}
  peer-quiet <peer id>            {\"event\":\"peer_quiet\",\"peer\":\"<peer id>\"}
  peer-heard <peer id>            {\"event\":\"peer_heard\",\"peer\":\"<peer id>\"}
  missed <n> peer events          {\"event\":\"missed\",\"count\":<n>}
  reachability <r>                {\"event\":\"reachability\",\"reachability\":\"<r>\"}
  relayed <multiaddr>             {\"event\":\"relayed\",\"addr\":\"<multiaddr>\"}
  hole-punch <peer id> <outcome>  {\"event\":\"hole_punch\",\"peer\":\"<peer id>\",\"error\":null|\"<why>\"}
  piece-path <peer id> <path>     {\"event\":\"piece_path\",\"peer\":\"<peer id>\",\"path\":\"direct\"|\"relayed\"}
  pieces-from <peer id> ...       {\"event\":\"pieces_from\",\"peer\":\"<peer id>\",\"direct\":<n>,\"relayed\":<n>}
Up and down concern workers (peers that run tasks): up when connected and
advertising, down when the connection closed, a health probe went
unanswered, or it left. A quiet peer's adverts stopped: it gets no new
work, but nothing is failed over; heard means it is back to normal.
Reachability is public, behind-nat or unknown (AutoNAT's verdict); relayed
gives an address peers reach this node at through a relay; hole-punch says
whether a relayed connection became a direct one. piece-path says over
which path pieces from a peer arrive (first pieces, and each change), and
pieces-from counts them per path once that peer's last connection closed.")]
pub struct NodeArgs {
    #[command(flatten)]
    peer: PeerOpts,
    /// Pieces this node runs at once [default: number of cores].
    #[arg(long)]
    slots: Option<u32>,
    /// Keypair file (created with mode 0600 if absent), so the node keeps
    /// its peer id across restarts [default: <data dir>/meshwork/identity.key].
    /// It is locked while the node runs, as two nodes with one identity
    /// would look like one peer: a second node given the same --identity
    /// refuses to start (exit 3), while a second node left to the default
    /// runs with a new identity of its own, saved nowhere (so several nodes
    /// on one machine just work).
    #[arg(long, value_name = "PATH")]
    identity: Option<PathBuf>,
    /// Print each event as one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Run no WebAssembly tasks (`meshwork run wasm`): the node neither
    /// advertises nor accepts them.
    #[arg(long)]
    no_wasm: bool,
    /// Where fetched wasm modules are kept, by their SHA-256 (least
    /// recently used out past --cache-bytes) [default: <cache dir>/meshwork/modules].
    #[arg(long, value_name = "DIR", conflicts_with = "no_wasm")]
    cache_dir: Option<PathBuf>,
    /// Bytes of wasm modules kept on disk at most.
    #[arg(long, default_value_t = 1 << 30, conflicts_with = "no_wasm")]
    cache_bytes: u64,
    /// How this node runs commands for the mesh (`meshwork run exec`).
    #[command(flatten)]
    exec: ExecOpts,
    /// Its local HTTP API.
    #[command(flatten)]
    http: HttpOpts,
    /// Serving as a relay for nodes behind NATs.
    #[command(flatten)]
    relay: RelayOpts,
}

/// `--relay` and its limits (README: "Beyond one LAN").
#[derive(Debug, Args)]
#[command(next_help_heading = "Relay (for nodes behind NATs)")]
struct RelayOpts {
    /// Relay connections for peers that cannot be dialled (behind a NAT or
    /// firewall), within the limits below. Only useful on a node peers can
    /// dial; in a private mesh (--secret-file) only members relay.
    #[arg(long)]
    relay: bool,
    /// Circuits relayed at once, in all.
    #[arg(long, default_value_t = RelayLimits::default().max_circuits, requires = "relay")]
    relay_max_circuits: usize,
    /// Bytes one circuit carries before the relay closes it (pieces larger
    /// than this are refused with an error rather than sent).
    #[arg(long, default_value_t = RelayLimits::default().circuit_bytes, requires = "relay")]
    relay_circuit_bytes: u64,
    /// Seconds one circuit lasts before the relay closes it.
    #[arg(long, default_value_t = RelayLimits::default().circuit_duration.as_secs(), requires = "relay")]
    relay_circuit_secs: u64,
}

impl RelayOpts {
    /// The limits to relay with, if this node relays.
    fn limits(&self) -> Option<RelayLimits> {
        self.relay.then(|| RelayLimits {
            max_circuits: self.relay_max_circuits,
            circuit_bytes: self.relay_circuit_bytes,
            circuit_duration: Duration::from_secs(self.relay_circuit_secs),
            ..RelayLimits::default()
        })
    }
}

/// `--http` and its token (API.md).
#[derive(Debug, Args)]
#[command(next_help_heading = "Local API (API.md)")]
struct HttpOpts {
    /// Serve the HTTP API (API.md: peers, /metrics) on this address
    /// [default: 127.0.0.1:7070, or a free port on loopback when that one
    /// is taken]. Anything but loopback needs --http-token-file.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Serve no HTTP API.
    #[arg(long, conflicts_with_all = ["http", "http_token_file"])]
    no_http: bool,
    /// A file holding a bearer token: every request must carry
    /// `Authorization: Bearer <token>` (401 otherwise).
    #[arg(long, value_name = "FILE")]
    http_token_file: Option<PathBuf>,
    /// Where the jobs given to this node (`meshwork submit`) are kept, so
    /// they survive a restart [default: <data dir>/meshwork; when another
    /// node holds it, this one keeps no jobs].
    #[arg(long, value_name = "DIR", conflicts_with = "no_http")]
    data_dir: Option<PathBuf>,
    /// Most finished jobs kept (with their results); older ones are let go.
    #[arg(long, value_name = "N", default_value_t = Retention::default().keep_jobs, conflicts_with = "no_http")]
    keep_jobs: usize,
    /// Longest a finished job is kept, e.g. `12h`, `30d`.
    #[arg(long, value_name = "DURATION", default_value_t = Retention::default().keep_for.into(),
          conflicts_with = "no_http")]
    keep_for: humantime::Duration,
}

impl HttpOpts {
    /// The node's job service over its data directory, or why it has none
    /// (an explicit --data-dir that cannot be used is an error).
    fn jobs(&self, client: Client) -> anyhow::Result<Result<Service, String>> {
        let default = || dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("meshwork");
        let dir = self.data_dir.clone().unwrap_or_else(default);
        let retention = Retention { keep_jobs: self.keep_jobs, keep_for: self.keep_for.into() };
        match Service::start(client, &dir, job_kind, retention) {
            Ok(service) => Ok(Ok(service)),
            Err(e) if self.data_dir.is_some() => Err(e).context("--data-dir"),
            Err(e) => {
                let why = format!("this node keeps no jobs ({e}); give it a --data-dir of its own");
                tracing::warn!("{why}");
                Ok(Err(why))
            }
        }
    }
}

impl HttpOpts {
    /// The listener (`None` with --no-http) and the token, checked; binds
    /// now, before the node joins a mesh it could not be watched in.
    async fn bind(&self) -> anyhow::Result<Option<(TcpListener, Option<Token>)>> {
        if self.no_http {
            return Ok(None);
        }
        let token = self.http_token_file.as_deref().map(Token::read).transpose().map_err(|e| usage(e.into()))?;
        if let Some(addr) = self.http {
            check_exposure(addr, token.as_ref()).map_err(|e| usage(e.into()))?;
        }
        Ok(Some((http::bind(self.http).await?, token)))
    }
}

/// `--allow-exec` and the limits on it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Commands (meshwork run exec)")]
struct ExecOpts {
    /// Run commands that members of the mesh send (`meshwork run exec`),
    /// with this node's rights. Only on a private mesh (--secret-file) or
    /// with --accept-from, unless everyone who can reach this node may
    /// run anything on it.
    #[arg(long)]
    allow_exec: bool,
    /// Run only these programs (looked up on this node's PATH).
    #[arg(long, num_args = 1.., value_name = "PROGRAM", requires = "allow_exec")]
    exec_allow: Vec<String>,
    /// Run commands as this user (a name or a uid; the node must run as root).
    #[arg(long, value_name = "USER", requires = "allow_exec")]
    exec_user: Option<String>,
    /// Run commands in this directory (e.g. a shared NFS path) instead of
    /// a fresh temporary one each.
    #[arg(long, value_name = "DIR", requires = "allow_exec")]
    exec_dir: Option<PathBuf>,
}

impl ExecOpts {
    /// The policy these options describe, checked (`None` without --allow-exec).
    fn policy(&self) -> anyhow::Result<Option<ExecPolicy>> {
        if !self.allow_exec {
            return Ok(None);
        }
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut policy = ExecPolicy { path, ..ExecPolicy::default() };
        if !self.exec_allow.is_empty() {
            let real = |p: &String| {
                let found = policy.find(p).map_err(|e| anyhow::anyhow!("--exec-allow {e}"))?;
                found.canonicalize().with_context(|| format!("--exec-allow {p}"))
            };
            policy.allow = Some(self.exec_allow.iter().map(real).collect::<anyhow::Result<_>>()?);
        }
        if let Some(user) = &self.exec_user {
            policy.user = Some(user_ids(user)?);
        }
        if let Some(dir) = &self.exec_dir {
            anyhow::ensure!(dir.is_dir(), "--exec-dir {}: not a directory", dir.display());
            policy.dir = Some(dir.clone());
        }
        Ok(Some(policy))
    }
}

/// The uid and gid of `user` (a name or a number), from /etc/passwd.
fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    anyhow::ensure!(unsafe { libc::geteuid() } == 0, "--exec-user needs the node to run as root");
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == user || f[2] == user));
    match entry {
        Some(f) => Ok((f[2].parse().context("a uid in /etc/passwd")?, f[3].parse().context("a gid in /etc/passwd")?)),
        None => match user.parse::<u32>() {
            Ok(uid) => Ok((uid, uid)),
            Err(_) => anyhow::bail!("--exec-user {user}: no such user in /etc/passwd"),
        },
    }
}

/// One line of the node's report.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Report {
    /// It listens on this address.
    Listening { addr: String },
    /// Its HTTP API is at this URL.
    Http { url: String },
    /// A worker is live (again).
    PeerUp { peer: String },
    /// A worker is down, and why.
    PeerDown { peer: String, reason: String },
    /// A live worker's adverts stopped.
    PeerQuiet { peer: String },
    /// A quiet worker was heard from again.
    PeerHeard { peer: String },
    /// Up/down events lost because this report fell behind.
    Missed { count: u64 },
    /// This node's reachability changed.
    Reachability { reachability: Reachability },
    /// It listens through a relay at this address.
    Relayed { addr: String },
    /// A hole punch to a peer ended (no error: a direct connection).
    HolePunch { peer: String, error: Option<String> },
    /// Pieces from a peer now arrive over this path.
    PiecePath { peer: String, path: Path },
    /// Pieces a peer sent, per path, counted when its last connection closed.
    PiecesFrom { peer: String, direct: u64, relayed: u64 },
}

impl Report {
    fn write(&self, out: &mut impl Write, json: bool) -> std::io::Result<()> {
        if json {
            serde_json::to_writer(&mut *out, self)?;
            return writeln!(out);
        }
        match self {
            Report::Listening { addr } => writeln!(out, "listening {addr}"),
            Report::Http { url } => writeln!(out, "http {url}"),
            Report::PeerUp { peer } => writeln!(out, "peer-up {peer}"),
            Report::PeerDown { peer, reason } => writeln!(out, "peer-down {peer} {reason}"),
            Report::PeerQuiet { peer } => writeln!(out, "peer-quiet {peer}"),
            Report::PeerHeard { peer } => writeln!(out, "peer-heard {peer}"),
            Report::Missed { count } => writeln!(out, "missed {count} peer events"),
            Report::Reachability { reachability } => writeln!(out, "reachability {}", reachability.as_str()),
            Report::Relayed { addr } => writeln!(out, "relayed {addr}"),
            Report::HolePunch { peer, error: None } => writeln!(out, "hole-punch {peer} direct"),
            Report::HolePunch { peer, error: Some(e) } => writeln!(out, "hole-punch {peer} failed: {e}"),
            Report::PiecePath { peer, path } => writeln!(out, "piece-path {peer} {}", path.as_str()),
            Report::PiecesFrom { peer, direct, relayed } => {
                writeln!(out, "pieces-from {peer} direct {direct} relayed {relayed}")
            }
        }
    }
}

pub(super) async fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    // First: a refused or taken address must not cost an identity's lock.
    let listener = args.http.bind().await?;
    let identity = match &args.identity {
        Some(path) => identity::load_or_create(path)?,
        None => match identity::load_or_create(&identity::default_path()) {
            Err(IdentityError::InUse(path)) => {
                tracing::warn!(
                    path = %path.display(),
                    "the default identity is in use by another node: this one runs with a new identity, \
                     saved nowhere (give it an --identity to keep one)"
                );
                Identity::ephemeral()
            }
            loaded => loaded?,
        },
    };
    let mut cfg = args.peer.node_config(identity.key.clone(), slots_or_cores(args.slots)).map_err(usage)?;
    cfg.wasm = (!args.no_wasm).then(|| WasmConfig {
        cache_dir: args.cache_dir.clone().or_else(|| dirs::cache_dir().map(|d| d.join("meshwork").join("modules"))),
        cache_bytes: args.cache_bytes,
        ..WasmConfig::default()
    });
    cfg.exec = args.exec.policy().map_err(usage)?;
    cfg.behaviour.relay = args.relay.limits();
    if cfg.exec.is_some() && args.peer.mesh.secret_file.is_none() && cfg.accept_from.is_none() {
        tracing::warn!(
            "--allow-exec on an open mesh: ANY peer that can reach this node may run ANY command on it with \
             this user's rights. Use --secret-file (a private mesh) or --accept-from"
        );
    }
    let node = Node::start(cfg).await.context("starting the node")?;
    let json = args.json;
    let mut out = std::io::stdout().lock();
    for addr in node.listen_addrs() {
        Report::Listening { addr: addr.to_string() }.write(&mut out, json)?;
    }
    let server = match listener {
        Some((listener, token)) => {
            let url = format!("http://{}", listener.local_addr().context("the HTTP listener's address")?);
            Report::Http { url }.write(&mut out, json)?;
            let jobs = args.http.jobs(node.client())?;
            let mut metrics = Metrics::new();
            if let Ok(service) = &jobs {
                service.register_metrics(metrics.registry_mut());
            }
            let state = ApiState { client: node.client(), metrics: Arc::new(metrics), jobs };
            Some((listener, http::app(state, token)))
        }
        None => None,
    };
    out.flush()?;
    drop(out);
    tracing::info!(peer = %node.peer_id(), "node running; Ctrl-C to stop");
    tokio::select! {
        r = terminated() => r?,
        _ = report(node.client(), json) => {}
        () = warn_unreached(node.client(), &args.peer.net.join) => {}
        r = serve_http(server) => r.context("serving HTTP")?,
    }
    node.shutdown().await;
    // Only now may another node take this identity.
    drop(identity);
    tracing::info!("node stopped");
    Ok(ExitCode::SUCCESS)
}

/// Serves the API until the node stops (forever without one).
async fn serve_http(server: Option<(TcpListener, axum::Router)>) -> std::io::Result<()> {
    match server {
        Some((listener, app)) => http::serve(listener, app).await,
        None => std::future::pending().await,
    }
}

/// Says once, as a warning, why none of the `--join` addresses was reached
/// within [`JOIN_WARNING`]: the node keeps dialling them, but whoever
/// started it should know of a typo, a dead node or a different
/// `--secret-file` now. Never returns.
async fn warn_unreached(client: Client, joins: &[Multiaddr]) {
    if !joins.is_empty() {
        if let Err(e) = reach(&client, joins, Instant::now() + JOIN_WARNING).await {
            tracing::warn!("{e:#}; still trying");
        }
    }
    std::future::pending().await
}

/// Prints one line per change of the live mesh and of its quiet peers,
/// until the node stops.
async fn report(client: Client, json: bool) {
    let mut events = client.mesh_events();
    loop {
        let line = match events.recv().await {
            Ok(MeshEvent::PeerUp(p)) => Report::PeerUp { peer: p.to_string() },
            Ok(MeshEvent::PeerDown(p, reason)) => Report::PeerDown { peer: p.to_string(), reason },
            Ok(MeshEvent::PeerQuiet(p)) => Report::PeerQuiet { peer: p.to_string() },
            Ok(MeshEvent::PeerHeard(p)) => Report::PeerHeard { peer: p.to_string() },
            Ok(MeshEvent::Reachability(reachability)) => Report::Reachability { reachability },
            Ok(MeshEvent::Relayed(addr)) => Report::Relayed { addr: addr.to_string() },
            Ok(MeshEvent::HolePunch(p, result)) => Report::HolePunch { peer: p.to_string(), error: result.err() },
            Ok(MeshEvent::PiecePath(p, path)) => Report::PiecePath { peer: p.to_string(), path },
            Ok(MeshEvent::PiecesFrom(p, n)) => {
                Report::PiecesFrom { peer: p.to_string(), direct: n.direct, relayed: n.relayed }
            }
            Err(broadcast::error::RecvError::Lagged(count)) => Report::Missed { count },
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the node.
        let _ = line.write(&mut out, json);
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &Report, json: bool) -> String {
        let mut out = Vec::new();
        r.write(&mut out, json).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_event_is_one_text_line_or_one_json_object() {
        let down = Report::PeerDown { peer: "P".into(), reason: "connection closed".into() };
        assert_eq!(text(&down, false), "peer-down P connection closed\n");
        assert_eq!(text(&down, true), "{\"event\":\"peer_down\",\"peer\":\"P\",\"reason\":\"connection closed\"}\n");
        assert_eq!(
            text(&Report::Listening { addr: "/ip4/1.2.3.4".into() }, true),
            "{\"event\":\"listening\",\"addr\":\"/ip4/1.2.3.4\"}\n"
        );
        assert_eq!(text(&Report::PeerQuiet { peer: "P".into() }, false), "peer-quiet P\n");
        let http = Report::Http { url: "http://127.0.0.1:7070".into() };
        assert_eq!(text(&http, false), "http http://127.0.0.1:7070\n");
        assert_eq!(text(&http, true), "{\"event\":\"http\",\"url\":\"http://127.0.0.1:7070\"}\n");
    }
}
