//! The end of a run: the report (a table, and JSON for machines) and the thresholds judged
//! against it.
//!
//! A threshold is `[SCENARIO:]METRIC OP VALUE`: `p99<250ms`, `render-hit:p50<=20ms`,
//! `errors<1%` (a share of requests), `errors<10` (a count), `rps>=95`. Latency metrics are
//! `min`, `mean`, `p50`, `p90`, `p95`, `p99`, `p999` and `max`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::schedule::parse_duration;
use crate::stats::{Second, Tally};

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) target: String,
    pub(crate) scenario: String,
    /// `open` (requests start on a schedule) or `closed` (each connection sends back to back).
    pub(crate) model: &'static str,
    pub(crate) connections: usize,
    pub(crate) duration_s: f64,
    /// The schedule's mean rate; absent in the closed model.
    pub(crate) target_rps: Option<f64>,
    pub(crate) achieved_rps: f64,
    pub(crate) requests: u64,
    pub(crate) errors: Errors,
    pub(crate) latency_ms: Latency,
    /// How late requests were sent after their scheduled start: large values mean the load
    /// generator ran short of connections or CPU, and the server saw less than the schedule.
    pub(crate) start_lag_ms: Lag,
    pub(crate) bytes_received: u64,
    pub(crate) scenarios: BTreeMap<String, ScenarioReport>,
    pub(crate) timeline: Vec<TimelineSecond>,
    pub(crate) thresholds: Vec<Verdict>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Errors {
    pub(crate) total: u64,
    /// Share of requests, in percent.
    pub(crate) percent: f64,
    pub(crate) by_kind: BTreeMap<String, u64>,
    pub(crate) by_status: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) min: f64,
    pub(crate) mean: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Lag {
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct ScenarioReport {
    pub(crate) requests: u64,
    pub(crate) achieved_rps: f64,
    pub(crate) errors: Errors,
    pub(crate) latency_ms: Latency,
}

#[derive(Debug, Serialize)]
pub(crate) struct TimelineSecond {
    /// Seconds from the start of the run.
    pub(crate) t: u64,
    /// Requests the schedule set for this second (open model).
    pub(crate) target_rps: Option<f64>,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Verdict {
    pub(crate) threshold: String,
    pub(crate) value: f64,
    pub(crate) passed: bool,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Latency {
    pub(crate) fn of(tally: &Tally) -> Latency {
        let h = &tally.latency;
        if h.is_empty() {
            return Latency { min: 0.0, mean: 0.0, p50: 0.0, p90: 0.0, p95: 0.0, p99: 0.0, p999: 0.0, max: 0.0 };
        }
        Latency {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    fn get(&self, metric: &str) -> Option<f64> {
        Some(match metric {
            "min" => self.min,
            "mean" => self.mean,
            "p50" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "p999" => self.p999,
            "max" => self.max,
            _ => return None,
        })
    }
}

impl Errors {
    pub(crate) fn of(tally: &Tally) -> Errors {
        let total = tally.errors();
        Errors {
            total,
            percent: if tally.requests == 0 { 0.0 } else { 100.0 * total as f64 / tally.requests as f64 },
            by_kind: tally.errors_by_kind.iter().map(|(kind, n)| ((*kind).to_owned(), *n)).collect(),
            by_status: tally.errors_by_status.iter().map(|(status, n)| (status.to_string(), *n)).collect(),
        }
    }
}

impl TimelineSecond {
    pub(crate) fn of(t: u64, second: &Second, target_rps: Option<f64>) -> TimelineSecond {
        let h = &second.latency;
        let quantile = |q| if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(q)) };
        TimelineSecond {
            t,
            target_rps,
            requests: second.requests,
            errors: second.errors,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone, PartialEq)]
enum Metric {
    Latency(String),
    ErrorPercent,
    ErrorCount,
    Rps,
}

/// A parsed `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Threshold {
    text: String,
    scenario: Option<String>,
    metric: Metric,
    op: Op,
    /// Milliseconds for latency, percent or a count for errors, requests per second for rps.
    value: f64,
}

impl Threshold {
    pub(crate) fn parse(text: &str) -> Result<Threshold, String> {
        let bad = |why: &str| format!("threshold `{text}`: {why} (for example p99<250ms, errors<1%, rps>=100)");
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let at = compact.find(['<', '>']).ok_or_else(|| bad("no < or >"))?;
        let (left, rest) = compact.split_at(at);
        let (op, value) = match rest.strip_prefix("<=").or_else(|| rest.strip_prefix(">=")) {
            Some(value) if rest.starts_with('<') => (Op::LessOrEqual, value),
            Some(value) => (Op::GreaterOrEqual, value),
            None if rest.starts_with('<') => (Op::Less, &rest[1..]),
            None => (Op::Greater, &rest[1..]),
        };
        let (scenario, metric) = match left.split_once(':') {
            Some((scenario, metric)) => (Some(scenario.to_owned()), metric),
            None => (None, left),
        };
        let (metric, value) = match metric {
            "errors" => match value.strip_suffix('%') {
                Some(percent) => (Metric::ErrorPercent, percent.parse::<f64>().map_err(|_| bad("not a percentage"))?),
                None => (Metric::ErrorCount, value.parse::<f64>().map_err(|_| bad("not a count"))?),
            },
            "rps" => (Metric::Rps, value.parse::<f64>().map_err(|_| bad("not a rate"))?),
            "min" | "mean" | "p50" | "p90" | "p95" | "p99" | "p999" | "max" => {
                let duration = if value.ends_with(|c: char| c.is_ascii_digit()) {
                    return Err(bad("give the latency a unit"));
                } else {
                    parse_duration(value).map_err(|error| bad(&error))?
                };
                (Metric::Latency(metric.to_owned()), duration.as_secs_f64() * 1000.0)
            }
            _ => return Err(bad("unknown metric")),
        };
        Ok(Threshold { text: text.to_owned(), scenario, metric, op, value })
    }

    pub(crate) fn scenario(&self) -> Option<&str> {
        self.scenario.as_deref()
    }

    /// Judges the threshold against the report.
    pub(crate) fn judge(&self, report: &Report) -> Verdict {
        let (latency, errors, requests, rps) = match &self.scenario {
            Some(name) => match report.scenarios.get(name) {
                Some(scenario) => (&scenario.latency_ms, &scenario.errors, scenario.requests, scenario.achieved_rps),
                // A scenario the run never sent judges as a run without requests.
                None => return Verdict { threshold: self.text.clone(), value: 0.0, passed: false },
            },
            None => (&report.latency_ms, &report.errors, report.requests, report.achieved_rps),
        };
        let value = match &self.metric {
            Metric::Latency(name) => latency.get(name).expect("metric names are checked at parse time"),
            Metric::ErrorPercent => errors.percent,
            Metric::ErrorCount => errors.total as f64,
            Metric::Rps => rps,
        };
        // A run that sent nothing proves nothing: error shares and latencies fail then.
        let vacuous = requests == 0 && !matches!(self.metric, Metric::Rps);
        let passed = !vacuous
            && match self.op {
                Op::Less => value < self.value,
                Op::LessOrEqual => value <= self.value,
                Op::Greater => value > self.value,
                Op::GreaterOrEqual => value >= self.value,
            };
        Verdict { threshold: self.text.clone(), value, passed }
    }
}

impl Report {
    /// The human summary.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let rate = match self.target_rps {
            Some(target) => format!("{:.1}/s achieved (schedule {target:.1}/s)", self.achieved_rps),
            None => format!("{:.1}/s achieved (closed model)", self.achieved_rps),
        };
        let _ = writeln!(
            out,
            "{} requests in {:.1} s over {} connections: {rate}",
            self.requests, self.duration_s, self.connections
        );
        let _ = writeln!(out, "start lag p99 {:.2} ms, max {:.2} ms", self.start_lag_ms.p99, self.start_lag_ms.max);
        let _ = writeln!(
            out,
            "\n{:<12} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "scenario", "requests", "rps", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        let mut row = |name: &str, requests: u64, rps: f64, errors: &Errors, l: &Latency| {
            let _ = writeln!(
                out,
                "{name:<12} {requests:>9} {rps:>9.1} {:>7.2}% {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                errors.percent, l.p50, l.p90, l.p99, l.p999, l.max
            );
        };
        for (name, scenario) in &self.scenarios {
            row(name, scenario.requests, scenario.achieved_rps, &scenario.errors, &scenario.latency_ms);
        }
        if self.scenarios.len() > 1 {
            row("all", self.requests, self.achieved_rps, &self.errors, &self.latency_ms);
        }
        if self.errors.total > 0 {
            let kinds: Vec<String> = self.errors.by_kind.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
            let statuses: Vec<String> = self.errors.by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
            let _ = writeln!(out, "\nerrors: {} (statuses {})", kinds.join(", "), statuses.join(", "));
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(out);
            for verdict in &self.thresholds {
                let mark = if verdict.passed { "pass" } else { "FAIL" };
                let _ = writeln!(out, "{mark}  {}  (measured {:.3})", verdict.threshold, verdict.value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Failure;

    fn report(p99_us: u64, failures: u64, requests: u64) -> Report {
        let mut tally = Tally::new();
        for i in 0..requests {
            tally.latency.record(if i == 0 { p99_us } else { 1_000 }).unwrap();
            tally.requests += 1;
        }
        for _ in 0..failures {
            *tally.errors_by_kind.entry(Failure::Status(503).kind()).or_default() += 1;
            *tally.errors_by_status.entry(503).or_default() += 1;
        }
        let scenario = ScenarioReport {
            requests,
            achieved_rps: 50.0,
            errors: Errors::of(&tally),
            latency_ms: Latency::of(&tally),
        };
        Report {
            target: "t".into(),
            scenario: "url".into(),
            model: "open",
            connections: 1,
            duration_s: 2.0,
            target_rps: Some(50.0),
            achieved_rps: 50.0,
            requests,
            errors: Errors::of(&tally),
            latency_ms: Latency::of(&tally),
            start_lag_ms: Lag { p99: 0.0, max: 0.0 },
            bytes_received: 0,
            scenarios: BTreeMap::from([("url".to_owned(), scenario)]),
            timeline: Vec::new(),
            thresholds: Vec::new(),
        }
    }

    fn passes(threshold: &str, report: &Report) -> bool {
        Threshold::parse(threshold).unwrap().judge(report).passed
    }

    #[test]
    fn thresholds_judge_latency_errors_and_rate() {
        // 100 requests: one at 900 ms (the max), the rest at 1 ms; 2 of them failed.
        let report = report(900_000, 2, 100);
        assert!(passes("p99<2ms", &report));
        assert!(!passes("max<500ms", &report));
        assert!(passes("max<1s", &report));
        assert!(passes("errors<3%", &report));
        assert!(!passes("errors<2%", &report));
        assert!(passes("errors<=2%", &report));
        assert!(!passes("errors<2", &report));
        assert!(passes("rps>=50", &report));
        assert!(!passes("rps>50", &report));
        assert!(passes("url:p50 < 5ms", &report));
    }

    #[test]
    fn a_run_without_requests_fails_its_thresholds() {
        let empty = report(1, 0, 0);
        assert!(!passes("errors<1%", &empty));
        assert!(!passes("p99<1s", &empty));
    }

    #[test]
    fn bad_thresholds_are_refused() {
        for text in ["p99", "p98<1ms", "p99<1", "errors<lots", "rps>fast", "p99<5 parsecs"] {
            assert!(Threshold::parse(text).is_err(), "{text}");
        }
        assert_eq!(Threshold::parse("render-hit:p99<1s").unwrap().scenario(), Some("render-hit"));
    }
}
