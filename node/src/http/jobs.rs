//! `/api/jobs`: jobs the node owns (see [`crate::service`]): submit, list,
//! watch, fetch the result, cancel. What each answers is in API.md.

use super::{ApiError, ApiState};
use crate::service::{FileMeta, JobView, Service, ServiceError};
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/jobs", get(list).post(submit))
        .route("/api/jobs/{id}", get(job).delete(cancel))
        .route("/api/jobs/prune", post(prune))
        .route("/api/jobs/{id}/result", get(result))
        .route("/api/jobs/{id}/result/file", get(file))
        .route("/api/jobs/{id}/events", get(events))
}

/// A job to run: a task and its `meshwork run` arguments.
#[derive(Debug, Deserialize)]
struct Submit {
    task: String,
    #[serde(default)]
    args: Vec<String>,
}

/// A page of the job list.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    #[serde(default = "Page::default_limit")]
    limit: usize,
}

impl Page {
    fn default_limit() -> usize {
        100
    }
}

/// A finished job's result.
#[derive(Debug, Serialize)]
struct JobResult {
    id: u64,
    text: String,
    result: serde_json::Value,
    /// Its file (at `/api/jobs/{id}/result/file`), when the result is one.
    file: Option<FileMeta>,
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let status = match &e {
            ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The node's service, or why it has none.
pub(super) fn service(state: &ApiState) -> Result<&Service, ApiError> {
    state.jobs.as_ref().map_err(|why| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why.clone()))
}

async fn submit(
    State(state): State<ApiState>,
    Json(body): Json<Submit>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    Ok((StatusCode::CREATED, Json(service(&state)?.submit(&body.task, &body.args)?)))
}

async fn list(State(state): State<ApiState>, Query(page): Query<Page>) -> Result<Json<Vec<JobView>>, ApiError> {
    let jobs = service(&state)?.jobs()?;
    Ok(Json(jobs.into_iter().skip(page.offset).take(page.limit).collect()))
}

async fn job(State(state): State<ApiState>, Path(id): Path<u64>) -> Result<Json<JobView>, ApiError> {
    Ok(Json(service(&state)?.job(id)?))
}

async fn result(State(state): State<ApiState>, Path(id): Path<u64>) -> Result<Json<JobResult>, ApiError> {
    let service = service(&state)?;
    match service.result(id)? {
        Some(r) => Ok(Json(JobResult { id, text: r.text, result: r.json, file: r.file })),
        None => Err(no_result(service, id)?),
    }
}

/// Why job `id` has no result (409), or that there is no such job (404).
fn no_result(service: &Service, id: u64) -> Result<ApiError, ApiError> {
    let view = service.job(id)?;
    let why = view.error.unwrap_or_else(|| format!("it is {:?}", view.state).to_lowercase());
    Ok(ApiError::new(StatusCode::CONFLICT, format!("job {id} has no result: {why}")))
}

/// The job's result file, as a download.
async fn file(State(state): State<ApiState>, Path(id): Path<u64>) -> Result<impl IntoResponse, ApiError> {
    let service = service(&state)?;
    match service.file(id)? {
        Some((meta, bytes)) => {
            let disposition = format!("attachment; filename=\"{}\"", meta.name);
            Ok(([(CONTENT_TYPE, meta.content_type), (CONTENT_DISPOSITION, disposition)], bytes))
        }
        None if service.result(id)?.is_some() => {
            Err(ApiError::new(StatusCode::NOT_FOUND, format!("job {id}'s result is not a file: see its result")))
        }
        None => Err(no_result(service, id)?),
    }
}

/// Removes every finished job (`meshwork jobs --prune`).
async fn prune(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    let removed = service(&state)?.prune()?;
    Ok(Json(serde_json::json!({ "removed": removed })))
}

async fn cancel(State(state): State<ApiState>, Path(id): Path<u64>) -> Result<Json<serde_json::Value>, ApiError> {
    let cancelled = service(&state)?.cancel(id).await?;
    Ok(Json(serde_json::json!({ "id": id, "cancelled": cancelled })))
}

/// Server-sent events: the job's view now, then at each change, until it finishes.
async fn events(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let service = service(&state)?.clone();
    let updates = service.updates();
    let first = service.job(id)?;
    let event = |view: &JobView| Event::default().event("job").json_data(view).expect("a view serializes");
    let stream = stream::unfold((Some(first), updates, false), move |(first, mut updates, over)| async move {
        if over {
            return None;
        }
        if let Some(view) = first {
            let over = view.state.finished();
            return Some((Ok(event(&view)), (None, updates, over)));
        }
        loop {
            match updates.recv().await {
                Ok(update) if update.0.id == id => {
                    let over = update.0.state.finished();
                    return Some((Ok(event(&update.0)), (None, updates, over)));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
