//! The image resource: upload, list, metadata, original bytes, delete.
//!
//! An image is content-addressed: its original is stored once under `originals/<sha256>`, and an
//! upload of bytes already here answers 200 with the existing image instead of 201.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Problem};
use super::schema::{ImageBytes, ImageForm};
use super::{AppState, WriteAccess};
use crate::catalog::{ImageRow, Inserted, Placeholders};
use crate::engine::{self, InputFormat};
use crate::store::BlobKey;

/// What the API says of an image.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageMetadata {
    /// 32 hex digits, time-ordered (UUID v7).
    pub id: String,
    /// SHA-256 of the original bytes, hex.
    pub sha256: String,
    /// `jpeg`, `png`, `gif`, `webp`, `tiff`, `jxl`, `avif` or `heic`, sniffed from the bytes.
    pub format: String,
    /// Width as displayed, after EXIF orientation.
    pub width: u32,
    /// Height as displayed, after EXIF orientation.
    pub height: u32,
    /// Size of the original in bytes.
    pub bytes: u64,
    /// Frames of an animated GIF or WebP, 1 for a still; absent for images uploaded before
    /// frames were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
    /// What to show while the image loads, computed at upload; absent for images uploaded
    /// before placeholders were computed, until `pixelmill backfill` has run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<ImagePlaceholder>,
    /// The most frequent colour of the image's opaque pixels, `#rrggbb`; absent where the
    /// placeholder is, and for an image with no opaque pixel.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "#1e78c8")]
    pub dominant_color: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub links: ImageLinks,
}

/// Placeholders of an image, made from its pixels as displayed (EXIF orientation applied).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImagePlaceholder {
    /// ThumbHash (<https://evanw.github.io/thumbhash/>), standard base64: colours, alpha and
    /// aspect ratio in about 25 bytes.
    #[schema(example = "1QcSHQRnh493V4dIh4eXh1h4kJUI")]
    pub thumbhash: String,
    /// BlurHash (<https://blurha.sh>) of 4x3 components, for clients that decode BlurHash.
    #[schema(example = "LEHV6nWB2yk8pyo0adR*.7kCMdnj")]
    pub blurhash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageLinks {
    #[serde(rename = "self")]
    pub self_link: String,
    pub original: String,
    /// Append a spec: `?w=400&fmt=webp`.
    pub render: String,
}

/// One page of images, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageList {
    pub images: Vec<ImageMetadata>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /v1/images`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query; the handler parses it by hand to answer problem+json.
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(super) fn metadata_of(row: &ImageRow) -> ImageMetadata {
    let created_at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.created_at_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let base = format!("/v1/images/{}", row.id);
    ImageMetadata {
        id: row.id.clone(),
        sha256: row.sha256.clone(),
        format: row.format.clone(),
        width: row.width,
        height: row.height,
        bytes: row.bytes,
        frames: row.frames,
        placeholder: row
            .placeholder
            .as_ref()
            .map(|p| ImagePlaceholder { thumbhash: p.thumbhash.clone(), blurhash: p.blurhash.clone() }),
        dominant_color: row.placeholder.as_ref().and_then(|p| p.dominant_color.clone()),
        created_at,
        links: ImageLinks { original: format!("{base}/original"), render: format!("{base}/render"), self_link: base },
    }
}

/// Ids are 32 lowercase hex digits; anything else cannot name an image.
fn check_image_id(id: &str) -> Result<(), ApiError> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ApiError::not_found("image with this id"));
    }
    Ok(())
}

pub(super) async fn find_image(state: &AppState, id: &str) -> Result<ImageRow, ApiError> {
    check_image_id(id)?;
    state.catalog().image(id).await?.ok_or_else(|| ApiError::not_found("image with this id"))
}

/// The image bytes of a request: the raw body, or the multipart field `file`.
pub(super) async fn read_image_body(state: &AppState, request: Request) -> Result<Bytes, ApiError> {
    let limit = state.config().limits.max_body_bytes;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large(limit)
            } else {
                ApiError::bad_request("unreadable-body", rejection.body_text())
            }
        });
    }
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| ApiError::bad_request("bad-multipart", rejection.body_text()))?;
    let multipart_error = |error: axum::extract::multipart::MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large(limit)
        } else {
            ApiError::bad_request("bad-multipart", error.body_text())
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() == Some("file") {
            return field.bytes().await.map_err(multipart_error);
        }
    }
    Err(ApiError::bad_request("missing-file", "the multipart body has no field named `file`").with_param("file"))
}

/// Upload an image.
///
/// The body is the image itself (`Content-Type: image/*`) or a multipart form with the field
/// `file`. The format is sniffed from the bytes; the header is never trusted.
#[utoipa::path(
    post,
    path = "/v1/images",
    tag = "images",
    request_body(
        description = "The image: JPEG, PNG, GIF, WebP, TIFF, JPEG XL or AVIF (and HEIC where built with the `heic` feature), raw or as multipart field `file`",
        content(
            (ImageBytes = "image/*"),
            (ImageForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 201, description = "Stored", body = ImageMetadata, headers(("Location" = String))),
        (status = 200, description = "These bytes were already here: the existing image", body = ImageMetadata),
        (status = 400, description = "Empty or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the byte limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a format Pixelmill reads", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Corrupt, or over the pixel limit", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Write rate exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded or a dependency is down", body = Problem, content_type = "application/problem+json"),
    ),
    // A key is needed where the server has auth on, which it must have off loopback.
    security((), ("api_key" = [])),
)]
pub async fn upload(
    State(state): State<AppState>,
    _access: WriteAccess,
    request: Request,
) -> Result<Response, ApiError> {
    let bytes = read_image_body(&state, request).await?;
    let limits = state.engine_limits();
    let checked = bytes.clone();
    // Hashing and decoding are CPU work: they run on the render pool.
    let (sha256, validated) =
        state.pool().run(move || (hex::encode(Sha256::digest(&checked)), engine::validate(&checked, &limits))).await?;
    if let Some(existing) = state.catalog().image_by_sha256(&sha256).await? {
        return Ok((StatusCode::OK, Json(metadata_of(&existing))).into_response());
    }
    let engine::Validated { info, placeholder } = validated?;
    let key = BlobKey::original(&sha256)?;
    let row = ImageRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        sha256,
        format: info.format.name().to_owned(),
        width: info.width,
        height: info.height,
        bytes: bytes.len() as u64,
        created_at_ms: crate::catalog::now_ms(),
        frames: Some(info.frames),
        placeholder: Some(Placeholders::from(placeholder)),
    };
    // Blob first, then row: a row never points at a missing blob.
    state.store().put(&key, bytes, info.format.mime_type()).await?;
    let (status, image) = match state.catalog().insert_image(&row).await? {
        Inserted::Created(image) => (StatusCode::CREATED, image),
        Inserted::Existing(image) => (StatusCode::OK, image),
    };
    let metadata = metadata_of(&image);
    let location = [(header::LOCATION, metadata.links.self_link.clone())];
    Ok((status, location, Json(metadata)).into_response())
}

/// List images, newest first.
#[utoipa::path(
    get,
    path = "/v1/images",
    tag = "images",
    params(ListParams),
    responses(
        (status = 200, description = "A page of images", body = ImageList),
        (status = 400, description = "Bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The catalog is down", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Json<ImageList>, ApiError> {
    let mut limit = 20u32;
    let mut cursor = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" => {
                limit = value.parse().ok().filter(|l| (1..=100).contains(l)).ok_or_else(|| {
                    ApiError::bad_request("invalid-query", "`limit` must be an integer from 1 to 100")
                        .with_param("limit")
                })?;
            }
            "cursor" => {
                if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ApiError::bad_request("invalid-query", "`cursor` is not a cursor this API returned")
                        .with_param("cursor"));
                }
                cursor = Some(value.into_owned());
            }
            other => {
                return Err(ApiError::bad_request("invalid-query", format!("unknown parameter `{other}`"))
                    .with_param(other.to_owned()));
            }
        }
    }
    let mut rows = state.catalog().list_images(limit + 1, cursor.as_deref()).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| r.id.clone()) } else { None };
    Ok(Json(ImageList { images: rows.iter().map(metadata_of).collect(), next_cursor }))
}

/// An image's metadata.
#[utoipa::path(
    get,
    path = "/v1/images/{id}",
    tag = "images",
    params(("id" = String, Path, description = "Image id")),
    responses(
        (status = 200, description = "The image", body = ImageMetadata),
        (status = 404, description = "No such image", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The catalog is down", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn metadata(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ImageMetadata>, ApiError> {
    Ok(Json(metadata_of(&find_image(&state, &id).await?)))
}

/// The original bytes, as uploaded.
#[utoipa::path(
    get,
    path = "/v1/images/{id}/original",
    tag = "images",
    params(("id" = String, Path, description = "Image id")),
    responses(
        (status = 200, description = "The original", content_type = "image/*", body = ImageBytes,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 404, description = "No such image", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The catalog or store is down", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn original(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let image = find_image(&state, &id).await?;
    let etag = format!("\"{}\"", image.sha256);
    let mime = InputFormat::parse(&image.format).map_or("application/octet-stream", InputFormat::mime_type);
    if super::render::matches_etag(&headers, &etag) {
        return Ok(super::render::not_modified(&etag, false));
    }
    let bytes =
        state.store().get(&BlobKey::original(&image.sha256)?).await?.ok_or_else(|| {
            ApiError::internal(format!("the original of image {} is missing from the store", image.id))
        })?;
    Ok(super::render::immutable_response(bytes, mime, &etag, None, false))
}

/// Delete an image, its variants, and their blobs.
#[utoipa::path(
    delete,
    path = "/v1/images/{id}",
    tag = "images",
    params(("id" = String, Path, description = "Image id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such image", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Write rate exceeded", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The catalog or store is down", body = Problem, content_type = "application/problem+json"),
    ),
    // A key is needed where the server has auth on, which it must have off loopback.
    security((), ("api_key" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    _access: WriteAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_image_id(&id)?;
    let Some(image) = state.catalog().delete_image(&id).await? else {
        return Err(ApiError::not_found("image with this id"));
    };
    state.hot().forget_image(&image.id);
    // Rows are gone first, so no reader finds a row whose blob is being removed. A variant
    // rendered meanwhile finds its image gone and removes its own blob. Every variant blob of
    // the image lies under its prefix, the ones a crash left without a row too.
    let store = state.store();
    for stray in store.list(&format!("variants/{}/", image.id)).await? {
        store.delete(&stray.key).await?;
    }
    let original = BlobKey::original(&image.sha256)?;
    if !state.catalog().blob_is_referenced(original.as_str()).await? {
        store.delete(&original).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
