//! One typed configuration tree. Values come from, in increasing precedence: the defaults in
//! this file, an optional TOML file (`--config FILE` or `PIXELMILL_CONFIG`), and `PIXELMILL_*`
//! environment variables (plus `DATABASE_URL`). `pixelmill.sample.toml` documents every key with
//! its variable and default; a test keeps the two in step.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::engine::spec::{WatermarkInfo, is_watermark_name};
use crate::engine::{Limits, Presets, SpecError};

/// The values of `log_format` (the chart's schema is tested against this list).
pub const LOG_FORMATS: &[&str] = &["json", "text"];

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. `PIXELMILL_LISTEN`.
    pub listen: SocketAddr,
    /// Where the embedded default keeps its SQLite file and blobs. `PIXELMILL_DATA_DIR`.
    pub data_dir: PathBuf,
    /// Catalog: `postgres://...` or `sqlite://PATH`; empty means SQLite in `data_dir`. `DATABASE_URL`.
    pub database_url: String,
    /// Blob store: `s3://bucket/prefix` or `file://PATH`; empty means `data_dir/blobs`. `PIXELMILL_STORAGE`.
    pub storage: String,
    /// Endpoint of an S3-compatible server (path-style addressing when set). `PIXELMILL_S3_ENDPOINT`.
    pub s3_endpoint: String,
    /// Seconds an S3 operation (retries included) may take before the request answers 503.
    /// `PIXELMILL_STORE_TIMEOUT_SECONDS`.
    pub store_timeout_seconds: u64,
    /// Run migrations at start. `PIXELMILL_MIGRATE_ON_START`.
    pub migrate_on_start: bool,
    /// Require an API key for writes. Off is allowed only on a loopback listener. `PIXELMILL_AUTH`.
    pub auth: bool,
    /// HMAC-SHA256 key for signed render URLs; empty means no signatures. `PIXELMILL_SIGNING_KEY`.
    pub signing_key: String,
    /// Only `preset=` specs are accepted on render routes. `PIXELMILL_PRESETS_ONLY`.
    pub presets_only: bool,
    /// Named specs: `[presets] thumb = "w=200&h=200&fit=cover"`. `PIXELMILL_PRESETS` as `name=spec;name=spec`.
    pub presets: BTreeMap<String, String>,
    /// Named watermarks for `wm=NAME`: `[watermarks.logo] file = "/etc/pixelmill/logo.png"` or
    /// `blob = "watermarks/logo.png"` (a key in the blob store). Each is loaded and decoded at
    /// start; one that cannot be is a start-up error. `PIXELMILL_WATERMARKS` as
    /// `name=file:PATH;name=blob:KEY`.
    pub watermarks: BTreeMap<String, WatermarkSource>,
    pub limits: LimitsConfig,
    /// Log format: `json` or `text`. `PIXELMILL_LOG_FORMAT`.
    pub log_format: String,
    /// Seconds to drain in-flight requests after SIGTERM. `PIXELMILL_SHUTDOWN_DRAIN_SECONDS`.
    pub shutdown_drain_seconds: u64,
    /// Seconds after SIGTERM (within the drain) during which the server still answers on its
    /// open connections, each response saying `Connection: close`, before it closes the idle
    /// ones. `PIXELMILL_SHUTDOWN_CLOSE_SECONDS`.
    pub shutdown_close_seconds: u64,
    /// Bytes of hot variants (and their image rows) kept in memory; 0 turns it off.
    /// `PIXELMILL_MEMORY_CACHE_BYTES`.
    pub memory_cache_bytes: u64,
    /// Seconds an entry of the memory cache is trusted; a delete on another replica is seen after
    /// at most this long. `PIXELMILL_MEMORY_CACHE_TTL_SECONDS`.
    pub memory_cache_ttl_seconds: u64,
    /// Variants stored for one image; past it the least recently served are evicted. 0: no
    /// quota. `PIXELMILL_MAX_VARIANTS_PER_IMAGE`.
    pub max_variants_per_image: u64,
}

/// Where a watermark's image is: exactly one of a file and a blob store key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkSource {
    pub file: Option<PathBuf>,
    pub blob: Option<String>,
}

impl std::fmt::Display for WatermarkSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, &self.blob) {
            (Some(path), _) => write!(f, "file {}", path.display()),
            (None, Some(key)) => write!(f, "blob {key}"),
            (None, None) => f.write_str("nowhere"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest upload or render body in bytes. `PIXELMILL_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// Largest source image in pixels. `PIXELMILL_MAX_INPUT_PIXELS`.
    pub max_input_pixels: u64,
    /// Largest output image in pixels. `PIXELMILL_MAX_OUTPUT_PIXELS`.
    pub max_output_pixels: u64,
    /// The most bytes one render may hold at once, decoders' and encoders' memory included; a
    /// render planned over it is refused with 422 before any pixel is decoded.
    /// `PIXELMILL_MAX_RENDER_BYTES`.
    pub max_render_bytes: u64,
    /// The most scans a JPEG may have (a progressive file of many scans costs a pass over the
    /// image for each). `PIXELMILL_MAX_JPEG_SCANS`.
    pub max_jpeg_scans: u32,
    /// The most frames an animated GIF or WebP may have, counted before decoding.
    /// `PIXELMILL_MAX_ANIMATION_FRAMES`.
    pub max_animation_frames: u32,
    /// The most pixels an animated render may decode, frames times the canvas.
    /// `PIXELMILL_MAX_ANIMATION_PIXELS`.
    pub max_animation_pixels: u64,
    /// Renders running at once (0 = one per core). `PIXELMILL_MAX_RENDERS_IN_FLIGHT`.
    pub max_renders_in_flight: usize,
    /// Renders allowed to wait for a slot before the service answers 503. `PIXELMILL_RENDER_QUEUE`.
    pub render_queue: usize,
    /// Seconds a render may take before the request answers 504. `PIXELMILL_RENDER_TIMEOUT_SECONDS`.
    pub render_timeout_seconds: u64,
    /// Writes (uploads, deletes, stateless renders) per second per API key, or per client address
    /// when auth is off; past it 429. 0 turns the limit off. `PIXELMILL_WRITES_PER_SECOND`.
    pub writes_per_second: f64,
    /// Writes a client may make at once before the rate applies. `PIXELMILL_WRITE_BURST`.
    pub write_burst: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("pixelmill-data"),
            database_url: String::new(),
            storage: String::new(),
            s3_endpoint: String::new(),
            store_timeout_seconds: 20,
            migrate_on_start: true,
            auth: false,
            signing_key: String::new(),
            presets_only: false,
            presets: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            limits: LimitsConfig::default(),
            log_format: "json".to_owned(),
            shutdown_drain_seconds: 25,
            shutdown_close_seconds: 5,
            memory_cache_bytes: 64 * 1024 * 1024,
            memory_cache_ttl_seconds: 60,
            max_variants_per_image: 200,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        let engine = Limits::default();
        LimitsConfig {
            max_body_bytes: 25 * 1024 * 1024,
            max_input_pixels: engine.max_input_pixels,
            max_output_pixels: engine.max_output_pixels,
            max_render_bytes: engine.max_render_bytes,
            max_jpeg_scans: engine.max_jpeg_scans,
            max_animation_frames: engine.max_animation_frames,
            max_animation_pixels: engine.max_animation_pixels,
            max_renders_in_flight: 0,
            render_queue: 32,
            render_timeout_seconds: 30,
            writes_per_second: 20.0,
            write_burst: 40,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("environment variable {name}={value:?}: {message}")]
    Env { name: String, value: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Preset(#[from] SpecError),
}

impl Config {
    /// Defaults, then `file` if given, then the environment `env` (a map so tests need not touch
    /// the process environment).
    pub fn load(file: Option<&std::path::Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                toml::from_str(&text)
                    .map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.to_owned(),
                value: value.to_owned(),
                message: e.to_string(),
            })
        }
        for (name, value) in env {
            match name.as_str() {
                "PIXELMILL_LISTEN" => self.listen = parse(name, value)?,
                "PIXELMILL_DATA_DIR" => self.data_dir = PathBuf::from(value),
                "DATABASE_URL" | "PIXELMILL_DATABASE_URL" => self.database_url = value.clone(),
                "PIXELMILL_STORAGE" => self.storage = value.clone(),
                "PIXELMILL_S3_ENDPOINT" => self.s3_endpoint = value.clone(),
                "PIXELMILL_STORE_TIMEOUT_SECONDS" => self.store_timeout_seconds = parse(name, value)?,
                "PIXELMILL_MIGRATE_ON_START" => self.migrate_on_start = parse(name, value)?,
                "PIXELMILL_AUTH" => self.auth = parse(name, value)?,
                "PIXELMILL_SIGNING_KEY" => self.signing_key = value.clone(),
                "PIXELMILL_PRESETS_ONLY" => self.presets_only = parse(name, value)?,
                "PIXELMILL_PRESETS" => {
                    for entry in value.split(';').filter(|e| !e.trim().is_empty()) {
                        let (preset, spec) = entry.split_once('=').ok_or_else(|| ConfigError::Env {
                            name: name.clone(),
                            value: value.clone(),
                            message: "expected name=spec;name=spec".to_owned(),
                        })?;
                        self.presets.insert(preset.trim().to_owned(), spec.trim().to_owned());
                    }
                }
                "PIXELMILL_WATERMARKS" => {
                    for entry in value.split(';').filter(|e| !e.trim().is_empty()) {
                        let bad = || ConfigError::Env {
                            name: name.clone(),
                            value: value.clone(),
                            message: "expected name=file:PATH;name=blob:KEY".to_owned(),
                        };
                        let (watermark, source) = entry.split_once('=').ok_or_else(bad)?;
                        let source = match source.trim().split_once(':') {
                            Some(("file", path)) => WatermarkSource { file: Some(PathBuf::from(path)), blob: None },
                            Some(("blob", key)) => WatermarkSource { file: None, blob: Some(key.to_owned()) },
                            _ => return Err(bad()),
                        };
                        self.watermarks.insert(watermark.trim().to_owned(), source);
                    }
                }
                "PIXELMILL_LOG_FORMAT" => self.log_format = value.clone(),
                "PIXELMILL_SHUTDOWN_DRAIN_SECONDS" => self.shutdown_drain_seconds = parse(name, value)?,
                "PIXELMILL_SHUTDOWN_CLOSE_SECONDS" => self.shutdown_close_seconds = parse(name, value)?,
                "PIXELMILL_MEMORY_CACHE_BYTES" => self.memory_cache_bytes = parse(name, value)?,
                "PIXELMILL_MEMORY_CACHE_TTL_SECONDS" => self.memory_cache_ttl_seconds = parse(name, value)?,
                "PIXELMILL_MAX_VARIANTS_PER_IMAGE" => self.max_variants_per_image = parse(name, value)?,
                "PIXELMILL_MAX_BODY_BYTES" => self.limits.max_body_bytes = parse(name, value)?,
                "PIXELMILL_MAX_INPUT_PIXELS" => self.limits.max_input_pixels = parse(name, value)?,
                "PIXELMILL_MAX_OUTPUT_PIXELS" => self.limits.max_output_pixels = parse(name, value)?,
                "PIXELMILL_MAX_RENDER_BYTES" => self.limits.max_render_bytes = parse(name, value)?,
                "PIXELMILL_MAX_JPEG_SCANS" => self.limits.max_jpeg_scans = parse(name, value)?,
                "PIXELMILL_MAX_ANIMATION_FRAMES" => self.limits.max_animation_frames = parse(name, value)?,
                "PIXELMILL_MAX_ANIMATION_PIXELS" => self.limits.max_animation_pixels = parse(name, value)?,
                "PIXELMILL_MAX_RENDERS_IN_FLIGHT" => self.limits.max_renders_in_flight = parse(name, value)?,
                "PIXELMILL_RENDER_QUEUE" => self.limits.render_queue = parse(name, value)?,
                "PIXELMILL_RENDER_TIMEOUT_SECONDS" => self.limits.render_timeout_seconds = parse(name, value)?,
                "PIXELMILL_WRITES_PER_SECOND" => self.limits.writes_per_second = parse(name, value)?,
                "PIXELMILL_WRITE_BURST" => self.limits.write_burst = parse(name, value)?,
                other
                    if other.starts_with("PIXELMILL_")
                        && !KNOWN_ELSEWHERE.contains(&other)
                        && !is_service_link(other) =>
                {
                    return Err(ConfigError::Env {
                        name: other.to_owned(),
                        value: value.clone(),
                        message: "unknown setting (see pixelmill.sample.toml)".to_owned(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.auth && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "auth is off but the listener {} is not loopback; set PIXELMILL_AUTH=true (API keys are required off loopback)",
                self.listen
            )));
        }
        if !LOG_FORMATS.contains(&self.log_format.as_str()) {
            return Err(ConfigError::Invalid(format!("log_format must be json or text, got {:?}", self.log_format)));
        }
        if self.limits.max_body_bytes == 0
            || self.limits.max_input_pixels == 0
            || self.limits.max_output_pixels == 0
            || self.limits.max_render_bytes == 0
            || self.limits.max_jpeg_scans == 0
            || self.limits.max_animation_frames == 0
            || self.limits.max_animation_pixels == 0
        {
            return Err(ConfigError::Invalid("limits must be greater than zero".to_owned()));
        }
        if !self.limits.writes_per_second.is_finite() || self.limits.writes_per_second < 0.0 {
            return Err(ConfigError::Invalid("writes_per_second must be 0 (off) or positive".to_owned()));
        }
        if self.store_timeout_seconds == 0 {
            return Err(ConfigError::Invalid("store_timeout_seconds must be greater than zero".to_owned()));
        }
        if self.limits.render_timeout_seconds == 0 {
            return Err(ConfigError::Invalid("render_timeout_seconds must be greater than zero".to_owned()));
        }
        for (name, source) in &self.watermarks {
            if !is_watermark_name(name) {
                return Err(ConfigError::Invalid(format!(
                    "watermark name {name:?} must be 1 to 64 letters, digits, `-` or `_`"
                )));
            }
            match (&source.file, &source.blob) {
                (Some(_), None) => {}
                (None, Some(key)) => {
                    crate::store::BlobKey::parse(key)
                        .map_err(|e| ConfigError::Invalid(format!("watermark `{name}`: blob key {key:?}: {e}")))?;
                    // `gc` removes what it finds there unreferenced by the catalog.
                    if key.starts_with("originals/") || key.starts_with("variants/") {
                        return Err(ConfigError::Invalid(format!(
                            "watermark `{name}`: blob key {key:?} is under the service's own prefixes \
                             (originals/, variants/), which gc sweeps; use another, such as watermarks/"
                        )));
                    }
                }
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "watermark `{name}` needs exactly one of `file` and `blob`"
                    )));
                }
            }
        }
        // The watermarks' pixels are loaded when the service starts; their names are enough to
        // check that every preset's `wm=` names one.
        let declared = self
            .watermarks
            .keys()
            .map(|name| (name.clone(), WatermarkInfo { digest: String::new(), width: 1, height: 1 }));
        self.presets(declared.collect())?;
        Ok(())
    }

    /// The presets, with the watermarks (as loaded) that specs may name.
    pub fn presets(&self, watermarks: BTreeMap<String, WatermarkInfo>) -> Result<Presets, SpecError> {
        Presets::with_watermarks(self.presets.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), watermarks)
    }

    pub fn engine_limits(&self) -> Limits {
        Limits {
            max_input_pixels: self.limits.max_input_pixels,
            max_output_pixels: self.limits.max_output_pixels,
            max_render_bytes: self.limits.max_render_bytes,
            max_jpeg_scans: self.limits.max_jpeg_scans,
            max_animation_frames: self.limits.max_animation_frames,
            max_animation_pixels: self.limits.max_animation_pixels,
        }
    }

    pub fn store_timeout(&self) -> Duration {
        Duration::from_secs(self.store_timeout_seconds)
    }

    pub fn render_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.render_timeout_seconds)
    }
}

/// Whether `name` is one of the variables Kubernetes gives a pod for each Service of its
/// namespace (unless the pod spec turns `enableServiceLinks` off): for a Service `pixelmill`,
/// `PIXELMILL_SERVICE_HOST`, `PIXELMILL_SERVICE_PORT[_<port name>]`, `PIXELMILL_PORT` and
/// `PIXELMILL_PORT_<port>_<protocol>[_PROTO|_PORT|_ADDR]`. A pod must start beside a Service named
/// like it, so these are not settings and not typos.
fn is_service_link(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST") || name.contains("_SERVICE_PORT") || name.ends_with("_PORT") {
        return true;
    }
    // ..._PORT_80_TCP, ..._PORT_80_TCP_ADDR
    let parts: Vec<&str> = name.split('_').collect();
    parts.windows(3).any(|w| {
        w[0] == "PORT"
            && !w[1].is_empty()
            && w[1].bytes().all(|b| b.is_ascii_digit())
            && matches!(w[2], "TCP" | "UDP" | "SCTP")
    })
}

/// `PIXELMILL_*` variables read by other parts of the program (the CLI), not by this tree.
const KNOWN_ELSEWHERE: &[&str] = &["PIXELMILL_CONFIG", "PIXELMILL_THREADS"];

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_are_the_embedded_loopback_service() {
        let config = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(!config.auth && config.database_url.is_empty() && config.storage.is_empty());
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pixelmill.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[limits]\nrender_queue = 5\n[presets]\nthumb = \"w=100\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), &env(&[("PIXELMILL_RENDER_QUEUE", "7")])).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.render_queue, 7);
        assert_eq!(config.presets.get("thumb").map(String::as_str), Some("w=100"));
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        let err = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs)).unwrap_err().to_string();
        assert!(err(&[("PIXELMILL_LISTEN", "nowhere")]).contains("PIXELMILL_LISTEN"));
        assert!(err(&[("PIXELMILL_LISTEN", "0.0.0.0:8080")]).contains("not loopback"));
        assert!(err(&[("PIXELMILL_MAX_BODY_BYTES", "0")]).contains("greater than zero"));
        assert!(err(&[("PIXELMILL_PRESETS", "bad=w=0")]).contains("preset"));
        assert!(err(&[("PIXELMILL_TYPO", "1")]).contains("unknown setting"));
        assert!(err(&[("PIXELMILL_PORTS", "1")]).contains("unknown setting"));
        assert!(Config::load(None, &env(&[("PIXELMILL_LISTEN", "0.0.0.0:8080"), ("PIXELMILL_AUTH", "true")])).is_ok());
    }

    #[test]
    fn watermarks_come_from_the_file_or_the_environment_and_are_checked() {
        let config =
            Config::load(None, &env(&[("PIXELMILL_WATERMARKS", "logo=file:/etc/logo.png; badge=blob:marks/b.png")]))
                .unwrap();
        assert_eq!(config.watermarks["logo"], WatermarkSource { file: Some("/etc/logo.png".into()), blob: None });
        assert_eq!(config.watermarks["badge"], WatermarkSource { file: None, blob: Some("marks/b.png".to_owned()) });
        let err = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs)).unwrap_err().to_string();
        assert!(err(&[("PIXELMILL_WATERMARKS", "logo=/etc/logo.png")]).contains("name=file:PATH"));
        assert!(err(&[("PIXELMILL_WATERMARKS", "a b=file:/x.png")]).contains("watermark name"));
        assert!(err(&[("PIXELMILL_WATERMARKS", "logo=blob:../x")]).contains("watermark `logo`"));
        assert!(err(&[("PIXELMILL_WATERMARKS", "logo=blob:originals/abc")]).contains("gc sweeps"));
        // A preset may name only a configured watermark.
        let preset = ("PIXELMILL_PRESETS", "marked=w=100&wm=logo");
        assert!(err(&[preset]).contains("no watermark named `logo`"));
        Config::load(None, &env(&[preset, ("PIXELMILL_WATERMARKS", "logo=file:/etc/logo.png")])).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pixelmill.toml");
        std::fs::write(&file, "[watermarks.logo]\nfile = \"/a.png\"\nblob = \"b.png\"\n").unwrap();
        assert!(Config::load(Some(&file), &HashMap::new()).unwrap_err().to_string().contains("exactly one"));
    }

    #[test]
    fn kubernetes_service_links_are_not_settings() {
        // What a pod gets for a Service `pixelmill` with a port 80 named http (and for one named
        // pixelmill-preview): the service must start beside them.
        let links = [
            ("PIXELMILL_SERVICE_HOST", "10.96.192.27"),
            ("PIXELMILL_SERVICE_PORT", "80"),
            ("PIXELMILL_SERVICE_PORT_HTTP", "80"),
            ("PIXELMILL_PORT", "tcp://10.96.192.27:80"),
            ("PIXELMILL_PORT_80_TCP", "tcp://10.96.192.27:80"),
            ("PIXELMILL_PORT_80_TCP_PROTO", "tcp"),
            ("PIXELMILL_PORT_80_TCP_PORT", "80"),
            ("PIXELMILL_PORT_80_TCP_ADDR", "10.96.192.27"),
            ("PIXELMILL_PREVIEW_SERVICE_HOST", "10.96.0.9"),
            ("PIXELMILL_PREVIEW_PORT_80_TCP", "tcp://10.96.0.9:80"),
        ];
        Config::load(None, &env(&links)).unwrap();
    }

    #[test]
    fn sample_config_parses_and_names_every_setting() {
        let sample = include_str!("../../pixelmill.sample.toml");
        let parsed: Config = toml::from_str(sample).unwrap();
        assert_eq!(parsed.listen, Config::default().listen);
        for name in [
            "PIXELMILL_LISTEN",
            "PIXELMILL_DATA_DIR",
            "DATABASE_URL",
            "PIXELMILL_STORAGE",
            "PIXELMILL_S3_ENDPOINT",
            "PIXELMILL_MIGRATE_ON_START",
            "PIXELMILL_AUTH",
            "PIXELMILL_SIGNING_KEY",
            "PIXELMILL_PRESETS_ONLY",
            "PIXELMILL_PRESETS",
            "PIXELMILL_WATERMARKS",
            "PIXELMILL_LOG_FORMAT",
            "PIXELMILL_SHUTDOWN_DRAIN_SECONDS",
            "PIXELMILL_SHUTDOWN_CLOSE_SECONDS",
            "PIXELMILL_MAX_VARIANTS_PER_IMAGE",
            "PIXELMILL_MAX_BODY_BYTES",
            "PIXELMILL_MAX_INPUT_PIXELS",
            "PIXELMILL_MAX_OUTPUT_PIXELS",
            "PIXELMILL_MAX_RENDERS_IN_FLIGHT",
            "PIXELMILL_RENDER_QUEUE",
            "PIXELMILL_RENDER_TIMEOUT_SECONDS",
        ] {
            assert!(sample.contains(name), "pixelmill.sample.toml does not document {name}");
        }
    }
}
