//! `cargo xtask hpa-test <env>`: proves the autoscaler works in the environment's cluster.
//!
//! It renders the chart's load-test Job (`templates/job-loadtest.yaml`) with the environment's
//! values and `hpa_test.stages`, and applies it with kubectl. The Job is applied on its own,
//! not through `helm upgrade`: Argo CD renders the chart itself, so there is no Helm release to
//! upgrade, and a changed Application would be reverted by self-heal. While the Job runs, xtask
//! samples every few seconds the HPA (current and desired replicas, CPU utilisation), the ready
//! pods, and the service's p99 latency from Prometheus, queried through the API server's
//! service proxy (`kubectl get --raw .../services/<prometheus>/proxy/api/v1/query`): the one
//! source of p99 with a value at every sample, whatever the load generator reports at its end.
//!
//! The samples are written to `target/hpa-test/<env>/samples.csv` and drawn in `chart.svg`
//! (replicas, CPU and p99 over time); the Job's log goes to `job.log`. The test passes when the
//! replicas rose above the HPA's minimum and the last p99 measured is under
//! `hpa_test.slo_p99_ms`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use plotters::prelude::*;
use serde_json::Value;

use crate::cmd::Cmd;
use crate::context::Context;
use crate::environment::Environment;
use crate::flags::Args;
use crate::preflight::{self, Tool};
use crate::report::{StepError, Steps};

/// The chart's name, the `app.kubernetes.io/name` of the service's pods.
const CHART_NAME: &str = "pixelmill";

pub(crate) struct HpaTest {
    env: String,
}

/// One sample, `seconds` after the Job started.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) seconds: f64,
    pub(crate) replicas: u32,
    pub(crate) desired_replicas: u32,
    pub(crate) ready_pods: u32,
    pub(crate) cpu_percent: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
}

impl HpaTest {
    pub(crate) fn parse(mut args: Args) -> Result<HpaTest, String> {
        let env = args.positional("<env>")?;
        args.finish()?;
        Ok(HpaTest { env })
    }

    pub(crate) fn run(self, ctx: &Context) -> Result<(), String> {
        let mut steps = Steps::new(&ctx.output);
        let result = self.run_steps(ctx, &mut steps);
        steps.finish(result).map_err(|e| format!("hpa-test {}: {e}", self.env))
    }

    fn run_steps(&self, ctx: &Context, steps: &mut Steps<'_>) -> Result<(), StepError> {
        let env = steps.run("preflight", || {
            let env = Environment::load(ctx, &self.env)?;
            preflight::tools(ctx, &[Tool::Aws, Tool::Helm, Tool::Kubectl])?;
            preflight::account(ctx, &env)?;
            preflight::kubeconfig(ctx, &env)?;
            Ok(env)
        })?;
        let job = steps.run("job", || start_job(ctx, &env))?;
        let (samples, min_replicas) = steps.run("sample", || sample(ctx, &env, &job))?;
        steps.run("report", || {
            let dir = report(ctx, &env, &job, &samples)?;
            ctx.say(&format!("samples and chart in {}", dir.display()));
            Ok(())
        })?;
        steps.run("verdict", || {
            let verdict = judge(&samples, min_replicas, env.hpa_test.slo_p99_ms)?;
            ctx.say(&verdict);
            Ok(())
        })
    }
}

fn scoped(cmd: Cmd, env: &Environment) -> Cmd {
    cmd.args(["-n", &env.cluster.namespace]).args(env.kube_context())
}

/// Renders the load-test Job with helm and applies it; returns its name.
fn start_job(ctx: &Context, env: &Environment) -> Result<String, String> {
    // --set splits values at commas; the stages keep theirs.
    let stages = format!("loadTest.stages={}", env.hpa_test.stages.replace(',', "\\,"));
    let render = Cmd::new("helm")
        .args(["template", &env.cluster.release, "helm/pixelmill", "--namespace", &env.cluster.namespace])
        .args(["--values", &env.values_path(), "--show-only", "templates/job-loadtest.yaml"])
        .args(["--set", "loadTest.enabled=true", "--set-string", &stages]);
    let manifest = ctx.output(&render, "")? + "\n";
    let name = job_name(&manifest)?;
    ctx.run(&scoped(Cmd::new("kubectl").args(["delete", "job", &name, "--ignore-not-found"]), env))?;
    let shown = format!("(Job {name} rendered above)");
    ctx.run(&scoped(Cmd::new("kubectl").args(["apply", "-f", "-"]), env).stdin(manifest.into_bytes(), &shown))?;
    Ok(name)
}

/// metadata.name of the rendered Job.
pub(crate) fn job_name(manifest: &str) -> Result<String, String> {
    let mut lines = manifest.lines().skip_while(|line| *line != "metadata:");
    lines
        .find_map(|line| line.strip_prefix("  name: ").map(|name| name.trim().to_owned()))
        .ok_or_else(|| format!("the chart rendered no load-test Job:\n{manifest}"))
}

/// Samples until the Job has finished; returns the samples and the HPA's minimum.
fn sample(ctx: &Context, env: &Environment, job: &str) -> Result<(Vec<Sample>, u32), String> {
    let budget = Duration::from_secs(stages_seconds(&env.hpa_test.stages)? + 300);
    let started = Instant::now();
    let (prometheus_namespace, prometheus, port) = env.prometheus_service()?;
    let query = format!(
        "histogram_quantile(0.99, sum by (le) (rate(pixelmill_http_request_duration_seconds_bucket{{namespace=\"{}\"}}[1m])))",
        env.cluster.namespace
    );
    let raw = format!(
        "/api/v1/namespaces/{prometheus_namespace}/services/{prometheus}:{port}/proxy/api/v1/query?query={}",
        percent_encode(&query)
    );
    let selector = format!("app.kubernetes.io/name={CHART_NAME},app.kubernetes.io/instance={}", env.cluster.release);
    let hpa_cmd = scoped(Cmd::new("kubectl").args(["get", "hpa", &env.cluster.rollout, "-o", "json"]), env);
    let pods_cmd = scoped(Cmd::new("kubectl").args(["get", "pods", "-l", &selector, "-o", "json"]), env);
    let p99_cmd = Cmd::new("kubectl").args(["get", "--raw", &raw]).args(env.kube_context());
    let job_cmd = scoped(Cmd::new("kubectl").args(["get", "job", job, "-o", "json"]), env);
    let mut samples = Vec::new();
    let mut min_replicas;
    loop {
        let hpa = json(&ctx.output(&hpa_cmd, "{}")?)?;
        min_replicas = number(&hpa, "/spec/minReplicas").unwrap_or(1.0) as u32;
        let sample = Sample {
            seconds: started.elapsed().as_secs_f64(),
            replicas: number(&hpa, "/status/currentReplicas").unwrap_or(0.0) as u32,
            desired_replicas: number(&hpa, "/status/desiredReplicas").unwrap_or(0.0) as u32,
            ready_pods: ready_pods(&json(&ctx.output(&pods_cmd, "{}")?)?),
            cpu_percent: cpu_percent(&hpa),
            p99_ms: prometheus_value(&json(&ctx.output(&p99_cmd, "{}")?)?).map(|seconds| seconds * 1000.0),
        };
        ctx.say(&describe(&sample));
        samples.push(sample);
        let finished = job_finished(&json(&ctx.output(&job_cmd, "{}")?)?);
        if finished || ctx.dry_run {
            break;
        }
        if started.elapsed() > budget {
            return Err(format!("the Job {job} did not finish within {} s", budget.as_secs()));
        }
        ctx.pause(ctx.sample_interval);
    }
    Ok((samples, min_replicas))
}

fn describe(sample: &Sample) -> String {
    let cpu = sample.cpu_percent.map_or("-".to_owned(), |cpu| format!("{cpu:.0}%"));
    let p99 = sample.p99_ms.map_or("-".to_owned(), |p99| format!("{p99:.0} ms"));
    format!(
        "t={:>5.0} s  replicas {}/{} (ready {})  cpu {cpu}  p99 {p99}",
        sample.seconds, sample.replicas, sample.desired_replicas, sample.ready_pods
    )
}

fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("cannot read kubectl's JSON: {e}"))
}

fn number(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64)
}

fn cpu_percent(hpa: &Value) -> Option<f64> {
    hpa.pointer("/status/currentMetrics")?.as_array()?.iter().find_map(|metric| {
        (metric["type"] == "Resource" && metric["resource"]["name"] == "cpu")
            .then(|| metric["resource"]["current"]["averageUtilization"].as_f64())
            .flatten()
    })
}

fn ready_pods(pods: &Value) -> u32 {
    let items = pods["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    let ready = |pod: &&Value| {
        pod["metadata"]["deletionTimestamp"].is_null()
            && pod["status"]["conditions"]
                .as_array()
                .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    items.iter().filter(ready).count() as u32
}

/// The value of a Prometheus instant-vector answer; None without data (or NaN: no requests).
pub(crate) fn prometheus_value(answer: &Value) -> Option<f64> {
    let value = answer.pointer("/data/result/0/value/1")?.as_str()?.parse::<f64>().ok()?;
    value.is_finite().then_some(value)
}

fn job_finished(job: &Value) -> bool {
    number(job, "/status/succeeded").unwrap_or(0.0) >= 1.0 || number(job, "/status/failed").unwrap_or(0.0) >= 1.0
}

/// The total duration of `DURATION:RATE,...` stages, in seconds.
pub(crate) fn stages_seconds(stages: &str) -> Result<u64, String> {
    stages
        .split(',')
        .map(|stage| {
            let duration = stage.split_once(':').map_or(stage, |(duration, _)| duration).trim();
            let (number, unit) =
                duration.split_at(duration.find(|c: char| !c.is_ascii_digit()).unwrap_or(duration.len()));
            let number: u64 = number.parse().map_err(|_| format!("bad stage duration `{duration}` in `{stages}`"))?;
            match unit {
                "s" | "" => Ok(number),
                "m" => Ok(number * 60),
                "h" => Ok(number * 3600),
                _ => Err(format!("bad stage duration `{duration}` in `{stages}`")),
            }
        })
        .sum()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The verdict: replicas rose above the minimum, and p99 ended under the SLO.
pub(crate) fn judge(samples: &[Sample], min_replicas: u32, slo_ms: f64) -> Result<String, String> {
    let most = samples.iter().map(|s| s.replicas).max().unwrap_or(0);
    let p99s: Vec<f64> = samples.iter().filter_map(|s| s.p99_ms).collect();
    let peak = p99s.iter().copied().fold(f64::NAN, f64::max);
    let mut failures = Vec::new();
    if most <= min_replicas {
        failures.push(format!("the replicas never rose above the minimum of {min_replicas} (at most {most})"));
    }
    match p99s.last() {
        None => failures.push("Prometheus gave no p99 at all (is the ServiceMonitor scraped?)".to_owned()),
        Some(last) if *last > slo_ms => {
            failures.push(format!("p99 ended at {last:.0} ms, over the SLO of {slo_ms:.0} ms (peak {peak:.0} ms)"))
        }
        Some(_) => {}
    }
    if failures.is_empty() {
        let last = p99s.last().copied().unwrap_or(0.0);
        Ok(format!(
            "pass: replicas {min_replicas} -> {most}; p99 peaked at {peak:.0} ms and ended at {last:.0} ms (SLO {slo_ms:.0} ms)"
        ))
    } else {
        Err(failures.join("; "))
    }
}

/// Writes samples.csv, chart.svg and job.log; returns their directory.
fn report(ctx: &Context, env: &Environment, job: &str, samples: &[Sample]) -> Result<PathBuf, String> {
    let dir = ctx.root.join("target").join("hpa-test").join(&env.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("samples.csv", csv(samples).as_bytes())?;
    write("chart.svg", svg(samples, env.hpa_test.slo_p99_ms)?.as_bytes())?;
    let log = ctx.output(&scoped(Cmd::new("kubectl").args(["logs", &format!("job/{job}")]), env), "")?;
    write("job.log", log.as_bytes())?;
    Ok(dir)
}

pub(crate) fn csv(samples: &[Sample]) -> String {
    let mut csv = "seconds,replicas,desired_replicas,ready_pods,cpu_percent,p99_ms\n".to_owned();
    let optional = |value: Option<f64>| value.map_or(String::new(), |value| format!("{value:.1}"));
    for s in samples {
        let _ = writeln!(
            csv,
            "{:.1},{},{},{},{},{}",
            s.seconds,
            s.replicas,
            s.desired_replicas,
            s.ready_pods,
            optional(s.cpu_percent),
            optional(s.p99_ms)
        );
    }
    csv
}

/// Three panels over the same time axis: replicas, CPU, p99 with the SLO.
pub(crate) fn svg(samples: &[Sample], slo_ms: f64) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, samples, slo_ms).map_err(|e| format!("cannot draw the chart: {e}"))?;
    Ok(svg)
}

fn draw(svg: &mut String, samples: &[Sample], slo_ms: f64) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (960, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let end = samples.last().map_or(1.0, |s| s.seconds).max(1.0);
    let top = |values: &mut dyn Iterator<Item = f64>, floor: f64| values.fold(floor, f64::max) * 1.15;

    let replicas_top = top(&mut samples.iter().map(|s| f64::from(s.replicas.max(s.desired_replicas))), 1.0);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("replicas", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..end, 0.0..replicas_top)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    chart
        .draw_series(LineSeries::new(samples.iter().map(|s| (s.seconds, f64::from(s.replicas))), &BLUE))?
        .label("current")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    chart
        .draw_series(LineSeries::new(samples.iter().map(|s| (s.seconds, f64::from(s.desired_replicas))), &GREEN))?
        .label("desired")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREEN));
    chart
        .draw_series(LineSeries::new(samples.iter().map(|s| (s.seconds, f64::from(s.ready_pods))), &BLACK))?
        .label("ready pods")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;

    let cpu_top = top(&mut samples.iter().filter_map(|s| s.cpu_percent), 100.0);
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("CPU, % of request (HPA average)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..end, 0.0..cpu_top)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    chart.draw_series(LineSeries::new(samples.iter().filter_map(|s| Some((s.seconds, s.cpu_percent?))), &RED))?;

    let p99_top = top(&mut samples.iter().filter_map(|s| s.p99_ms), slo_ms);
    let mut chart = ChartBuilder::on(&panels[2])
        .caption(format!("p99 latency, ms (SLO {slo_ms:.0} ms dashed)"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..end, 0.0..p99_top)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    chart.draw_series(LineSeries::new(samples.iter().filter_map(|s| Some((s.seconds, s.p99_ms?))), &MAGENTA))?;
    chart.draw_series(DashedLineSeries::new(vec![(0.0, slo_ms), (end, slo_ms)], 8, 6, BLACK.into()))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, replicas: u32, p99_ms: Option<f64>) -> Sample {
        Sample { seconds, replicas, desired_replicas: replicas, ready_pods: replicas, cpu_percent: Some(50.0), p99_ms }
    }

    #[test]
    fn passes_when_replicas_rose_and_p99_came_back_under_the_slo() {
        let samples = [sample(0.0, 2, None), sample(5.0, 4, Some(900.0)), sample(10.0, 6, Some(120.0))];
        let verdict = judge(&samples, 2, 500.0).unwrap();
        assert_eq!(verdict, "pass: replicas 2 -> 6; p99 peaked at 900 ms and ended at 120 ms (SLO 500 ms)");
    }

    #[test]
    fn fails_when_replicas_stayed_or_p99_stayed_high() {
        let flat = [sample(0.0, 2, Some(100.0)), sample(5.0, 2, Some(90.0))];
        assert!(judge(&flat, 2, 500.0).unwrap_err().contains("never rose above the minimum of 2"));
        let slow = [sample(0.0, 2, Some(100.0)), sample(5.0, 5, Some(800.0))];
        assert!(judge(&slow, 2, 500.0).unwrap_err().contains("p99 ended at 800 ms, over the SLO of 500 ms"));
        let blind = [sample(0.0, 2, None), sample(5.0, 5, None)];
        assert!(judge(&blind, 2, 500.0).unwrap_err().contains("no p99"));
    }

    #[test]
    fn reads_stage_durations() {
        assert_eq!(stages_seconds("60s:20,2m:100,30:0").unwrap(), 210);
        assert!(stages_seconds("soon:5").is_err());
    }

    #[test]
    fn reads_prometheus_answers() {
        let answer = |value: &str| {
            json(&format!(r#"{{"status":"success","data":{{"result":[{{"value":[1.5,"{value}"]}}]}}}}"#)).unwrap()
        };
        assert_eq!(prometheus_value(&answer("0.25")), Some(0.25));
        assert_eq!(prometheus_value(&answer("NaN")), None);
        assert_eq!(prometheus_value(&json(r#"{"data":{"result":[]}}"#).unwrap()), None);
    }

    #[test]
    fn writes_csv_and_an_svg_chart() {
        let samples = [sample(0.0, 2, None), sample(5.0, 4, Some(612.5))];
        assert_eq!(
            csv(&samples),
            "seconds,replicas,desired_replicas,ready_pods,cpu_percent,p99_ms\n0.0,2,2,2,50.0,\n5.0,4,4,4,50.0,612.5\n"
        );
        let svg = svg(&samples, 500.0).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("replicas") && svg.contains("p99 latency"));
        assert!(svg.matches("<polyline").count() >= 5, "one line per series and the SLO");
    }
}
