//! Errors as the client sees them: `application/problem+json` (RFC 9457) with a stable,
//! kebab-case `code` that clients may switch on, and a `detail` sentence naming the cause.
//!
//! Nothing internal reaches the client: the detail of a server-side failure is attached to the
//! response as an extension, which the logging middleware writes to the log and strips.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::CatalogError;
use crate::engine::{EngineError, SpecError};
use crate::processing::PoolError;
use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` names the problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// Stable machine-readable name, e.g. `invalid-spec`, `too-many-pixels`.
    pub code: String,
    /// The request parameter at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// Cause of a server-side failure, kept for the log.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    param: Option<String>,
    retry_after_seconds: Option<u64>,
    cause: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code, detail: detail.into(), param: None, retry_after_seconds: None, cause: None }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("no {what} here"))
    }

    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!("the body is over the limit of {limit} bytes"),
        )
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn rate_limited(retry_after_seconds: u64) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "too many requests from this client; slow down",
        );
        error.retry_after_seconds = Some(retry_after_seconds.max(1));
        error
    }

    /// A dependency (catalog or store) failed: 503, so clients and load balancers retry.
    pub fn unavailable(component: &str, cause: impl ToString) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "dependency-unavailable",
            format!("the {component} is unavailable; try again shortly"),
        );
        error.retry_after_seconds = Some(1);
        error.cause = Some(cause.to_string());
        error
    }

    pub fn internal(cause: impl ToString) -> ApiError {
        let mut error =
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; the failure is logged");
        error.cause = Some(cause.to_string());
        error
    }
}

impl From<SpecError> for ApiError {
    fn from(error: SpecError) -> ApiError {
        let param = error.param.clone();
        ApiError::bad_request("invalid-spec", error.to_string()).with_param(param)
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        let detail = error.to_string();
        match error {
            EngineError::Spec(spec) => spec.into(),
            EngineError::Empty => ApiError::bad_request("empty-body", detail),
            EngineError::UnknownFormat => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-format", detail)
            }
            EngineError::RefusedFormat(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-format", detail)
            }
            EngineError::Corrupt { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "corrupt-image", detail),
            EngineError::TooManyPixels { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too-many-pixels", detail)
            }
            EngineError::OutputTooLarge { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "output-too-large", detail)
            }
            EngineError::OutputDimensionTooLarge { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "output-dimension-too-large", detail).with_param("fmt")
            }
            EngineError::RenderTooLarge { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "render-too-large", detail)
            }
            EngineError::TooManyScans { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too-many-scans", detail)
            }
            EngineError::TooManyFrames { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too-many-frames", detail)
            }
            EngineError::AnimationTooLarge { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "animation-too-large", detail)
            }
            EngineError::FrameOutOfRange { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "frame-out-of-range", detail).with_param("frame")
            }
            EngineError::CropOutOfBounds { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "crop-out-of-bounds", detail).with_param("crop")
            }
            EngineError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl From<PoolError> for ApiError {
    fn from(error: PoolError) -> ApiError {
        match error {
            PoolError::Overloaded => {
                let mut overloaded = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "every render slot is busy and the queue is full; retry shortly",
                );
                overloaded.retry_after_seconds = Some(1);
                overloaded
            }
            PoolError::TimedOut(limit) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "render-timeout",
                format!("the render did not finish within {} s", limit.as_secs_f64()),
            ),
            PoolError::Lost | PoolError::Panicked(_) => ApiError::internal(error),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> ApiError {
        ApiError::unavailable("catalog", error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::unavailable("blob store", error)
    }
}

/// Middleware: every error response is problem+json. Handlers answer with [`ApiError`]
/// already; this turns what axum answers by itself (the rejections of its extractors for a bad
/// path, query, JSON or multipart body, a body over the limit) into the same shape, keeping the
/// status and the rejection's own sentence as the detail.
pub async fn problem_json(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection bodies are one sentence; anything longer is cut, never buffered whole.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        _ if status.is_client_error() => "bad-request",
        _ => "internal",
    };
    // A server error's text may name internals; the client gets the status phrase only.
    let detail = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut problem = ApiError::new(status, code, detail).into_response();
    // Keep what the original answer said beyond its body (Allow, Retry-After, ...).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    problem
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank".to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            param: self.param,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}
