//! The open model's schedule: when each request starts.
//!
//! A schedule is a list of stages; each ramps the rate linearly from where the last one ended
//! (or the start rate) to its own rate over its duration, as k6's ramping arrival rate does. A
//! constant rate is one stage from R to R. `n(t)`, the number of requests due by time `t`, is
//! the integral of the rate; request `k` (from 0) starts at the `t` where `n(t) = k`, found by
//! solving that quadratic exactly, so the schedule holds its rate with no drift however long it
//! runs.

use std::time::Duration;

/// One stage as written on the command line: reach `rate` requests per second over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stage {
    pub(crate) duration: Duration,
    pub(crate) rate: f64,
}

impl Stage {
    /// Parses `30s:50,60s:200,30s:0`.
    pub(crate) fn parse_list(text: &str) -> Result<Vec<Stage>, String> {
        let stages = text
            .split(',')
            .map(|part| {
                let (duration, rate) = part
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| format!("stage `{part}` is not DURATION:RATE (for example 30s:50)"))?;
                let duration = parse_duration(duration)?;
                let rate = parse_rate(rate)?;
                Ok(Stage { duration, rate })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if stages.iter().all(|stage| stage.duration.is_zero()) {
            return Err("the stages last no time at all".to_owned());
        }
        Ok(stages)
    }
}

/// A duration as `250us`, `500ms`, `5s`, `2m`, `1h`, or a plain number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (for example 30s or 500ms)"))?;
    let seconds = match unit {
        "" | "s" => number,
        "us" | "µs" => number / 1e6,
        "ms" => number / 1e3,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("`{text}` has an unknown unit (use us, ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is not a duration"))
}

pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!("`{text}` is not a rate in requests per second")),
    }
}

#[derive(Debug, Clone)]
struct Segment {
    /// Seconds from the start of the run at which the segment begins.
    start: f64,
    length: f64,
    /// Requests due before the segment begins.
    before: f64,
    from: f64,
    to: f64,
}

impl Segment {
    fn requests(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.length
    }

    /// Requests due `t` seconds into the segment.
    fn due(&self, t: f64) -> f64 {
        self.from * t + (self.to - self.from) * t * t / (2.0 * self.length)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    segments: Vec<Segment>,
    length: f64,
    total: u64,
}

impl Schedule {
    pub(crate) fn constant(rate: f64, duration: Duration) -> Schedule {
        Schedule::ramps(rate, &[Stage { duration, rate }])
    }

    pub(crate) fn ramps(start_rate: f64, stages: &[Stage]) -> Schedule {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut start, mut before, mut from) = (0.0, 0.0, start_rate);
        for stage in stages {
            let length = stage.duration.as_secs_f64();
            if length > 0.0 {
                let segment = Segment { start, length, before, from, to: stage.rate };
                before += segment.requests();
                start += length;
                segments.push(segment);
            }
            from = stage.rate;
        }
        // Request k is due at n(t) = k, so the run holds the requests 0..ceil(n(end)); the small
        // tolerance keeps 200/s for 3 s at 600 despite rounding in the sum.
        let total = (before - 1e-9).max(0.0).ceil() as u64;
        Schedule { segments, length: start, total }
    }

    /// Requests in the whole run.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn length(&self) -> Duration {
        Duration::from_secs_f64(self.length)
    }

    /// When request `k` (from 0) starts, from the start of the run.
    pub(crate) fn offset(&self, k: u64) -> Duration {
        let k = k as f64;
        let segment = self
            .segments
            .iter()
            .find(|segment| segment.before + segment.requests() > k)
            .or(self.segments.last())
            .expect("a schedule has at least one segment");
        let n = k - segment.before;
        if n <= 0.0 {
            return Duration::from_secs_f64(segment.start);
        }
        // Solves from*t + a*t^2 = n with a = (to - from) / (2 length), in the form that stays
        // exact when a is zero or negative: t = 2n / (from + sqrt(from^2 + 4an)).
        let a = (segment.to - segment.from) / (2.0 * segment.length);
        let root = (segment.from * segment.from + 4.0 * a * n).max(0.0).sqrt();
        let t = (2.0 * n / (segment.from + root)).min(segment.length);
        Duration::from_secs_f64(segment.start + t)
    }

    /// Requests due in the run by `t` (seconds from the start), fractional.
    pub(crate) fn due_by(&self, t: f64) -> f64 {
        let Some(segment) = self.segments.iter().rev().find(|segment| segment.start <= t) else {
            return 0.0;
        };
        segment.before + segment.due((t - segment.start).min(segment.length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_constant_rate_spaces_requests_evenly() {
        let schedule = Schedule::constant(200.0, secs(3.0));
        assert_eq!(schedule.total(), 600);
        assert_eq!(schedule.offset(0), Duration::ZERO);
        for k in [1u64, 17, 599] {
            let expected = k as f64 / 200.0;
            assert!((schedule.offset(k).as_secs_f64() - expected).abs() < 1e-9, "request {k}");
        }
    }

    #[test]
    fn a_ramp_from_zero_follows_the_integral_of_the_rate() {
        // 0 -> 100/s over 10 s: n(t) = 5 t^2, 500 requests in all.
        let schedule = Schedule::ramps(0.0, &[Stage { duration: secs(10.0), rate: 100.0 }]);
        assert_eq!(schedule.total(), 500);
        for k in [1u64, 20, 125, 499] {
            let expected = (k as f64 / 5.0).sqrt();
            assert!((schedule.offset(k).as_secs_f64() - expected).abs() < 1e-9, "request {k}");
        }
    }

    #[test]
    fn stages_chain_ramps_up_hold_and_down() {
        let stages = Stage::parse_list("10s:100,10s:100,10s:0").unwrap();
        let schedule = Schedule::ramps(0.0, &stages);
        assert_eq!(schedule.total(), 500 + 1000 + 500);
        assert_eq!(schedule.length(), secs(30.0));
        // The first request of the plateau starts as the ramp ends; halfway down the last ramp
        // (rate 50/s) 375 of its 500 requests are due.
        assert!((schedule.offset(500).as_secs_f64() - 10.0).abs() < 1e-9);
        assert!((schedule.due_by(25.0) - (1500.0 + 375.0)).abs() < 1e-6);
        let last = schedule.offset(1999).as_secs_f64();
        assert!(last < 30.0 && last > 29.0, "{last}");
        // Offsets never go backwards.
        let offsets: Vec<Duration> = (0..schedule.total()).map(|k| schedule.offset(k)).collect();
        assert!(offsets.windows(2).all(|pair| pair[0] <= pair[1]));
    }

    #[test]
    fn due_by_matches_the_offsets() {
        let schedule = Schedule::ramps(20.0, &Stage::parse_list("7s:90,3s:10").unwrap());
        for k in [0u64, 1, 100, 400, schedule.total() - 1] {
            let t = schedule.offset(k).as_secs_f64();
            assert!((schedule.due_by(t) - k as f64).abs() < 1e-6, "request {k}");
        }
    }

    #[test]
    fn durations_and_stages_reject_nonsense() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), secs(120.0));
        assert_eq!(parse_duration("1.5").unwrap(), secs(1.5));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(Stage::parse_list("30s").is_err());
        assert!(Stage::parse_list("30s:-5").is_err());
        assert!(Stage::parse_list("0s:5").is_err());
    }
}
