//! Handler tests through `router().oneshot(...)`: the embedded default (SQLite and a local
//! directory in a temporary folder), no socket. The black-box tests in `tests/` run the binary.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tower::ServiceExt;

use super::*;

struct TestApp {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    configure(&mut config);
    TestApp { state: AppState::build(config).await.unwrap(), _dir: dir }
}

impl TestApp {
    async fn send(&self, request: Request<Body>) -> Response {
        router(self.state.clone()).oneshot(request).await.unwrap()
    }

    async fn get(&self, uri: &str) -> Response {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn upload(&self, bytes: Vec<u8>) -> Response {
        self.send(
            Request::post("/v1/images").header(header::CONTENT_TYPE, "image/png").body(Body::from(bytes)).unwrap(),
        )
        .await
    }
}

async fn json(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8 ^ seed, y as u8, seed]));
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn header_of<'r>(response: &'r Response, name: &str) -> &'r str {
    response.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn upload_dedupes_and_renders_through_the_variant_cache() {
    let app = app_with(|_| {}).await;
    let first = app.upload(png(64, 48, 1)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let image = json(first).await;
    assert_eq!(
        (image["width"].as_u64(), image["height"].as_u64(), image["format"].as_str()),
        (Some(64), Some(48), Some("png"))
    );
    let again = app.upload(png(64, 48, 1)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json(again).await["id"], image["id"]);

    let id = image["id"].as_str().unwrap();
    let miss = app.get(&format!("/v1/images/{id}/render?w=32&fmt=webp")).await;
    assert_eq!(miss.status(), StatusCode::OK);
    assert_eq!(header_of(&miss, "x-cache"), "miss");
    assert_eq!(header_of(&miss, "content-type"), "image/webp");
    assert_eq!(header_of(&miss, "cache-control"), "public, max-age=31536000, immutable");
    let etag = header_of(&miss, "etag").to_owned();

    // The same spec in another order is the same variant.
    let hit = app.get(&format!("/v1/images/{id}/render?fmt=webp&w=32")).await;
    assert_eq!(header_of(&hit, "x-cache"), "hit");
    assert_eq!(header_of(&hit, "etag"), etag);

    let conditional = Request::get(format!("/v1/images/{id}/render?w=32&fmt=webp"))
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(conditional).await.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn an_upload_has_placeholders_and_its_dominant_colour() {
    let app = app_with(|_| {}).await;
    // Two colours, 70% and 30%: the colour is exact, and the ThumbHash keeps the aspect ratio;
    // the upload's answer and GET say the same.
    let image =
        image::RgbImage::from_fn(300, 200, |x, _| image::Rgb(if x < 210 { [16, 160, 90] } else { [240, 240, 0] }));
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    let uploaded = json(app.upload(bytes.into_inner()).await).await;
    let id = uploaded["id"].as_str().unwrap();
    let fetched = json(app.get(&format!("/v1/images/{id}")).await).await;
    assert_eq!(fetched["placeholder"], uploaded["placeholder"]);
    assert_eq!(fetched["dominant_color"], "#10a05a");
    let thumbhash = fetched["placeholder"]["thumbhash"].as_str().unwrap();
    use base64::Engine as _;
    let hash = base64::engine::general_purpose::STANDARD.decode(thumbhash).unwrap();
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
    assert!((ratio - 1.5).abs() < 0.2, "{ratio}");
    assert_eq!(fetched["placeholder"]["blurhash"].as_str().unwrap().len(), 28);
    // In the OpenAPI document too.
    let spec = json(app.get("/openapi.json").await).await;
    let properties = &spec["components"]["schemas"]["ImageMetadata"]["properties"];
    assert!(properties["placeholder"].is_object() && properties["dominant_color"].is_object(), "{properties}");
}

#[tokio::test]
async fn cache_hits_are_recorded_for_retention_without_a_write_each() {
    let app = app_with(|_| {}).await;
    let id = json(app.upload(png(40, 30, 9)).await).await["id"].as_str().unwrap().to_owned();
    let uri = format!("/v1/images/{id}/render?w=20&fmt=png");
    assert_eq!(header_of(&app.get(&uri).await, "x-cache"), "miss");
    let served = || app.state.0.served.lock().unwrap().clone();
    assert!(served().is_empty(), "a miss is recorded by its insert");
    for _ in 0..3 {
        assert_eq!(header_of(&app.get(&uri).await, "x-cache"), "hit");
    }
    let key = crate::engine::Spec::parse("w=20&fmt=png", &Presets::default()).unwrap().variant_key();
    let blob = BlobKey::variant(&id, &key, "png").unwrap();
    assert_eq!(served(), [blob.as_str().to_owned()].into_iter().collect(), "three hits, one entry");
    assert_eq!(blob.variant_of(), Some((id.clone(), key)));
    app.state.flush_served().await;
    assert!(served().is_empty());
    // The variant was made just now: a day has not passed, so the flush wrote nothing, and it
    // is not unused since a minute ago.
    let recent = app.state.catalog().variants_unused_since(crate::catalog::now_ms() - 60_000, None, 10).await.unwrap();
    assert!(recent.is_empty(), "{recent:?}");
}

#[tokio::test]
async fn client_errors_are_problems_naming_their_cause() {
    let app = app_with(|config| config.limits.max_body_bytes = 10_000).await;
    let id = json(app.upload(png(8, 8, 2)).await).await["id"].as_str().unwrap().to_owned();

    let cases = [
        (app.get(&format!("/v1/images/{id}/render?w=0")).await, StatusCode::BAD_REQUEST, "invalid-spec"),
        (app.get(&format!("/v1/images/{id}/render?colour=red")).await, StatusCode::BAD_REQUEST, "invalid-spec"),
        (app.get("/v1/images/00000000000000000000000000000000").await, StatusCode::NOT_FOUND, "not-found"),
        (app.get("/v1/images/not-an-id/original").await, StatusCode::NOT_FOUND, "not-found"),
        (app.get("/v1/images?limit=1000").await, StatusCode::BAD_REQUEST, "invalid-query"),
        (app.get("/nowhere").await, StatusCode::NOT_FOUND, "not-found"),
        (
            app.upload(b"just some text, not an image".to_vec()).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-format",
        ),
        (app.upload(png(8, 8, 3)[..60].to_vec()).await, StatusCode::UNPROCESSABLE_ENTITY, "corrupt-image"),
        (app.upload(Vec::new()).await, StatusCode::BAD_REQUEST, "empty-body"),
        (app.upload(vec![0; 10_001]).await, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large"),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status(), status, "{code}");
        assert_eq!(header_of(&response, "content-type"), "application/problem+json");
        let problem = json(response).await;
        assert_eq!(problem["code"], code);
        assert_eq!(problem["status"], status.as_u16());
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    let bad_width = json(app.get(&format!("/v1/images/{id}/render?w=abc")).await).await;
    assert_eq!(bad_width["param"], "w");
}

#[tokio::test]
async fn writes_need_a_live_key_when_auth_is_on() {
    let app = app_with(|config| config.auth = true).await;
    let missing = app.upload(png(8, 8, 5)).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_of(&missing, "www-authenticate"), "Bearer");

    let key = auth::generate_api_key().unwrap();
    let row = crate::catalog::ApiKeyRow {
        id: "k1".to_owned(),
        name: "test".to_owned(),
        key_hash: auth::hash_api_key(&key),
        created_at_ms: 0,
        revoked_at_ms: None,
    };
    app.state.catalog().insert_api_key(&row).await.unwrap();
    let upload = |key: String| {
        Request::post("/v1/images")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .body(Body::from(png(8, 8, 5)))
            .unwrap()
    };
    assert_eq!(app.send(upload(key.clone())).await.status(), StatusCode::CREATED);
    assert_eq!(app.send(upload(auth::generate_api_key().unwrap())).await.status(), StatusCode::UNAUTHORIZED);
    app.state.catalog().revoke_api_key("k1", 1).await.unwrap();
    assert_eq!(app.send(upload(key)).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn writes_past_the_rate_answer_429_with_retry_after() {
    let app = app_with(|config| {
        config.limits.writes_per_second = 0.5;
        config.limits.write_burst = 2;
    })
    .await;
    assert!(app.upload(png(8, 8, 6)).await.status().is_success());
    assert!(app.upload(png(8, 8, 7)).await.status().is_success());
    let limited = app.upload(png(8, 8, 8)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_of(&limited, "retry-after"), "2");
    // Reads are not writes.
    assert_eq!(app.get("/v1/images").await.status(), StatusCode::OK);
}

#[test]
fn the_write_limit_is_per_client_and_takes_any_configured_rate() {
    let limiter = RateLimiter::new(0.5, 2);
    assert_eq!(limiter.check("a"), Ok(()));
    assert_eq!(limiter.check("a"), Ok(()));
    assert_eq!(limiter.check("a"), Err(2), "one write per 2 s after the burst");
    assert_eq!(limiter.check("b"), Ok(()), "each client has its own allowance");

    let off = RateLimiter::new(0.0, 1);
    assert!((0..100).all(|_| off.check("a").is_ok()));

    // Rates too small or too large for a `Duration` period neither panic nor turn limiting off.
    let slow = RateLimiter::new(1e-300, 1);
    assert_eq!(slow.check("a"), Ok(()));
    assert_eq!(slow.check("a"), Err(RateLimiter::LONGEST_PERIOD.as_secs()));
    assert_eq!(RateLimiter::new(f64::MAX, 1).check("a"), Ok(()));

    // Past the tracked clients, those whose allowance has refilled are forgotten.
    let fast = RateLimiter::new(1e9, 1);
    for client in 0..=RateLimiter::TRACKED_CLIENTS {
        assert_eq!(fast.check(&client.to_string()), Ok(()));
    }
    fast.check("one more").unwrap();
    let tracked = fast.0.as_ref().map_or(0, |limiter| limiter.len());
    assert!(tracked < RateLimiter::TRACKED_CLIENTS, "{tracked} clients still tracked");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = app_with(|_| {}).await;
    let document = json(app.get("/openapi.json").await).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/images", "post"),
        ("/v1/images", "get"),
        ("/v1/images/{id}", "get"),
        ("/v1/images/{id}", "delete"),
        ("/v1/images/{id}/original", "get"),
        ("/v1/images/{id}/render", "get"),
        ("/v1/render", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/docs", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path}");
    }
    let render = &paths["/v1/images/{id}/render"]["get"];
    let names: Vec<&str> =
        render["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in ["id", "w", "h", "fit", "fmt", "sig", "preset"] {
        assert!(names.contains(&name), "render documents `{name}`");
    }
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), StatusCode::OK);
    let html = String::from_utf8(axum::body::to_bytes(docs.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    assert!(html.contains("GET /v1/images/{id}/render"));
}

/// A parameter's schema with `null` taken out of an optional one (`oneOf`/`anyOf` with a null
/// branch) and `$ref`s followed.
fn value_schema<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return value_schema(document, &document["components"]["schemas"][name]);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[key].as_array() {
            let branch = branches.iter().find(|branch| branch["type"] != "null").unwrap();
            return value_schema(document, branch);
        }
    }
    schema
}

#[tokio::test]
async fn the_openapi_document_states_what_the_spec_parser_accepts() {
    let app = app_with(|_| {}).await;
    let document = json(app.get("/openapi.json").await).await;
    let logo = crate::engine::spec::WatermarkInfo { digest: String::new(), width: 10, height: 10 };
    let presets = Presets::with_watermarks(HashMap::new(), BTreeMap::from([("logo".to_owned(), logo)])).unwrap();
    // The options of a watermark need one.
    let parses = |name: &str, value: &str| {
        let with = if name.starts_with("wm_") { "&wm=logo" } else { "" };
        crate::engine::Spec::parse(&format!("{name}={value}{with}"), &presets).is_ok()
    };
    let mut stated = Vec::new();
    for parameter in document["paths"]["/v1/render"]["post"]["parameters"].as_array().unwrap() {
        let name = parameter["name"].as_str().unwrap();
        let alternatives = match parameter["schema"]["oneOf"].as_array() {
            Some(branches) => branches.iter().collect(),
            None => vec![value_schema(&document, &parameter["schema"])],
        };
        for schema in alternatives {
            if let Some(values) = schema["enum"].as_array() {
                for value in values {
                    let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                    assert!(parses(name, &text), "{name}={value} is in the document");
                }
                assert!(!parses(name, "sideways"), "{name}: a value outside the enum");
                stated.push(name);
            }
            let integer =
                schema["type"] == "integer" || schema["type"].as_array().is_some_and(|t| t.contains(&"integer".into()));
            let step = if integer { 1.0 } else { 0.01 };
            if let Some(minimum) = schema["minimum"].as_f64() {
                assert!(parses(name, &minimum.to_string()), "{name}={minimum}, the minimum");
                assert!(!parses(name, &(minimum - step).to_string()), "{name} below {minimum}");
                stated.push(name);
            }
            if let Some(maximum) = schema["maximum"].as_f64() {
                assert!(parses(name, &maximum.to_string()), "{name}={maximum}, the maximum");
                assert!(!parses(name, &(maximum + step).to_string()), "{name} above {maximum}");
            }
            if let Some(pattern) = schema["pattern"].as_str() {
                stated.push(name);
                assert!(pattern.starts_with('^') && pattern.ends_with('$'), "{name}: {pattern} anchors");
            }
        }
    }
    stated.sort_unstable();
    stated.dedup();
    // Every key but `preset`, whose values come from configuration.
    let expected: Vec<&str> = crate::engine::spec::KEYS.iter().copied().filter(|key| *key != "preset").collect();
    assert_eq!(stated, expected, "parameters whose values the document states");
    for (value, ok) in [("10,20,30,40", true), ("10,20,30", false)] {
        assert_eq!(parses("crop", value), ok, "crop={value}");
    }
    for (value, ok) in [("ff8800", true), ("ff880080", true), ("ff88", false), ("f80", true), ("#f80", true)] {
        assert_eq!(parses("bg", value), ok, "bg={value}");
    }
    // Off is 0, and values between 0 and the minimum are refused.
    for (name, value, ok) in [
        ("blur", "0", true),
        ("blur", "0.2", false),
        ("sharpen", "0", true),
        ("dpr", "1.25", true),
        ("dpr", "1.255", false),
    ] {
        assert_eq!(parses(name, value), ok, "{name}={value}");
    }
    // Bodies are binary, not arrays of numbers.
    for path in ["/v1/images", "/v1/render"] {
        let content = &document["paths"][path]["post"]["requestBody"]["content"];
        let raw = value_schema(&document, &content["image/*"]["schema"]);
        assert_eq!((raw["type"].as_str(), raw["format"].as_str()), (Some("string"), Some("binary")), "{path}");
        let form = value_schema(&document, &content["multipart/form-data"]["schema"]);
        assert_eq!(form["properties"]["file"]["format"], "binary", "{path}");
    }
}

#[tokio::test]
async fn presets_only_refuses_free_specs() {
    let app = app_with(|config| {
        config.presets_only = true;
        config.presets.insert("thumb".to_owned(), "w=16&h=16&fit=cover".to_owned());
    })
    .await;
    let id = json(app.upload(png(40, 30, 9)).await).await["id"].as_str().unwrap().to_owned();
    let free = app.get(&format!("/v1/images/{id}/render?w=16")).await;
    assert_eq!(free.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(free).await["code"], "presets-only");
    let preset = app.get(&format!("/v1/images/{id}/render?preset=thumb")).await;
    assert_eq!(preset.status(), StatusCode::OK);
}

fn flat_png(width: u32, height: u32, rgba: [u8; 4]) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image::RgbaImage::from_pixel(width, height, image::Rgba(rgba))
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

/// A service with the watermark `logo` (a red square) from its blob store, and `badge` (blue,
/// from a file).
async fn app_with_watermarks(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open("", "", dir.path(), Duration::from_secs(5)).await.unwrap();
    let key = BlobKey::parse("watermarks/logo.png").unwrap();
    store.put(&key, flat_png(10, 10, [255, 0, 0, 255]).into(), "image/png").await.unwrap();
    let badge = dir.path().join("badge.png");
    std::fs::write(&badge, flat_png(20, 10, [0, 0, 255, 255])).unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    config.watermarks.insert(
        "logo".to_owned(),
        crate::config::WatermarkSource { file: None, blob: Some("watermarks/logo.png".to_owned()) },
    );
    config.watermarks.insert("badge".to_owned(), crate::config::WatermarkSource { file: Some(badge), blob: None });
    configure(&mut config);
    TestApp { state: AppState::build(config).await.unwrap(), _dir: dir }
}

async fn decoded(response: Response) -> image::RgbaImage {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    image::load_from_memory(&bytes).unwrap().into_rgba8()
}

#[tokio::test]
async fn watermarks_render_as_variants_of_their_own() {
    let app = app_with_watermarks(|_| {}).await;
    let id = json(app.upload(flat_png(200, 100, [128, 128, 128, 255])).await).await["id"].as_str().unwrap().to_owned();
    let uri = format!("/v1/images/{id}/render?fmt=png&wm=logo&wm_scale=0.5&wm_margin=5");
    let first = app.get(&uri).await;
    assert_eq!((first.status(), header_of(&first, "x-cache")), (StatusCode::OK, "miss"));
    let image = decoded(first).await;
    assert_eq!((image.get_pixel(170, 70).0, image.get_pixel(140, 70).0), ([255, 0, 0, 255], [128, 128, 128, 255]));
    // The same spec again, its keys in another order and a default spelt out, is the same variant.
    let again =
        app.get(&format!("/v1/images/{id}/render?wm_margin=5&wm=logo&fmt=png&wm_scale=0.5&wm_pos=southeast")).await;
    assert_eq!(header_of(&again, "x-cache"), "hit");
    // Another watermark, or other options, are variants of their own.
    for other in ["wm=badge&wm_scale=0.5&wm_margin=5", "wm=logo&wm_scale=0.5&wm_margin=6", "wm=logo&wm_opacity=0.5"] {
        let response = app.get(&format!("/v1/images/{id}/render?fmt=png&{other}")).await;
        assert_eq!((response.status(), header_of(&response, "x-cache")), (StatusCode::OK, "miss"), "{other}");
    }
    let badge = decoded(app.get(&format!("/v1/images/{id}/render?fmt=png&wm=badge&wm_pos=northwest")).await).await;
    assert_eq!((badge.get_pixel(0, 0).0, badge.get_pixel(24, 12).0), ([0, 0, 255, 255], [0, 0, 255, 255]));
    assert_eq!(badge.get_pixel(25, 0).0, [128, 128, 128, 255], "25 wide (0.25 of 100), 12 or 13 high");

    for (query, param, names) in [
        ("wm=nope", "wm", "`nope`; configured: badge, logo"),
        ("wm_pos=north", "wm_pos", "add `wm=NAME`"),
        ("wm=logo&wm_pos=smart", "wm_pos", "southwest"),
        ("wm=logo&wm_scale=0", "wm_scale", "0.01 to 1"),
        ("wm=logo&wm_opacity=1.5", "wm_opacity", "0.01 to 1"),
    ] {
        let refused = app.get(&format!("/v1/images/{id}/render?{query}")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(header_of(&refused, "content-type"), "application/problem+json");
        let problem = json(refused).await;
        assert_eq!(problem["param"], param, "{query}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(names), "{query}: {problem}");
    }
    // Stateless renders take them too.
    let body = flat_png(40, 40, [0, 255, 0, 255]);
    let rendered =
        app.send(Request::post("/v1/render?fmt=png&wm=logo&wm_scale=1").body(Body::from(body)).unwrap()).await;
    assert_eq!(decoded(rendered).await.get_pixel(20, 20).0, [255, 0, 0, 255]);
}

#[tokio::test]
async fn a_presets_only_server_forces_the_watermark_its_presets_carry() {
    let app = app_with_watermarks(|config| {
        config.presets_only = true;
        config.presets.insert("marked".to_owned(), "w=100&fmt=png&wm=logo&wm_scale=0.5".to_owned());
    })
    .await;
    let id = json(app.upload(flat_png(200, 100, [128, 128, 128, 255])).await).await["id"].as_str().unwrap().to_owned();
    let image = decoded(app.get(&format!("/v1/images/{id}/render?preset=marked")).await).await;
    assert_eq!((image.width(), image.height()), (100, 50));
    assert_eq!(image.get_pixel(90, 40).0, [255, 0, 0, 255]);
    for query in ["preset=marked&wm_opacity=0.01", "preset=marked&wm=badge"] {
        let refused = app.get(&format!("/v1/images/{id}/render?{query}")).await;
        assert_eq!(json(refused).await["code"], "presets-only", "{query}");
    }
}

#[tokio::test]
async fn a_watermark_that_cannot_be_loaded_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let not_an_image = dir.path().join("logo.txt");
    std::fs::write(&not_an_image, "not an image").unwrap();
    for (source, expected) in [
        (crate::config::WatermarkSource { file: Some(dir.path().join("missing.png")), blob: None }, "missing.png"),
        (crate::config::WatermarkSource { file: Some(not_an_image.clone()), blob: None }, "logo.txt"),
        (crate::config::WatermarkSource { file: None, blob: Some("watermarks/none.png".to_owned()) }, "no such blob"),
    ] {
        let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        config.watermarks.insert("logo".to_owned(), source);
        let error = format!("{:#}", AppState::build(config).await.err().unwrap());
        assert!(error.contains("watermark `logo`") && error.contains(expected), "{error}");
    }
}

#[tokio::test]
async fn a_panicking_render_answers_500_and_the_server_keeps_serving() {
    let app = app_with(|_| {}).await;
    let panicked =
        app.send(Request::post("/v1/render?w=8").body(Body::from(render::tests::PANIC_BODY.to_vec())).unwrap()).await;
    assert_eq!(panicked.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(header_of(&panicked, "content-type"), "application/problem+json");
    // The cause goes to the log (the pool's own test checks it), never to the client.
    let problem = json(panicked).await;
    assert_eq!(problem["code"], "internal");
    assert!(!problem["detail"].as_str().unwrap().contains("fault"), "{problem}");
    let metrics = app.get("/metrics").await;
    let text =
        String::from_utf8(axum::body::to_bytes(metrics.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    let panics: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("pixelmill_render_panics_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(panics >= 1.0, "pixelmill_render_panics_total is {panics}");
    // Every render thread is still there: as many renders as slots run and answer.
    for seed in 0..4 {
        let rendered =
            app.send(Request::post("/v1/render?w=8&fmt=png").body(Body::from(png(16, 16, seed))).unwrap()).await;
        assert_eq!(rendered.status(), StatusCode::OK);
    }
}
