//! The aws provider: workers are EC2 instances tagged `gallery:deployment = <name>`, serving
//! behind an ALB target group. The ALB balances and health-checks them; this module
//! launches, registers, deregisters (the ALB drains) and terminates them, and reads their
//! metrics from CloudWatch.
//!
//! Everything the pool knows is re-read from AWS on each health round, so a restarted
//! control plane adopts the instances it finds (draining ones included: the draining mark
//! is a tag, not memory).
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use aws_sdk_ec2::types::{
    Filter, IamInstanceProfileSpecification, InstanceStateName, InstanceType,
    LaunchTemplateSpecification, ResourceType, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
use base64::Engine;

use common::api::{Refusals, WorkerState, WorkerStatus};
use common::clock::now;
use common::cloudwatch;
use common::config::{ManagerConfig, ProviderKind};
use common::metrics::{Series, SERIES_AGE};

use super::{drain_order, mean_healthy_cpu, overdue, Provider};

/// The tag naming the deployment an instance belongs to.
pub const DEPLOYMENT_TAG: &str = "gallery:deployment";
/// Set (to the Unix time) when the control plane takes an instance out of the pool.
pub const DRAINING_TAG: &str = "gallery:draining-since";
/// On a warm standby instance: booted once, then stopped, waiting to be started in place of
/// a launch (AWS's warm pools: a start takes seconds where a first boot takes minutes).
pub const STANDBY_TAG: &str = "gallery:standby";
/// How long a launched instance may be missing from DescribeInstances before it is
/// considered gone.
const LISTING_GRACE: f64 = 60.0;

fn sdk_error<E: std::error::Error + 'static>(what: &str, e: E) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", aws_sdk_ec2::error::DisplayErrorContext(e))
}

/// What the ALB says of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    Unused,
    Unavailable,
}

impl TargetHealth {
    fn from_sdk(s: &TargetHealthStateEnum) -> TargetHealth {
        match s {
            TargetHealthStateEnum::Initial => TargetHealth::Initial,
            TargetHealthStateEnum::Healthy => TargetHealth::Healthy,
            TargetHealthStateEnum::Unhealthy | TargetHealthStateEnum::UnhealthyDraining => {
                TargetHealth::Unhealthy
            }
            TargetHealthStateEnum::Draining => TargetHealth::Draining,
            TargetHealthStateEnum::Unused => TargetHealth::Unused,
            _ => TargetHealth::Unavailable,
        }
    }
}

/// The worker state shown to the operator, from the instance's EC2 state, the ALB's view of
/// it as a target (`None`: not registered) and whether we are taking it out of the pool.
pub fn worker_state(
    ec2: &InstanceStateName,
    target: Option<TargetHealth>,
    draining: bool,
) -> WorkerState {
    use InstanceStateName::{Pending, Running, ShuttingDown, Terminated};
    if matches!(ec2, ShuttingDown | Terminated) {
        return WorkerState::Stopped;
    }
    if draining {
        return WorkerState::Draining;
    }
    match (ec2, target) {
        (Pending, _) => WorkerState::Starting,
        (Running, None | Some(TargetHealth::Initial)) => WorkerState::Starting,
        (Running, Some(TargetHealth::Healthy)) => WorkerState::Healthy,
        (Running, Some(TargetHealth::Draining)) => WorkerState::Draining,
        // Registered but unused (its zone is not enabled on the ALB) or unavailable: alive,
        // serving nobody; replaced if it stays so.
        _ => WorkerState::Unhealthy,
    }
}

/// A warm standby instance's state: warming while it boots the first time and until it is
/// stopped; ready once stopped.
pub fn standby_state(ec2: &InstanceStateName) -> WorkerState {
    use InstanceStateName::{ShuttingDown, Stopped, Terminated};
    match ec2 {
        Stopped => WorkerState::Standby,
        ShuttingDown | Terminated => WorkerState::Stopped,
        _ => WorkerState::Warming,
    }
}

/// One instance as DescribeInstances lists it.
struct Described {
    id: String,
    ec2: InstanceStateName,
    /// `ip:port` of its worker; empty until it has a private address.
    address: String,
    launched_at: f64,
    /// From its draining tag, when the control plane took it out of the pool.
    draining_since: Option<f64>,
    /// It carries the standby tag.
    standby: bool,
}

/// How late a worker's own CPU point can be, beyond the interval it is read at (a 10 s
/// period, the publisher's interval, CloudWatch's ingestion).
const OWN_POINT_LAG: f64 = 60.0;
/// EC2's CPU metric without detailed monitoring: a 5-minute period, published minutes after.
const EC2_POINT_LAG: f64 = 600.0;

struct Instance {
    ec2: InstanceStateName,
    address: String,
    launched_at: f64,
    target: Option<TargetHealth>,
    draining_since: Option<f64>,
    state: WorkerState,
    /// When `state` last changed (start and unhealthy timeouts).
    since: f64,
    terminating: bool,
    cpu: Series,
    requests: Series,
    /// The last 30 minutes have been read once (after launch or adoption).
    backfilled: bool,
    /// When the worker's own CPU figure was last seen (EC2's is read while it is stale).
    own_cpu_at: Option<f64>,
    /// A warm standby instance, not part of the pool.
    standby: bool,
    /// As standby, it passed the ALB's checks once: its first boot is done, and it may be
    /// stopped.
    warmed: bool,
    stop_requested: bool,
    /// Started in place of a launch: a worker now, even while its standby tag lingers.
    promoted: bool,
    /// The end of the last upload-count period added to the pool's refusals.
    uploads_counted_to: f64,
}

impl Instance {
    /// Whether the latest CPU point still says something about `t`, when points are read
    /// every `read_every` seconds: the worker's own arrive a period or two late, so an older
    /// one means it stopped publishing; EC2's basic monitoring has 5-minute points, minutes late.
    fn cpu_is_current(&self, t: f64, read_every: f64) -> bool {
        self.cpu.last().is_some_and(|(at, _)| {
            let own = self.own_cpu_at.is_some_and(|o| o >= at);
            t - at <= read_every + if own { OWN_POINT_LAG } else { EC2_POINT_LAG }
        })
    }

    /// A pending instance, as launched or first seen; each health round fills in the rest.
    fn new(address: String, launched_at: f64) -> Instance {
        Instance {
            ec2: InstanceStateName::Pending,
            address,
            launched_at,
            target: None,
            draining_since: None,
            state: WorkerState::Starting,
            since: now(),
            terminating: false,
            cpu: Series::new(SERIES_AGE),
            requests: Series::new(SERIES_AGE),
            backfilled: false,
            own_cpu_at: None,
            standby: false,
            warmed: false,
            stop_requested: false,
            promoted: false,
            uploads_counted_to: 0.0,
        }
    }
}

pub struct AwsPool {
    ec2: aws_sdk_ec2::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    config: Arc<ManagerConfig>,
    target_group: String,
    user_data: Option<String>,
    entry_point: Option<String>,
    /// The target group's deregistration delay: how long the ALB drains a target.
    deregistration_delay: f64,
    instances: Mutex<BTreeMap<String, Instance>>,
    next_subnet: AtomicUsize,
    /// When the workers' metrics were last read (reads are rationed, see
    /// `metrics_read_interval_secs`).
    last_read: Mutex<f64>,
    /// The ALB's `LoadBalancer` metric dimension, when the target group has one.
    load_balancer: Option<String>,
    /// Counted from the metrics since this control plane started.
    refusals: Mutex<CountedRefusals>,
    started_at: f64,
}

#[derive(Default)]
struct CountedRefusals {
    totals: Refusals,
    /// The end of the last ALB minute added to `totals`.
    load_balancer_counted_to: f64,
}

/// Which points of a metric read are new to a running count: complete periods (ended by
/// `now`; the current one is read again once complete) starting at or after `counted_to`,
/// the end of the last period counted, and none that ended before this control plane
/// `started`. Reads overlap, so each period is counted once.
struct Uncounted {
    period: f64,
    counted_to: f64,
    started: f64,
    now: f64,
}

impl Uncounted {
    /// The sum of `points`' new periods (time, count), and the count's new end.
    fn sum(&self, points: &[(f64, f64)]) -> (u64, f64) {
        let new = points
            .iter()
            .filter(|(at, _)| *at >= self.counted_to && at + self.period <= self.now);
        let sum: f64 = new
            .clone()
            .filter(|(at, _)| at + self.period > self.started)
            .map(|(_, v)| v)
            .sum();
        let end = new
            .map(|(at, _)| at + self.period)
            .fold(self.counted_to, f64::max);
        (sum.round() as u64, end)
    }
}

/// AWS clients from the standard chain (environment, profile, instance role), in the
/// deployment's region when it is configured (a laptop's default region may be another).
pub async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    loader.load().await
}

impl AwsPool {
    /// Checks the target group exists and learns its ALB's address, then adopts the
    /// deployment's running instances.
    pub async fn new(config: Arc<ManagerConfig>) -> anyhow::Result<AwsPool> {
        let sdk = sdk_config(config.aws_region.as_deref()).await;
        let target_group = config
            .aws_target_group_arn
            .clone()
            .context("aws_target_group_arn is not set")?;
        let user_data = match &config.aws_user_data_file {
            Some(path) => {
                let text = std::fs::read(path)
                    .with_context(|| format!("reading user data {}", path.display()))?;
                Some(base64::engine::general_purpose::STANDARD.encode(text))
            }
            None => None,
        };
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let groups = elb
            .describe_target_groups()
            .target_group_arns(&target_group)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("target group {target_group}"), e))?;
        let group = groups
            .target_groups()
            .first()
            .context("the target group does not exist")?;
        let mut entry_point = config.aws_public_url.clone();
        let load_balancer = group
            .load_balancer_arns()
            .first()
            .and_then(|arn| cloudwatch::load_balancer_dimension(arn))
            .map(str::to_owned);
        if entry_point.is_none() && !group.load_balancer_arns().is_empty() {
            let lbs = elb
                .describe_load_balancers()
                .set_load_balancer_arns(Some(group.load_balancer_arns().to_vec()))
                .send()
                .await
                .map_err(|e| sdk_error("DescribeLoadBalancers", e))?;
            entry_point = lbs
                .load_balancers()
                .first()
                .and_then(|lb| lb.dns_name())
                .map(|dns| format!("http://{dns}"));
        }
        let attributes = elb
            .describe_target_group_attributes()
            .target_group_arn(&target_group)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTargetGroupAttributes", e))?;
        let deregistration_delay = attributes
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value())
            .and_then(|v| v.parse().ok())
            .unwrap_or(300.0);
        let pool = AwsPool {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            elb,
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            config,
            target_group,
            user_data,
            entry_point,
            deregistration_delay,
            instances: Mutex::new(BTreeMap::new()),
            next_subnet: AtomicUsize::new(0),
            last_read: Mutex::new(0.0),
            load_balancer,
            refusals: Mutex::new(CountedRefusals::default()),
            started_at: now(),
        };
        pool.refresh().await?;
        let adopted = pool.instances.lock().unwrap().len();
        tracing::info!(adopted, deregistration_delay, "aws pool ready");
        Ok(pool)
    }

    fn tag(key: &str, value: &str) -> Tag {
        Tag::builder().key(key).value(value).build()
    }

    /// The deployment's instances that are not terminated.
    async fn describe(&self) -> anyhow::Result<Vec<Described>> {
        let mut out = Vec::new();
        let mut next_token = None;
        loop {
            let reply = self
                .ec2
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{DEPLOYMENT_TAG}"))
                        .values(&self.config.aws_deployment)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("pending")
                        .values("running")
                        .values("stopping")
                        .values("stopped")
                        .values("shutting-down")
                        .build(),
                )
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| sdk_error("DescribeInstances", e))?;
            for reservation in reply.reservations() {
                for i in reservation.instances() {
                    let Some(id) = i.instance_id() else { continue };
                    let ec2 = i
                        .state()
                        .and_then(|s| s.name())
                        .cloned()
                        .unwrap_or(InstanceStateName::Pending);
                    let address = i
                        .private_ip_address()
                        .map(|ip| format!("{ip}:{}", self.config.aws_worker_port))
                        .unwrap_or_default();
                    let launched = i.launch_time().map(|t| t.as_secs_f64()).unwrap_or_else(now);
                    let draining_since = i
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(DRAINING_TAG))
                        .and_then(|t| t.value())
                        .and_then(|v| v.parse::<f64>().ok());
                    let standby = i.tags().iter().any(|t| t.key() == Some(STANDBY_TAG));
                    out.push(Described {
                        id: id.to_owned(),
                        ec2,
                        address,
                        launched_at: launched,
                        draining_since,
                        standby,
                    });
                }
            }
            next_token = reply.next_token().map(str::to_owned);
            if next_token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn target_health(&self) -> anyhow::Result<HashMap<String, TargetHealth>> {
        let reply = self
            .elb
            .describe_target_health()
            .target_group_arn(&self.target_group)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTargetHealth", e))?;
        Ok(reply
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let id = d.target()?.id()?.to_owned();
                let state = d.target_health()?.state()?;
                Some((id, TargetHealth::from_sdk(state)))
            })
            .collect())
    }

    fn target(&self, id: &str) -> TargetDescription {
        TargetDescription::builder()
            .id(id)
            .port(self.config.aws_worker_port as i32)
            .build()
    }

    async fn register(&self, ids: &[String]) -> anyhow::Result<()> {
        let targets = ids.iter().map(|id| self.target(id)).collect();
        self.elb
            .register_targets()
            .target_group_arn(&self.target_group)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| sdk_error("RegisterTargets", e))?;
        tracing::info!(?ids, "registered with the target group");
        Ok(())
    }

    async fn terminate(&self, ids: &[String]) -> anyhow::Result<()> {
        self.ec2
            .terminate_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("TerminateInstances", e))?;
        tracing::info!(?ids, "terminated");
        Ok(())
    }

    /// Removes the standby tag from `ids`, started as workers.
    async fn untag_standby(&self, ids: &[String]) -> anyhow::Result<()> {
        self.ec2
            .delete_tags()
            .set_resources(Some(ids.to_vec()))
            .tags(Tag::builder().key(STANDBY_TAG).build())
            .send()
            .await
            .map_err(|e| sdk_error("DeleteTags", e))?;
        Ok(())
    }

    /// Re-reads the pool from EC2 and the target group; registers instances that came up,
    /// terminates drained ones and ones that never became (or stopped being) healthy.
    async fn refresh(&self) -> anyhow::Result<()> {
        let described = self.describe().await?;
        let health = self.target_health().await?;
        let t = now();
        let drain_limit = self.deregistration_delay + self.config.drain_timeout_secs;
        let mut to_register = Vec::new();
        let mut to_terminate = Vec::new();
        let mut to_deregister = Vec::new();
        let mut to_stop = Vec::new();
        let mut to_untag = Vec::new();
        {
            let mut instances = self.instances.lock().unwrap();
            let seen: std::collections::HashSet<&str> =
                described.iter().map(|d| d.id.as_str()).collect();
            // DescribeInstances is eventually consistent, and a launch may land while it
            // runs: an instance we launched a moment ago is kept even if not listed yet.
            instances.retain(|id, i| {
                seen.contains(id.as_str()) || (t - i.launched_at < LISTING_GRACE && !i.terminating)
            });
            for Described {
                id,
                ec2,
                address,
                launched_at,
                draining_since,
                standby,
            } in described
            {
                let target = health.get(&id).copied();
                let entry = instances
                    .entry(id.clone())
                    .or_insert_with(|| Instance::new(address.clone(), launched_at));
                entry.ec2 = ec2;
                if !address.is_empty() {
                    entry.address = address;
                }
                entry.target = target;
                entry.draining_since = entry.draining_since.or(draining_since);
                entry.standby = standby && !entry.promoted;
                if standby && entry.promoted {
                    // Its untagging failed when it was started: until it is gone, a control
                    // plane that restarts would take this worker for a standby.
                    to_untag.push(id.clone());
                }
                let state = if entry.standby {
                    standby_state(&entry.ec2)
                } else {
                    worker_state(&entry.ec2, target, entry.draining_since.is_some())
                };
                if state != entry.state {
                    tracing::info!(worker = %id, from = entry.state.as_str(), to = state.as_str(), "state changed");
                    entry.state = state;
                    entry.since = t;
                }
                if entry.terminating || entry.state == WorkerState::Stopped {
                    continue;
                }
                if entry.standby {
                    // Registered while it boots, so that the ALB's checks say when the
                    // first boot (the release's download, the user data) is done; then
                    // out of rotation and stopped. Its user data never runs again.
                    match (entry.state, target) {
                        (WorkerState::Warming, _)
                            if overdue(
                                entry.state,
                                entry.since,
                                t,
                                self.config.start_timeout_secs,
                            ) =>
                        {
                            tracing::warn!(worker = %id, "standby instance not ready in time; replacing it");
                            to_terminate.push(id.clone());
                        }
                        (WorkerState::Warming, Some(TargetHealth::Healthy)) => {
                            entry.warmed = true;
                            to_deregister.push(id.clone());
                        }
                        (WorkerState::Warming, None | Some(TargetHealth::Unused))
                            if entry.ec2 == InstanceStateName::Running =>
                        {
                            if !entry.warmed && target.is_none() {
                                to_register.push(id.clone());
                            } else if entry.warmed && !entry.stop_requested {
                                entry.stop_requested = true;
                                to_stop.push(id.clone());
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                match entry.state {
                    WorkerState::Draining => {
                        let drained = matches!(target, None | Some(TargetHealth::Unused));
                        let since = entry.draining_since.unwrap_or(entry.since);
                        if drained || t - since > drain_limit {
                            to_terminate.push(id.clone());
                        }
                    }
                    state if overdue(state, entry.since, t, self.config.start_timeout_secs) => {
                        tracing::warn!(worker = %id, state = entry.state.as_str(), "not healthy in time; replacing it");
                        to_terminate.push(id.clone());
                    }
                    WorkerState::Starting
                        if entry.ec2 == InstanceStateName::Running && target.is_none() =>
                    {
                        to_register.push(id.clone())
                    }
                    _ => {}
                }
            }
            for id in &to_terminate {
                if let Some(i) = instances.get_mut(id) {
                    i.terminating = true;
                }
            }
        }
        if !to_untag.is_empty() {
            if let Err(e) = self.untag_standby(&to_untag).await {
                tracing::warn!(error = %e, "could not untag promoted standby instances; trying again");
            }
        }
        if !to_register.is_empty() {
            if let Err(e) = self.register(&to_register).await {
                tracing::error!(error = %e, "could not register new workers");
            }
        }
        if !to_deregister.is_empty() {
            if let Err(e) = self.deregister(&to_deregister).await {
                tracing::error!(error = %e, "could not take warmed standby instances out of rotation");
            }
        }
        if !to_stop.is_empty() {
            if let Err(e) = self.stop(&to_stop).await {
                tracing::error!(error = %e, "could not stop warmed standby instances");
                let mut instances = self.instances.lock().unwrap();
                for id in &to_stop {
                    if let Some(i) = instances.get_mut(id) {
                        i.stop_requested = false;
                    }
                }
            }
        }
        if !to_terminate.is_empty() {
            // A worker being replaced may still be registered; take it out first.
            let registered: Vec<String> =
                to_terminate.iter().filter(|id| matches!(health.get(*id), Some(h) if *h != TargetHealth::Draining && *h != TargetHealth::Unused)).cloned().collect();
            if !registered.is_empty() {
                let _ = self.deregister(&registered).await;
            }
            self.terminate_marked(&to_terminate, "workers").await;
        }
        Ok(())
    }

    /// Terminates instances already marked `terminating`: stopped once EC2 takes it, or
    /// unmarked (tried again later) if it does not.
    async fn terminate_marked(&self, ids: &[String], what: &str) {
        let result = self.terminate(ids).await;
        let t = now();
        let mut instances = self.instances.lock().unwrap();
        if let Err(e) = &result {
            tracing::error!(error = %e, "could not terminate {what}");
        }
        for id in ids {
            if let Some(i) = instances.get_mut(id) {
                if result.is_ok() {
                    i.state = WorkerState::Stopped;
                    i.since = t;
                } else {
                    i.terminating = false;
                }
            }
        }
    }

    /// Launches one instance from the configuration: a worker, or a warm standby instance
    /// (tagged so at launch, as the control plane's policy allows tagging only then).
    async fn run_instance(&self, standby: bool) -> anyhow::Result<String> {
        let c = &self.config;
        let mut tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Self::tag(DEPLOYMENT_TAG, &c.aws_deployment))
            .tags(Self::tag("Name", &format!("{}-worker", c.aws_deployment)));
        if standby {
            tags = tags.tags(Self::tag(STANDBY_TAG, "warm"));
        }
        let mut request = self
            .ec2
            .run_instances()
            .min_count(1)
            .max_count(1)
            .tag_specifications(tags.build());
        if let Some(template) = &c.aws_launch_template {
            let spec = LaunchTemplateSpecification::builder().version("$Latest");
            let spec = if template.starts_with("lt-") {
                spec.launch_template_id(template)
            } else {
                spec.launch_template_name(template)
            };
            request = request.launch_template(spec.build());
        } else {
            request = request.instance_type(InstanceType::from(c.aws_instance_type.as_str()));
        }
        if let Some(image) = &c.aws_image_id {
            request = request.image_id(image);
        }
        if !c.aws_subnets.is_empty() {
            let n = self.next_subnet.fetch_add(1, Ordering::Relaxed);
            request = request.subnet_id(&c.aws_subnets[n % c.aws_subnets.len()]);
        }
        if !c.aws_security_groups.is_empty() {
            request = request.set_security_group_ids(Some(c.aws_security_groups.clone()));
        }
        if let Some(data) = &self.user_data {
            request = request.user_data(data);
        }
        if let Some(profile) = &c.aws_instance_profile {
            let spec = IamInstanceProfileSpecification::builder();
            let spec = if profile.starts_with("arn:") {
                spec.arn(profile)
            } else {
                spec.name(profile)
            };
            request = request.iam_instance_profile(spec.build());
        }
        let reply = request
            .send()
            .await
            .map_err(|e| sdk_error("RunInstances", e))?;
        let instance = reply
            .instances()
            .first()
            .context("RunInstances returned no instance")?;
        let id = instance
            .instance_id()
            .context("RunInstances returned no instance id")?
            .to_owned();
        let address = instance
            .private_ip_address()
            .map(|ip| format!("{ip}:{}", c.aws_worker_port))
            .unwrap_or_default();
        let mut launched = Instance::new(address, now());
        launched.standby = standby;
        if standby {
            launched.state = WorkerState::Warming;
        }
        self.instances.lock().unwrap().insert(id.clone(), launched);
        tracing::info!(worker = %id, standby, "launched instance");
        Ok(id)
    }

    async fn stop(&self, ids: &[String]) -> anyhow::Result<()> {
        self.ec2
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("StopInstances", e))?;
        tracing::info!(?ids, "warm standby instances booted and stopped");
        Ok(())
    }

    async fn deregister(&self, ids: &[String]) -> anyhow::Result<()> {
        let targets = ids.iter().map(|id| self.target(id)).collect();
        self.elb
            .deregister_targets()
            .target_group_arn(&self.target_group)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| sdk_error("DeregisterTargets", e))?;
        tracing::info!(?ids, "deregistered; the ALB drains them");
        Ok(())
    }

    /// Reads new metric points: the last 30 minutes (1-minute periods) once per instance,
    /// then the recent high-resolution points.
    async fn read_metrics(&self) -> anyhow::Result<()> {
        let t = now();
        {
            let mut last = self.last_read.lock().unwrap();
            if t - *last < self.config.metrics_read_interval_secs {
                return Ok(());
            }
            *last = t;
        }
        let (fresh, all, quiet): (Vec<String>, Vec<String>, std::collections::HashSet<String>) = {
            let instances = self.instances.lock().unwrap();
            // A standby instance serves nobody and, stopped, publishes nothing.
            let live = instances
                .iter()
                .filter(|(_, i)| i.state != WorkerState::Stopped && !i.standby);
            let fresh = live
                .clone()
                .filter(|(_, i)| !i.backfilled)
                .map(|(id, _)| id.clone())
                .collect();
            // No CPU point of its own in the last two minutes: ask EC2's metric too.
            let quiet = live
                .clone()
                .filter(|(_, i)| i.own_cpu_at.is_none_or(|at| t - at > 120.0))
                .map(|(id, _)| id.clone())
                .collect();
            (fresh, live.map(|(id, _)| id.clone()).collect(), quiet)
        };
        if all.is_empty() {
            // No worker: just when the ALB answers uploads itself.
            return self.read_load_balancer_5xx(t).await;
        }
        let to = SystemTime::now();
        let ns = &self.config.metrics_namespace;
        // Periods start at multiples of their length (as CloudWatch rounds them), so the same
        // bucket has the same time in every read and is kept once.
        let aligned = |secs: f64, period: f64| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(((secs / period).floor() * period) as u64)
        };
        let mut batches = Vec::new();
        if !fresh.is_empty() {
            let from = aligned(t - SERIES_AGE, 60.0);
            batches.push((
                fresh.clone(),
                60.0,
                cloudwatch::read(&self.cloudwatch, ns, &fresh, &quiet, from, to, 60).await?,
            ));
        }
        // Two minutes back covers a late publication.
        let period = 10;
        let from = aligned(t - 120.0, period as f64);
        batches.push((
            all.clone(),
            period as f64,
            cloudwatch::read(&self.cloudwatch, ns, &all, &quiet, from, to, period).await?,
        ));
        {
            let mut instances = self.instances.lock().unwrap();
            for (ids, period, points) in batches {
                for id in ids {
                    let Some(i) = instances.get_mut(&id) else {
                        continue;
                    };
                    i.backfilled = true;
                    let Some(p) = points.get(&id) else { continue };
                    if p.cpu_is_own {
                        i.own_cpu_at = p.cpu.last().map(|(at, _)| *at).or(i.own_cpu_at);
                    }
                    // The current period is still filling up; it is read again once complete.
                    let complete = |at: f64| at + period <= t;
                    for &(at, v) in p.cpu.iter().filter(|(at, _)| complete(*at)) {
                        if i.cpu.last().is_none_or(|(last, _)| at > last) {
                            i.cpu.push(at, v);
                        }
                    }
                    for &(at, v) in p.request_rate.iter().filter(|(at, _)| complete(*at)) {
                        if i.requests.last().is_none_or(|(last, _)| at > last) {
                            i.requests.push(at, v);
                        }
                    }
                    let window = Uncounted {
                        period,
                        counted_to: i.uploads_counted_to,
                        started: self.started_at,
                        now: t,
                    };
                    let (uploads, to_a) = window.sum(&p.uploads);
                    let (refused, to_b) = window.sum(&p.refused_uploads);
                    let mut counted = self.refusals.lock().unwrap();
                    counted.totals.uploads += uploads;
                    counted.totals.refused_uploads += refused;
                    i.uploads_counted_to = to_a.max(to_b);
                }
            }
        }
        self.read_load_balancer_5xx(t).await
    }

    /// Adds the ALB's own 5xx replies of the minutes completed since the last read.
    async fn read_load_balancer_5xx(&self, t: f64) -> anyhow::Result<()> {
        let Some(lb) = &self.load_balancer else {
            return Ok(());
        };
        // ALB metrics arrive a minute or two late: look back five.
        let from =
            SystemTime::UNIX_EPOCH + Duration::from_secs(((t - 300.0) / 60.0).floor() as u64 * 60);
        let points =
            cloudwatch::load_balancer_5xx(&self.cloudwatch, lb, from, SystemTime::now()).await?;
        let mut counted = self.refusals.lock().unwrap();
        let (added, counted_to) = Uncounted {
            period: 60.0,
            counted_to: counted.load_balancer_counted_to,
            started: self.started_at,
            now: t,
        }
        .sum(&points);
        counted.totals.load_balancer_5xx += added;
        counted.load_balancer_counted_to = counted_to;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Provider for AwsPool {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Aws
    }

    async fn launch(&self) -> anyhow::Result<String> {
        self.run_instance(false).await
    }

    fn refusals(&self) -> Option<Refusals> {
        Some(self.refusals.lock().unwrap().totals)
    }

    fn has_standby(&self) -> bool {
        true
    }

    async fn launch_standby(&self) -> anyhow::Result<String> {
        self.run_instance(true).await
    }

    /// Starts the longest-ready stopped standby instance in place of a launch; it joins the
    /// pool as a starting worker, registered once running.
    async fn promote_standby(&self) -> Option<String> {
        let id = {
            let instances = self.instances.lock().unwrap();
            instances
                .iter()
                .filter(|(_, i)| i.standby && i.state == WorkerState::Standby && !i.terminating)
                .min_by(|a, b| a.1.since.total_cmp(&b.1.since))
                .map(|(id, _)| id.clone())?
        };
        if let Err(e) = self.ec2.start_instances().instance_ids(&id).send().await {
            // No capacity for its type in its zone, typically: a launch may find some.
            tracing::warn!(worker = %id, error = %sdk_error("StartInstances", e), "could not start a standby instance; launching instead");
            return None;
        }
        let t = now();
        if let Some(i) = self.instances.lock().unwrap().get_mut(&id) {
            i.standby = false;
            i.promoted = true;
            i.ec2 = InstanceStateName::Pending;
            i.state = WorkerState::Starting;
            i.since = t;
            i.launched_at = t;
        }
        // Untagged, it is a worker to a control plane that restarts; until then `promoted`
        // says so, and each refresh tries again.
        if let Err(e) = self.untag_standby(std::slice::from_ref(&id)).await {
            tracing::warn!(worker = %id, error = %e, "could not untag a promoted standby instance; trying again");
        }
        tracing::info!(worker = %id, "standby instance started in place of a launch");
        Some(id)
    }

    /// Terminates up to `n` standby instances, those still warming first.
    async fn retire_standby(&self, n: u32) {
        let chosen: Vec<(String, bool)> = {
            let mut instances = self.instances.lock().unwrap();
            let mut standby: Vec<(bool, String)> = instances
                .iter()
                .filter(|(_, i)| i.standby && !i.terminating && i.state != WorkerState::Stopped)
                .map(|(id, i)| (i.state == WorkerState::Standby, id.clone()))
                .collect();
            standby.sort();
            standby
                .into_iter()
                .take(n as usize)
                .map(|(_, id)| {
                    let i = instances.get_mut(&id).expect("present");
                    i.terminating = true;
                    (id, i.target.is_some())
                })
                .collect()
        };
        if chosen.is_empty() {
            return;
        }
        let registered: Vec<String> = chosen
            .iter()
            .filter(|(_, r)| *r)
            .map(|(id, _)| id.clone())
            .collect();
        if !registered.is_empty() {
            let _ = self.deregister(&registered).await;
        }
        let ids: Vec<String> = chosen.into_iter().map(|(id, _)| id).collect();
        self.terminate_marked(&ids, "standby instances").await;
    }

    /// Marks the instances (tag first, so a restart still knows), then deregisters them:
    /// the ALB stops sending them new requests and drains the ones in flight.
    async fn mark_draining(&self, n: u32) -> Vec<String> {
        let t = now();
        let chosen: Vec<(String, bool)> = {
            let mut instances = self.instances.lock().unwrap();
            let live = instances.iter().filter(|(_, i)| !i.terminating);
            drain_order(live.map(|(id, i)| (id.clone(), i.state, i.launched_at)), n)
                .into_iter()
                .map(|id| {
                    let i = instances.get_mut(&id).expect("present");
                    i.state = WorkerState::Draining;
                    i.since = t;
                    i.draining_since = Some(t);
                    (id, i.target.is_some())
                })
                .collect()
        };
        if chosen.is_empty() {
            return Vec::new();
        }
        let ids: Vec<String> = chosen.iter().map(|(id, _)| id.clone()).collect();
        if let Err(e) = self
            .ec2
            .create_tags()
            .set_resources(Some(ids.clone()))
            .tags(Self::tag(DRAINING_TAG, &format!("{t:.0}")))
            .send()
            .await
        {
            tracing::error!(error = %sdk_error("CreateTags", e), "could not mark workers as draining");
        }
        let registered: Vec<String> = chosen
            .into_iter()
            .filter(|(_, r)| *r)
            .map(|(id, _)| id)
            .collect();
        if !registered.is_empty() {
            if let Err(e) = self.deregister(&registered).await {
                tracing::error!(error = %e, "could not deregister workers");
            }
        }
        ids
    }

    /// The health rounds terminate the instance once the ALB has drained it; this waits
    /// for that (bounded by the deregistration delay and the drain timeout).
    async fn drain_and_stop(&self, id: &str) {
        let deadline = now() + self.deregistration_delay + self.config.drain_timeout_secs + 60.0;
        while now() < deadline {
            let gone = self
                .instances
                .lock()
                .unwrap()
                .get(id)
                .is_none_or(|i| i.state == WorkerState::Stopped);
            if gone {
                tracing::info!(worker = %id, "worker drained and terminated");
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tracing::warn!(worker = %id, "worker still not terminated after its drain deadline");
    }

    async fn check_health(&self) {
        if let Err(e) = self.refresh().await {
            tracing::error!(error = %e, "could not read the pool from AWS");
        }
    }

    async fn sample(&self) -> Option<f64> {
        if let Err(e) = self.read_metrics().await {
            tracing::warn!(error = %e, "could not read worker metrics from CloudWatch");
        }
        let instances = self.instances.lock().unwrap();
        let t = now();
        let read_every = self.config.metrics_read_interval_secs;
        mean_healthy_cpu(
            instances
                .values()
                .filter(|i| i.cpu_is_current(t, read_every))
                .map(|i| (i.state, &i.cpu)),
            t,
            f64::INFINITY,
        )
    }

    async fn status(&self) -> Vec<WorkerStatus> {
        self.instances
            .lock()
            .unwrap()
            .iter()
            .map(|(id, i)| {
                // Being terminated: no longer part of the pool, though EC2 may still list it.
                let state = if i.terminating {
                    WorkerState::Stopped
                } else {
                    i.state
                };
                WorkerStatus::from_series(
                    id,
                    &i.address,
                    None,
                    state,
                    i.launched_at,
                    &i.cpu,
                    &i.requests,
                    0,
                )
            })
            .collect()
    }

    /// Instances outlive the control plane; a restart adopts them.
    fn kill_all(&self) {}

    async fn entry_point(&self) -> Option<String> {
        self.entry_point.clone()
    }

    fn outlives_control_plane(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_complete_period_is_counted_once_and_none_from_before_the_start() {
        // 10 s periods; the control plane started at 105, it is now 139.
        let points = [
            (90.0, 5.0),
            (100.0, 2.0),
            (110.0, 3.0),
            (120.0, 4.0),
            (130.0, 9.0),
        ];
        let first = Uncounted {
            period: 10.0,
            counted_to: 0.0,
            started: 105.0,
            now: 139.0,
        };
        // 90 ended before the start; 100 ended after it; 130 is still filling up.
        assert_eq!(first.sum(&points), (9, 130.0));
        // The next read overlaps: only the period completed since counts.
        let next = Uncounted {
            counted_to: 130.0,
            now: 141.0,
            ..first
        };
        assert_eq!(next.sum(&points), (9, 140.0));
        assert_eq!(
            Uncounted {
                counted_to: 140.0,
                now: 150.0,
                ..first
            }
            .sum(&points),
            (0, 140.0),
            "nothing new"
        );
    }

    #[test]
    fn ec2s_five_minute_cpu_counts_while_a_workers_own_must_be_recent() {
        let t = 10_000.0;
        let mut own = Instance::new("10.0.0.1:8000".into(), 0.0);
        own.cpu.push(t - 90.0, 0.5);
        own.own_cpu_at = Some(t - 90.0);
        assert!(
            own.cpu_is_current(t, 60.0),
            "read a minute ago, a period late"
        );
        assert!(!own.cpu_is_current(t + 60.0, 60.0), "it stopped publishing");
        let mut ec2 = Instance::new("10.0.0.2:8000".into(), 0.0);
        ec2.cpu.push(t - 420.0, 0.5);
        assert!(ec2.cpu_is_current(t, 60.0), "EC2's latest 5-minute point");
        assert!(!ec2.cpu_is_current(t + 600.0, 60.0));
        // A worker that published once, then fell back to EC2's point.
        own.cpu.push(t - 30.0, 0.4);
        assert!(own.cpu_is_current(t + 500.0, 60.0));
    }

    #[test]
    fn worker_states_follow_ec2_and_the_target_group() {
        use InstanceStateName::{Pending, Running, ShuttingDown, Stopped};
        use TargetHealth::*;
        assert_eq!(worker_state(&Pending, None, false), WorkerState::Starting);
        assert_eq!(worker_state(&Running, None, false), WorkerState::Starting);
        assert_eq!(
            worker_state(&Running, Some(Initial), false),
            WorkerState::Starting
        );
        assert_eq!(
            worker_state(&Running, Some(Healthy), false),
            WorkerState::Healthy
        );
        assert_eq!(
            worker_state(&Running, Some(Unhealthy), false),
            WorkerState::Unhealthy
        );
        assert_eq!(
            worker_state(&Running, Some(Unused), false),
            WorkerState::Unhealthy
        );
        assert_eq!(
            worker_state(&Running, Some(Draining), false),
            WorkerState::Draining
        );
        assert_eq!(worker_state(&Stopped, None, false), WorkerState::Unhealthy);
        // Our mark wins over what the ALB has not caught up with yet.
        assert_eq!(
            worker_state(&Running, Some(Healthy), true),
            WorkerState::Draining
        );
        assert_eq!(
            worker_state(&ShuttingDown, Some(Draining), true),
            WorkerState::Stopped
        );
    }
}
