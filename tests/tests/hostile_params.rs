//! Hostile *parameters* on good files, against `pixelmill serve` (the built binary, embedded
//! default): each answers 4xx problem+json in well under a second, the server's peak memory stays
//! within its render budget, and it stays ready after. Every route is also walked with malformed
//! paths and queries: no answer is a 5xx, and every error is problem+json.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat, RgbImage};
use pixelmill_tests::hostile;
use pixelmill_tests::images::{encode, pattern};
use pixelmill_tests::server::{Backend, Server, problem, spawn_app};
use reqwest::StatusCode;

/// The render budget of the server under test, and what it may hold besides renders.
const BUDGET: u64 = 64 << 20;
const BASELINE: u64 = 96 << 20;
/// "Well under a second", with room for a loaded CI machine.
const QUICK: Duration = Duration::from_millis(900);

async fn server() -> Server {
    spawn_app(
        Backend::Embedded,
        &[("PIXELMILL_MAX_RENDER_BYTES", &BUDGET.to_string()), ("PIXELMILL_WRITES_PER_SECOND", "0")],
    )
    .await
}

fn png_of(width: u32, height: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, image::Rgb([9, 99, 199]))), ImageFormat::Png)
}

/// A progressive JPEG whose last scan is repeated until the file has `scans` scans.
fn many_scans(scans: usize) -> Vec<u8> {
    let image = pattern(64, 64);
    let mut compressor = turbojpeg::Compressor::new().unwrap();
    compressor.set_progressive(true).unwrap();
    let pixels = turbojpeg::Image {
        pixels: image.as_raw().as_slice(),
        width: 64,
        pitch: 64 * 3,
        height: 64,
        format: turbojpeg::PixelFormat::RGB,
    };
    hostile::with_scans(&compressor.compress_to_vec(pixels).unwrap(), scans)
}

async fn post_render(server: &Server, query: &str, body: Vec<u8>) -> reqwest::Response {
    server.client.post(server.url(&format!("/v1/render?{query}"))).body(body).send().await.unwrap()
}

#[tokio::test]
async fn hostile_parameters_are_refused_quickly_within_the_budget() {
    let server = server().await;
    let one_pixel = server.upload_id(png_of(1, 1)).await;
    let line = server.upload_id(png_of(1, 100)).await;

    let png = |width, height| Some(png_of(width, height));
    let cases = [
        // Covering a 16384x1 box from a 1x1 source resized it to 16384x16384 first.
        (
            "cover of a 1x1 source",
            format!("/v1/images/{one_pixel}/render?w=16384&h=1&fit=cover&enlarge=1"),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "render-too-large",
        ),
        (
            "cover of a 1x100 source",
            format!("/v1/images/{line}/render?w=16384&h=1&fit=cover&enlarge=1&dpr=4"),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "render-too-large",
        ),
        // libwebp writes at most 16383 pixels a side, libjpeg-turbo 65500.
        (
            "16384 px WebP",
            "/v1/render?w=16384&h=1&fit=fill&enlarge=1&fmt=webp".to_owned(),
            png(8, 8),
            StatusCode::UNPROCESSABLE_ENTITY,
            "output-dimension-too-large",
        ),
        (
            "a 17000x8 PNG to WebP",
            "/v1/render?fmt=webp".to_owned(),
            png(17_000, 8),
            StatusCode::UNPROCESSABLE_ENTITY,
            "output-dimension-too-large",
        ),
        (
            "a 70000x4 PNG to JPEG",
            "/v1/render?fmt=jpeg".to_owned(),
            png(70_000, 4),
            StatusCode::UNPROCESSABLE_ENTITY,
            "output-dimension-too-large",
        ),
        ("a path that is not UTF-8", "/v1/images/%FF".to_owned(), None, StatusCode::BAD_REQUEST, "bad-request"),
    ];
    for (name, path, body, status, code) in cases {
        let started = Instant::now();
        let response = match body {
            Some(body) => server.client.post(server.url(&path)).body(body).send().await.unwrap(),
            None => server.get(&path).await,
        };
        let took = started.elapsed();
        let body = problem(response, status, code).await;
        eprintln!("{name}: {} {code} in {took:?}", status.as_u16());
        assert!(took < QUICK, "{name}: answered in {took:?}");
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{name}: {body}");
    }

    // 5000 scans of a progressive JPEG, each a pass over the image: refused from its markers.
    let started = Instant::now();
    let bomb = many_scans(5000);
    let bytes = bomb.len();
    let body = problem(server.upload(bomb).await, StatusCode::UNPROCESSABLE_ENTITY, "too-many-scans").await;
    eprintln!("a {bytes}-byte JPEG of 5000 scans: 422 too-many-scans in {:?}", started.elapsed());
    assert!(started.elapsed() < QUICK, "the scan bomb took {:?}", started.elapsed());
    assert!(body["detail"].as_str().unwrap().contains("5000 scans"), "{body}");
    // The limit is exact: 101 scans are refused from the markers; 100 go on to the decoder
    // (which finds a refinement scan repeated and calls the file corrupt, quickly).
    problem(
        post_render(&server, "w=16&fmt=png", many_scans(101)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too-many-scans",
    )
    .await;
    let started = Instant::now();
    let at_limit = post_render(&server, "w=16&fmt=png", many_scans(100)).await;
    assert!(started.elapsed() < QUICK, "100 scans took {:?}", started.elapsed());
    assert!(at_limit.status() == StatusCode::OK || at_limit.status() == StatusCode::UNPROCESSABLE_ENTITY);
    let body = at_limit.bytes().await.unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("too-many-scans"), "100 scans are within the limit");

    // fmt=auto picks a format that holds the output: PNG past WebP's 16383.
    let auto = server
        .client
        .post(server.url("/v1/render?w=16384&h=1&fit=fill&enlarge=1&fmt=auto"))
        .header("accept", "image/webp,image/*")
        .body(png_of(8, 8))
        .send()
        .await
        .unwrap();
    assert_eq!(auto.status(), StatusCode::OK);
    assert_eq!(auto.headers()["content-type"], "image/png");

    let peak = server.peak_rss();
    eprintln!("peak RSS {} MiB (render budget {} MiB)", peak >> 20, BUDGET >> 20);
    assert!(peak < BUDGET + BASELINE, "peak RSS {} MiB over the budget", peak >> 20);
    assert_eq!(server.get("/readyz").await.status(), StatusCode::OK);
    let ok = server.get(&format!("/v1/images/{line}/render?w=10&fmt=png")).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

/// Every route with malformed paths, queries and bodies: never a 5xx, every error problem+json.
#[tokio::test]
async fn every_route_answers_malformed_requests_with_problem_json() {
    let server = server().await;
    let id = server.upload_id(png_of(4, 4)).await;
    let long = "a".repeat(5000);
    let ids = ["%FF", "%00", "%2e%2e%2f%2e%2e", long.as_str(), id.as_str(), "019ab3f4-not-a-real-id"];
    let queries =
        ["", "?%", "?%FF=1", "?w=%FF", "?w=abc", "?w=1&w=2", "?=&&=", "?limit=abc", "?cursor=%FF", "?limit=-1"];
    let mut paths: Vec<String> = Vec::new();
    for id in ids {
        for route in ["/v1/images/{id}", "/v1/images/{id}/original", "/v1/images/{id}/render"] {
            paths.push(route.replace("{id}", id));
        }
    }
    paths.extend(
        ["/v1/images", "/v1/render", "/healthz", "/readyz", "/openapi.json", "/docs", "/nope", "/v1/images/"]
            .map(String::from),
    );
    let mut answered = 0;
    let kept = format!("/v1/images/{id}");
    for path in &paths {
        for query in queries {
            for method in [reqwest::Method::GET, reqwest::Method::POST, reqwest::Method::DELETE, reqwest::Method::PUT] {
                if method == reqwest::Method::DELETE && *path == kept {
                    // A well-formed delete of the one real image would delete it.
                    continue;
                }
                let url = format!("{}{path}{query}", server.base);
                let mut request = server.client.request(method.clone(), &url);
                if method == reqwest::Method::POST {
                    // A multipart type without a boundary, and bytes that are no image.
                    request = request.header("content-type", "multipart/form-data").body("not an image");
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                assert!(!status.is_server_error(), "{method} {path}{query}: {status}");
                if status.is_client_error() {
                    let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
                    assert_eq!(kind.as_deref(), Some("application/problem+json"), "{method} {path}{query}: {status}");
                    let body: serde_json::Value = response.json().await.unwrap();
                    assert_eq!(body["status"], status.as_u16(), "{method} {path}{query}");
                    assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{method} {path}{query}");
                }
                answered += 1;
            }
        }
    }
    assert_eq!(answered, paths.len() * queries.len() * 4 - queries.len());
    // The image is still there: nothing above deleted it by a malformed route.
    assert_eq!(server.get(&format!("/v1/images/{id}")).await.status(), StatusCode::OK);
}
