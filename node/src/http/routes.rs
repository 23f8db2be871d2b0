//! The routes: what each answers is in API.md.

use super::{ApiError, ApiState};
use crate::cli::mesh_nodes;
use crate::client::PeerInfo;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

/// The content type of the OpenMetrics text that prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/api/peers", get(peers)).route("/metrics", get(metrics))
}

/// What `meshwork peers --json` prints, as this node sees the mesh.
async fn peers(State(state): State<ApiState>) -> Result<Json<Vec<PeerInfo>>, ApiError> {
    Ok(Json(mesh_nodes(state.client.peers().await?)))
}

async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let text = state.metrics.scrape(&state.client).await?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], text))
}
