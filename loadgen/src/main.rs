//! `pixelmill-load`: the bundled load generator.
//!
//! Open model by default (requests start on a schedule, latency from the scheduled start, HDR
//! histograms), a closed model with `--max`, Pixelmill's own scenarios or any URL, live
//! progress, a table and a JSON report, and thresholds that set the exit code:
//! 0 passed, 1 a threshold failed, 2 bad arguments, 3 the target could not be prepared.

mod client;
mod report;
mod run;
mod schedule;
mod stats;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use hyper::Method;
use hyper::header::{HeaderName, HeaderValue};

use crate::client::Endpoint;
use crate::report::Threshold;
use crate::run::{Model, Plan};
use crate::schedule::{Schedule, Stage, parse_duration, parse_rate};
use crate::workload::{PixelmillTarget, UrlTarget, Workload};

/// Open-model HTTP load generator for Pixelmill.
#[derive(Debug, Parser)]
#[command(name = "pixelmill-load", version, about, after_help = AFTER_HELP)]
struct Args {
    /// A plain target: every request goes to this URL.
    #[arg(long, value_name = "URL", conflicts_with = "target_base", required_unless_present = "target_base")]
    target: Option<String>,
    /// Method of the plain target's requests.
    #[arg(long, default_value = "GET", requires = "target")]
    method: String,
    /// File sent as the body of each plain-target request.
    #[arg(long, value_name = "FILE", requires = "target")]
    body: Option<PathBuf>,
    /// Extra header of the plain target's requests, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", requires = "target")]
    headers: Vec<String>,

    /// A Pixelmill server (its base URL) to run one of its scenarios against.
    #[arg(long, value_name = "URL")]
    target_base: Option<String>,
    /// render-hit, render-miss, upload, or mixed (weighted by --mix).
    #[arg(long, default_value = "mixed", requires = "target_base")]
    scenario: String,
    /// Weights of the mixed scenario.
    #[arg(long, default_value = "render-hit=80,render-miss=15,upload=5")]
    mix: String,
    /// API key for uploads and deletes.
    #[arg(long, env = "PIXELMILL_LOAD_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Key to sign render URLs with, when the server requires signatures.
    #[arg(long, env = "PIXELMILL_LOAD_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// Directory of images to upload (default: one generated 1600x1000 JPEG).
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// The spec (query string) of the render-hit variant.
    #[arg(long, default_value = "w=400&fmt=webp")]
    hit_spec: String,
    /// Keep the images the run uploaded (by default they are deleted at the end).
    #[arg(long)]
    keep: bool,
    /// How long to wait for the server's /readyz before giving up.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    wait_ready: Duration,

    /// Constant rate, in requests per second (with --duration).
    #[arg(long, conflicts_with_all = ["stages", "max"], value_parser = parse_rate)]
    rate: Option<f64>,
    /// How long to run at --rate, or with --max.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Ramps, DURATION:RATE,... : each stage moves the rate linearly to its RATE.
    #[arg(long, conflicts_with = "max")]
    stages: Option<String>,
    /// Rate at which the first stage starts.
    #[arg(long, default_value = "0", value_parser = parse_rate, requires = "stages")]
    start_rate: f64,
    /// Closed model: every connection sends its next request as soon as it has an answer.
    #[arg(long)]
    max: bool,
    /// Connections (each carries one request at a time).
    #[arg(long, short = 'c', default_value = "64")]
    connections: usize,
    /// Threads of the client (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Time limit of each request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,

    /// Pass/fail rule, `[SCENARIO:]METRIC<VALUE` (repeatable): p99<250ms, errors<1%, rps>=100.
    #[arg(long = "threshold", value_name = "RULE")]
    thresholds: Vec<String>,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No live progress.
    #[arg(long, short = 'q')]
    quiet: bool,
}

const AFTER_HELP: &str = "\
Examples:
  pixelmill-load --target http://127.0.0.1:8080/healthz --rate 500 --duration 30s
  pixelmill-load --target-base http://127.0.0.1:8080 --scenario mixed --stages 30s:50,60s:200,30s:0 \\
      --threshold 'p99<250ms' --threshold 'errors<1%' --json report.json
  pixelmill-load --target http://127.0.0.1:8080/v1/render?w=400 --method POST --body photo.jpg --max -c 8 --duration 20s

Exit status: 0 passed, 1 a threshold failed, 2 bad arguments, 3 the target could not be prepared.";

/// Everything the run needs, checked before anything is sent.
struct Settings {
    plan: Plan,
    target: Target,
    timeout: Duration,
    wait_ready: Duration,
    keep: bool,
    json: Option<PathBuf>,
}

enum Target {
    Url(String, UrlTarget),
    Pixelmill(String, PixelmillTarget),
}

impl Settings {
    fn from_args(args: Args) -> Result<Settings, String> {
        let model = match (args.rate, &args.stages, args.max, args.duration) {
            (Some(rate), None, false, Some(duration)) => Model::Open(Schedule::constant(rate, duration)),
            (None, Some(stages), false, None) => {
                Model::Open(Schedule::ramps(args.start_rate, &Stage::parse_list(stages)?))
            }
            (None, None, true, Some(duration)) => Model::Closed { duration },
            (None, Some(_), _, Some(_)) => return Err("--stages sets its own length: drop --duration".to_owned()),
            _ => {
                return Err(
                    "say how to load: --rate R --duration D, --stages D:R,..., or --max --duration D".to_owned()
                );
            }
        };
        if let Model::Open(schedule) = &model
            && schedule.total() == 0
        {
            return Err("the schedule sends no requests".to_owned());
        }
        if args.connections == 0 {
            return Err("--connections must be at least 1".to_owned());
        }
        let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let (target, scenario_names, scenario) = match (args.target, args.target_base) {
            (Some(url), _) => {
                let url_target = UrlTarget {
                    method: Method::from_bytes(args.method.as_bytes())
                        .map_err(|_| format!("`{}` is not an HTTP method", args.method))?,
                    path_and_query: path_and_query(&url)?,
                    headers: args.headers.iter().map(|header| parse_header(header)).collect::<Result<_, _>>()?,
                    body: match &args.body {
                        Some(path) => Bytes::from(
                            std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?,
                        ),
                        None => Bytes::new(),
                    },
                };
                (Target::Url(url, url_target), vec!["url"], "url".to_owned())
            }
            (None, Some(base)) => {
                let weights = workload::scenario_weights(&args.scenario, &args.mix)?;
                let names = workload::SCENARIOS.iter().zip(weights).filter(|(_, w)| *w > 0).map(|(n, _)| *n).collect();
                let target = PixelmillTarget {
                    weights,
                    api_key: args.api_key.filter(|key| !key.is_empty()),
                    signing_key: args.signing_key.filter(|key| !key.is_empty()),
                    hit_spec: args.hit_spec,
                    images: workload::load_images(args.images.as_deref())?,
                };
                (Target::Pixelmill(base, target), names, args.scenario)
            }
            (None, None) => unreachable!("clap requires a target"),
        };
        let thresholds: Vec<Threshold> =
            args.thresholds.iter().map(|t| Threshold::parse(t)).collect::<Result<_, _>>()?;
        for threshold in &thresholds {
            if let Some(name) = threshold.scenario()
                && !scenario_names.contains(&name)
            {
                return Err(format!("a threshold names `{name}`, which this run does not send"));
            }
        }
        let target_url = match &target {
            Target::Url(url, _) | Target::Pixelmill(url, _) => url.clone(),
        };
        Ok(Settings {
            plan: Plan {
                target: target_url,
                scenario,
                model,
                connections: args.connections,
                threads,
                timeout: args.timeout,
                thresholds,
                progress: !args.quiet,
            },
            target,
            timeout: args.timeout,
            wait_ready: args.wait_ready,
            keep: args.keep,
            json: args.json,
        })
    }
}

fn path_and_query(url: &str) -> Result<String, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    Ok(uri.path_and_query().map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()))
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text.split_once(':').ok_or_else(|| format!("header `{text}` is not `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("`{name}` is not a header name"))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("`{value}` is not a header value"))?;
    Ok((name, value))
}

fn main() -> ExitCode {
    let settings = match Settings::from_args(Args::parse()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("pixelmill-load: {error}");
            return ExitCode::from(2);
        }
    };
    // Set-up, progress and clean-up; the load itself runs on threads of its own.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pixelmill-load: cannot start the runtime: {error}");
            return ExitCode::from(3);
        }
    };
    runtime.block_on(execute(settings))
}

async fn execute(settings: Settings) -> ExitCode {
    let (url, workload) = match settings.target {
        Target::Url(url, target) => (url, Ok(Workload::Url(target))),
        Target::Pixelmill(url, target) => {
            let endpoint = match Endpoint::resolve(&url).await {
                Ok(endpoint) => endpoint,
                Err(error) => return setup_failed(&error),
            };
            (url, Workload::seed(target, &endpoint, settings.wait_ready, settings.timeout).await)
        }
    };
    let endpoint = match Endpoint::resolve(&url).await {
        Ok(endpoint) => endpoint,
        Err(error) => return setup_failed(&error),
    };
    let workload = match workload {
        Ok(workload) => Arc::new(workload),
        Err(error) => return setup_failed(&error),
    };
    let report = run::run(&settings.plan, Arc::clone(&workload), &endpoint).await;
    if !settings.keep {
        match workload.clean_up(&endpoint, settings.timeout).await {
            Ok(0) => {}
            Ok(n) => eprintln!("pixelmill-load: deleted the {n} images this run uploaded"),
            Err(error) => eprintln!("pixelmill-load: clean-up incomplete: {error}"),
        }
    }
    print!("{}", report.table());
    if let Some(path) = &settings.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|error| error.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|error| error.to_string()));
        if let Err(error) = written {
            eprintln!("pixelmill-load: cannot write {}: {error}", path.display());
            return ExitCode::from(3);
        }
    }
    if report.thresholds.iter().all(|verdict| verdict.passed) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn setup_failed(error: &str) -> ExitCode {
    eprintln!("pixelmill-load: {error}");
    ExitCode::from(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let args = Args::try_parse_from(std::iter::once("pixelmill-load").chain(args.iter().copied()))
            .map_err(|error| error.to_string())?;
        Settings::from_args(args)
    }

    #[test]
    fn the_charts_invocations_parse() {
        let job = settings(&[
            "--target-base",
            "http://pixelmill:8080",
            "--scenario",
            "mixed",
            "--stages",
            "60s:20,120s:100,60s:0",
            "--threshold",
            "p99<500ms",
            "--threshold",
            "errors<1%",
            "--json",
            "/tmp/report.json",
        ])
        .unwrap();
        let Model::Open(schedule) = &job.plan.model else { panic!("open model") };
        assert_eq!(schedule.total(), 600 + 7200 + 3000);
        assert_eq!(job.plan.thresholds.len(), 2);
        let smoke = settings(&[
            "--target",
            "http://pixelmill:8080/readyz",
            "--rate",
            "1",
            "--duration",
            "5s",
            "--threshold",
            "errors<1%",
        ])
        .unwrap();
        let Model::Open(schedule) = &smoke.plan.model else { panic!("open model") };
        assert_eq!(schedule.total(), 5);
    }

    #[test]
    fn contradictory_or_incomplete_loads_are_refused() {
        assert!(settings(&["--target", "http://x/", "--rate", "5"]).is_err());
        assert!(settings(&["--target", "http://x/", "--rate", "5", "--stages", "5s:5"]).is_err());
        assert!(settings(&["--target", "http://x/", "--max"]).is_err());
        assert!(settings(&["--target", "http://x/", "--stages", "5s:5", "--duration", "5s"]).is_err());
        assert!(settings(&["--target", "http://x/", "--rate", "0", "--duration", "5s"]).is_err());
        assert!(settings(&["--rate", "5", "--duration", "5s"]).is_err());
        assert!(settings(&["--target", "http://x/", "--max", "--duration", "5s", "-c", "0"]).is_err());
        assert!(
            settings(&["--target", "http://x/", "--rate", "1", "--duration", "5s", "--threshold", "upload:p99<1s"])
                .is_err()
        );
        assert!(
            settings(&[
                "--target-base",
                "http://x",
                "--scenario",
                "render-hit",
                "--rate",
                "1",
                "--duration",
                "1s",
                "--threshold",
                "upload:p99<1s"
            ])
            .is_err()
        );
        assert!(settings(&["--target", "http://x/", "--rate", "1", "--duration", "1s", "-H", "no colon"]).is_err());
    }
}
