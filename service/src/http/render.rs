//! Renders: variants of stored images, cached, and stateless renders of a request body.
//!
//! A *variant* is one image rendered with one canonical spec; its key is the spec's
//! [`Spec::variant_key`], so `w=300&fmt=webp` and `fmt=webp&w=300` name one variant. Variants are
//! immutable: their ETag is derived from the image's bytes and the spec, so a conditional request
//! is answered 304 without touching the store.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Problem};
use super::images::{find_image, read_image_body};
use super::schema::{ImageBytes, ImageForm, SpecParams};
use super::{AppState, WriteAccess, auth};
use crate::catalog::{ImageRow, VariantRow};
use crate::engine::format::{Sniffed, sniff};
use crate::engine::spec::FormatRequest;
use crate::engine::{self, InputFormat, OutputFormat, Rendered, Spec, plan};
use crate::store::BlobKey;
use crate::telemetry;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A rendered variant, shared by every request coalesced onto its render.
#[derive(Debug)]
pub struct RenderedVariant {
    bytes: Bytes,
    format: OutputFormat,
}

/// Parses the spec of a render request, without its `sig`, enforcing presets-only.
fn parse_spec(state: &AppState, query: &str) -> Result<Spec, ApiError> {
    let without_sig: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("sig=")).collect();
    if state.config().presets_only {
        if let Some(pair) = without_sig.iter().find(|p| !p.starts_with("preset=")) {
            let param = pair.split('=').next().unwrap_or(pair);
            return Err(ApiError::bad_request(
                "presets-only",
                "this server renders only named presets: use `preset=NAME`",
            )
            .with_param(param.to_owned()));
        }
        if without_sig.is_empty() {
            return Err(ApiError::bad_request(
                "presets-only",
                "this server renders only named presets: use `preset=NAME`",
            )
            .with_param("preset"));
        }
    }
    Ok(Spec::parse(&without_sig.join("&"), state.presets())?)
}

/// Resolves `fmt=auto` from `Accept`: WebP when accepted (AVIF compresses better but encodes an
/// order of magnitude slower), then AVIF, else JPEG for JPEG sources and PNG for the rest. A
/// source of more than one frame (`frames`) stays animated unless the spec asks for a still:
/// WebP when accepted, else GIF. A format that cannot hold the output's dimensions (from
/// `output_size`, asked for `auto` only, when it knows them) is passed over, and PNG holds any.
/// Returns the spec and whether the response varies by `Accept`.
fn negotiate(
    spec: Spec,
    accept: &str,
    source: OutputFormat,
    frames: u32,
    output_size: impl FnOnce(&Spec) -> Option<(u32, u32)>,
) -> (Spec, bool) {
    if spec.format != Some(FormatRequest::Auto) {
        return (spec, false);
    }
    let output = output_size(&spec);
    let accepts = |mime: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let matches = parts.next().is_some_and(|m| m.eq_ignore_ascii_case(mime));
            let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            matches && !refused
        })
    };
    let side = output.map_or(0, |(width, height)| width.max(height));
    // An animation stays one unless a still is asked for: WebP where it is taken, else GIF.
    let animation = frames > 1 && spec.animated && spec.frame.is_none();
    let candidates = if animation {
        vec![(OutputFormat::Webp, accepts("image/webp")), (OutputFormat::Gif, true)]
    } else {
        vec![
            (OutputFormat::Webp, accepts("image/webp")),
            (OutputFormat::Avif, accepts("image/avif")),
            (OutputFormat::Jpeg, source == OutputFormat::Jpeg),
        ]
    };
    let chosen = candidates
        .into_iter()
        .find(|&(format, wanted)| wanted && side <= format.max_dimension())
        .map_or(OutputFormat::Png, |(format, _)| format);
    (spec.with_format(chosen), true)
}

fn accept_header(headers: &HeaderMap) -> String {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

pub(super) fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    })
}

pub(super) fn not_modified(etag: &str, vary: bool) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    set_cache_headers(response.headers_mut(), etag, vary);
    response
}

fn set_cache_headers(headers: &mut HeaderMap, etag: &str, vary: bool) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if vary {
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
}

pub(super) fn immutable_response(
    bytes: Bytes,
    mime: &'static str,
    etag: &str,
    cache: Option<&'static str>,
    vary: bool,
) -> Response {
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    set_cache_headers(headers, etag, vary);
    if let Some(cache) = cache {
        headers.insert("x-cache", HeaderValue::from_static(cache));
    }
    response
}

fn record_stages(rendered: &Rendered) {
    let stages = [
        ("decode", rendered.timings.decode),
        ("transform", rendered.timings.transform),
        ("encode", rendered.timings.encode),
    ];
    for (stage, took) in stages {
        metrics::histogram!(telemetry::RENDER_DURATION, "stage" => stage).record(took.as_secs_f64());
    }
}

/// A variant of a stored image.
///
/// Rendered once, then served from the variant cache (`X-Cache: hit`). Concurrent identical
/// requests share one render.
#[utoipa::path(
    get,
    path = "/v1/images/{id}/render",
    tag = "render",
    params(("id" = String, Path, description = "Image id"), SpecParams),
    responses(
        (status = 200, description = "The variant", content_type = "image/*", body = ImageBytes,
            headers(("ETag" = String), ("Cache-Control" = String), ("X-Cache" = String, description = "hit or miss"),
                ("Vary" = String, description = "Accept, when fmt=auto"))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 400, description = "Bad spec; `param` names the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing or bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such image", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Output over the pixel limit, or crop outside the image", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded (see Retry-After) or a dependency is down", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The render ran past its time limit", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn render_image(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = query.unwrap_or_default();
    auth::verify_signature(state.signing_key(), uri.path(), &query)?;
    let spec = parse_spec(&state, &query)?;
    let image = match state.hot().image(&id) {
        Some(image) => image,
        None => {
            let image = Arc::new(find_image(&state, &id).await?);
            state.hot().put_image(Arc::clone(&image));
            image
        }
    };
    let source = InputFormat::parse(&image.format).map_or(OutputFormat::Jpeg, InputFormat::as_output);
    let (spec, vary) = negotiate(spec, &accept_header(&headers), source, image.frames.unwrap_or(1), |spec| {
        plan::output_size(image.width, image.height, spec)
    });
    let variant_key = spec.variant_key();
    let etag = format!("\"{}-{}\"", &image.sha256[..16.min(image.sha256.len())], variant_key);
    if matches_etag(&headers, &etag) {
        return Ok(not_modified(&etag, vary));
    }

    // The variant's blob key follows from the spec, so a hit is a memory lookup or one store
    // read, and no catalog query. A blob is complete before its row is written; one that
    // vanished (removed by hand, say) is rendered again below.
    let format = spec.output_format(source);
    let blob_key = BlobKey::variant(&image.id, &variant_key, format.extension())?;
    let hit = match state.hot().variant(blob_key.as_str()) {
        Some(bytes) => Some(bytes),
        None => {
            let stored = state.store().get(&blob_key).await?;
            if let Some(bytes) = &stored {
                state.hot().put_variant(blob_key.to_string(), bytes.clone());
            }
            stored
        }
    };
    if let Some(bytes) = hit {
        metrics::counter!(telemetry::VARIANT_CACHE, "result" => "hit").increment(1);
        if state.note_served(&blob_key) {
            let flushing = state.clone();
            tokio::spawn(async move { flushing.flush_served().await });
        }
        return Ok(immutable_response(bytes, format.mime_type(), &etag, Some("hit"), vary));
    }

    metrics::counter!(telemetry::VARIANT_CACHE, "result" => "miss").increment(1);
    let flight = format!("{}/{}", image.id, variant_key);
    let (result, _leader) =
        state.0.flights.run(&flight, || render_variant(state.clone(), image, spec, variant_key)).await;
    let variant = result.unwrap_or_else(|| Err(ApiError::internal("the render task panicked")))?;
    Ok(immutable_response(variant.bytes.clone(), variant.format.mime_type(), &etag, Some("miss"), vary))
}

/// Renders a variant and stores it: blob first, then row.
async fn render_variant(
    state: AppState,
    image: Arc<ImageRow>,
    spec: Spec,
    variant_key: String,
) -> Result<Arc<RenderedVariant>, ApiError> {
    let original =
        state.store().get(&BlobKey::original(&image.sha256)?).await?.ok_or_else(|| {
            ApiError::internal(format!("the original of image {} is missing from the store", image.id))
        })?;
    let limits = state.engine_limits();
    let job_spec = spec.clone();
    let watermarks = state.watermarks().clone();
    let rendered = state.pool().run(move || engine::render_with(&original, &job_spec, &limits, &watermarks)).await??;
    record_stages(&rendered);
    let blob_key = BlobKey::variant(&image.id, &variant_key, rendered.format.extension())?;
    let bytes = Bytes::from(rendered.bytes);
    state.store().put(&blob_key, bytes.clone(), rendered.format.mime_type()).await?;
    let row = VariantRow {
        image_id: image.id.clone(),
        variant_key,
        spec: spec.canonical(),
        format: rendered.format.name().to_owned(),
        width: rendered.width,
        height: rendered.height,
        bytes: bytes.len() as u64,
        blob_key: blob_key.to_string(),
        created_at_ms: crate::catalog::now_ms(),
    };
    if !state.catalog().insert_variant(&row).await? {
        // The image was deleted while this render ran: leave nothing behind.
        state.store().delete(&blob_key).await?;
        return Err(ApiError::not_found("image with this id"));
    }
    state.hot().put_variant(blob_key.to_string(), bytes.clone());
    evict_over_quota(&state, &image.id).await;
    Ok(Arc::new(RenderedVariant { bytes, format: rendered.format }))
}

/// Keeps the image's stored variants within `max_variants_per_image`: the least recently
/// served go, row then blob. Run after every insert, so that concurrent renders each see the
/// rows committed before them and the last one leaves the image at the quota. A failure is
/// logged, not the request's: the variant was served, and the next insert tries again.
async fn evict_over_quota(state: &AppState, image_id: &str) {
    let quota = state.config().max_variants_per_image;
    if quota == 0 {
        return;
    }
    let evicted = async {
        for variant in state.catalog().variants_over_quota(image_id, quota).await? {
            if state.catalog().delete_variant(&variant.image_id, &variant.variant_key).await?.is_none() {
                continue; // Evicted by a concurrent render already.
            }
            if !state.catalog().blob_is_referenced(&variant.blob_key).await? {
                state.store().delete(&BlobKey::parse(&variant.blob_key)?).await?;
            }
            state.hot().remove_variant(&variant.blob_key);
            metrics::counter!(telemetry::VARIANT_EVICTIONS).increment(1);
        }
        Ok::<(), ApiError>(())
    };
    if let Err(error) = evicted.await {
        tracing::warn!(image = image_id, error = ?error, "could not evict variants over the quota");
    }
}

#[cfg(test)]
pub(super) mod tests {
    /// A stateless render of a body starting with these bytes panics on the pool (test builds
    /// only): the fault hook of `a_panicking_render_answers_500_and_the_server_keeps_serving`.
    pub(crate) const PANIC_BODY: &[u8] = b"PIXELMILL-TEST-PANIC";
}

/// Render the request body; nothing is stored.
#[utoipa::path(
    post,
    path = "/v1/render",
    tag = "render",
    params(SpecParams),
    request_body(
        description = "The image: JPEG, PNG, GIF, WebP, TIFF, JPEG XL or AVIF (and HEIC where built with the `heic` feature), raw or as multipart field `file`",
        content((ImageBytes = "image/*"), (ImageForm = "multipart/form-data")),
    ),
    responses(
        (status = 200, description = "The rendered image", content_type = "image/*", body = ImageBytes),
        (status = 400, description = "Bad spec or empty body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the byte limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a format Pixelmill reads", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Corrupt, or over a pixel limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Write rate exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded (see Retry-After)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The render ran past its time limit", body = Problem, content_type = "application/problem+json"),
    ),
    // A key is needed where the server has auth on, which it must have off loopback.
    security((), ("api_key" = [])),
)]
pub async fn render_body(
    State(state): State<AppState>,
    _access: WriteAccess,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let spec = parse_spec(&state, &query.unwrap_or_default())?;
    let headers = request.headers().clone();
    let body = read_image_body(&state, request).await?;
    let source = match sniff(&body) {
        Sniffed::Supported(format) => format.as_output(),
        _ => OutputFormat::Jpeg,
    };
    let vary = spec.format == Some(FormatRequest::Auto);
    let accept = accept_header(&headers);
    let limits = state.engine_limits();
    let watermarks = state.watermarks().clone();
    // `fmt=auto` needs the source's header (the output's size, and whether it is animated): read
    // it on the pool, as all engine work is, and only then.
    let job = move || {
        #[cfg(test)]
        if body.starts_with(tests::PANIC_BODY) {
            panic!("fault injected by a test");
        }
        let info = if vary { engine::inspect(&body, &limits).ok() } else { None };
        let frames = info.as_ref().map_or(1, |info| info.frames);
        let (spec, _) = negotiate(spec, &accept, source, frames, |spec| {
            let info = info?;
            plan::output_size(info.width, info.height, spec)
        });
        engine::render_with(&body, &spec, &limits, &watermarks)
    };
    let rendered = state.pool().run(job).await??;
    record_stages(&rendered);
    let mut response = Response::new(Body::from(rendered.bytes));
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(rendered.format.mime_type()));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if vary {
        response_headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
}
