//! The aws deployment's metrics: each worker publishes its request count and CPU to
//! CloudWatch (high resolution, so the autoscaler sees seconds-old load rather than the
//! 5-minute EC2 basic monitoring), and the control plane reads them back per instance.
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, StandardUnit,
};
use aws_sdk_cloudwatch::Client;

/// Requests served since the previous point (a `Sum` per period is a request count).
pub const REQUESTS: &str = "HttpRequestCount";
/// The worker process's CPU use, percent of its machine.
pub const CPU: &str = "CPUUtilization";
/// Uploads answered since the previous point, and those of them answered 5xx (not accepted).
pub const UPLOADS: &str = "Uploads";
pub const REFUSED_UPLOADS: &str = "UploadsRefused";
pub const DIMENSION: &str = "InstanceId";
/// EC2's own CPU metric: used when a worker has published none (it is not running the
/// gallery yet, or publishing fails), at its coarser resolution.
const EC2_NAMESPACE: &str = "AWS/EC2";
/// The ALB's own metrics: replies it gave itself, per load balancer, by the minute.
const ALB_NAMESPACE: &str = "AWS/ApplicationELB";
const ALB_5XX: &str = "HTTPCode_ELB_5XX_Count";

/// What one worker publishes at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Requests answered since the previous point (probes left out).
    pub requests: f64,
    /// CPU use, percent of the machine.
    pub cpu_percent: f64,
    pub uploads: f64,
    pub refused_uploads: f64,
}

/// A CloudWatch client from the standard AWS chain (environment, profile, instance role;
/// `AWS_ENDPOINT_URL` points it at an emulator).
pub async fn client() -> Client {
    Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

/// An SDK error with the causes the SDK's own `Display` leaves out.
fn sdk_error<E: std::error::Error + 'static>(what: &str, e: E) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}: {}",
        aws_sdk_cloudwatch::error::DisplayErrorContext(e)
    )
}

fn instance(id: &str) -> Dimension {
    Dimension::builder().name(DIMENSION).value(id).build()
}

/// One worker's publisher.
pub struct Publisher {
    client: Client,
    namespace: String,
    instance_id: String,
}

impl Publisher {
    pub fn new(client: Client, namespace: &str, instance_id: &str) -> Self {
        Publisher {
            client,
            namespace: namespace.to_owned(),
            instance_id: instance_id.to_owned(),
        }
    }

    /// The point's metrics in one call, stored at one-second resolution.
    pub async fn publish(&self, at: SystemTime, point: Point) -> anyhow::Result<()> {
        let at = DateTime::from_secs_f64(crate::clock::unix_seconds(at));
        let datum = |name: &str, value: f64, unit: StandardUnit| {
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(instance(&self.instance_id))
                .timestamp(at)
                .value(value)
                .unit(unit)
                .storage_resolution(1)
                .build()
        };
        self.client
            .put_metric_data()
            .namespace(&self.namespace)
            .metric_data(datum(REQUESTS, point.requests, StandardUnit::Count))
            .metric_data(datum(CPU, point.cpu_percent, StandardUnit::Percent))
            .metric_data(datum(UPLOADS, point.uploads, StandardUnit::Count))
            .metric_data(datum(
                REFUSED_UPLOADS,
                point.refused_uploads,
                StandardUnit::Count,
            ))
            .send()
            .await
            .map_err(|e| sdk_error("PutMetricData", e))?;
        Ok(())
    }
}

/// One instance's points over a window, oldest first: (period start, value).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InstancePoints {
    /// Requests per second (the period's sum divided by its length).
    pub request_rate: Vec<(f64, f64)>,
    /// CPU, 0–1: the worker's own figure, or EC2's when the worker published none.
    pub cpu: Vec<(f64, f64)>,
    /// Whether `cpu` is the worker's own figure.
    pub cpu_is_own: bool,
    /// Uploads answered, and those refused, per period (counts).
    pub uploads: Vec<(f64, f64)>,
    pub refused_uploads: Vec<(f64, f64)>,
}

/// Reads `instances`' metrics from `from` to `to` in `period`-second buckets (60 for the
/// charts' minutes; 1–30 only exists for high-resolution metrics such as the workers').
/// EC2's CPU metric is asked for only for the instances in `ec2_cpu_for` (those that have
/// published no CPU of their own lately): each metric read is billed.
pub async fn read(
    client: &Client,
    namespace: &str,
    instances: &[String],
    ec2_cpu_for: &std::collections::HashSet<String>,
    from: SystemTime,
    to: SystemTime,
    period: i32,
) -> anyhow::Result<HashMap<String, InstancePoints>> {
    let mut out: HashMap<String, InstancePoints> = HashMap::new();
    // Five queries per instance; GetMetricData takes at most 500.
    for chunk in instances.chunks(100) {
        let mut queries = Vec::new();
        for (i, id) in chunk.iter().enumerate() {
            let query = |qid: String, ns: &str, name: &str, stat: &str| {
                MetricDataQuery::builder()
                    .id(qid)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace(ns)
                                    .metric_name(name)
                                    .dimensions(instance(id))
                                    .build(),
                            )
                            .period(period)
                            .stat(stat)
                            .build(),
                    )
                    .return_data(true)
                    .build()
            };
            queries.push(query(format!("r{i}"), namespace, REQUESTS, "Sum"));
            queries.push(query(format!("c{i}"), namespace, CPU, "Average"));
            queries.push(query(format!("u{i}"), namespace, UPLOADS, "Sum"));
            queries.push(query(format!("f{i}"), namespace, REFUSED_UPLOADS, "Sum"));
            if ec2_cpu_for.contains(id) {
                queries.push(query(format!("e{i}"), EC2_NAMESPACE, CPU, "Average"));
            }
        }
        let mut own_cpu: HashMap<usize, Vec<(f64, f64)>> = HashMap::new();
        let mut ec2_cpu: HashMap<usize, Vec<(f64, f64)>> = HashMap::new();
        for (qid, points) in metric_data(client, queries, from, to).await? {
            let (kind, index) = qid.split_at(1);
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            let Some(id) = chunk.get(index) else { continue };
            match kind {
                "r" => {
                    let entry = out.entry(id.clone()).or_default();
                    entry
                        .request_rate
                        .extend(points.into_iter().map(|(t, sum)| (t, sum / period as f64)));
                }
                "c" => own_cpu.entry(index).or_default().extend(points),
                "u" => out.entry(id.clone()).or_default().uploads.extend(points),
                "f" => out
                    .entry(id.clone())
                    .or_default()
                    .refused_uploads
                    .extend(points),
                _ => ec2_cpu.entry(index).or_default().extend(points),
            }
        }
        for (i, id) in chunk.iter().enumerate() {
            let own = own_cpu.remove(&i).unwrap_or_default();
            let cpu_is_own = !own.is_empty();
            let cpu = if cpu_is_own {
                own
            } else {
                ec2_cpu.remove(&i).unwrap_or_default()
            };
            let entry = out.entry(id.clone()).or_default();
            entry.cpu_is_own = cpu_is_own;
            entry.cpu = cpu
                .into_iter()
                .map(|(t, percent)| (t, (percent / 100.0).clamp(0.0, 1.0)))
                .collect();
        }
    }
    for points in out.values_mut() {
        // CloudWatch answers newest first.
        points.request_rate.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.cpu.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.uploads.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.refused_uploads.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(out)
}

/// The replies the load balancer `load_balancer` (its ARN's `app/<name>/<id>` part) gave
/// itself with a 5xx status (no healthy worker, a worker not answering), per minute from
/// `from` to `to`, oldest first: (minute, count).
pub async fn load_balancer_5xx(
    client: &Client,
    load_balancer: &str,
    from: SystemTime,
    to: SystemTime,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let query = MetricDataQuery::builder()
        .id("elb5xx")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(ALB_NAMESPACE)
                        .metric_name(ALB_5XX)
                        .dimensions(
                            Dimension::builder()
                                .name("LoadBalancer")
                                .value(load_balancer)
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build();
    let mut points: Vec<(f64, f64)> = metric_data(client, vec![query], from, to)
        .await?
        .into_iter()
        .flat_map(|(_, points)| points)
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(points)
}

/// Runs `queries` from `from` to `to`, every page: each query's id with its points (time,
/// value), in the order CloudWatch gives them.
async fn metric_data(
    client: &Client,
    queries: Vec<MetricDataQuery>,
    from: SystemTime,
    to: SystemTime,
) -> anyhow::Result<Vec<(String, Vec<(f64, f64)>)>> {
    let mut out = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let reply = client
            .get_metric_data()
            .start_time(DateTime::from_secs_f64(crate::clock::unix_seconds(from)))
            .end_time(DateTime::from_secs_f64(crate::clock::unix_seconds(to)))
            .set_metric_data_queries(Some(queries.clone()))
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| sdk_error("GetMetricData", e))?;
        for result in reply.metric_data_results() {
            let Some(qid) = result.id() else { continue };
            let points = result
                .timestamps()
                .iter()
                .zip(result.values())
                .map(|(t, v)| (t.as_secs_f64(), *v))
                .collect();
            out.push((qid.to_owned(), points));
        }
        next_token = reply.next_token().map(str::to_owned);
        if next_token.is_none() {
            return Ok(out);
        }
    }
}

/// The `LoadBalancer` dimension of an ALB's metrics, from its ARN
/// (`arn:…:loadbalancer/app/<name>/<id>` → `app/<name>/<id>`).
pub fn load_balancer_dimension(arn: &str) -> Option<&str> {
    arn.split_once(":loadbalancer/").map(|(_, rest)| rest)
}

/// This instance's id from the instance metadata service (IMDSv2).
pub async fn instance_id_from_metadata() -> anyhow::Result<String> {
    let imds = aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build();
    let id = imds
        .get("/latest/meta-data/instance-id")
        .await
        .map_err(|e| {
            anyhow::anyhow!("asking the instance metadata service for the instance id: {e}")
        })?;
    Ok(id.as_ref().to_owned())
}
