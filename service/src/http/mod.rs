//! The HTTP service: the router, its shared state, the middleware every request passes through,
//! and the [`Application`] that binds a listener and drains on shutdown.
//!
//! Vocabulary: a *route* is the template a request matched (`/v1/images/{id}/render`), the label
//! of every HTTP metric, so that metric cardinality stays bounded whatever the paths.
//!
//! Architecture invariant: only this module knows HTTP types; handlers turn them into engine,
//! catalog and store calls and back.

pub mod auth;
pub mod error;
mod hot;
// utoipa's expansion of `params(SomeParams)` qualifies the type in a way this lint flags.
#[allow(unused_qualifications)]
mod images;
mod openapi;
#[allow(unused_qualifications)]
mod render;
#[allow(unused_qualifications)]
mod schema;
mod system;

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;

use self::error::{ApiError, InternalCause};
use self::hot::HotCache;
use self::render::RenderedVariant;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::engine::watermark::Watermark;
use crate::engine::{Limits, Presets, Watermarks};
use crate::processing::{RenderPool, SingleFlight};
use crate::store::{BlobKey, BlobStore};
use crate::telemetry;

pub use self::openapi::openapi;

/// Everything a handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    config: Config,
    presets: Presets,
    watermarks: Watermarks,
    engine_limits: Limits,
    catalog: Catalog,
    store: BlobStore,
    pool: RenderPool,
    flights: SingleFlight<Result<Arc<RenderedVariant>, ApiError>>,
    write_limiter: RateLimiter,
    hot: HotCache,
    metrics: PrometheusHandle,
    draining: AtomicBool,
    /// Blob keys of the variants served since the last flush to the catalog (`flush_served`):
    /// a repeated hit finds its key without allocating.
    served: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Reads and decodes every configured watermark; the first that cannot be is the error.
async fn load_watermarks(config: &Config, store: &BlobStore) -> anyhow::Result<Watermarks> {
    let mut loaded = std::collections::BTreeMap::new();
    for (name, source) in &config.watermarks {
        let context = || format!("watermark `{name}` ({source})");
        let bytes = match (&source.file, &source.blob) {
            (Some(path), _) => tokio::fs::read(path).await.with_context(context)?.into(),
            (None, Some(key)) => store
                .get(&BlobKey::parse(key).with_context(context)?)
                .await
                .with_context(context)?
                .with_context(|| format!("{}: no such blob", context()))?,
            (None, None) => anyhow::bail!("{}: no file or blob given", context()),
        };
        let limits = config.engine_limits();
        let watermark = tokio::task::spawn_blocking(move || Watermark::load(&bytes, &limits))
            .await
            .with_context(context)?
            .with_context(context)?;
        tracing::info!(watermark = %name, source = %source, width = watermark.info().width,
            height = watermark.info().height, "watermark loaded");
        loaded.insert(name.clone(), watermark);
    }
    Ok(Watermarks::new(loaded))
}

/// How often the variants served are written to the catalog, and how fine the record is: a
/// variant served all day is written once that day. Retention is counted in days.
const SERVED_FLUSH: Duration = Duration::from_secs(60);
const SERVED_GRANULARITY_MS: i64 = 24 * 3600 * 1000;
/// Distinct variants remembered between flushes; reaching it starts a flush at once, and hits
/// meanwhile are not remembered (a variant that hot is served again soon).
const SERVED_MAX: usize = 100_000;

impl AppState {
    /// Connects the catalog (running migrations when configured to) and the store.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        let catalog = Catalog::connect(&config.database_url, &config.data_dir).await.context("catalog")?;
        if config.migrate_on_start {
            catalog.migrate().await.context("migrations")?;
        }
        let store = BlobStore::open(&config.storage, &config.s3_endpoint, &config.data_dir, config.store_timeout())
            .await
            .context("blob store")?;
        let limits = &config.limits;
        let pool = RenderPool::new(limits.max_renders_in_flight, limits.render_queue, config.render_timeout())?;
        let write_limiter = RateLimiter::new(limits.writes_per_second, limits.write_burst);
        let watermarks = load_watermarks(&config, &store).await?;
        Ok(AppState(Arc::new(Shared {
            presets: config.presets(watermarks.infos())?,
            watermarks,
            engine_limits: config.engine_limits(),
            catalog,
            store,
            pool,
            flights: SingleFlight::default(),
            write_limiter,
            hot: HotCache::new(config.memory_cache_bytes, Duration::from_secs(config.memory_cache_ttl_seconds)),
            metrics: telemetry::metrics(),
            draining: AtomicBool::new(false),
            served: std::sync::Mutex::new(std::collections::HashSet::new()),
            config,
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }

    pub fn store(&self) -> &BlobStore {
        &self.0.store
    }

    fn presets(&self) -> &Presets {
        &self.0.presets
    }

    fn watermarks(&self) -> &Watermarks {
        &self.0.watermarks
    }

    fn engine_limits(&self) -> Limits {
        self.0.engine_limits
    }

    fn pool(&self) -> &RenderPool {
        &self.0.pool
    }

    fn signing_key(&self) -> Option<&[u8]> {
        let key = self.0.config.signing_key.as_bytes();
        (!key.is_empty()).then_some(key)
    }

    /// Notes that the variant stored under `blob_key` was served; the catalog hears of it at
    /// the next flush. Returns whether the set is full (a flush is due now).
    fn note_served(&self, blob_key: &BlobKey) -> bool {
        let mut served = self.0.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if served.len() < SERVED_MAX && !served.contains(blob_key.as_str()) {
            served.insert(blob_key.as_str().to_owned());
        }
        served.len() >= SERVED_MAX
    }

    /// Writes the variants served since the last flush to the catalog. A failure is logged and
    /// the batch dropped: the record is coarse, and the next hits write it again.
    pub async fn flush_served(&self) {
        let batch: Vec<(String, String)> = {
            let mut served = self.0.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            served.drain().filter_map(|key| BlobKey::parse(&key).ok()?.variant_of()).collect()
        };
        if batch.is_empty() {
            return;
        }
        let now = crate::catalog::now_ms();
        if let Err(error) = self.catalog().touch_variants(&batch, now, SERVED_GRANULARITY_MS).await {
            tracing::warn!(%error, variants = batch.len(), "could not record the variants served");
        }
    }

    /// Sets the gauges of variants stored and their bytes from the catalog.
    async fn count_variants(&self) {
        match self.catalog().variant_totals().await {
            Ok((variants, bytes)) => {
                metrics::gauge!(telemetry::VARIANTS_STORED).set(variants as f64);
                metrics::gauge!(telemetry::VARIANT_BYTES_STORED).set(bytes as f64);
            }
            Err(error) => tracing::warn!(%error, "could not count the variants stored"),
        }
    }

    fn hot(&self) -> &HotCache {
        &self.0.hot
    }

    fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }
}

/// The whole API. Tests drive it with `tower::ServiceExt::oneshot`, without a socket.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().limits.max_body_bytes;
    Router::new()
        .route("/v1/images", post(images::upload).get(images::list))
        .route("/v1/images/{id}", get(images::metadata).delete(images::delete))
        .route("/v1/images/{id}/original", get(images::original))
        .route("/v1/images/{id}/render", get(render::render_image))
        .route("/v1/render", post(render::render_body))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "this route does not take that method")
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(error::problem_json))
        .layer(middleware::from_fn_with_state(state.clone(), close_connections))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// Counts, times and logs every request, and gives it a request id (`x-request-id`, kept from
/// the client when it is a plausible id).
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().as_str().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);

    let mut response = next.run(request).await;

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::counter!(telemetry::HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(telemetry::HTTP_DURATION, "route" => route.clone()).record(elapsed.as_secs_f64());
    let cache = response.headers().get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if let Some(InternalCause(cause)) = response.extensions_mut().remove::<InternalCause>() {
        tracing::error!(request_id, method, route, status, latency_ms, cache, cause, "request failed");
    } else if matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics") {
        tracing::debug!(request_id, method, route, status, latency_ms, "probe");
    } else {
        tracing::info!(request_id, method, route, status, latency_ms, cache, "request");
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A write the caller may make: the API key checked (when auth is on) and the client's write
/// rate within its limit. Handlers of writes take it as an argument.
pub struct WriteAccess;

impl FromRequestParts<AppState> for WriteAccess {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<WriteAccess, Response> {
        let client = auth::require_api_key(state, &parts.headers).await.map_err(IntoResponse::into_response)?;
        // Without keys, the client is its address; behind a proxy, all clients share its address.
        let client = client.unwrap_or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string())
        });
        state.0.write_limiter.check(&client).map_err(|retry| ApiError::rate_limited(retry).into_response())?;
        Ok(WriteAccess)
    }
}

/// Per-client write limit: GCRA (governor) with `per_second` writes sustained and bursts of up to
/// `burst`. A rate of 0 turns limiting off.
struct RateLimiter(Option<governor::DefaultKeyedRateLimiter<String>>);

impl RateLimiter {
    /// Clients kept before those whose allowance has refilled are forgotten (they are
    /// indistinguishable from new ones).
    const TRACKED_CLIENTS: usize = 10_000;
    const LONGEST_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

    fn new(per_second: f64, burst: u32) -> RateLimiter {
        if per_second <= 0.0 {
            return RateLimiter(None);
        }
        // One write per `period`; clamped so that neither extreme rate makes a zero or an
        // unrepresentable period.
        let period = Duration::try_from_secs_f64(1.0 / per_second)
            .unwrap_or(Self::LONGEST_PERIOD)
            .clamp(Duration::from_nanos(1), Self::LONGEST_PERIOD);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::with_period(period)
            .unwrap_or_else(|| unreachable!("a period of at least 1 ns makes a quota"))
            .allow_burst(burst);
        RateLimiter(Some(governor::RateLimiter::keyed(quota)))
    }

    /// `Err(seconds to wait)` when `client` is out of allowance.
    fn check(&self, client: &str) -> Result<(), u64> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        if limiter.len() > Self::TRACKED_CLIENTS {
            limiter.retain_recent();
        }
        limiter.check_key(&client.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
            wait.as_secs_f64().ceil() as u64
        })
    }
}

/// A bound listener with its state: `build`, read `local_addr`, then `run`.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let state = AppState::build(config).await?;
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting, fails readiness, and waits for
    /// in-flight requests at most `shutdown_drain_seconds`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, state } = self;
        let drain = Duration::from_secs(state.config().shutdown_drain_seconds);
        let close = Duration::from_secs(state.config().shutdown_close_seconds).min(drain);
        let address = listener.local_addr()?;
        tracing::info!(
            address = %address,
            catalog = state.catalog().backend(),
            store = state.store().backend(),
            auth = state.config().auth,
            "listening"
        );
        let metrics = state.0.metrics.clone();
        let served_state = state.clone();
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            let mut last_flush = tokio::time::Instant::now();
            served_state.count_variants().await;
            loop {
                every.tick().await;
                metrics.run_upkeep();
                if last_flush.elapsed() >= SERVED_FLUSH {
                    served_state.flush_served().await;
                    served_state.count_variants().await;
                    last_flush = tokio::time::Instant::now();
                }
            }
        });
        let flush_state = state.clone();
        let (stopping, mut stopped) = tokio::sync::watch::channel(false);
        let drain_state = state.clone();
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            drain_state.0.draining.store(true, Ordering::Relaxed);
            tracing::info!(
                drain_seconds = drain.as_secs(),
                close_seconds = close.as_secs(),
                "shutting down: draining in-flight requests"
            );
            let _ = stopping.send(true);
            // Connections stay open and answered, each response saying `Connection: close`
            // (close_connections), so that a keep-alive client hears that the connection ends
            // instead of sending a request as it closes; then the idle ones are closed.
            tokio::time::sleep(close).await;
        });
        let deadline = async move {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(drain).await;
        };
        let result = tokio::select! {
            served = server => served.context("server"),
            () = deadline => {
                tracing::warn!("drain deadline reached with requests still in flight");
                Ok(())
            }
        };
        upkeep.abort();
        flush_state.flush_served().await;
        tracing::info!("stopped");
        result
    }
}

/// While the process drains, every response tells the client to close its connection, so that
/// hyper closes it after the response and the client opens its next one elsewhere.
async fn close_connections(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if state.is_draining() {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests;
