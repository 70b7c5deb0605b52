//! Reliability of `pixelmill serve` under hostile input, overload and shutdown: the built binary
//! over HTTP, with its peak memory read from /proc. RELIABILITY.md lists what each test proves
//! and the numbers measured.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pixelmill_tests::hostile::{self, Expect};
use pixelmill_tests::images::{jpeg, pattern};
use pixelmill_tests::server::{Backend, Server, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

/// The server's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib(server: &Server) -> u64 {
    server.peak_rss() >> 20
}

fn is_problem(response: &reqwest::Response) -> bool {
    response.headers().get("content-type").is_some_and(|v| v == "application/problem+json")
}

/// Every sample of the hostile corpus, uploaded and rendered statelessly: a 4xx problem each
/// time, each answer within 2 s, the server's peak RSS under 512 MiB, nothing stored, and the
/// server still ready afterwards. Runs at the default limits.
#[tokio::test]
async fn hostile_corpus_gets_fast_4xx_answers_within_bounded_memory() {
    let server = spawn_app(Backend::Embedded, &[("PIXELMILL_WRITES_PER_SECOND", "0")]).await;
    let corpus = hostile::corpus();
    assert!(corpus.len() >= 50, "{} samples", corpus.len());
    let mut slowest = (Duration::ZERO, String::new());
    for sample in corpus {
        for route in ["/v1/images", "/v1/render?w=200&fmt=webp"] {
            let started = Instant::now();
            let response = server.client.post(server.url(route)).body(sample.bytes.clone()).send().await.unwrap();
            let took = started.elapsed();
            let status = response.status();
            assert!(status.is_client_error(), "{} via {route}: {status}", sample.name);
            assert!(is_problem(&response), "{} via {route}: not problem+json", sample.name);
            let body: Value = response.json().await.unwrap();
            let detail = body["detail"].as_str().unwrap_or_default();
            // A refusal names its cause and no internals: no source paths, no panics.
            assert!(!detail.contains(".rs:") && !detail.contains("panicked"), "{}: {detail}", sample.name);
            if sample.expect == Expect::TooManyPixels {
                assert_eq!(body["code"], "too-many-pixels", "{}", sample.name);
            }
            assert!(took < Duration::from_secs(2), "{} via {route} took {took:?}", sample.name);
            if took > slowest.0 {
                slowest = (took, format!("{} via {route}", sample.name));
            }
        }
    }
    let peak = peak_rss_mib(&server);
    eprintln!("hostile corpus: slowest answer {:?} ({}), peak RSS {peak} MiB", slowest.0, slowest.1);
    assert!(peak < 512, "peak RSS {peak} MiB");
    let listed: Value = server.get("/v1/images").await.json().await.unwrap();
    assert!(listed["images"].as_array().unwrap().is_empty(), "nothing hostile was stored");
    assert_eq!(server.get("/readyz").await.status(), StatusCode::OK);
    server.stop().await;
}

/// 48 concurrent heavy renders on a server admitting 4 (two running, two queued; set here, so
/// the outcome does not depend on the machine's core count): every answer is a 200 or a 503
/// problem with `Retry-After`, each 503 is counted as shed in the metrics, peak RSS stays under
/// 1 GiB, and `/healthz`, polled throughout, always answers quickly: no render runs on the async
/// runtime.
#[tokio::test]
async fn overload_sheds_with_503_and_keeps_health_responsive() {
    let server = spawn_app(
        Backend::Embedded,
        &[
            ("PIXELMILL_WRITES_PER_SECOND", "0"),
            ("PIXELMILL_MAX_RENDERS_IN_FLIGHT", "2"),
            ("PIXELMILL_RENDER_QUEUE", "2"),
        ],
    )
    .await;
    let photo = jpeg(&pattern(2560, 1600));
    let renders: Vec<_> = (0..48)
        .map(|i| {
            // Different specs, so no two requests share a render.
            let url = server.url(&format!("/v1/render?w={}&fmt=webp&sharpen=1", 1600 + i));
            let request = server.client.post(url).body(photo.clone()).send();
            tokio::spawn(async move {
                let response = request.await.unwrap();
                let retry_after = response.headers().get("retry-after").cloned();
                let problem = is_problem(&response);
                (response.status(), retry_after, problem, response.bytes().await.unwrap().len())
            })
        })
        .collect();

    let mut health = Vec::new();
    while !renders.iter().all(tokio::task::JoinHandle::is_finished) {
        let started = Instant::now();
        let status = server.get("/healthz").await.status();
        health.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut ok, mut shed) = (0, 0);
    for render in renders {
        let (status, retry_after, problem, len) = render.await.unwrap();
        match status {
            StatusCode::OK => {
                assert!(len > 0);
                ok += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after.is_some(), "a 503 without Retry-After");
                assert!(problem, "a 503 that is not problem+json");
                shed += 1;
            }
            other => panic!("overload answered {other}"),
        }
    }
    health.sort();
    let worst = *health.last().unwrap();
    let peak = peak_rss_mib(&server);
    eprintln!(
        "overload: {ok} rendered, {shed} shed; /healthz polled {} times, median {:?}, worst {worst:?}; peak RSS {peak} MiB",
        health.len(),
        health[health.len() / 2]
    );
    assert_eq!(ok + shed, 48);
    // The first four requests always find room; every refusal is one the metrics counted.
    assert!(ok >= 4, "{ok} rendered: fewer than the four admitted");
    let counted = server.metric("pixelmill_render_rejected_total{reason=\"overloaded\"}").await;
    assert_eq!(counted, f64::from(shed), "503s answered and refusals counted differ");
    // 48 renders of a second or so of CPU each arrive within a few milliseconds: the two slots
    // and two queue places cannot take them all.
    assert!(shed >= 1, "{ok} rendered, {shed} shed: the admission limit did not apply");
    assert!(worst < Duration::from_millis(500), "/healthz took {worst:?} under load");
    assert!(peak < 1024, "peak RSS {peak} MiB");
    assert_eq!(server.get("/readyz").await.status(), StatusCode::OK);
    server.stop().await;
}

/// SIGTERM with renders and uploads in flight (an upload whose body is still arriving): all of
/// them complete, every image uploaded has its row and its blob, new connections are refused,
/// and the process exits 0 within the drain time.
#[tokio::test]
async fn sigterm_completes_renders_and_uploads_and_refuses_new_connections() {
    let mut server = spawn_app(
        Backend::Embedded,
        &[
            ("PIXELMILL_SHUTDOWN_DRAIN_SECONDS", "120"),
            ("PIXELMILL_RENDER_TIMEOUT_SECONDS", "120"),
            ("PIXELMILL_WRITES_PER_SECOND", "0"),
        ],
    )
    .await;
    let id = server.upload_id(jpeg(&pattern(2400, 1800))).await;

    // Uploads whose bodies arrive in two halves, the second after SIGTERM.
    let mut uploads = Vec::new();
    let mut second_halves = Vec::new();
    for i in 0..3u8 {
        let mut bytes = jpeg(&pattern(1200 + u32::from(i), 900));
        bytes.extend_from_slice(&[i; 16]); // distinct files
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
        let half = bytes.len() / 2;
        tx.send(Ok(bytes[..half].to_vec())).await.unwrap();
        second_halves.push((tx, bytes[half..].to_vec()));
        let body = reqwest::Body::wrap_stream(tokio_stream(rx));
        let request = server
            .client
            .post(server.url("/v1/images"))
            .header("content-type", "image/jpeg")
            .header("content-length", bytes.len())
            .body(body)
            .send();
        uploads.push(tokio::spawn(request));
    }
    let renders: Vec<_> = (0..2)
        .map(|i| {
            tokio::spawn(
                server.client.get(server.url(&format!("/v1/images/{id}/render?fmt=webp&w={}", 2000 + i))).send(),
            )
        })
        .collect();
    let any_ended = || renders.iter().any(tokio::task::JoinHandle::is_finished);
    server.wait_metric("pixelmill_renders_in_flight", 1.0, Duration::from_secs(60), any_ended).await;
    let started = Instant::now();
    server.terminate();
    // Once the listener is closed, a new connection is refused. A connection that reached the
    // kernel's backlog as the listener closed is reset instead: it was not served either, and
    // the next attempt must be refused.
    let address = server.base.trim_start_matches("http://").to_owned();
    loop {
        match tokio::net::TcpStream::connect(&address).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
            Ok(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still accepting 10 s after SIGTERM");
        tokio::task::yield_now().await;
    }

    for (tx, rest) in second_halves {
        tx.send(Ok(rest)).await.unwrap();
    }
    let mut uploaded = Vec::new();
    for upload in uploads {
        let response = upload.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        uploaded.push(body["sha256"].as_str().unwrap().to_owned());
    }
    for render in renders {
        let response = render.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    let status = server.child.wait().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(120), "exit {took:?} after SIGTERM");
    eprintln!("sigterm: exit 0 {took:?} after the signal, 3 uploads and 2 renders completed");

    // Every upload has its blob, and the catalog has its row: read them back with the server
    // stopped, through the same data directory.
    let blobs = server.data_dir.path().join("blobs").join("originals");
    for sha in &uploaded {
        assert!(blobs.join(sha).is_file(), "the blob of {sha} is missing");
    }
    let half_written = walk(&server.data_dir.path().join("blobs"))
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(".tmp-")))
        .collect::<Vec<_>>();
    assert!(half_written.is_empty(), "half-written blobs left: {half_written:?}");
    let listed = server.command(&["gc", "--grace-hours", "0"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    for sha in &uploaded {
        assert!(blobs.join(sha).is_file(), "gc removed the blob of {sha}: its row is missing");
    }
    let variants = server.data_dir.path().join("blobs").join("variants").join(&id);
    let kept = std::fs::read_dir(&variants).map(Iterator::count).unwrap_or(0);
    assert_eq!(kept, 2, "both renders' variants survive gc, so their rows exist");
    server.stop().await;
}

/// The receiving end of a channel as a stream, for a request body sent in parts.
fn tokio_stream<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Boundaries a client must not cross: no open listener without API keys, no path out of the
/// store through an id, bounded parameters, and refusals that name the cause without internals.
#[tokio::test]
async fn security_boundaries_hold() {
    let data = tempfile::tempdir().unwrap();
    let open = pixelmill_tests::server::pixelmill()
        .arg("serve")
        .env("PIXELMILL_LISTEN", "0.0.0.0:0")
        .env("PIXELMILL_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(!open.status.success(), "served on all interfaces without API keys");
    assert!(String::from_utf8_lossy(&open.stderr).contains("PIXELMILL_AUTH=true"));

    let server = spawn_app(Backend::Embedded, &[("PIXELMILL_WRITES_PER_SECOND", "0")]).await;
    let id = server.upload_id(jpeg(&pattern(64, 64))).await;
    for path in [
        "/v1/images/..%2F..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/v1/images/%2e%2e/original".to_owned(),
        "/v1/images/..%2Foriginals/render?w=10".to_owned(),
        "/v1/images/a%00b/original".to_owned(),
        format!("/v1/images/{id}%2F..%2F..%2Fsecret/original"),
        format!("/v1/images/{}/original", "a".repeat(5000)),
    ] {
        let response = server.get(&path).await;
        let status = response.status();
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{path}: {status}");
        assert!(is_problem(&response), "{path}: not problem+json");
    }
    for (query, param) in
        [("w=100000", "w"), ("q=0", "q"), ("blur=1000", "blur"), ("dpr=50", "dpr"), ("crop=0,0,0,0", "crop")]
    {
        let response = server.get(&format!("/v1/images/{id}/render?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["param"], param, "{query}: {body}");
    }
    // A query far past any spec: refused, not parsed at length.
    let long = server.get(&format!("/v1/images/{id}/render?w=10&{}", "x=1&".repeat(10_000))).await;
    assert!(long.status().is_client_error(), "{}", long.status());
    server.stop().await;
}
