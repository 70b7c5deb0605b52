//! What the workers measure and how it is summed.
//!
//! Each worker owns a [`Recorder`]: one HDR histogram of latency per scenario (microseconds,
//! three significant digits) and one of start lag, so recording a request takes no lock. The
//! per-second timeline is shared: a worker adds its second's small histogram to it when its
//! clock moves to the next second, and once more when it stops. Counters that the live
//! progress reads are atomics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Latency is recorded in microseconds, up to an hour.
const HIGHEST_US: u64 = 3_600_000_000;

pub(crate) fn histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, significant_digits).expect("valid histogram bounds")
}

/// Why a request did not get a good answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// An answer with a status of 400 or more.
    Status(u16),
    /// The connection could not be opened.
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection failed mid-request (reset, closed early, malformed answer).
    Io,
}

impl Failure {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Failure::Status(_) => "status",
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Io => "io",
        }
    }
}

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) scenario: usize,
    pub(crate) latency_us: u64,
    /// How late the request was sent after its scheduled start (no free connection, or a slow
    /// client). Zero in the closed model.
    pub(crate) lag_us: u64,
    pub(crate) failure: Option<Failure>,
    pub(crate) bytes: u64,
    /// Whole seconds from the start of the run to the answer.
    pub(crate) second: u64,
}

/// Counts of one scenario (or of the whole run, once merged).
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    pub(crate) latency: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) errors_by_kind: BTreeMap<&'static str, u64>,
    pub(crate) errors_by_status: BTreeMap<u16, u64>,
    pub(crate) bytes: u64,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            latency: histogram(3),
            requests: 0,
            errors_by_kind: BTreeMap::new(),
            errors_by_status: BTreeMap::new(),
            bytes: 0,
        }
    }

    fn record(&mut self, outcome: &Outcome) {
        self.latency.saturating_record(outcome.latency_us.max(1));
        self.requests += 1;
        self.bytes += outcome.bytes;
        if let Some(failure) = outcome.failure {
            *self.errors_by_kind.entry(failure.kind()).or_default() += 1;
            if let Failure::Status(status) = failure {
                *self.errors_by_status.entry(status).or_default() += 1;
            }
        }
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors_by_kind.values().sum()
    }

    pub(crate) fn merge(&mut self, other: &Tally) {
        self.latency.add(&other.latency).expect("histograms share their bounds");
        self.requests += other.requests;
        self.bytes += other.bytes;
        for (kind, n) in &other.errors_by_kind {
            *self.errors_by_kind.entry(kind).or_default() += n;
        }
        for (status, n) in &other.errors_by_status {
            *self.errors_by_status.entry(*status).or_default() += n;
        }
    }
}

/// One second of the timeline.
#[derive(Debug, Clone)]
pub(crate) struct Second {
    pub(crate) latency: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
}

impl Second {
    fn new() -> Second {
        Second { latency: histogram(2), requests: 0, errors: 0 }
    }
}

/// State every worker and the progress line share.
pub(crate) struct Shared {
    pub(crate) completed: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    timeline: Mutex<Vec<Second>>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            timeline: Mutex::new(Vec::new()),
        }
    }

    fn add_second(&self, index: u64, second: &Second) {
        let mut timeline = self.timeline.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = index as usize;
        if timeline.len() <= index {
            timeline.resize_with(index + 1, Second::new);
        }
        let slot = &mut timeline[index];
        slot.latency.add(&second.latency).expect("histograms share their bounds");
        slot.requests += second.requests;
        slot.errors += second.errors;
    }

    /// A copy of one second of the timeline as far as it has been flushed.
    pub(crate) fn second(&self, index: u64) -> Option<Second> {
        let timeline = self.timeline.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        timeline.get(index as usize).cloned()
    }

    pub(crate) fn timeline(&self) -> Vec<Second> {
        self.timeline.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// A worker's own measurements.
pub(crate) struct Recorder {
    pub(crate) scenarios: Vec<Tally>,
    pub(crate) lag: Histogram<u64>,
    second_index: u64,
    second: Second,
}

impl Recorder {
    pub(crate) fn new(n_scenarios: usize) -> Recorder {
        Recorder {
            scenarios: (0..n_scenarios).map(|_| Tally::new()).collect(),
            lag: histogram(3),
            second_index: 0,
            second: Second::new(),
        }
    }

    pub(crate) fn record(&mut self, shared: &Shared, outcome: Outcome) {
        self.scenarios[outcome.scenario].record(&outcome);
        self.lag.saturating_record(outcome.lag_us.max(1));
        if outcome.second != self.second_index {
            self.flush(shared);
            self.second_index = outcome.second;
        }
        self.second.latency.saturating_record(outcome.latency_us.max(1));
        self.second.requests += 1;
        if outcome.failure.is_some() {
            self.second.errors += 1;
            shared.errors.fetch_add(1, Ordering::Relaxed);
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the current second to the shared timeline.
    pub(crate) fn flush(&mut self, shared: &Shared) {
        if self.second.requests > 0 {
            shared.add_second(self.second_index, &self.second);
            self.second = Second::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(scenario: usize, latency_us: u64, failure: Option<Failure>, second: u64) -> Outcome {
        Outcome { scenario, latency_us, lag_us: 0, failure, bytes: 10, second }
    }

    #[test]
    fn recorders_merge_into_scenarios_and_a_timeline() {
        let shared = Shared::new();
        let mut a = Recorder::new(2);
        let mut b = Recorder::new(2);
        a.record(&shared, outcome(0, 1_000, None, 0));
        a.record(&shared, outcome(1, 3_000, Some(Failure::Status(503)), 0));
        b.record(&shared, outcome(0, 2_000, Some(Failure::Timeout), 0));
        a.record(&shared, outcome(0, 5_000, None, 2));
        a.flush(&shared);
        b.flush(&shared);

        let mut total = Tally::new();
        for tally in a.scenarios.iter().chain(&b.scenarios) {
            total.merge(tally);
        }
        assert_eq!(total.requests, 4);
        assert_eq!(total.errors(), 2);
        assert_eq!(total.errors_by_kind.get("status"), Some(&1));
        assert_eq!(total.errors_by_kind.get("timeout"), Some(&1));
        assert_eq!(total.errors_by_status.get(&503), Some(&1));
        assert_eq!(total.bytes, 40);

        let timeline = shared.timeline();
        assert_eq!(timeline.len(), 3);
        assert_eq!((timeline[0].requests, timeline[0].errors), (3, 2));
        assert_eq!(timeline[1].requests, 0);
        assert_eq!(timeline[2].requests, 1);
        assert_eq!(shared.completed.load(Ordering::Relaxed), 4);
        assert_eq!(shared.errors.load(Ordering::Relaxed), 2);
    }
}
