//! Faults of the real dependencies under a running `pixelmill serve`: Garage frozen in the middle
//! of uploads, PostgreSQL restarted. The faults come from `.ci/services.sh`, so these tests need
//! the services it starts (`cargo xtask ci` does), and they run one at a time: a frozen Garage
//! is frozen for every test of this binary.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use pixelmill_tests::images::{jpeg, pattern};
use pixelmill_tests::server::{Backend, Server, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

/// One fault at a time.
static SERVICES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn services(action: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/services.sh");
    let status = Command::new("bash").arg(script).arg(action).status().unwrap();
    assert!(status.success(), "services.sh {action} failed");
}

/// Thaws Garage even when the test fails while it is frozen.
struct Frozen;

impl Frozen {
    fn store() -> Frozen {
        services("pause-s3");
        Frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        services("resume-s3");
    }
}

fn unique_photo(seed: u8) -> Vec<u8> {
    let mut bytes = jpeg(&pattern(640, 400));
    bytes.extend_from_slice(&[seed; 32]);
    bytes
}

async fn image_count(server: &Server) -> usize {
    let listed: Value = server.get("/v1/images?limit=100").await.json().await.unwrap();
    listed["images"].as_array().unwrap().len()
}

/// Polls `/readyz` until it answers `want`, for at most `within`.
async fn wait_ready(server: &Server, want: StatusCode, within: Duration) {
    let started = Instant::now();
    loop {
        let status = server.get("/readyz").await.status();
        if status == want {
            return;
        }
        assert!(started.elapsed() < within, "/readyz still {status} after {within:?}, want {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Garage frozen while uploads are in flight: each answers 503 within the store timeout and
/// leaves no row behind; `/readyz` says 503 while the store hangs and 200 once it is back; the
/// next upload succeeds without a restart; `pixelmill gc` then removes the blobs the frozen
/// uploads may have left, and nothing else.
#[tokio::test]
async fn a_frozen_store_gives_503_leaves_no_row_and_recovers() {
    let _one = SERVICES.lock().await;
    let server = spawn_app(
        Backend::PostgresAndS3,
        &[("PIXELMILL_STORE_TIMEOUT_SECONDS", "2"), ("PIXELMILL_WRITES_PER_SECOND", "0")],
    )
    .await;
    let kept = server.upload_id(unique_photo(0)).await;
    assert_eq!(image_count(&server).await, 1);

    let frozen = Frozen::store();
    let uploads: Vec<_> = (1..=3u8)
        .map(|seed| {
            let request = server
                .client
                .post(server.url("/v1/images"))
                .header("content-type", "image/jpeg")
                .body(unique_photo(seed))
                .send();
            tokio::spawn(async move {
                let started = Instant::now();
                let response = request.await.unwrap();
                (response.status(), started.elapsed(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    for upload in uploads {
        let (status, took, body) = upload.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "dependency-unavailable");
        assert!(took < Duration::from_secs(15), "the upload hung for {took:?}");
    }
    assert_eq!(server.get("/readyz").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Rows live in PostgreSQL, which still answers: none was written for the failed uploads.
    assert_eq!(image_count(&server).await, 1, "a row without its blob");
    drop(frozen);

    wait_ready(&server, StatusCode::OK, Duration::from_secs(30)).await;
    let after = server.upload_id(unique_photo(4)).await;
    assert_eq!(image_count(&server).await, 2);

    let swept = server.command(&["gc", "--grace-hours", "0"]);
    assert!(swept.status.success(), "{}", String::from_utf8_lossy(&swept.stderr));
    for id in [&kept, &after] {
        let original = server.get(&format!("/v1/images/{id}/original")).await;
        assert_eq!(original.status(), StatusCode::OK, "gc removed a referenced blob");
    }
    server.stop().await;
}

/// Starts PostgreSQL again even when the test fails while it is stopped.
struct Stopped;

impl Drop for Stopped {
    fn drop(&mut self) {
        services("start-postgres");
    }
}

/// PostgreSQL stopped and started under the service: while it is down `/readyz` and uploads
/// answer 503 (with the cause logged, not sent); once it is back the service reconnects by
/// itself, and uploads before and after are all there.
#[tokio::test]
async fn a_restarted_postgres_is_reconnected_without_a_restart() {
    let _one = SERVICES.lock().await;
    let server = spawn_app(Backend::PostgresAndS3, &[("PIXELMILL_WRITES_PER_SECOND", "0")]).await;
    let before = server.upload_id(unique_photo(10)).await;

    services("stop-postgres");
    let stopped = Stopped;
    assert_eq!(server.get("/readyz").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let refused = server.upload(unique_photo(20)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "dependency-unavailable");
    assert!(!body["detail"].as_str().unwrap().contains("5432"), "the cause leaked: {body}");
    drop(stopped);
    wait_ready(&server, StatusCode::OK, Duration::from_secs(30)).await;
    // The pool's connections died with the server; the first queries after a restart must
    // not fail for it.
    for seed in 11..14u8 {
        let response = server.upload(unique_photo(seed)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(server.get(&format!("/v1/images/{before}")).await.status(), StatusCode::OK);
    assert_eq!(image_count(&server).await, 4);
    server.stop().await;
}
