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
