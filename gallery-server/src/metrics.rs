//! Prometheus metrics of one worker: requests by route and status, upload stage durations,
//! uploads accepted and photos processed or failed, the backlog (the deployment's, as the
//! database holds it), time from upload to processed, and process CPU time (which the control
//! plane turns into CPU %).
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub stages: HistogramVec,
    pub accepted: IntCounter,
    pub processed: IntCounter,
    pub failed: IntCounter,
    /// Password checks refused by the throttle (429).
    pub throttled: IntCounter,
    /// By state: queued, processing, failed.
    pub backlog: IntGaugeVec,
    pub time_to_processed: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let stages = HistogramVec::new(
            HistogramOpts::new(
                "upload_stage_seconds",
                "Time spent in each upload pipeline stage",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["stage"],
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let accepted = counter(
            "uploads_accepted_total",
            "Uploads stored and queued for processing by this worker",
        );
        let processed = counter(
            "photos_processed_total",
            "Photos this worker's processors made ready",
        );
        let failed = counter(
            "photos_failed_total",
            "Photos this worker's processors gave up on",
        );
        let throttled = counter(
            "sign_ins_throttled_total",
            "Password checks refused for too many recent wrong passwords",
        );
        let backlog = IntGaugeVec::new(
            Opts::new(
                "backlog_photos",
                "Photos not yet ready, by state (the whole deployment)",
            ),
            &["state"],
        )
        .expect("valid metric");
        let time_to_processed = Histogram::with_opts(
            HistogramOpts::new(
                "time_to_processed_seconds",
                "From an upload's acceptance to its photo being ready",
            )
            .buckets(vec![
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(stages.clone()))
            .expect("unique metric");
        for c in [&accepted, &processed, &failed, &throttled] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(backlog.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(time_to_processed.clone()))
            .expect("unique metric");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        Metrics {
            registry,
            requests,
            stages,
            accepted,
            processed,
            failed,
            throttled,
            backlog,
            time_to_processed,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts every answered request under its route pattern (bounded label values).
pub struct RequestCounter(pub std::sync::Arc<Metrics>);

#[rocket::async_trait]
impl Fairing for RequestCounter {
    fn info(&self) -> Info {
        Info {
            name: "request counter",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let route = req
            .route()
            .map(|r| r.uri.origin.path().as_str().to_owned())
            .unwrap_or_else(|| "unmatched".into());
        self.0
            .requests
            .with_label_values(&[
                route.as_str(),
                req.method().as_str(),
                &res.status().code.to_string(),
            ])
            .inc();
    }
}

/// Publishes the users' requests and uploads since the last point and this process's CPU use
/// (percent of the machine) every `every`, for the aws control plane. A failed publication
/// is logged and its counts carried into the next one, so none is lost.
pub async fn publish(
    metrics: std::sync::Arc<Metrics>,
    publisher: common::cloudwatch::Publisher,
    every: std::time::Duration,
) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0);
    let pid = std::process::id();
    let read = || {
        let text = metrics.render();
        Reading {
            at: std::time::Instant::now(),
            requests: common::metrics::total_requests(&text).unwrap_or(0.0),
            uploads: common::metrics::upload_counts(&text),
            cpu_seconds: common::metrics::process_cpu_seconds(pid).unwrap_or(0.0),
        }
    };
    let mut last = read();
    let mut failures = 0u32;
    loop {
        tokio::time::sleep(every).await;
        let now = read();
        let elapsed = now.at.duration_since(last.at).as_secs_f64().max(1e-3);
        let point = common::cloudwatch::Point {
            requests: now.requests - last.requests,
            cpu_percent: ((now.cpu_seconds - last.cpu_seconds) / elapsed / cores * 100.0)
                .clamp(0.0, 100.0),
            uploads: now.uploads.uploads - last.uploads.uploads,
            refused_uploads: now.uploads.refused - last.uploads.refused,
        };
        match publisher.publish(std::time::SystemTime::now(), point).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(after = failures, "publishing metrics works again");
                }
                failures = 0;
                last = now;
            }
            Err(e) => {
                failures += 1;
                // Once, then every few minutes: a lasting outage should not flood the log.
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(error = %e, failures, "could not publish metrics");
                }
                // `last` stays: the next point carries these counts, and its CPU figure
                // averages over the whole gap.
            }
        }
    }
}

/// The process's counters at one moment.
struct Reading {
    at: std::time::Instant,
    requests: f64,
    uploads: common::metrics::UploadCounts,
    cpu_seconds: f64,
}
