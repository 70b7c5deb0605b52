//! What the requests are: a plain URL, or Pixelmill's own scenarios.
//!
//! Pixelmill's scenarios need an image on the server. Before the run, [`Workload::seed`]
//! uploads one (unique to the run, so its variants are not cached yet), renders the render-hit
//! variant once so it is cached, and after the run [`Workload::clean_up`] deletes every image
//! the run made. Request `k` of the run always maps to the same scenario and the same request:
//! the mix is a fixed weighted rotation, not a random draw, so two runs send the same thing.
//!
//! - render-hit: one variant, again and again (the cache).
//! - render-miss: a spec never asked before (width and quality from `k`), so a render each time.
//! - upload: an image from the set, made unique by bytes appended after its end (every format
//!   Pixelmill reads ignores them), so every upload stores a new image.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use sha2::Sha256;

use crate::client::{Answer, Connection, Endpoint};

/// Pixelmill's scenarios, in the order their tallies are kept.
pub(crate) const SCENARIOS: [&str; 3] = ["render-hit", "render-miss", "upload"];
const RENDER_HIT: usize = 0;
const RENDER_MISS: usize = 1;
const UPLOAD: usize = 2;

/// A request to send, and the scenario it counts under.
pub(crate) struct Planned {
    pub(crate) scenario: usize,
    pub(crate) request: Request<Full<Bytes>>,
    /// Uploads keep their answer to learn the new image's id.
    pub(crate) keep_body: bool,
}

pub(crate) struct UrlTarget {
    pub(crate) method: Method,
    pub(crate) path_and_query: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
}

pub(crate) struct PixelmillTarget {
    /// Weights of render-hit, render-miss and upload.
    pub(crate) weights: [u32; 3],
    pub(crate) api_key: Option<String>,
    pub(crate) signing_key: Option<String>,
    /// The render-hit spec, a query string.
    pub(crate) hit_spec: String,
    /// Images to upload (at least one).
    pub(crate) images: Vec<Bytes>,
}

pub(crate) enum Workload {
    Url(UrlTarget),
    Pixelmill(Pixelmill),
}

/// A Pixelmill target once seeded.
pub(crate) struct Pixelmill {
    target: PixelmillTarget,
    base_path: String,
    /// Scenario index for each slot of one turn of the rotation.
    rotation: Vec<usize>,
    /// Makes this run's uploads unique.
    run_id: u64,
    seeded: Option<String>,
    hit_path: String,
    created: Mutex<Vec<String>>,
}

impl Workload {
    pub(crate) fn scenario_names(&self) -> Vec<&'static str> {
        match self {
            Workload::Url(_) => vec!["url"],
            Workload::Pixelmill(_) => SCENARIOS.to_vec(),
        }
    }

    /// Request `k` of the run.
    pub(crate) fn request(&self, k: u64) -> Planned {
        match self {
            Workload::Url(url) => {
                let mut request = Request::builder().method(url.method.clone()).uri(&url.path_and_query);
                for (name, value) in &url.headers {
                    request = request.header(name, value);
                }
                let request = request.body(Full::new(url.body.clone())).expect("validated request parts");
                Planned { scenario: 0, request, keep_body: false }
            }
            Workload::Pixelmill(pixelmill) => pixelmill.request(k),
        }
    }

    /// Learns what a finished request created, for the clean-up.
    pub(crate) fn observe(&self, scenario: usize, answer: &Answer) {
        if let (Workload::Pixelmill(pixelmill), UPLOAD) = (self, scenario)
            && let Some(id) = answer.body.as_deref().and_then(image_id)
        {
            pixelmill.created.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(id);
        }
    }

    /// Prepares the server for a Pixelmill workload: waits until it is ready, uploads the seed
    /// image and caches the render-hit variant.
    pub(crate) async fn seed(
        target: PixelmillTarget,
        endpoint: &Endpoint,
        wait_ready: Duration,
        timeout: Duration,
    ) -> Result<Workload, String> {
        let mut connection = Connection::new(endpoint.clone());
        wait_until_ready(&mut connection, &endpoint.base_path, wait_ready, timeout).await?;
        let run_id = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default();
        let rotation = rotation(&target.weights);
        let mut pixelmill = Pixelmill {
            base_path: endpoint.base_path.clone(),
            rotation,
            run_id,
            seeded: None,
            hit_path: String::new(),
            created: Mutex::new(Vec::new()),
            target,
        };
        let weights = pixelmill.target.weights;
        let seeds = weights[RENDER_HIT] + weights[RENDER_MISS] > 0;
        if seeds || weights[UPLOAD] > 0 {
            // An empty upload first: a server that refuses the key says so before reading any
            // body, and a large image sent all the same would meet a reset connection instead.
            let probe = pixelmill.write_request(Method::POST, "/v1/images", Bytes::new());
            let answer = connection
                .send(probe, timeout, true)
                .await
                .map_err(|failure| format!("asking the server for uploads failed: {}", failure.kind()))?;
            if matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                return Err(format!(
                    "the server refuses uploads ({}): pass an API key with --api-key or PIXELMILL_LOAD_API_KEY{}",
                    answer.status,
                    problem_detail(&answer)
                ));
            }
        }
        if seeds {
            let answer = connection
                .send(pixelmill.upload_request(u64::MAX), timeout, true)
                .await
                .map_err(|failure| format!("uploading the seed image failed: {}", failure.kind()))?;
            let id = match answer.status {
                StatusCode::OK | StatusCode::CREATED => answer.body.as_deref().and_then(image_id),
                status => return Err(format!("uploading the seed image answered {status}{}", problem_detail(&answer))),
            };
            let id = id.ok_or("the seed upload's answer has no image id")?;
            pixelmill.created.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(id.clone());
            pixelmill.hit_path = pixelmill.render_path(&id, &pixelmill.target.hit_spec);
            pixelmill.seeded = Some(id);
            let warm = Request::get(&pixelmill.hit_path).body(Full::default()).expect("a valid request");
            let answer = connection
                .send(warm, timeout, true)
                .await
                .map_err(|failure| format!("rendering the render-hit variant failed: {}", failure.kind()))?;
            if !answer.status.is_success() {
                return Err(format!(
                    "rendering the render-hit variant ({}) answered {}{}",
                    pixelmill.hit_path,
                    answer.status,
                    problem_detail(&answer)
                ));
            }
        }
        Ok(Workload::Pixelmill(pixelmill))
    }

    /// Deletes every image the run uploaded; returns how many were deleted.
    pub(crate) async fn clean_up(&self, endpoint: &Endpoint, timeout: Duration) -> Result<usize, String> {
        let Workload::Pixelmill(pixelmill) = self else {
            return Ok(0);
        };
        let ids = std::mem::take(&mut *pixelmill.created.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let mut connection = Connection::new(endpoint.clone());
        let deadline = Instant::now() + timeout.max(Duration::from_secs(30)) * 4;
        for id in &ids {
            loop {
                let request = pixelmill.write_request(Method::DELETE, &format!("/v1/images/{id}"), Bytes::new());
                let answer = connection
                    .send(request, timeout, true)
                    .await
                    .map_err(|failure| format!("deleting image {id} failed: {}", failure.kind()))?;
                // Writes are rate limited: wait as told and try again, within reason.
                if answer.status == StatusCode::TOO_MANY_REQUESTS && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                if !(answer.status.is_success() || answer.status == StatusCode::NOT_FOUND) {
                    return Err(format!("deleting image {id} answered {}{}", answer.status, problem_detail(&answer)));
                }
                break;
            }
        }
        Ok(ids.len())
    }
}

impl Pixelmill {
    fn request(&self, k: u64) -> Planned {
        let scenario = self.rotation[(k % self.rotation.len() as u64) as usize];
        let request = match scenario {
            RENDER_HIT => Request::get(&self.hit_path).body(Full::default()),
            RENDER_MISS => {
                let id = self.seeded.as_deref().expect("render scenarios are seeded");
                // 1937 widths times 100 qualities: 193,700 specs before one repeats.
                let spec = format!("w={}&q={}&fmt=jpeg", 64 + k % 1937, 1 + (k / 1937) % 100);
                Request::get(self.render_path(id, &spec)).body(Full::default())
            }
            _ => return Planned { scenario, request: self.upload_request(k), keep_body: true },
        };
        Planned { scenario, request: request.expect("a valid request"), keep_body: false }
    }

    fn upload_request(&self, k: u64) -> Request<Full<Bytes>> {
        let images = &self.target.images;
        let image = &images[(k % images.len() as u64) as usize];
        let mut body = Vec::with_capacity(image.len() + 24);
        body.extend_from_slice(image);
        body.extend_from_slice(b"pixelmill-load");
        body.extend_from_slice(&self.run_id.to_le_bytes());
        body.extend_from_slice(&k.to_le_bytes());
        self.write_request(Method::POST, "/v1/images", Bytes::from(body))
    }

    /// A request that writes, with the API key when there is one.
    fn write_request(&self, method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_path))
            .header(CONTENT_TYPE, "application/octet-stream");
        if let Some(key) = &self.target.api_key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        request.body(Full::new(body)).expect("a valid request")
    }

    /// The render URL of `spec`, signed when a signing key is set. The signature is the
    /// server's: HMAC-SHA256 over the path, `?`, and the query's pairs sorted.
    fn render_path(&self, id: &str, spec: &str) -> String {
        let path = format!("{}/v1/images/{id}/render", self.base_path);
        match &self.target.signing_key {
            None => format!("{path}?{spec}"),
            Some(key) => {
                let signed = format!("/v1/images/{id}/render");
                format!("{path}?{spec}&sig={}", sign(key.as_bytes(), &signed, spec))
            }
        }
    }
}

/// The client side of the server's rule for signed renders (`pixelmill::http::auth::sign`): an
/// HMAC-SHA256 of `path?` and the sorted pairs. A client computes it, so the load generator does
/// too rather than build the service crate; `pixelmill_load_drives_every_scenario_and_cleans_up`
/// (tests/tests/http.rs) runs it against a server that refuses unsigned renders.
pub(crate) fn sign(key: &[u8], path: &str, query: &str) -> String {
    let mut pairs: Vec<&str> = query.split('&').filter(|pair| !pair.is_empty()).collect();
    pairs.sort_unstable();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{path}?{}", pairs.join("&")).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// One turn of the weighted rotation: each scenario as many times as its weight, interleaved
/// (smooth weighted round robin), so short runs see the mix too.
fn rotation(weights: &[u32; 3]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = [0i64; 3];
    (0..total)
        .map(|_| {
            for (slot, &weight) in current.iter_mut().zip(weights) {
                *slot += i64::from(weight);
            }
            let pick = (0..3).max_by_key(|&i| (current[i], std::cmp::Reverse(i))).expect("three scenarios");
            current[pick] -= total;
            pick
        })
        .collect()
}

/// Parses `render-hit=80,render-miss=15,upload=5` (scenarios left out weigh 0).
pub(crate) fn parse_mix(text: &str) -> Result<[u32; 3], String> {
    let mut weights = [0u32; 3];
    for part in text.split(',').filter(|part| !part.trim().is_empty()) {
        let (name, weight) = part.split_once('=').ok_or_else(|| format!("`{part}` is not SCENARIO=WEIGHT"))?;
        let index = SCENARIOS
            .iter()
            .position(|scenario| *scenario == name.trim())
            .ok_or_else(|| format!("unknown scenario `{name}` in the mix (known: {})", SCENARIOS.join(", ")))?;
        weights[index] = weight.trim().parse().map_err(|_| format!("`{weight}` is not a whole-number weight"))?;
    }
    if weights.iter().sum::<u32>() == 0 {
        return Err("the mix gives every scenario a weight of 0".to_owned());
    }
    if weights.iter().sum::<u32>() > 10_000 {
        return Err("the mix's weights add up to more than 10000".to_owned());
    }
    Ok(weights)
}

/// The weights of a named scenario.
pub(crate) fn scenario_weights(name: &str, mix: &str) -> Result<[u32; 3], String> {
    match name {
        "mixed" => parse_mix(mix),
        name => match SCENARIOS.iter().position(|scenario| *scenario == name) {
            Some(index) => {
                let mut weights = [0; 3];
                weights[index] = 1;
                Ok(weights)
            }
            None => Err(format!("unknown scenario `{name}` (known: {}, mixed)", SCENARIOS.join(", "))),
        },
    }
}

/// The images to upload: every file in `dir`, or one generated photo-like JPEG.
pub(crate) fn load_images(dir: Option<&Path>) -> Result<Vec<Bytes>, String> {
    let Some(dir) = dir else {
        return Ok(vec![Bytes::from(generated_jpeg(1600, 1000))]);
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("{} holds no files", dir.display()));
    }
    paths
        .iter()
        .map(|path| {
            std::fs::read(path).map(Bytes::from).map_err(|error| format!("cannot read {}: {error}", path.display()))
        })
        .collect()
}

/// A smooth colourful pattern with fine detail, as a JPEG.
fn generated_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let detail = ((x * 7 + y * 13) % 31) as f32;
        image::Rgb([
            (110.0 + 100.0 * (fx * 6.3).sin() + detail) as u8,
            (110.0 + 100.0 * (fy * 4.1 + fx).cos() + detail) as u8,
            (220.0 * fx * fy + detail) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).expect("encoding a generated image in memory");
    out.into_inner()
}

async fn wait_until_ready(
    connection: &mut Connection,
    base_path: &str,
    wait: Duration,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    loop {
        let request = Request::get(format!("{base_path}/readyz")).body(Full::default()).expect("a valid request");
        let last = match connection.send(request, timeout, false).await {
            Ok(answer) if answer.status.is_success() => return Ok(()),
            Ok(answer) => format!("it answers {}", answer.status),
            Err(failure) => format!("{} error", failure.kind()),
        };
        if Instant::now() >= deadline {
            return Err(format!("the server was not ready within {wait:?} ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn image_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}

fn problem_detail(answer: &Answer) -> String {
    let detail = answer
        .body
        .as_deref()
        .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
        .and_then(|problem| problem.get("detail").and_then(|detail| detail.as_str()).map(str::to_owned));
    detail.map(|detail| format!(": {detail}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_holds_each_weight_and_interleaves() {
        let turn = rotation(&[80, 15, 5]);
        assert_eq!(turn.len(), 100);
        for (scenario, weight) in [(0, 80), (1, 15), (2, 5)] {
            assert_eq!(turn.iter().filter(|&&s| s == scenario).count(), weight);
        }
        // The rare scenario is spread out, not bunched at the end.
        let uploads: Vec<usize> = turn.iter().enumerate().filter(|(_, s)| **s == 2).map(|(i, _)| i).collect();
        assert!(uploads.windows(2).all(|pair| pair[1] - pair[0] >= 10), "{uploads:?}");
        assert_eq!(rotation(&[0, 1, 0]), vec![1]);
    }

    #[test]
    fn mixes_parse_and_refuse_nonsense() {
        assert_eq!(parse_mix("render-hit=80,render-miss=15,upload=5").unwrap(), [80, 15, 5]);
        assert_eq!(parse_mix("upload=1").unwrap(), [0, 0, 1]);
        assert!(parse_mix("render-hit=0").is_err());
        assert!(parse_mix("thumbs=3").is_err());
        assert!(parse_mix("upload").is_err());
        assert_eq!(scenario_weights("render-miss", "").unwrap(), [0, 1, 0]);
        assert!(scenario_weights("browse", "").is_err());
    }

    #[test]
    fn signatures_match_the_servers_rule() {
        // Pairs in any order sign the same; a different key or spec does not.
        let a = sign(b"key", "/v1/images/x/render", "w=10&fmt=jpeg");
        assert_eq!(a, sign(b"key", "/v1/images/x/render", "fmt=jpeg&w=10"));
        assert_ne!(a, sign(b"other", "/v1/images/x/render", "w=10&fmt=jpeg"));
        assert_ne!(a, sign(b"key", "/v1/images/x/render", "w=11&fmt=jpeg"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn uploads_differ_per_request_and_render_misses_never_repeat_early() {
        let pixelmill = Pixelmill {
            target: PixelmillTarget {
                weights: [0, 1, 0],
                api_key: Some("pmk_x".into()),
                signing_key: None,
                hit_spec: "w=100".into(),
                images: vec![Bytes::from_static(b"\xff\xd8image\xff\xd9")],
            },
            base_path: "/base".into(),
            rotation: vec![1],
            run_id: 7,
            seeded: Some("id".into()),
            hit_path: String::new(),
            created: Mutex::new(Vec::new()),
        };
        let a = pixelmill.upload_request(1);
        assert_eq!(a.uri(), "/base/v1/images");
        assert_eq!(a.headers()[AUTHORIZATION], "Bearer pmk_x");
        let body = |request: Request<Full<Bytes>>| format!("{:?}", request.into_body());
        assert_ne!(body(pixelmill.upload_request(1)), body(pixelmill.upload_request(2)));
        let paths: std::collections::HashSet<String> =
            (0..5000).map(|k| pixelmill.request(k).request.uri().to_string()).collect();
        assert_eq!(paths.len(), 5000);
    }
}
