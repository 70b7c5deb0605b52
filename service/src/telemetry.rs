//! Telemetry: structured logs through `tracing`, and Prometheus metrics through the `metrics`
//! facade with `metrics-exporter-prometheus` as its recorder.
//!
//! Metric names are an interface: the Helm chart's HPA, alerts and rollout analysis query them,
//! so they are declared here, once, with their help text. Code elsewhere records them by name.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub const HTTP_REQUESTS: &str = "pixelmill_http_requests_total";
pub const HTTP_DURATION: &str = "pixelmill_http_request_duration_seconds";
pub const RENDER_DURATION: &str = "pixelmill_render_duration_seconds";
pub const VARIANT_CACHE: &str = "pixelmill_variant_cache_total";
pub const VARIANT_EVICTIONS: &str = "pixelmill_variant_evictions_total";
pub const VARIANTS_STORED: &str = "pixelmill_variants_stored";
pub const VARIANT_BYTES_STORED: &str = "pixelmill_variant_bytes_stored";
pub const RENDERS_IN_FLIGHT: &str = "pixelmill_renders_in_flight";
pub const RENDER_REJECTED: &str = "pixelmill_render_rejected_total";
pub const RENDER_PANICS: &str = "pixelmill_render_panics_total";
pub const STORE_DURATION: &str = "pixelmill_store_duration_seconds";
pub const CATALOG_DURATION: &str = "pixelmill_catalog_duration_seconds";

/// Latency buckets in seconds: from a cache hit served from memory to a large AVIF encode.
const DURATION_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the log subscriber. `format` is `json` (one object per line, for collectors) or
/// `text`. The level comes from `RUST_LOG`, `info` by default. A second call is a no-op, so
/// tests may build several applications in one process.
pub fn init_logs(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    let _already_set = if format == "json" {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
}

/// The process-wide Prometheus recorder, installed on first use. Every application built in
/// this process renders the same registry, as a real process has exactly one.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Only fails for an empty bucket list, which the constant is not.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".to_owned()), &DURATION_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_ok() {
                describe();
            }
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template, method and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request, by route template.");
    describe_histogram!(RENDER_DURATION, Unit::Seconds, "Time spent in each render stage: decode, transform, encode.");
    describe_counter!(VARIANT_CACHE, "Variant lookups: hit (served from the store) or miss (rendered).");
    describe_counter!(VARIANT_EVICTIONS, "Variants evicted to keep an image within max_variants_per_image.");
    describe_gauge!(VARIANTS_STORED, "Variants stored in all, as the catalog last counted them (every minute).");
    describe_gauge!(
        VARIANT_BYTES_STORED,
        Unit::Bytes,
        "Bytes of the variants stored, as the catalog last counted them."
    );
    describe_gauge!(RENDERS_IN_FLIGHT, "Renders running on the render pool now.");
    describe_counter!(RENDER_REJECTED, "Renders refused: overloaded (queue full) or timeout.");
    describe_counter!(RENDER_PANICS, "Render jobs that panicked (a bug): answered 500, the server kept serving.");
    describe_histogram!(STORE_DURATION, Unit::Seconds, "Blob store operations, by backend and operation.");
    describe_histogram!(CATALOG_DURATION, Unit::Seconds, "Catalog queries, by operation.");
    metrics::gauge!(RENDERS_IN_FLIGHT).set(0.0);
}
