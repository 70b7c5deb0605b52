//! The smoke test of a release, over HTTP against the environment's public URL:
//! `GET /readyz`, `POST /v1/images` (a small PNG made here, unique to the run),
//! `GET /v1/images/{id}/render?w=64&fmt=webp`, `DELETE /v1/images/{id}`.
//!
//! The requests are made with `curl` through `Context` like every other command: public URLs are HTTPS
//! behind the load balancer, and curl brings TLS, proxies and timeouts that a std-only client
//! would not, while staying one well-known command anyone can rerun from the printed line. The
//! API key (`PIXELMILL_API_KEY`) goes to curl in a header file, never on its command line.
//! Connection failures, 429 and 5xx are retried; any other unexpected status fails at once.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cmd::Cmd;
use crate::context::Context;

/// Runs the four requests against `base_url`, with the API key of `PIXELMILL_API_KEY`.
pub(crate) fn run(ctx: &Context, base_url: &str) -> Result<(), String> {
    run_with_key(ctx, base_url, ctx.var("PIXELMILL_API_KEY").as_deref())
}

/// Runs the four requests against `base_url`, writes with `api_key` when there is one.
pub(crate) fn run_with_key(ctx: &Context, base_url: &str, api_key: Option<&str>) -> Result<(), String> {
    let base = base_url.trim_end_matches('/');
    let scratch = ctx.scratch()?.to_path_buf();
    let png_path = scratch.join("smoke.png");
    let auth_path = scratch.join("auth-header");
    if !ctx.dry_run {
        std::fs::write(&png_path, unique_png()).map_err(|e| format!("cannot write {}: {e}", png_path.display()))?;
    }
    let auth = match api_key.filter(|key| !key.is_empty()) {
        Some(_) if ctx.dry_run => Some(auth_path.display().to_string()),
        Some(key) => Some(header_file(&auth_path, key)?),
        None => None,
    };
    let client = Client { ctx, body: scratch.join("body").display().to_string(), auth };

    client.expect("GET", &format!("{base}/readyz"), None, &[200])?;
    let upload = format!("{base}/v1/images");
    let (status, created) = client.expect("POST", &upload, Some(&png_path), &[200, 201])?;
    let id = if ctx.dry_run { "<id>".to_owned() } else { image_id(&created)? };
    let (_, rendered) = client.expect("GET", &format!("{base}/v1/images/{id}/render?w=64&fmt=webp"), None, &[200])?;
    if !ctx.dry_run && !is_webp(&rendered) {
        return Err(format!("GET /v1/images/{id}/render?w=64&fmt=webp answered 200 but not with a WebP image"));
    }
    if status == 200 && !ctx.dry_run {
        // 200: the same bytes were already stored by someone else; leave their image alone.
        ctx.say(&format!("the upload matched an existing image ({id}); not deleting it"));
        return Ok(());
    }
    client.expect("DELETE", &format!("{base}/v1/images/{id}"), None, &[200, 204])?;
    Ok(())
}

struct Client<'a> {
    ctx: &'a Context,
    /// Where curl writes the response body.
    body: String,
    /// A header file holding `Authorization: Bearer ...`.
    auth: Option<String>,
}

impl Client<'_> {
    /// Makes the request until it answers one of `expected`; returns the status and body.
    fn expect(
        &self,
        method: &str,
        url: &str,
        upload: Option<&Path>,
        expected: &[u16],
    ) -> Result<(u16, Vec<u8>), String> {
        let mut cmd = Cmd::new("curl").args(["--silent", "--show-error", "--max-time", "30"]);
        cmd = cmd.args(["--output", &self.body, "--write-out", "%{http_code}"]);
        if method != "GET" {
            cmd = cmd.args(["--request", method]);
        }
        if let Some(auth) = &self.auth {
            cmd = cmd.args(["--header", &format!("@{auth}")]);
        }
        if let Some(upload) = upload {
            // `Expect:` off: no 100-continue round trip before the body.
            cmd = cmd.args(["--header", "Content-Type: image/png", "--header", "Expect:"]);
            cmd = cmd.args(["--data-binary", &format!("@{}", upload.display())]);
        }
        let cmd = cmd.arg(url);
        let what = format!("{method} {}", path_of(url));
        let mut last = String::new();
        for attempt in 1..=self.ctx.smoke_attempts.max(1) {
            if attempt > 1 {
                self.ctx.pause(self.ctx.smoke_retry_delay);
            }
            let _ = std::fs::remove_file(&self.body);
            let code = match self.ctx.output(&cmd, &expected[0].to_string()) {
                Ok(code) => code,
                Err(error) => {
                    last = error;
                    continue;
                }
            };
            if self.ctx.dry_run {
                return Ok((expected[0], Vec::new()));
            }
            let status: u16 = code.parse().unwrap_or(0);
            let body = std::fs::read(&self.body).unwrap_or_default();
            if expected.contains(&status) {
                return Ok((status, body));
            }
            last = format!("answered {status}: {}", snippet(&body));
            let retry = status == 0 || status == 429 || status >= 500;
            if !retry {
                return Err(format!("{what} {last}"));
            }
        }
        Err(format!("{what}: no success after {} attempts; last: {last}", self.ctx.smoke_attempts.max(1)))
    }
}

fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map_or("/", |index| &after_scheme[index..])
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 200 {
        format!("{}...", text.chars().take(200).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// Writes `Authorization: Bearer <key>` to a file only this user can read.
pub(crate) fn header_file(path: &Path, key: &str) -> Result<String, String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| writeln!(file, "Authorization: Bearer {key}"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

fn image_id(created: &[u8]) -> Result<String, String> {
    let json: serde_json::Value = serde_json::from_slice(created)
        .map_err(|e| format!("POST /v1/images answered no JSON ({e}): {}", snippet(created)))?;
    json["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("POST /v1/images answered no `id`: {}", snippet(created)))
}

fn is_webp(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
}

/// A 96x64 RGB gradient whose colours depend on the time, process and call, so every run uploads
/// new bytes (the service answers 200, not 201, for bytes it already has).
pub(crate) fn unique_png() -> Vec<u8> {
    static UPLOADS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let count = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ count.rotate_right(7);
    let (width, height) = (96u32, 64u32);
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let [r, g, b, ..] = (seed.rotate_left(x + y)).to_le_bytes();
            pixels.extend_from_slice(&[r ^ (x * 2) as u8, g ^ (y * 4) as u8, b]);
        }
    }
    png_rgb(width, height, &pixels)
}

/// Encodes 8-bit RGB pixels as a PNG with stored (uncompressed) deflate blocks.
pub(crate) fn png_rgb(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let row = width as usize * 3;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in pixels.chunks(row) {
        raw.push(0); // filter: none
        raw.extend_from_slice(line);
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (index, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(index + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter set, no interlace

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &header[..]), (b"IDAT", &zlib[..]), (b"IEND", &[][..])] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_their_published_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn png_has_a_valid_structure() {
        let png = png_rgb(2, 2, &[255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let body = &png[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8_lossy(&body[..4]).into_owned());
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_ne!(unique_png(), unique_png(), "two uploads must not share bytes");
    }

    #[test]
    fn paths_for_messages() {
        assert_eq!(path_of("https://images.pixelmill.dev/v1/images/x/render?w=64"), "/v1/images/x/render?w=64");
        assert_eq!(path_of("http://127.0.0.1:8080"), "/");
    }
}
