//! The dashboard: a page every node serves at `/` (plain HTML, CSS and
//! JavaScript embedded in the binary: it works on a LAN with no internet,
//! and needs no build step), and the routes only it needs: the mesh as a
//! stream of server-sent events, and a job's timeline. `meshwork simulate
//! --serve` serves the same page over a simulated run ([`assets`]).

use super::jobs::service;
use super::{ApiError, ApiState};
use crate::cli::mesh_nodes;
use crate::client::PeerInfo;
use crate::service::JobView;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::stream::{self, Stream};
use meshwork_protocol::timeline::Timeline;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often the mesh stream sends the peers (the issue asks for ≥ 1/s).
const MESH_INTERVAL: Duration = Duration::from_secs(1);

/// What the page is showing: a node, or a simulated run (no mesh, no buttons).
#[derive(Clone, Debug, Serialize)]
pub struct About {
    /// `node` or `simulation`.
    pub mode: &'static str,
    /// The node's peer id, or what the simulation ran.
    pub title: String,
}

/// The page and its assets, and `GET /api/dashboard` saying what it shows
/// (`about`): the part of the dashboard any server of it has.
pub fn assets<S: Clone + Send + Sync + 'static>(about: fn(&S) -> About) -> Router<S> {
    let file = |ty: &'static str, body: &'static str| {
        get(move || async move { ([(CONTENT_TYPE, ty), (CACHE_CONTROL, "no-cache")], body) })
    };
    Router::new()
        .route("/", file("text/html; charset=utf-8", include_str!("dashboard/index.html")))
        .route("/dashboard/app.js", file("text/javascript; charset=utf-8", include_str!("dashboard/app.js")))
        .route("/dashboard/style.css", file("text/css; charset=utf-8", include_str!("dashboard/style.css")))
        .route("/api/dashboard", get(move |State(state): State<S>| async move { Json(about(&state)) }))
}

pub(super) fn routes() -> Router<ApiState> {
    assets(|state: &ApiState| About { mode: "node", title: state.client.peer_id().to_string() })
        .route("/api/peers/events", get(mesh_events))
        .route("/api/jobs/{id}/timeline", get(timeline))
}

/// This node as the mesh view shows it, beside its peers.
#[derive(Debug, Serialize)]
struct Me {
    peer_id: String,
    slots: u32,
    running: u32,
    queued: u32,
}

/// One message of the mesh stream.
#[derive(Debug, Serialize)]
struct Mesh {
    /// Unix ms when it was taken.
    at_ms: u64,
    me: Me,
    peers: Vec<PeerInfo>,
}

/// Server-sent events, `event: mesh`, every [`MESH_INTERVAL`] until the
/// client goes or the node stops: this node's load and its peers (the
/// rows of `GET /api/peers`). The page keeps each peer's load history
/// itself: the node keeps nothing for a page nobody has open.
async fn mesh_events(State(state): State<ApiState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = tokio::time::interval(MESH_INTERVAL);
    let stream = stream::unfold((state, ticks), |(state, mut ticks)| async move {
        ticks.tick().await;
        let client = &state.client;
        let (load, peers) = (client.load().await.ok()?, client.peers().await.ok()?);
        let at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let mesh = Mesh {
            at_ms: at_ms as u64,
            me: Me {
                peer_id: client.peer_id().to_string(),
                slots: load.slots,
                running: load.running,
                queued: load.queued,
            },
            peers: mesh_nodes(peers),
        };
        let event = Event::default().event("mesh").json_data(&mesh).expect("the mesh serializes");
        Some((Ok(event), (state, ticks)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn timeline(State(state): State<ApiState>, Path(id): Path<u64>) -> Result<impl IntoResponse, ApiError> {
    let timeline = service(&state)?.timeline(id)?;
    // Serialized from the shared copy: a large job's is not copied again.
    let json = serde_json::to_vec(&*timeline).expect("a timeline serializes");
    Ok(([(CONTENT_TYPE, "application/json")], json))
}

/// A simulated run as the dashboard shows it: its jobs and their timelines
/// (job `i + 1` is the i-th), read only.
#[derive(Debug)]
pub struct SimulatedRun {
    /// What ran (the command that repeats it).
    pub title: String,
    /// Each job's view.
    pub jobs: Vec<JobView>,
    /// Each job's timeline.
    pub timelines: Vec<Timeline>,
}

/// The dashboard over a simulated run (`meshwork simulate --serve`): the
/// page, `GET /api/jobs` and `GET /api/jobs/{id}/timeline`, as a node
/// answers them.
pub fn simulation_app(run: SimulatedRun) -> Router {
    let run = Arc::new(run);
    assets(|run: &Arc<SimulatedRun>| About { mode: "simulation", title: run.title.clone() })
        .route(
            "/api/jobs",
            get(|State(run): State<Arc<SimulatedRun>>| async move {
                Json(run.jobs.iter().rev().cloned().collect::<Vec<_>>())
            }),
        )
        .route(
            "/api/jobs/{id}/timeline",
            get(|State(run): State<Arc<SimulatedRun>>, Path(id): Path<usize>| async move {
                match id.checked_sub(1).and_then(|i| run.timelines.get(i)) {
                    Some(t) => Ok(Json(t.clone())),
                    None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no job {id}"))),
                }
            }),
        )
        .with_state(run)
}
