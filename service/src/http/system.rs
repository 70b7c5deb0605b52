//! Operational endpoints: liveness, readiness, metrics, and the API's own description.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};

/// How long a readiness probe waits for each dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// Catalog backend: `postgres` or `sqlite`.
    pub catalog: &'static str,
    /// Store backend: `s3` or `local`.
    pub store: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the catalog and the store both answer, and the process is not shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", body = Readiness),
        (status = 503, description = "A dependency is down, or the process is draining", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", "the process is draining"));
    }
    let catalog = state.catalog();
    match tokio::time::timeout(PROBE_TIMEOUT, catalog.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(ApiError::unavailable("catalog", error)),
        Err(_) => return Err(ApiError::unavailable("catalog", "no answer within the probe timeout")),
    }
    let store = state.store();
    store.check(PROBE_TIMEOUT).await.map_err(|error| ApiError::unavailable("blob store", error))?;
    Ok(Json(Readiness { status: "ready", catalog: catalog.backend(), store: store.backend() }))
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.0.metrics.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
