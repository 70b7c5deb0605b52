//! The `pixelmill` command line. Each subcommand is a struct with a `run` method.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rayon::prelude::*;

use crate::engine::spec::FormatRequest;
use crate::engine::{self, Limits, Presets, Spec};

#[derive(Debug, Parser)]
#[command(name = "pixelmill", version, about = "Pixelmill: upload, resize, crop and convert images")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Render(RenderCommand),
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Render(command) => command.run(),
        }
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
    /// Largest source image in pixels.
    #[arg(long, env = "PIXELMILL_MAX_INPUT_PIXELS", default_value_t = Limits::default().max_input_pixels)]
    max_input_pixels: u64,
    /// Largest output image in pixels.
    #[arg(long, env = "PIXELMILL_MAX_OUTPUT_PIXELS", default_value_t = Limits::default().max_output_pixels)]
    max_output_pixels: u64,
}

struct FileReport {
    output: PathBuf,
    rendered: engine::Rendered,
    mean_ms: f64,
}

impl RenderCommand {
    fn run(self) -> ExitCode {
        let spec = match Spec::parse(&self.spec, &Presets::default()) {
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
        let limits = Limits { max_input_pixels: self.max_input_pixels, max_output_pixels: self.max_output_pixels };
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
            self.files.par_iter().map(|file| (file.clone(), self.render_file(file, &spec, &limits))).collect()
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

    fn render_file(&self, file: &Path, spec: &Spec, limits: &Limits) -> anyhow::Result<FileReport> {
        let input = std::fs::read(file).context("cannot read")?;
        let mut rendered = engine::render(&input, spec, limits)?;
        let started = Instant::now();
        for _ in 0..self.repeat {
            rendered = engine::render(&input, spec, limits)?;
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
