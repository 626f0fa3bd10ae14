//! What a deployment's pool of workers must offer the control plane. `local` (worker
//! processes behind the built-in balancer) lives in manager-tui beside that balancer; `aws`
//! (EC2 instances in an ALB target group) is [`aws`], behind the `aws` feature because its
//! SDK clients are slow to compile. [`cloudwatch`] is what workers and the control plane
//! share of CloudWatch (the worker publishes, the control plane reads).
use async_trait::async_trait;

#[cfg(feature = "aws")]
pub mod aws;
pub mod cloudwatch;

use crate::api::{WorkerState, WorkerStatus};

#[async_trait]
pub trait Provider: Send + Sync {
    /// `local` or `aws`, as shown to the operator.
    fn kind(&self) -> &'static str;
    /// Starts one worker; it serves once it passes health checks.
    async fn launch(&self) -> anyhow::Result<String>;
    /// Workers that count towards the pool size: starting, healthy, or unhealthy but alive.
    async fn active_count(&self) -> u32;
    async fn count(&self, state: WorkerState) -> u32;
    /// Takes `n` workers out of rotation at once (the cheapest to lose first: starting,
    /// then unhealthy, then the newest) and returns their ids.
    async fn mark_draining(&self, n: u32) -> Vec<String>;
    /// Lets a draining worker finish its requests, then stops it.
    async fn drain_and_stop(&self, id: &str);
    /// One round of health checks; forgets workers that died or never came up, so the
    /// reconciler replaces them.
    async fn check_health(&self);
    /// Samples CPU and request rates; returns the mean CPU (0–1) of healthy workers.
    async fn sample(&self) -> Option<f64>;
    async fn status(&self) -> Vec<WorkerStatus>;
    /// Stops every worker at once, without draining (the control plane is going away).
    fn kill_all(&self);
    /// Where users reach the deployment, when the provider knows it better than the
    /// configuration (the ALB's DNS name).
    async fn entry_point(&self) -> Option<String> {
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
        .filter(|(_, s, _)| matches!(s, WorkerState::Starting | WorkerState::Healthy | WorkerState::Unhealthy))
        .map(|(k, s, started)| (rank(s), started, k))
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    candidates.into_iter().take(n as usize).map(|(_, _, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_starting_then_unhealthy_then_the_newest() {
        use WorkerState::*;
        let pool = [(1, Healthy, 10.0), (2, Healthy, 30.0), (3, Unhealthy, 5.0), (4, Draining, 40.0), (5, Starting, 1.0), (6, Healthy, 20.0)];
        assert_eq!(drain_order(pool, 4), vec![5, 3, 2, 6]);
        assert_eq!(drain_order(pool, 10), vec![5, 3, 2, 6, 1], "a draining worker is not drained twice");
        assert!(drain_order(pool, 0).is_empty());
    }
}
