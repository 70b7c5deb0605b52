//! One run: workers, their clock, the live progress line, and the report.
//!
//! Open model: request `k` is due at `start + schedule.offset(k)`. Workers share one counter;
//! each takes the next `k`, waits for its time, sends it on its own connection and measures
//! latency from the scheduled time, not from when it was sent. When every connection is busy
//! the due requests wait and their wait is counted: a stalled server shows up in the
//! percentiles instead of slowing the schedule down (no coordinated omission).
//!
//! The timer ticks every millisecond, so a request goes out within about half a millisecond of
//! its time, either side; the long-run rate is exact.
//!
//! Closed model (`--max`): each worker sends its next request as soon as the last is answered,
//! until the duration ends; latency is from the send.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Connection, Endpoint};
use crate::report::{Errors, Lag, Latency, Report, ScenarioReport, Threshold, TimelineSecond};
use crate::schedule::Schedule;
use crate::stats::{Failure, Outcome, Recorder, Shared, Tally};
use crate::workload::Workload;

#[derive(Debug, Clone)]
pub(crate) enum Model {
    Open(Schedule),
    Closed { duration: Duration },
}

pub(crate) struct Plan {
    pub(crate) target: String,
    pub(crate) scenario: String,
    pub(crate) model: Model,
    pub(crate) connections: usize,
    pub(crate) threads: usize,
    pub(crate) timeout: Duration,
    pub(crate) thresholds: Vec<Threshold>,
    pub(crate) progress: bool,
}

pub(crate) async fn run(plan: &Plan, workload: Arc<Workload>, endpoint: &Endpoint) -> Report {
    let shared = Arc::new(Shared::new());
    let next = Arc::new(AtomicU64::new(0));
    // A short lead lets every worker reach its first wait before request 0 is due.
    let start = Instant::now() + Duration::from_millis(20);
    let n_scenarios = workload.scenario_names().len();
    // Each thread runs its own single-threaded runtime with its share of the connections, as
    // wrk does: no work stealing and no wake-ups across threads on the path of a request.
    let threads = plan.threads.clamp(1, plan.connections);
    let mut handles = Vec::with_capacity(threads);
    for thread in 0..threads {
        let n_workers = plan.connections / threads + usize::from(thread < plan.connections % threads);
        let workers: Vec<Worker> = (0..n_workers)
            .map(|_| Worker {
                connection: Connection::new(endpoint.clone()),
                recorder: Recorder::new(n_scenarios),
                shared: Arc::clone(&shared),
                next: Arc::clone(&next),
                workload: Arc::clone(&workload),
                model: plan.model.clone(),
                start,
                timeout: plan.timeout,
            })
            .collect();
        let handle = std::thread::Builder::new().name(format!("load-{thread}")).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            Ok::<_, std::io::Error>(runtime.block_on(async move {
                let tasks: Vec<_> = workers.into_iter().map(|worker| tokio::spawn(worker.run())).collect();
                let mut recorders = Vec::with_capacity(tasks.len());
                for task in tasks {
                    recorders.push(task.await.expect("workers do not panic"));
                }
                recorders
            }))
        });
        handles.push(handle.expect("the system starts a thread"));
    }
    let done = Arc::new(AtomicBool::new(false));
    let progress =
        tokio::spawn(progress(Arc::clone(&shared), plan.model.clone(), start, Arc::clone(&done), plan.progress));
    let recorders = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|handle| handle.join().expect("load threads do not panic").expect("a runtime per thread"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("joining the load threads");
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = progress.await;

    let mut scenarios: Vec<Tally> = (0..n_scenarios).map(|_| Tally::new()).collect();
    let mut lag = crate::stats::histogram(3);
    for recorder in recorders.iter().flatten() {
        for (total, tally) in scenarios.iter_mut().zip(&recorder.scenarios) {
            total.merge(tally);
        }
        lag.add(&recorder.lag).expect("histograms share their bounds");
    }
    build_report(plan, &workload, &shared, scenarios, &lag, elapsed)
}

const HALF_TICK: Duration = Duration::from_micros(500);

struct Worker {
    connection: Connection,
    recorder: Recorder,
    shared: Arc<Shared>,
    next: Arc<AtomicU64>,
    workload: Arc<Workload>,
    model: Model,
    start: Instant,
    timeout: Duration,
}

impl Worker {
    async fn run(mut self) -> Recorder {
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let scheduled = match &self.model {
                Model::Open(schedule) => {
                    if k >= schedule.total() {
                        break;
                    }
                    let due = self.start + schedule.offset(k);
                    // The timer rounds every wake-up up to its next 1 ms tick; aiming half a
                    // tick early centres the send on its time instead of 0.5 ms late on average.
                    tokio::time::sleep_until(due - HALF_TICK).await;
                    due
                }
                Model::Closed { duration } => {
                    if self.start > Instant::now() {
                        tokio::time::sleep_until(self.start).await;
                    }
                    let now = Instant::now();
                    if now >= self.start + *duration {
                        break;
                    }
                    now
                }
            };
            let planned = self.workload.request(k);
            let sent = Instant::now();
            self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
            let result = self.connection.send(planned.request, self.timeout, planned.keep_body).await;
            self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            let answered = Instant::now();
            let (failure, bytes) = match &result {
                Ok(answer) if answer.status.as_u16() >= 400 => {
                    (Some(Failure::Status(answer.status.as_u16())), answer.bytes)
                }
                Ok(answer) => {
                    self.workload.observe(planned.scenario, answer);
                    (None, answer.bytes)
                }
                Err(failure) => (Some(*failure), 0),
            };
            // From the scheduled time when the send was late (the wait is part of what a client
            // sees), from the send when it went out a little early.
            let outcome = Outcome {
                scenario: planned.scenario,
                latency_us: micros(answered - scheduled.min(sent)),
                lag_us: micros(sent.saturating_duration_since(scheduled)),
                failure,
                bytes,
                second: answered.saturating_duration_since(self.start).as_secs(),
            };
            self.recorder.record(&self.shared, outcome);
            // A server that refuses connections would otherwise be hammered in a tight loop.
            if failure == Some(Failure::Connect) && matches!(self.model, Model::Closed { .. }) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.recorder.flush(&self.shared);
        self.recorder
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The live line: every second on a terminal (rewritten in place), every ten seconds as plain
/// lines otherwise.
async fn progress(shared: Arc<Shared>, model: Model, start: Instant, done: Arc<AtomicBool>, enabled: bool) {
    if !enabled {
        return;
    }
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal { Duration::from_secs(1) } else { Duration::from_secs(10) };
    let mut ticker = tokio::time::interval_at(start + every, every);
    let mut last_completed = 0u64;
    let mut last_tick = start;
    while !done.load(Ordering::Relaxed) {
        let now = ticker.tick().await;
        if done.load(Ordering::Relaxed) {
            break;
        }
        let completed = shared.completed.load(Ordering::Relaxed);
        let rate = (completed - last_completed) as f64 / (now - last_tick).as_secs_f64();
        (last_completed, last_tick) = (completed, now);
        let t = now.saturating_duration_since(start).as_secs();
        // The last whole second, as far as the workers have flushed it.
        let (p50, p99) = t
            .checked_sub(1)
            .and_then(|second| shared.second(second))
            .filter(|second| !second.latency.is_empty())
            .map(|second| {
                (
                    second.latency.value_at_quantile(0.5) as f64 / 1000.0,
                    second.latency.value_at_quantile(0.99) as f64 / 1000.0,
                )
            })
            .unwrap_or_default();
        let target = match &model {
            Model::Open(schedule) => format!("/{:.0}", schedule.due_by(t as f64) - schedule.due_by(t as f64 - 1.0)),
            Model::Closed { .. } => String::new(),
        };
        let errors = shared.errors.load(Ordering::Relaxed);
        let line = format!(
            "{t:>5}s  rate {rate:>8.1}{target}/s  in flight {:>4}  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  requests {completed}  errors {errors}",
            shared.in_flight.load(Ordering::Relaxed)
        );
        if terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
    if terminal {
        eprintln!();
    }
}

fn build_report(
    plan: &Plan,
    workload: &Workload,
    shared: &Shared,
    scenarios: Vec<Tally>,
    lag: &hdrhistogram::Histogram<u64>,
    elapsed: Duration,
) -> Report {
    let mut total = Tally::new();
    for tally in &scenarios {
        total.merge(tally);
    }
    let duration_s = elapsed.as_secs_f64().max(1e-9);
    let schedule = match &plan.model {
        Model::Open(schedule) => Some(schedule),
        Model::Closed { .. } => None,
    };
    let timeline = shared
        .timeline()
        .iter()
        .enumerate()
        .map(|(t, second)| {
            let target = schedule.map(|s| s.due_by(t as f64 + 1.0) - s.due_by(t as f64));
            TimelineSecond::of(t as u64, second, target)
        })
        .collect();
    let names = workload.scenario_names();
    let scenario_reports: BTreeMap<String, ScenarioReport> = names
        .iter()
        .zip(&scenarios)
        .filter(|(name, tally)| {
            tally.requests > 0 || names.len() == 1 || plan.thresholds.iter().any(|t| t.scenario() == Some(**name))
        })
        .map(|(name, tally)| {
            let report = ScenarioReport {
                requests: tally.requests,
                achieved_rps: tally.requests as f64 / duration_s,
                errors: Errors::of(tally),
                latency_ms: Latency::of(tally),
            };
            ((*name).to_owned(), report)
        })
        .collect();
    let lag_ms = |q| if lag.is_empty() { 0.0 } else { lag.value_at_quantile(q) as f64 / 1000.0 };
    let mut report = Report {
        target: plan.target.clone(),
        scenario: plan.scenario.clone(),
        model: if schedule.is_some() { "open" } else { "closed" },
        connections: plan.connections,
        duration_s,
        target_rps: schedule.map(|s| s.total() as f64 / s.length().as_secs_f64()),
        achieved_rps: total.requests as f64 / duration_s,
        requests: total.requests,
        errors: Errors::of(&total),
        latency_ms: Latency::of(&total),
        start_lag_ms: Lag { p99: lag_ms(0.99), max: if lag.is_empty() { 0.0 } else { lag.max() as f64 / 1000.0 } },
        bytes_received: total.bytes,
        scenarios: scenario_reports,
        timeline,
        thresholds: Vec::new(),
    };
    report.thresholds = plan.thresholds.iter().map(|threshold| threshold.judge(&report)).collect();
    report
}
