//! The deployment's pool of workers, as the control plane drives it. [`local`]: worker
//! processes on this machine behind the built-in balancer; [`aws`]: EC2 instances in an ALB
//! target group, behind the `aws` feature because its SDK clients are slow to compile. Both
//! follow the rules written once here: which workers leave first, when one is replaced,
//! which CPU figures the autoscaler sees.
use async_trait::async_trait;

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

use common::api::{WorkerState, WorkerStatus};
use common::config::ProviderKind;
use common::metrics::Series;

#[async_trait]
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// Starts one worker; it serves once it passes health checks.
    async fn launch(&self) -> anyhow::Result<String>;
    /// Takes `n` workers out of rotation at once (in [`drain_order`]) and returns their ids.
    async fn mark_draining(&self, n: u32) -> Vec<String>;
    /// Lets a draining worker finish its requests, then stops it.
    async fn drain_and_stop(&self, id: &str);
    /// One round of health checks; forgets workers that died or never came up, so the
    /// reconciler replaces them.
    async fn check_health(&self);
    /// Samples CPU and request rates; returns the mean CPU (0–1) of healthy workers.
    async fn sample(&self) -> Option<f64>;
    /// Every worker the pool knows; counts by state come from `PoolCounts::of` this.
    async fn status(&self) -> Vec<WorkerStatus>;
    /// Whether this provider keeps warm standby workers ([`Provider::launch_standby`]).
    fn has_standby(&self) -> bool {
        false
    }
    /// Starts one warm standby worker: booted, then idle out of rotation until promoted.
    async fn launch_standby(&self) -> anyhow::Result<String> {
        anyhow::bail!("this provider keeps no warm standby")
    }
    /// Puts a ready standby worker into service in place of a launch; `None` when none is
    /// ready.
    async fn promote_standby(&self) -> Option<String> {
        None
    }
    /// Stops up to `n` standby workers, booting ones first.
    async fn retire_standby(&self, _n: u32) {}
    /// Stops every worker at once, without draining (the control plane is going away).
    fn kill_all(&self);
    /// Where users reach the deployment, when the provider knows it better than the
    /// configuration (the ALB's DNS name).
    async fn entry_point(&self) -> Option<String> {
        None
    }
    /// What was turned away, where the provider's own load balancer counts it (on AWS,
    /// CloudWatch); the local balancer's counts are the control plane's own.
    fn refusals(&self) -> Option<common::api::Refusals> {
        None
    }
    /// Whether workers keep serving when the control plane process stops (EC2 instances do;
    /// they are adopted again on the next start). When false, a stopping control plane
    /// stops its workers.
    fn outlives_control_plane(&self) -> bool {
        false
    }
}

/// Which workers to take out of the pool first, at most `n`: starting ones (they serve
/// nobody yet), then unhealthy ones, then the newest healthy ones. Workers already leaving
/// are not candidates. Each item is (key, state, start time).
pub fn drain_order<K>(workers: impl IntoIterator<Item = (K, WorkerState, f64)>, n: u32) -> Vec<K> {
    let rank = |s: WorkerState| match s {
        WorkerState::Starting => 0,
        WorkerState::Unhealthy => 1,
        _ => 2,
    };
    let mut candidates: Vec<(u8, f64, K)> = workers
        .into_iter()
        .filter(|(_, s, _)| s.is_active())
        .map(|(k, s, started)| (rank(s), started, k))
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    candidates
        .into_iter()
        .take(n as usize)
        .map(|(_, _, k)| k)
        .collect()
}

/// Whether a worker that has been `state` since `since` is to be replaced: one that never
/// came up, or stopped being healthy, for longer than `timeout` seconds.
pub fn overdue(state: WorkerState, since: f64, now: f64, timeout: f64) -> bool {
    matches!(
        state,
        WorkerState::Starting | WorkerState::Unhealthy | WorkerState::Warming
    ) && now - since > timeout
}

/// The mean CPU (0–1) of the healthy workers whose latest point is at most `max_age` seconds
/// old (an older one says nothing about now); starting workers are left out, since booting
/// skews the average. `None` when no healthy worker has a fresh point.
pub fn mean_healthy_cpu<'a>(
    workers: impl IntoIterator<Item = (WorkerState, &'a Series)>,
    now: f64,
    max_age: f64,
) -> Option<f64> {
    let fresh: Vec<f64> = workers
        .into_iter()
        .filter(|(state, _)| *state == WorkerState::Healthy)
        .filter_map(|(_, cpu)| {
            cpu.last()
                .filter(|(at, _)| now - at <= max_age)
                .map(|(_, v)| v)
        })
        .collect();
    (!fresh.is_empty()).then(|| fresh.iter().sum::<f64>() / fresh.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::metrics::SERIES_AGE;

    #[test]
    fn drains_starting_then_unhealthy_then_the_newest() {
        use WorkerState::*;
        let pool = [
            (1, Healthy, 10.0),
            (2, Healthy, 30.0),
            (3, Unhealthy, 5.0),
            (4, Draining, 40.0),
            (5, Starting, 1.0),
            (6, Healthy, 20.0),
            (7, Standby, 50.0),
            (8, Warming, 60.0),
        ];
        assert_eq!(
            drain_order(pool, 4),
            vec![5, 3, 2, 6],
            "standby workers are not part of the pool's size"
        );
        assert_eq!(
            drain_order(pool, 10),
            vec![5, 3, 2, 6, 1],
            "a draining worker is not drained twice"
        );
        assert!(drain_order(pool, 0).is_empty());
    }

    #[test]
    fn replaces_only_workers_not_serving_for_too_long() {
        use WorkerState::*;
        assert!(overdue(Starting, 0.0, 121.0, 120.0));
        assert!(overdue(Unhealthy, 0.0, 121.0, 120.0));
        assert!(!overdue(Starting, 0.0, 119.0, 120.0));
        assert!(!overdue(Healthy, 0.0, 1000.0, 120.0));
        assert!(
            !overdue(Draining, 0.0, 1000.0, 120.0),
            "draining has its own deadline"
        );
        assert!(
            overdue(Warming, 0.0, 121.0, 120.0),
            "a standby that never came up is replaced too"
        );
        assert!(!overdue(Standby, 0.0, 1000.0, 120.0));
    }

    #[test]
    fn mean_cpu_counts_fresh_points_of_healthy_workers_only() {
        let series = |points: &[(f64, f64)]| {
            let mut s = Series::new(SERIES_AGE);
            for &(at, v) in points {
                s.push(at, v);
            }
            s
        };
        let (a, b, booting, stale) = (
            series(&[(99.0, 0.2), (100.0, 0.4)]),
            series(&[(100.0, 0.8)]),
            series(&[(100.0, 1.0)]),
            series(&[(30.0, 0.9)]),
        );
        let pool = [
            (WorkerState::Healthy, &a),
            (WorkerState::Healthy, &b),
            (WorkerState::Starting, &booting),
            (WorkerState::Healthy, &stale),
        ];
        let near = |m: Option<f64>, want: f64| m.is_some_and(|m| (m - want).abs() < 1e-9);
        assert!(
            near(mean_healthy_cpu(pool, 100.0, 60.0), 0.6),
            "the stale and the booting worker are left out"
        );
        assert!(
            near(mean_healthy_cpu(pool, 100.5, 0.5), 0.6),
            "this sample's points only"
        );
        assert_eq!(
            mean_healthy_cpu(pool, 101.0, 0.5),
            None,
            "no point from this sample"
        );
        assert_eq!(
            mean_healthy_cpu([(WorkerState::Healthy, &stale)], 100.0, 60.0),
            None
        );
    }
}
