//! What a deployment's pool of workers must offer the control plane. `local` (worker
//! processes behind the built-in balancer, in manager-tui) implements it today; `aws` (EC2
//! behind an ALB target group) is the next one.
use async_trait::async_trait;

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
}
