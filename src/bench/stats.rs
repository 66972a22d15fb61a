//! Latency and error recording for `latchkey bench`, and the report it prints.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// What one worker measured.
#[derive(Debug, Default)]
pub struct Recorder {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    /// One answered request: `status` 2xx counts as success, anything else as an error.
    pub fn record(&mut self, latency: Duration, status: u16) {
        if (200..300).contains(&status) {
            self.latencies.push(latency);
        } else {
            *self.errors.entry(status.to_string()).or_default() += 1;
        }
    }

    /// A request that got no HTTP answer at all.
    pub fn record_failure(&mut self, kind: &str) {
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        self.latencies.extend(other.latencies);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    pub fn successes(&self) -> usize {
        self.latencies.len()
    }
}

/// Server-side resource use, read from `/proc/PID` (Linux).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcessUse {
    /// Peak resident set size (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// CPU time used during the measurement, as a share of one core (1.0 = one core busy).
    pub cpu_cores: f64,
}

/// The result of one scenario run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub concurrency: usize,
    pub requests: usize,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ProcessUse>,
}

impl Report {
    pub fn new(
        scenario: &str,
        concurrency: usize,
        mut recorder: Recorder,
        elapsed: Duration,
        server: Option<ProcessUse>,
    ) -> Self {
        recorder.latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let quantile = |q: f64| {
            let l = &recorder.latencies;
            if l.is_empty() {
                return 0.0;
            }
            let index = ((l.len() as f64 * q).ceil() as usize).clamp(1, l.len()) - 1;
            ms(l[index])
        };
        let requests = recorder.latencies.len();
        let seconds = elapsed.as_secs_f64();
        Report {
            scenario: scenario.to_owned(),
            concurrency,
            requests,
            seconds,
            requests_per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            max_ms: recorder.latencies.last().map_or(0.0, |d| ms(*d)),
            errors: recorder.errors,
            server,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "scenario      {}\nconcurrency   {}\nrequests      {} in {:.2} s\nthroughput    {:.1} req/s\nlatency ms    p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\nerrors        {}\n",
            self.scenario,
            self.concurrency,
            self.requests,
            self.seconds,
            self.requests_per_second,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            errors
        );
        if let Some(server) = &self.server {
            out.push_str(&format!(
                "server        peak RSS {:.1} MiB, CPU {:.2} cores\n",
                server.peak_rss_mib, server.cpu_cores
            ));
        }
        out
    }
}

/// Reads peak RSS and total CPU ticks of a process from `/proc`.
pub fn process_sample(pid: u32) -> Option<(f64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((peak_kib / 1024.0, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_errors() {
        let mut recorder = Recorder::default();
        for ms in 1..=100 {
            recorder.record(Duration::from_millis(ms), 200);
        }
        recorder.record(Duration::from_millis(5), 400);
        recorder.record_failure("connect");
        let report = Report::new("x", 1, recorder, Duration::from_secs(2), None);
        assert_eq!(report.requests, 100);
        assert_eq!(report.requests_per_second, 50.0);
        assert_eq!(report.p50_ms, 50.0);
        assert_eq!(report.p99_ms, 99.0);
        assert_eq!(report.max_ms, 100.0);
        assert_eq!(report.errors.get("400"), Some(&1));
        assert_eq!(report.errors.get("connect"), Some(&1));
    }
}
