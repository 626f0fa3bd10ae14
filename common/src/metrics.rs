//! Time series kept in memory and pruned by age (like bottom's), and per-process CPU
//! sampling from /proc.
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How far back the dashboards look: thirty minutes of samples per worker.
pub const SERIES_AGE: f64 = 30.0 * 60.0;

/// One value per sample time, oldest first, never older than `max_age` seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Series {
    points: VecDeque<(f64, f64)>,
    #[serde(skip)]
    max_age: f64,
}

impl Series {
    pub fn new(max_age: f64) -> Self {
        Series {
            points: VecDeque::new(),
            max_age,
        }
    }

    pub fn push(&mut self, at: f64, value: f64) {
        self.points.push_back((at, value));
        while self
            .points
            .front()
            .is_some_and(|(t, _)| at - t > self.max_age)
        {
            self.points.pop_front();
        }
    }

    pub fn last(&self) -> Option<(f64, f64)> {
        self.points.back().copied()
    }

    pub fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Mean per whole minute (bucketed by `floor(t / 60)`), oldest first.
    pub fn per_minute(&self) -> Vec<(f64, f64)> {
        let mut out: Vec<(f64, f64, u32)> = Vec::new();
        for (t, v) in self.points() {
            let minute = (t / 60.0).floor() * 60.0;
            match out.last_mut() {
                Some(last) if last.0 == minute => {
                    last.1 += v;
                    last.2 += 1;
                }
                _ => out.push((minute, v, 1)),
            }
        }
        out.into_iter()
            .map(|(m, sum, n)| (m, sum / n as f64))
            .collect()
    }
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// A `Key:   123 kB` line of a `/proc` file such as `/proc/meminfo` or `/proc/self/status`,
/// in KiB.
pub fn proc_kib(text: &str, key: &str) -> Option<u64> {
    let mut value = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace();
    let kib = value.next()?.parse().ok()?;
    (value.next() == Some("kB")).then_some(kib)
}

/// One `http_requests_total` sample of a Prometheus text exposition: its labels (empty when
/// it has none) and its value, `None` where the value is not a number.
struct RequestSample<'a> {
    labels: &'a str,
    value: Option<f64>,
}

impl RequestSample<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.split(',').find_map(|kv| {
            kv.strip_prefix(name)?
                .strip_prefix("=\"")?
                .strip_suffix('"')
        })
    }
}

fn request_samples(exposition: &str) -> impl Iterator<Item = RequestSample<'_>> {
    exposition.lines().filter_map(|line| {
        let rest = line.strip_prefix("http_requests_total")?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(labelled) => labelled.rsplit_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        Some(RequestSample {
            labels,
            value: value.trim().parse().ok(),
        })
    })
}

/// Sum of the `http_requests_total` samples in a Prometheus text exposition, leaving out
/// the control plane's own probes (`/healthz`, `/metrics`): the rate is the users' traffic.
pub fn total_requests(exposition: &str) -> Option<f64> {
    let mut total = None;
    for sample in request_samples(exposition) {
        let value = sample.value?;
        let probe = matches!(sample.label("route"), Some("/healthz" | "/metrics"));
        *total.get_or_insert(0.0) += if probe { 0.0 } else { value };
    }
    total
}

/// The routes that take an upload: the API's and the page's form.
pub const UPLOAD_ROUTES: [&str; 2] = ["/api/upload", "/upload"];

/// Uploads a worker answered, and those it answered 5xx (not accepted: the backlog full, the
/// database and the store both away), from `http_requests_total` in a Prometheus text
/// exposition.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UploadCounts {
    pub uploads: f64,
    pub refused: f64,
}

pub fn upload_counts(exposition: &str) -> UploadCounts {
    let mut counts = UploadCounts::default();
    for sample in request_samples(exposition) {
        let Some(value) = sample.value else { continue };
        let upload = sample.label("method") == Some("POST")
            && sample
                .label("route")
                .is_some_and(|r| UPLOAD_ROUTES.contains(&r));
        if upload {
            counts.uploads += value;
            if sample.label("status").is_some_and(|s| s.starts_with('5')) {
                counts.refused += value;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_prunes_by_age_and_buckets_per_minute() {
        let mut s = Series::new(120.0);
        for t in 0..40 {
            s.push(t as f64 * 5.0, t as f64);
        }
        // 195 s now; kept: 75..=195.
        assert_eq!(s.points().next(), Some((75.0, 15.0)));
        assert_eq!(s.last(), Some((195.0, 39.0)));
        let m = s.per_minute();
        assert_eq!(
            m.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![60.0, 120.0, 180.0]
        );
        assert_eq!(
            m[0].1,
            (15.0 + 16.0 + 17.0 + 18.0 + 19.0 + 20.0 + 21.0 + 22.0 + 23.0) / 9.0
        );
    }

    #[test]
    fn own_cpu_time_is_readable() {
        let before = process_cpu_seconds(std::process::id()).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_seconds(std::process::id()).unwrap() >= before);
        assert_eq!(process_cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn upload_counts_from_prometheus_text() {
        let text = "http_requests_total{method=\"POST\",route=\"/api/upload\",status=\"200\"} 4\n\
            http_requests_total{method=\"POST\",route=\"/api/upload\",status=\"503\"} 2\n\
            http_requests_total{method=\"POST\",route=\"/upload\",status=\"500\"} 1\n\
            http_requests_total{method=\"POST\",route=\"/upload\",status=\"303\"} 3\n\
            http_requests_total{method=\"POST\",route=\"/api/upload\",status=\"413\"} 5\n\
            http_requests_total{method=\"GET\",route=\"/upload\",status=\"500\"} 7\n\
            http_requests_total{method=\"POST\",route=\"/api/register\",status=\"503\"} 8\n";
        assert_eq!(
            upload_counts(text),
            UploadCounts {
                uploads: 15.0,
                refused: 3.0
            }
        );
        assert_eq!(upload_counts(""), UploadCounts::default());
    }

    #[test]
    fn proc_lines_in_kib() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemAvailable:   1234 kB\nHugePages_Total:       0\n";
        assert_eq!(proc_kib(meminfo, "MemAvailable"), Some(1234));
        assert_eq!(proc_kib(meminfo, "MemTotal"), Some(24_000_000));
        assert_eq!(proc_kib(meminfo, "HugePages_Total"), None, "not in kB");
        assert_eq!(proc_kib(meminfo, "Mem"), None, "a whole key only");
        assert_eq!(proc_kib(meminfo, "VmHWM"), None);
    }

    #[test]
    fn request_totals_from_prometheus_text() {
        let text = "# HELP http_requests_total x\n# TYPE http_requests_total counter\n\
            http_requests_total{method=\"GET\",route=\"/\",status=\"200\"} 3\n\
            http_requests_total{method=\"POST\",route=\"/api/upload\",status=\"200\"} 4\n\
            http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 50\n\
            http_requests_total_other 100\nprocess_cpu_seconds_total 1.5\n";
        assert_eq!(total_requests(text), Some(7.0));
        let probes_only =
            "http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 9\n";
        assert_eq!(total_requests(probes_only), Some(0.0));
        assert_eq!(total_requests("process_cpu_seconds_total 1\n"), None);
    }
}
