//! Faults of the real dependencies under a running `pixelmill serve`: Garage frozen in the middle
//! of uploads, PostgreSQL restarted. The faults come from `.ci/services.sh`, so these tests need
//! the services it starts (`cargo xtask ci` does), and they run one at a time: a frozen Garage
//! is frozen for every test of this binary.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// A TCP proxy in front of Garage that, once `stall` is set, forwards the headers and the first
/// KiB of any response body over 16 KiB and then sends nothing more, holding the connection:
/// the store answering a read and stalling half-way through its body.
struct StallingProxy {
    address: String,
    stall: Arc<AtomicBool>,
}

impl StallingProxy {
    async fn start(upstream: &str) -> StallingProxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let stall = Arc::new(AtomicBool::new(false));
        let stalling = Arc::clone(&stall);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                let stall = Arc::clone(&stalling);
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
                    let _ = Self::responses(&mut server_read, &mut client_write, &stall).await;
                });
            }
        });
        StallingProxy { address, stall }
    }

    /// Forwards responses one by one (headers, then exactly Content-Length bytes of body).
    async fn responses(
        from: &mut (impl AsyncReadExt + Unpin),
        to: &mut (impl AsyncWriteExt + Unpin),
        stall: &AtomicBool,
    ) -> std::io::Result<()> {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let head_end = loop {
                if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                let n = from.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                buffer.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
            let Some(length) = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
            else {
                // Chunked or unknown: pass the rest of the connection through as it comes.
                to.write_all(&buffer).await?;
                tokio::io::copy(from, to).await?;
                return Ok(());
            };
            while buffer.len() < head_end + length {
                let n = from.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let end = (head_end + length).min(buffer.len());
            if stall.load(Ordering::SeqCst) && length > 16 * 1024 {
                to.write_all(&buffer[..head_end + 1024]).await?;
                std::future::pending::<()>().await;
            }
            to.write_all(&buffer[..end]).await?;
            buffer.drain(..end);
        }
    }
}

/// The store stalls half-way through the body of a read: of a variant (a cache hit) and of an
/// original (a render). Each request answers 503 within the store timeout, not hanging on the
/// body, and once the store answers again the same requests succeed.
#[tokio::test]
async fn a_store_that_stalls_mid_body_gives_503_within_the_timeout() {
    let _one = SERVICES.lock().await;
    let proxy = StallingProxy::start(&pixelmill_tests::services::service_env("PIXELMILL_TEST_S3_ENDPOINT")).await;
    let server = spawn_app(
        Backend::PostgresAndS3,
        &[
            ("PIXELMILL_S3_ENDPOINT", proxy.address.as_str()),
            ("PIXELMILL_STORE_TIMEOUT_SECONDS", "2"),
            ("PIXELMILL_MEMORY_CACHE_BYTES", "0"),
            ("PIXELMILL_WRITES_PER_SECOND", "0"),
        ],
    )
    .await;
    // Noise, so that both the original and its PNG variant are far over 16 KiB.
    let noisy = image::RgbImage::from_fn(400, 300, |x, y| {
        let v = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
        image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    });
    let id = server.upload_id(jpeg(&noisy)).await;
    let cached = format!("/v1/images/{id}/render?w=300&fmt=png");
    assert_eq!(server.get(&cached).await.status(), StatusCode::OK);

    proxy.stall.store(true, Ordering::SeqCst);
    for (what, path) in
        [("a variant", cached.clone()), ("an original", format!("/v1/images/{id}/render?w=299&fmt=png"))]
    {
        let started = Instant::now();
        let response = server.get(&path).await;
        let took = started.elapsed();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "reading {what}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "dependency-unavailable");
        assert!(took < Duration::from_secs(4), "reading {what} hung for {took:?} past the 2 s store timeout");
    }

    proxy.stall.store(false, Ordering::SeqCst);
    assert_eq!(server.get(&cached).await.status(), StatusCode::OK);
    assert_eq!(server.get(&format!("/v1/images/{id}/render?w=299&fmt=png")).await.status(), StatusCode::OK);
    server.stop().await;
}
