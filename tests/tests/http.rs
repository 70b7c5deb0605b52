//! Black-box tests of `pixelmill serve`: the built binary on port 0, driven over HTTP, once on the
//! embedded default (SQLite and a local directory) and once on PostgreSQL and a real S3 server
//! (Garage). `cargo xtask ci` starts both services and sets PIXELMILL_TEST_DATABASE_URL,
//! PIXELMILL_TEST_S3_URL, PIXELMILL_TEST_S3_ENDPOINT and the AWS variables.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use image::GenericImageView;
use pixelmill_tests::binaries::binary;
use pixelmill_tests::encoders;
use pixelmill_tests::hostile::{self, Expect};
use pixelmill_tests::images::{jpeg, jpeg_with_orientation, pattern, png, png_with_alpha};
use pixelmill_tests::server::{Backend, Server, pixelmill, problem, spawn_app};
use pixelmill_tests::services::Database;
use reqwest::StatusCode;
use serde_json::Value;

fn decoded(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

/// Upload, dedupe, list, metadata, original, render (miss, hit, 304, auto, EXIF), stateless
/// render, delete, health, metrics: the API as a client uses it.
async fn the_api_end_to_end(backend: Backend) {
    let server = spawn_app(backend, &[]).await;
    assert_eq!(server.get("/healthz").await.status(), StatusCode::OK);
    let ready: Value = server.get("/readyz").await.json().await.unwrap();
    let expected = if backend == Backend::Embedded { ("sqlite", "local") } else { ("postgres", "s3") };
    assert_eq!((ready["catalog"].as_str().unwrap(), ready["store"].as_str().unwrap()), expected);

    // Upload raw, then the same bytes again, then another image as multipart.
    let photo = jpeg(&pattern(640, 480));
    let created = server.upload(photo.clone()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let image: Value = created.json().await.unwrap();
    let id = image["id"].as_str().unwrap().to_owned();
    assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(640), Some(480)));
    assert_eq!(image["format"], "jpeg");
    assert_eq!(image["bytes"].as_u64(), Some(photo.len() as u64));
    let again = server.upload(photo.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], image["id"]);

    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(png_with_alpha(100, 50)).file_name("alpha.png"));
    let multipart = server.client.post(server.url("/v1/images")).multipart(form).send().await.unwrap();
    assert_eq!(multipart.status(), StatusCode::CREATED);
    let alpha_id = multipart.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // EXIF orientation 6: stored 80x60, displayed 60x80.
    let rotated_id = server.upload_id(jpeg_with_orientation(&pattern(80, 60), 6)).await;
    let rotated: Value = server.get(&format!("/v1/images/{rotated_id}")).await.json().await.unwrap();
    assert_eq!((rotated["width"].as_u64(), rotated["height"].as_u64()), (Some(60), Some(80)));
    let rendered = server.get(&format!("/v1/images/{rotated_id}/render?w=30&fmt=png")).await.bytes().await.unwrap();
    assert_eq!(decoded(&rendered).dimensions(), (30, 40));

    // List: newest first, paged by cursor.
    let first: Value = server.get("/v1/images?limit=2").await.json().await.unwrap();
    let ids: Vec<&str> = first["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [rotated_id.as_str(), alpha_id.as_str()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = server.get(&format!("/v1/images?limit=2&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!(second["images"][0]["id"], image["id"]);
    assert!(second.get("next_cursor").is_none());

    // Metadata and original.
    let metadata: Value = server.get(&format!("/v1/images/{id}")).await.json().await.unwrap();
    assert_eq!(metadata["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(metadata["links"]["original"], format!("/v1/images/{id}/original"));
    let original = server.get(&format!("/v1/images/{id}/original")).await;
    assert_eq!(original.headers()["content-type"], "image/jpeg");
    assert_eq!(original.bytes().await.unwrap().as_ref(), photo.as_slice());

    // Render: miss, hit (keys in another order), 304.
    let miss = server.get(&format!("/v1/images/{id}/render?w=320&fmt=webp")).await;
    assert_eq!(miss.status(), StatusCode::OK);
    assert_eq!(miss.headers()["x-cache"], "miss");
    assert_eq!(miss.headers()["content-type"], "image/webp");
    assert_eq!(miss.headers()["cache-control"], "public, max-age=31536000, immutable");
    let etag = miss.headers()["etag"].to_str().unwrap().to_owned();
    let miss_bytes = miss.bytes().await.unwrap();
    assert_eq!(decoded(&miss_bytes).dimensions(), (320, 240));
    let hit = server.get(&format!("/v1/images/{id}/render?fmt=webp&w=320")).await;
    assert_eq!(hit.headers()["x-cache"], "hit");
    assert_eq!(hit.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(hit.bytes().await.unwrap(), miss_bytes);
    let conditional = server
        .client
        .get(server.url(&format!("/v1/images/{id}/render?w=320&fmt=webp")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), StatusCode::NOT_MODIFIED);

    // fmt=auto: WebP for a browser that takes it, JPEG for a JPEG source otherwise, PNG for alpha.
    for (accept, source, format) in [
        ("image/avif,image/webp,*/*", &id, "image/webp"),
        ("image/avif,*/*", &id, "image/avif"),
        ("*/*", &id, "image/jpeg"),
        ("image/webp;q=0,*/*", &alpha_id, "image/png"),
    ] {
        let response = server
            .client
            .get(server.url(&format!("/v1/images/{source}/render?w=40&fmt=auto")))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{accept}");
        assert_eq!(response.headers()["content-type"], format, "{accept}");
        assert_eq!(response.headers()["vary"], "Accept", "{accept}");
    }

    // Stateless render: nothing stored.
    let stateless = server
        .client
        .post(server.url("/v1/render?w=64&h=64&fit=cover&fmt=png"))
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(stateless.status(), StatusCode::OK);
    assert_eq!(decoded(&stateless.bytes().await.unwrap()).dimensions(), (64, 64));
    let listed: Value = server.get("/v1/images?limit=100").await.json().await.unwrap();
    assert_eq!(listed["images"].as_array().unwrap().len(), 3);

    // Delete removes the image, its variants and their blobs.
    let deleted = server.client.delete(server.url(&format!("/v1/images/{id}"))).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    problem(server.get(&format!("/v1/images/{id}")).await, StatusCode::NOT_FOUND, "not-found").await;
    problem(server.get(&format!("/v1/images/{id}/original")).await, StatusCode::NOT_FOUND, "not-found").await;
    problem(server.get(&format!("/v1/images/{id}/render?w=320&fmt=webp")).await, StatusCode::NOT_FOUND, "not-found")
        .await;
    let gone = server.client.delete(server.url(&format!("/v1/images/{id}"))).send().await.unwrap();
    problem(gone, StatusCode::NOT_FOUND, "not-found").await;
    let sha = metadata["sha256"].as_str().unwrap();
    assert!(!blob_exists(&server, &format!("originals/{sha}")).await, "the original blob is gone");
    assert!(list_blobs(&server, &format!("variants/{id}/")).await.is_empty(), "the variant blobs are gone");
    // The same bytes can come back as a new image.
    assert_eq!(server.upload(photo).await.status(), StatusCode::CREATED);

    // JPEG XL and AVIF (turned a quarter anticlockwise by its irot): sniffed, sized as shown,
    // served as themselves; a render that keeps the format writes WebP for JPEG XL.
    let small = png(&pattern(64, 48));
    let jxl = encoders::jxl(&small, "png", &["-d", "1"]);
    let avif = encoders::avif(&small, "png", None, &["--irot", "1"]);
    for (bytes, format, size, kept) in [(jxl, "jxl", (64, 48), "image/webp"), (avif, "avif", (48, 64), "image/avif")] {
        let created: Value = server.upload(bytes.clone()).await.json().await.unwrap();
        assert_eq!(created["format"], format);
        assert_eq!((created["width"].as_u64(), created["height"].as_u64()), (Some(size.0), Some(size.1)), "{format}");
        let id = created["id"].as_str().unwrap();
        let original = server.get(&format!("/v1/images/{id}/original")).await;
        assert_eq!(original.headers()["content-type"], format!("image/{format}").as_str());
        assert_eq!(original.bytes().await.unwrap().as_ref(), bytes.as_slice());
        let rendered = server.get(&format!("/v1/images/{id}/render?w=24")).await;
        assert_eq!(rendered.status(), StatusCode::OK, "{format}");
        assert_eq!(rendered.headers()["content-type"], kept, "{format}");
        let png = server.get(&format!("/v1/images/{id}/render?w=24&fmt=png")).await.bytes().await.unwrap();
        assert_eq!(decoded(&png).dimensions(), (24, 24 * size.1 as u32 / size.0 as u32), "{format}");
    }

    // An animation stays animated under fmt=auto (WebP where it is taken, else GIF), and is a
    // still where one is asked for.
    let created: Value = server.upload(pixelmill_tests::animation::squares()).await.json().await.unwrap();
    let frames = created["frames"].as_u64().unwrap();
    assert!(frames > 1, "{created}");
    let animated_id = created["id"].as_str().unwrap();
    for (accept, still, mime) in [
        ("image/webp,*/*", "", "image/webp"),
        ("image/png,image/gif,*/*", "", "image/gif"),
        ("image/webp,*/*", "&anim=0", "image/webp"),
        ("*/*", "&frame=1", "image/png"),
    ] {
        let response = server
            .client
            .get(server.url(&format!("/v1/images/{animated_id}/render?w=40&fmt=auto{still}")))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], mime, "{accept}{still}");
        let bytes = response.bytes().await.unwrap();
        let info = pixelmill::engine::inspect(&bytes, &pixelmill::engine::Limits::default()).unwrap();
        let expected = if still.is_empty() { frames } else { 1 };
        assert_eq!(u64::from(info.frames), expected, "{accept}{still}");
    }

    // The metric names that dashboards, alerts and the autoscaler use (telemetry.rs).
    let metrics = server.get("/metrics").await.text().await.unwrap();
    for name in [
        "pixelmill_http_requests_total{",
        "pixelmill_http_request_duration_seconds_bucket{",
        "pixelmill_render_duration_seconds_bucket{stage=\"decode\"",
        "pixelmill_variant_cache_total{result=\"hit\"}",
        "pixelmill_variant_cache_total{result=\"miss\"}",
        "pixelmill_renders_in_flight",
        "pixelmill_store_duration_seconds_bucket{",
        "pixelmill_catalog_duration_seconds_bucket{",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    // A log line per request, with its request id, route, status, latency and cache result.
    let logged = server.logs.lock().unwrap().clone();
    assert!(logged.iter().any(|line| {
        let entry: Value = serde_json::from_str(line).unwrap_or_default();
        entry["route"] == "/v1/images/{id}/render"
            && entry["cache"] == "hit"
            && entry["status"] == 200
            && entry["request_id"].is_string()
            && entry["latency_ms"].is_number()
    }));
    server.stop().await;
}

async fn list_blobs(server: &Server, prefix: &str) -> Vec<String> {
    let store = blob_store(server).await;
    store.list(prefix).await.unwrap().into_iter().map(|e| e.key.to_string()).collect()
}

async fn blob_exists(server: &Server, key: &str) -> bool {
    let store = blob_store(server).await;
    store.get(&pixelmill::store::BlobKey::parse(key).unwrap()).await.unwrap().is_some()
}

async fn blob_store(server: &Server) -> pixelmill::store::BlobStore {
    let setting = |name: &str| server.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    pixelmill::store::BlobStore::open(
        &setting("PIXELMILL_STORAGE"),
        &setting("PIXELMILL_S3_ENDPOINT"),
        server.data_dir.path(),
        Duration::from_secs(30),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_api_end_to_end_on_the_embedded_default() {
    the_api_end_to_end(Backend::Embedded).await;
}

#[tokio::test]
async fn the_api_end_to_end_on_postgres_and_s3() {
    the_api_end_to_end(Backend::PostgresAndS3).await;
}

/// Every hostile sample is refused with its 4xx and nothing is stored; the server stays up.
async fn hostile_uploads_are_refused(backend: Backend) {
    let server =
        spawn_app(backend, &[("PIXELMILL_MAX_INPUT_PIXELS", "40000000"), ("PIXELMILL_WRITES_PER_SECOND", "0")]).await;
    for sample in hostile::corpus() {
        let (status, codes): (StatusCode, &[&str]) = match sample.expect {
            Expect::Unknown => (StatusCode::UNSUPPORTED_MEDIA_TYPE, &["unsupported-format", "empty-body"]),
            Expect::Refused => (StatusCode::UNSUPPORTED_MEDIA_TYPE, &["unsupported-format"]),
            Expect::Corrupt => (StatusCode::UNPROCESSABLE_ENTITY, &["corrupt-image"]),
            Expect::TooManyPixels => (StatusCode::UNPROCESSABLE_ENTITY, &["too-many-pixels"]),
            Expect::TooMuchWork => (StatusCode::UNPROCESSABLE_ENTITY, &["too-many-scans", "too-many-frames"]),
        };
        let response = server.upload(sample.bytes.clone()).await;
        let got = response.status();
        let body: Value = response.json().await.unwrap();
        let code = body["code"].as_str().unwrap_or_default();
        let empty = sample.bytes.is_empty() && got == StatusCode::BAD_REQUEST && code == "empty-body";
        assert!(empty || (got == status && codes.contains(&code)), "{}: {got} {body}", sample.name);

        let stateless = server.client.post(server.url("/v1/render?w=50")).body(sample.bytes).send().await.unwrap();
        assert!(stateless.status().is_client_error(), "{}: stateless {}", sample.name, stateless.status());
    }
    let listed: Value = server.get("/v1/images").await.json().await.unwrap();
    assert!(listed["images"].as_array().unwrap().is_empty(), "nothing hostile was stored");
    assert!(list_blobs(&server, "originals/").await.is_empty());
    assert_eq!(server.get("/readyz").await.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn hostile_uploads_are_refused_on_the_embedded_default() {
    hostile_uploads_are_refused(Backend::Embedded).await;
}

#[tokio::test]
async fn hostile_uploads_are_refused_on_postgres_and_s3() {
    hostile_uploads_are_refused(Backend::PostgresAndS3).await;
}

/// Eight identical concurrent requests for a new variant make one render.
async fn identical_renders_run_once(backend: Backend) {
    let server = spawn_app(backend, &[]).await;
    let id = server.upload_id(jpeg(&pattern(1600, 1200))).await;
    let decodes = "pixelmill_render_duration_seconds_count{stage=\"decode\"}";
    let before = server.metric(decodes).await;
    let path = format!("/v1/images/{id}/render?w=400&fmt=avif");
    let requests: Vec<_> = (0..8).map(|_| tokio::spawn(server.client.get(server.url(&path)).send())).collect();
    let mut bodies = Vec::new();
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        bodies.push(response.bytes().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(server.metric(decodes).await - before, 1.0, "one render for eight requests");
    server.stop().await;
}

#[tokio::test]
async fn identical_renders_run_once_on_the_embedded_default() {
    identical_renders_run_once(Backend::Embedded).await;
}

#[tokio::test]
async fn identical_renders_run_once_on_postgres_and_s3() {
    identical_renders_run_once(Backend::PostgresAndS3).await;
}

/// API keys (created, used, revoked with the CLI) and signed render URLs.
async fn keys_and_signatures(backend: Backend) {
    let signing_key = "test-signing-key";
    let server = spawn_app(backend, &[("PIXELMILL_AUTH", "true"), ("PIXELMILL_SIGNING_KEY", signing_key)]).await;
    let bytes = png(&pattern(120, 80));
    problem(server.upload(bytes.clone()).await, StatusCode::UNAUTHORIZED, "missing-api-key").await;

    let created = server.command(&["keys", "create", "--name", "ci"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let key = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let with_key = |key: &str| {
        server
            .client
            .post(server.url("/v1/images"))
            .bearer_auth(key)
            .header("content-type", "image/png")
            .body(bytes.clone())
    };
    let uploaded = with_key(&key).send().await.unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let id = uploaded.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    problem(with_key("pmk_0000").send().await.unwrap(), StatusCode::UNAUTHORIZED, "invalid-api-key").await;

    // Renders need a signature over the path and the sorted query.
    let path = format!("/v1/images/{id}/render");
    problem(server.get(&format!("{path}?w=60")).await, StatusCode::FORBIDDEN, "missing-signature").await;
    let sig = pixelmill::http::auth::sign(signing_key.as_bytes(), &path, "w=60&fmt=png");
    let signed = server.get(&format!("{path}?fmt=png&w=60&sig={sig}")).await;
    assert_eq!(signed.status(), StatusCode::OK);
    let tampered = server.get(&format!("{path}?fmt=png&w=61&sig={sig}")).await;
    problem(tampered, StatusCode::FORBIDDEN, "bad-signature").await;

    let listed = server.command(&["keys", "list"]);
    let listing = String::from_utf8(listed.stdout).unwrap();
    let key_id = listing.lines().find(|l| l.ends_with(" ci")).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(!listing.contains(&key), "keys are never shown again");
    assert!(server.command(&["keys", "revoke", &key_id]).status.success());
    problem(with_key(&key).send().await.unwrap(), StatusCode::UNAUTHORIZED, "invalid-api-key").await;
    assert!(!server.command(&["keys", "revoke", "nosuchkey"]).status.success());
    server.stop().await;
}

#[tokio::test]
async fn keys_and_signatures_on_the_embedded_default() {
    keys_and_signatures(Backend::Embedded).await;
}

#[tokio::test]
async fn keys_and_signatures_on_postgres_and_s3() {
    keys_and_signatures(Backend::PostgresAndS3).await;
}

/// Limits: 413 for bodies, 422 for pixels, 503 with Retry-After when the render queue is full,
/// 504 past the render time limit.
#[tokio::test]
async fn limits_answer_413_422_503_and_504() {
    let server = spawn_app(
        Backend::Embedded,
        &[
            ("PIXELMILL_MAX_BODY_BYTES", "1000000"),
            ("PIXELMILL_MAX_OUTPUT_PIXELS", "5000000"),
            ("PIXELMILL_MAX_RENDERS_IN_FLIGHT", "1"),
            ("PIXELMILL_RENDER_QUEUE", "0"),
            ("PIXELMILL_RENDER_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    problem(server.upload(vec![0xFF; 1_000_001]).await, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large").await;
    let id = server.upload_id(jpeg(&pattern(2400, 1800))).await;
    let huge = server.get(&format!("/v1/images/{id}/render?w=4000&h=4000&fit=fill&enlarge=true")).await;
    problem(huge, StatusCode::UNPROCESSABLE_ENTITY, "output-too-large").await;

    // An AVIF encode of 1.9 megapixels takes seconds here: past the 1 s limit.
    let slow = server.get(&format!("/v1/images/{id}/render?fmt=avif&w=1600")).await;
    problem(slow, StatusCode::GATEWAY_TIMEOUT, "render-timeout").await;
    // That render still holds the only slot until it ends, and the queue is 0: overloaded.
    let overloaded = server.get(&format!("/v1/images/{id}/render?w=100")).await;
    assert_eq!(overloaded.headers()["retry-after"], "1");
    problem(overloaded, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
    let rejected = server.metric("pixelmill_render_rejected_total{reason=\"overloaded\"}").await;
    assert!(rejected >= 1.0);
    server.stop().await;
}

/// SIGTERM: readiness fails, the request in flight completes, the process exits 0.
#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    // A drain long enough for the render even on a loaded machine.
    let mut server = spawn_app(
        Backend::Embedded,
        &[("PIXELMILL_SHUTDOWN_DRAIN_SECONDS", "300"), ("PIXELMILL_RENDER_TIMEOUT_SECONDS", "300")],
    )
    .await;
    let id = server.upload_id(jpeg(&pattern(2400, 1800))).await;
    let in_flight = server.client.get(server.url(&format!("/v1/images/{id}/render?fmt=webp&w=2400"))).send();
    let in_flight = tokio::spawn(in_flight);
    // Wait until the render is running, as the gauge shows.
    server.wait_metric("pixelmill_renders_in_flight", 1.0, Duration::from_secs(60), || in_flight.is_finished()).await;
    server.terminate();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.bytes().await.unwrap().is_empty());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let logs = server.logs.lock().unwrap().join("\n");
    assert!(logs.contains("draining"), "{logs}");
    server.stop().await;
}

/// SIGTERM: for `shutdown_close_seconds` the server still answers on a keep-alive connection it
/// has open, saying `Connection: close`, where it used to close that connection at once (a
/// request sent on it as it closed failed: 4.6% of requests during a rolling update).
#[tokio::test]
async fn a_draining_server_answers_on_open_connections_and_asks_to_close_them() {
    let server = spawn_app(
        Backend::Embedded,
        &[("PIXELMILL_SHUTDOWN_DRAIN_SECONDS", "300"), ("PIXELMILL_SHUTDOWN_CLOSE_SECONDS", "300")],
    )
    .await;
    // One connection, kept alive between requests.
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let before = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(before.status(), StatusCode::OK);
    assert!(before.headers().get("connection").is_none(), "kept alive before SIGTERM");
    server.terminate();
    // Readiness fails as soon as the signal is handled; the same connection is still answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let draining = loop {
        let response = client.get(server.url("/readyz")).send().await.expect("answered while draining");
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            break response;
        }
        assert!(std::time::Instant::now() < deadline, "readiness never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(draining.headers()["connection"], "close");
    let health = client.get(server.url("/healthz")).send().await.expect("a new connection is answered too");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()["connection"], "close");
    server.stop().await;
}

/// `pixelmill gc` removes blobs no row references, past the grace period, and nothing else.
#[tokio::test]
async fn gc_removes_only_unreferenced_blobs() {
    let server = spawn_app(Backend::Embedded, &[]).await;
    let id = server.upload_id(png(&pattern(64, 64))).await;
    assert_eq!(server.get(&format!("/v1/images/{id}/render?w=10")).await.status(), StatusCode::OK);
    let blobs = server.data_dir.path().join("blobs");
    let orphan = blobs.join("originals").join("0".repeat(64));
    std::fs::write(&orphan, b"left by a crash").unwrap();
    let orphan_variant = blobs.join("variants").join(&id).join("deadbeef.png");
    std::fs::write(&orphan_variant, b"left by a crash").unwrap();

    let recent = server.command(&["gc"]);
    assert!(recent.status.success());
    assert!(orphan.exists(), "within the grace period nothing is removed");
    let swept = server.command(&["gc", "--grace-hours", "0"]);
    assert!(swept.status.success(), "{}", String::from_utf8_lossy(&swept.stderr));
    assert!(!orphan.exists() && !orphan_variant.exists());
    assert_eq!(list_blobs(&server, "originals/").await.len(), 1);
    assert_eq!(list_blobs(&server, &format!("variants/{id}/")).await.len(), 1);
    assert_eq!(server.get(&format!("/v1/images/{id}/render?w=10")).await.headers()["x-cache"], "hit");
    server.stop().await;
}

/// Migrations run from the command line against a fresh PostgreSQL database, and `serve` with
/// `migrate_on_start` off then finds its tables.
#[tokio::test]
async fn migrate_prepares_a_fresh_postgres_database() {
    let database = Database::create().await;
    let migrate = pixelmill().arg("migrate").env("DATABASE_URL", database.url()).output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let url = database.url();
    let server = spawn_app(Backend::Embedded, &[("DATABASE_URL", &url), ("PIXELMILL_MIGRATE_ON_START", "false")]).await;
    assert_eq!(server.upload(png(&pattern(8, 8))).await.status(), StatusCode::CREATED);
    server.stop().await;
    database.drop_now().await;
}

/// `pixelmill-load` with the environment of this process's `PIXELMILL_*` variables removed.
fn pixelmill_load(args: &[&str]) -> (std::process::ExitStatus, String, Option<Value>) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(binary("pixelmill-load"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PIXELMILL_")) {
        command.env_remove(name);
    }
    let output = command.args(args).arg("--json").arg(report.path()).arg("--quiet").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = std::fs::read(report.path()).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    (output.status, stderr, json)
}

/// Every Pixelmill scenario against a real server that requires signed renders: the schedule's
/// exact request count, the mix's shares, signatures the server accepts, misses that really miss
/// the cache and hits that really hit it, and the run's uploads deleted at the end.
#[tokio::test]
async fn pixelmill_load_drives_every_scenario_and_cleans_up() {
    let signing_key = "load-signing-key";
    let server = spawn_app(Backend::Embedded, &[("PIXELMILL_SIGNING_KEY", signing_key)]).await;
    let (status, stderr, report) = pixelmill_load(&[
        "--target-base",
        &server.base,
        "--signing-key",
        signing_key,
        "--scenario",
        "mixed",
        "--mix",
        "render-hit=2,render-miss=1,upload=1",
        "--rate",
        "40",
        "--duration",
        "2s",
        "--threshold",
        "errors<1%",
        "--threshold",
        "render-hit:p99<30s",
    ]);
    assert!(status.success(), "{stderr}");
    let report = report.unwrap();
    assert_eq!(report["model"], "open");
    assert_eq!(report["requests"], 80);
    assert_eq!(report["errors"]["total"], 0, "{report}");
    let scenarios = &report["scenarios"];
    assert_eq!(
        (&scenarios["render-hit"]["requests"], &scenarios["render-miss"]["requests"], &scenarios["upload"]["requests"]),
        (&Value::from(40), &Value::from(20), &Value::from(20))
    );
    let timeline: u64 =
        report["timeline"].as_array().unwrap().iter().map(|second| second["requests"].as_u64().unwrap()).sum();
    assert_eq!(timeline, 80);
    for field in ["p50", "p90", "p99", "p999", "max"] {
        assert!(report["latency_ms"][field].as_f64().unwrap() > 0.0, "{field}");
    }
    assert!(report["thresholds"].as_array().unwrap().iter().all(|verdict| verdict["passed"] == true));
    // One miss warms the render-hit variant, then every render-miss request renders anew.
    assert_eq!(server.metric("pixelmill_variant_cache_total{result=\"miss\"}").await, 21.0);
    assert_eq!(server.metric("pixelmill_variant_cache_total{result=\"hit\"}").await, 40.0);
    // The seed image and the 20 uploads are gone again.
    let listed: Value = server.get("/v1/images").await.json().await.unwrap();
    assert_eq!(listed["images"].as_array().unwrap().len(), 0, "{listed}");
    server.stop().await;
}

/// Thresholds set the exit code, failures are counted by status, the closed model runs, and a
/// target that cannot be prepared (down, or refusing uploads without a key) exits 3 with the
/// reason.
#[tokio::test]
async fn pixelmill_load_judges_thresholds_and_reports_failures() {
    let server = spawn_app(Backend::Embedded, &[("PIXELMILL_AUTH", "true")]).await;
    let healthz = server.url("/healthz");
    let (status, _, report) =
        pixelmill_load(&["--target", &healthz, "--rate", "20", "--duration", "1s", "--threshold", "p99<1us"]);
    assert_eq!(status.code(), Some(1));
    let report = report.unwrap();
    assert_eq!(report["requests"], 20);
    assert_eq!(report["thresholds"][0]["passed"], false);

    let missing = server.url("/v1/images/0190b7a4-0000-7000-8000-000000000000");
    let (status, _, report) =
        pixelmill_load(&["--target", &missing, "--max", "-c", "2", "--duration", "1s", "--threshold", "errors<1%"]);
    assert_eq!(status.code(), Some(1));
    let report = report.unwrap();
    assert_eq!(report["model"], "closed");
    assert!(report["requests"].as_u64().unwrap() > 0);
    assert_eq!(report["errors"]["by_status"]["404"], report["requests"]);

    let (status, stderr, _) =
        pixelmill_load(&["--target-base", &server.base, "--scenario", "render-hit", "--rate", "1", "--duration", "1s"]);
    assert_eq!(status.code(), Some(3));
    assert!(stderr.contains("API key"), "{stderr}");
    server.stop().await;

    let (status, stderr, _) = pixelmill_load(&[
        "--target-base",
        "http://127.0.0.1:9",
        "--wait-ready",
        "1s",
        "--rate",
        "1",
        "--duration",
        "1s",
    ]);
    assert_eq!(status.code(), Some(3));
    assert!(stderr.contains("not ready"), "{stderr}");
}

/// 16 new variants of one image at once, with a quota of 5: every request is served, and the
/// image is left with exactly its 5 most recently served variants; the other 11 are evicted
/// once each, row and blob.
async fn the_variant_quota_holds_under_concurrent_renders(backend: Backend) {
    let server = spawn_app(backend, &[("PIXELMILL_MAX_VARIANTS_PER_IMAGE", "5")]).await;
    let uploaded: Value = server.upload(png(&pattern(300, 200))).await.json().await.unwrap();
    let id = uploaded["id"].as_str().unwrap().to_owned();
    let renders: Vec<_> = (0..16)
        .map(|n| tokio::spawn(server.client.get(server.url(&format!("/v1/images/{id}/render?w={}", 40 + n))).send()))
        .collect();
    for render in renders {
        let response = render.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-cache"], "miss");
    }
    assert_eq!(server.metric("pixelmill_variant_evictions_total").await, 11.0);
    let catalog = match &server.database {
        Some(database) => pixelmill::catalog::Catalog::connect(&database.url(), server.data_dir.path()).await,
        None => pixelmill::catalog::Catalog::connect("", server.data_dir.path()).await,
    }
    .unwrap();
    assert_eq!(catalog.variant_totals().await.unwrap().0, 5);
    assert!(catalog.variants_over_quota(&id, 5).await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_variant_quota_holds_on_the_embedded_default() {
    the_variant_quota_holds_under_concurrent_renders(Backend::Embedded).await;
}

#[tokio::test]
async fn the_variant_quota_holds_on_postgres_and_s3() {
    the_variant_quota_holds_under_concurrent_renders(Backend::PostgresAndS3).await;
}
