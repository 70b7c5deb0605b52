//! The `pixelmill` command line. Each subcommand is a struct with a `run` method.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rayon::prelude::*;

use crate::catalog::{ApiKeyRow, Catalog};
use crate::config::Config;
use crate::engine::spec::FormatRequest;
use crate::engine::watermark::Watermark;
use crate::engine::{self, Limits, Presets, Spec, Watermarks};
use crate::store::BlobStore;
use crate::{http, telemetry};

#[derive(Debug, Parser)]
#[command(name = "pixelmill", version, about = "Pixelmill: upload, resize, crop and convert images")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(ServeCommand),
    Render(RenderCommand),
    /// Run the catalog's migrations (also run at start unless `migrate_on_start` is off).
    Migrate(ConfigArgs),
    #[command(subcommand)]
    Keys(KeysCommand),
    Gc(GcCommand),
    Backfill(BackfillCommand),
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Render(command) => command.run(),
            Command::Serve(command) => block_on(command.config.clone(), |config| command.run(config)),
            Command::Migrate(args) => block_on(args, migrate),
            Command::Keys(command) => block_on(command.config().clone(), |config| command.run(config)),
            Command::Gc(command) => block_on(command.config.clone(), |config| command.run(config)),
            Command::Backfill(command) => block_on(command.config.clone(), |config| command.run(config)),
        }
    }
}

/// Where the configuration comes from: defaults, then this file, then `PIXELMILL_*` variables.
#[derive(Debug, Clone, clap::Args)]
struct ConfigArgs {
    /// A TOML config file (see pixelmill.sample.toml).
    #[arg(long, env = "PIXELMILL_CONFIG")]
    config: Option<PathBuf>,
}

/// Loads the configuration and runs `work` on a tokio runtime; errors print their whole chain.
fn block_on<F, Fut>(args: ConfigArgs, work: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::load(args.config.as_deref(), &env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pixelmill: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pixelmill: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "exiting");
            eprintln!("pixelmill: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serve the HTTP API until SIGTERM or Ctrl-C, then drain.
#[derive(Debug, Parser)]
struct ServeCommand {
    #[command(flatten)]
    config: ConfigArgs,
}

impl ServeCommand {
    async fn run(&self, config: Config) -> anyhow::Result<()> {
        telemetry::init_logs(&config.log_format);
        let application = http::Application::build(config).await?;
        application.run(http::shutdown_signal()).await
    }
}

/// Run the catalog's migrations (also run at start unless `migrate_on_start` is off).
async fn migrate(config: Config) -> anyhow::Result<()> {
    let catalog = Catalog::connect(&config.database_url, &config.data_dir).await?;
    catalog.migrate().await?;
    println!("migrations applied to the {} catalog", catalog.backend());
    Ok(())
}

/// Manage the API keys that writes need.
#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it; only its hash is stored, so it is shown this once.
    Create {
        /// Who or what the key is for.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List keys (ids and names; never the keys).
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Revoke a key by id; writes with it are refused from now on.
    Revoke {
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

impl KeysCommand {
    fn config(&self) -> &ConfigArgs {
        match self {
            KeysCommand::Create { config, .. } | KeysCommand::List { config } | KeysCommand::Revoke { config, .. } => {
                config
            }
        }
    }

    async fn run(&self, config: Config) -> anyhow::Result<()> {
        let catalog = Catalog::connect(&config.database_url, &config.data_dir).await?;
        if config.migrate_on_start {
            catalog.migrate().await?;
        }
        let now = crate::catalog::now_ms();
        match self {
            KeysCommand::Create { name, .. } => {
                let key = http::auth::generate_api_key().context("no randomness from the OS")?;
                let row = ApiKeyRow {
                    id: uuid::Uuid::now_v7().simple().to_string(),
                    name: name.clone(),
                    key_hash: http::auth::hash_api_key(&key),
                    created_at_ms: now,
                    revoked_at_ms: None,
                };
                catalog.insert_api_key(&row).await?;
                eprintln!("created key {} ({name}); it is shown once:", row.id);
                println!("{key}");
            }
            KeysCommand::List { .. } => {
                println!("{:<32}  {:<8}  name", "id", "state");
                for key in catalog.list_api_keys().await? {
                    let state = if key.revoked_at_ms.is_some() { "revoked" } else { "active" };
                    println!("{:<32}  {state:<8}  {}", key.id, key.name);
                }
            }
            KeysCommand::Revoke { id, .. } => {
                if !catalog.revoke_api_key(id, now).await? {
                    anyhow::bail!("no key with id {id}");
                }
                println!("revoked {id}");
            }
        }
        Ok(())
    }
}

/// Remove blobs that no catalog row references and that are older than the grace period
/// (left by a crash between writing a blob and its row); with `--variants-unused-days N`, first
/// the variants not served for N days (rows, then blobs). Originals are never removed.
#[derive(Debug, Parser)]
struct GcCommand {
    /// Only blobs at least this old are candidates, so uploads in progress are never touched.
    #[arg(long, default_value_t = 24)]
    grace_hours: u64,
    /// Also remove the variants not served for this many days (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=36500))]
    variants_unused_days: Option<u64>,
    /// Print what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

impl GcCommand {
    async fn run(&self, config: Config) -> anyhow::Result<()> {
        let catalog = Catalog::connect(&config.database_url, &config.data_dir).await?;
        let store =
            BlobStore::open(&config.storage, &config.s3_endpoint, &config.data_dir, config.store_timeout()).await?;
        if let Some(days) = self.variants_unused_days {
            let cutoff = crate::catalog::now_ms() - i64::try_from(days * 24 * 3600 * 1000).unwrap_or(i64::MAX);
            let verb = if self.dry_run { "would remove" } else { "removed" };
            let done = crate::retention::remove_unused_variants(&catalog, &store, cutoff, self.dry_run, |variant| {
                println!("{verb} variant {}/{} ({} bytes)", variant.image_id, variant.variant_key, variant.bytes);
            })
            .await?;
            println!("gc: {verb} {} variants not served for {days} days, {} bytes", done.variants, done.bytes);
        }
        let grace = std::time::Duration::from_secs(self.grace_hours * 3600);
        let (mut examined, mut removed) = (0usize, 0usize);
        for prefix in ["originals/", "variants/"] {
            for blob in store.list(prefix).await? {
                examined += 1;
                let old_enough = blob.modified.elapsed().is_ok_and(|age| age >= grace);
                if !old_enough || catalog.blob_is_referenced(blob.key.as_str()).await? {
                    continue;
                }
                removed += 1;
                if self.dry_run {
                    println!("would remove {}", blob.key);
                } else {
                    store.delete(&blob.key).await?;
                    println!("removed {}", blob.key);
                }
            }
        }
        let verb = if self.dry_run { "would remove" } else { "removed" };
        println!("gc: examined {examined} blobs, {verb} {removed}");
        Ok(())
    }
}

/// Compute the placeholders (ThumbHash, BlurHash, dominant colour) of images uploaded before
/// they were computed at upload. In batches; a run that stops resumes where it stopped.
#[derive(Debug, Parser)]
struct BackfillCommand {
    /// Images read from the catalog at a time.
    #[arg(long, default_value_t = 100)]
    batch: u32,
    #[command(flatten)]
    config: ConfigArgs,
}

impl BackfillCommand {
    async fn run(&self, config: Config) -> anyhow::Result<()> {
        let catalog = Catalog::connect(&config.database_url, &config.data_dir).await?;
        if config.migrate_on_start {
            catalog.migrate().await?;
        }
        let store =
            BlobStore::open(&config.storage, &config.s3_endpoint, &config.data_dir, config.store_timeout()).await?;
        let started = Instant::now();
        let done =
            crate::backfill::run(&catalog, &store, config.engine_limits(), self.batch, crate::backfill::print(started))
                .await?;
        println!("backfill: done: {} filled, {} skipped", done.filled, done.failed);
        Ok(())
    }
}

/// Render files with a spec, like vipsthumbnail: each FILE becomes `OUT_DIR/FILE_NAME.EXT`.
#[derive(Debug, Parser)]
struct RenderCommand {
    /// The spec, as in the HTTP API: `w=400&fmt=webp`.
    spec: String,
    /// Images to render.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Worker threads (files render in parallel, large images split across threads).
    #[arg(long, env = "PIXELMILL_THREADS")]
    threads: Option<usize>,
    /// Directory for the outputs.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// Render each file this many times more after a warm-up and report the mean time
    /// (for benchmarks).
    #[arg(long, default_value_t = 0)]
    repeat: u32,
    /// One JSON object per file on stdout instead of a line of text.
    #[arg(long)]
    json: bool,
    /// A watermark the spec may name with `wm=NAME` (repeatable).
    #[arg(long = "watermark", value_name = "NAME=FILE")]
    watermarks: Vec<String>,
    /// Largest source image in pixels.
    #[arg(long, env = "PIXELMILL_MAX_INPUT_PIXELS", default_value_t = Limits::default().max_input_pixels)]
    max_input_pixels: u64,
    /// Largest output image in pixels.
    #[arg(long, env = "PIXELMILL_MAX_OUTPUT_PIXELS", default_value_t = Limits::default().max_output_pixels)]
    max_output_pixels: u64,
    /// The most bytes one render may hold at once.
    #[arg(long, env = "PIXELMILL_MAX_RENDER_BYTES", default_value_t = Limits::default().max_render_bytes)]
    max_render_bytes: u64,
    /// The most scans a JPEG may have.
    #[arg(long, env = "PIXELMILL_MAX_JPEG_SCANS", default_value_t = Limits::default().max_jpeg_scans)]
    max_jpeg_scans: u32,
    /// The most frames an animation may have.
    #[arg(long, env = "PIXELMILL_MAX_ANIMATION_FRAMES", default_value_t = Limits::default().max_animation_frames)]
    max_animation_frames: u32,
    /// The most pixels an animated render may decode (frames times the canvas).
    #[arg(long, env = "PIXELMILL_MAX_ANIMATION_PIXELS", default_value_t = Limits::default().max_animation_pixels)]
    max_animation_pixels: u64,
}

struct FileReport {
    output: PathBuf,
    rendered: engine::Rendered,
    mean_ms: f64,
}

impl RenderCommand {
    fn run(self) -> ExitCode {
        let limits = Limits {
            max_input_pixels: self.max_input_pixels,
            max_output_pixels: self.max_output_pixels,
            max_render_bytes: self.max_render_bytes,
            max_jpeg_scans: self.max_jpeg_scans,
            max_animation_frames: self.max_animation_frames,
            max_animation_pixels: self.max_animation_pixels,
        };
        let watermarks = match self.load_watermarks(&limits) {
            Ok(watermarks) => watermarks,
            Err(error) => {
                eprintln!("pixelmill: {error:#}");
                return ExitCode::from(2);
            }
        };
        let presets = match Presets::with_watermarks(Default::default(), watermarks.infos()) {
            Ok(presets) => presets,
            Err(error) => {
                eprintln!("pixelmill: {error}");
                return ExitCode::from(2);
            }
        };
        let spec = match Spec::parse(&self.spec, &presets) {
            Ok(spec) if spec.format == Some(FormatRequest::Auto) => {
                eprintln!("pixelmill: fmt=auto negotiates with a browser's Accept header; name a format here");
                return ExitCode::from(2);
            }
            Ok(spec) => spec,
            Err(error) => {
                eprintln!("pixelmill: {error}");
                return ExitCode::from(2);
            }
        };
        if let Err(error) = std::fs::create_dir_all(&self.out_dir) {
            eprintln!("pixelmill: cannot create {}: {error}", self.out_dir.display());
            return ExitCode::from(2);
        }
        let mut pool = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("render-{i}"));
        if let Some(threads) = self.threads {
            pool = pool.num_threads(threads.max(1));
        }
        let pool = match pool.build() {
            Ok(pool) => pool,
            Err(error) => {
                eprintln!("pixelmill: cannot start worker threads: {error}");
                return ExitCode::FAILURE;
            }
        };
        let results: Vec<(PathBuf, anyhow::Result<FileReport>)> = pool.install(|| {
            self.files
                .par_iter()
                .map(|file| (file.clone(), self.render_file(file, &spec, &limits, &watermarks)))
                .collect()
        });
        let mut failures = 0;
        for (file, result) in results {
            match result {
                Ok(report) => self.print_report(&file, &report),
                Err(error) => {
                    failures += 1;
                    eprintln!("pixelmill: {}: {error:#}", file.display());
                }
            }
        }
        if failures > 0 {
            eprintln!("pixelmill: {failures} of {} files failed", self.files.len());
            return ExitCode::FAILURE;
        }
        ExitCode::SUCCESS
    }

    /// The `--watermark NAME=FILE` options, loaded.
    fn load_watermarks(&self, limits: &Limits) -> anyhow::Result<Watermarks> {
        let mut loaded = std::collections::BTreeMap::new();
        for option in &self.watermarks {
            let (name, file) = option.split_once('=').context("--watermark takes NAME=FILE")?;
            anyhow::ensure!(
                engine::spec::is_watermark_name(name),
                "watermark name {name:?} must be 1 to 64 letters, digits, `-` or `_`"
            );
            let bytes = std::fs::read(file).with_context(|| format!("watermark `{name}`: cannot read {file}"))?;
            let watermark = Watermark::load(&bytes, limits).with_context(|| format!("watermark `{name}` ({file})"))?;
            loaded.insert(name.to_owned(), watermark);
        }
        Ok(Watermarks::new(loaded))
    }

    fn render_file(
        &self,
        file: &Path,
        spec: &Spec,
        limits: &Limits,
        watermarks: &Watermarks,
    ) -> anyhow::Result<FileReport> {
        let input = std::fs::read(file).context("cannot read")?;
        let mut rendered = engine::render_with(&input, spec, limits, watermarks)?;
        let started = Instant::now();
        for _ in 0..self.repeat {
            rendered = engine::render_with(&input, spec, limits, watermarks)?;
        }
        let mean_ms = if self.repeat > 0 {
            started.elapsed().as_secs_f64() * 1000.0 / f64::from(self.repeat)
        } else {
            let t = rendered.timings;
            (t.decode + t.transform + t.encode).as_secs_f64() * 1000.0
        };
        let name = file.file_name().context("not a file name")?.to_string_lossy();
        let output = self.out_dir.join(format!("{name}.{}", rendered.format.extension()));
        std::fs::write(&output, &rendered.bytes).with_context(|| format!("cannot write {}", output.display()))?;
        Ok(FileReport { output, rendered, mean_ms })
    }

    fn print_report(&self, file: &Path, report: &FileReport) {
        let r = &report.rendered;
        if self.json {
            let line = serde_json::json!({
                "file": file.file_name().map(|n| n.to_string_lossy().into_owned()),
                "output": report.output,
                "ms": (report.mean_ms * 1000.0).round() / 1000.0,
                "bytes": r.bytes.len(),
                "width": r.width,
                "height": r.height,
                "format": r.format.name(),
                "shrink_on_load": r.shrink_on_load,
            });
            println!("{line}");
        } else {
            println!(
                "{} -> {} ({}x{} {}, {} bytes, {:.2} ms)",
                file.display(),
                report.output.display(),
                r.width,
                r.height,
                r.format.name(),
                r.bytes.len(),
                report.mean_ms
            );
        }
    }
}
