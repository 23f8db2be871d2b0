//! The node's local HTTP API (API.md documents it): what people and
//! programs use to watch a long-running `meshwork node`, and what
//! Prometheus scrapes.
//!
//! - [`router`]: every route, over an [`ApiState`]; a new route is a line
//!   there (or a `.merge` of a module's own router).
//! - [`app`]: the router with the bearer-token check in front of every
//!   route, and its state.
//! - [`bind`] and [`serve`]: the listener (on loopback by default) and
//!   the server.
//!
//! Anything but loopback needs a token ([`auth::check_exposure`]): the
//! API tells who is in the mesh and, with jobs, takes work to run.

pub mod auth;
pub mod dashboard;
mod jobs;
mod routes;

use crate::client::Client;
use crate::metrics::Metrics;
use crate::service::Service;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use tokio::net::TcpListener;

pub use auth::Token;

/// Where `meshwork node` serves unless told otherwise.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7070));

/// What the handlers reach the node through. Cheap to clone (each request
/// gets a copy): add shared parts as `Arc`s or handles.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The node.
    pub client: Client,
    /// Its metrics, with the families other parts registered.
    pub metrics: Arc<Metrics>,
    /// The jobs it owns, or why it keeps none (its store could not open).
    pub jobs: Result<Service, String>,
}

/// Every route of the API, before authentication and state ([`app`] adds both).
pub fn router() -> Router<ApiState> {
    routes::routes().merge(jobs::routes()).merge(dashboard::routes())
}

/// The API as served: [`router`], every request checked against `token`
/// when there is one.
pub fn app(state: ApiState, token: Option<Token>) -> Router {
    let routes = router();
    let routes = match token {
        Some(token) => routes.layer(axum::middleware::from_fn_with_state(Arc::new(token), auth::require)),
        None => routes,
    };
    routes.with_state(state)
}

/// Why the HTTP server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot serve HTTP on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The token file could not be read, or holds no token.
    #[error("--http-token-file {path}: {why}")]
    Token {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// Off loopback without a token.
    #[error(
        "--http {0} is reachable from other machines: give --http-token-file FILE (a bearer token every \
         request must carry), or serve on 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
}

/// Listens on `addr`, or on [`DEFAULT_ADDR`] when none is given. Many nodes
/// can run on one machine: when the default port is taken, this one
/// warns and takes a free port on loopback instead (the URL it prints
/// says which). An address given explicitly must be bound as given.
pub async fn bind(addr: Option<SocketAddr>) -> Result<TcpListener, HttpError> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { addr, source })
    };
    match addr {
        Some(addr) => bind(addr).await,
        None => match bind(DEFAULT_ADDR).await {
            Err(HttpError::Bind { source, .. }) if source.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!("{DEFAULT_ADDR} is in use (another node?): serving HTTP on another port");
                bind(SocketAddr::new(DEFAULT_ADDR.ip(), 0)).await
            }
            other => other,
        },
    }
}

/// Serves `app` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

/// An error response: a status and `{"error": "<message>"}`.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// `status` with `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// The node stopped while a request was answered.
impl From<crate::client::RunError> for ApiError {
    fn from(e: crate::client::RunError) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}
