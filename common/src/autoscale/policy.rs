//! The operator's settings for the autoscaler: which policy sizes the pool, its parameters,
//! the bounds and the warm standby. Stored by the control plane, slid on the dashboard.
use serde::{Deserialize, Serialize};

/// What the pool is sized on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// The CPU step policy: grow by a ratio above a CPU threshold, shrink by one below
    /// another (what the original system ran).
    Cpu,
    /// The demand policy: as many workers as clear the arrivals and the backlog within the
    /// drain target, at each worker's measured processing rate.
    #[default]
    Demand,
}

impl PolicyKind {
    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Cpu => "CPU step",
            PolicyKind::Demand => "demand",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub kind: PolicyKind,
    /// Average CPU (0–1) of healthy workers above which the pool grows.
    pub grow_cpu: f64,
    /// Average CPU below which the pool shrinks.
    pub shrink_cpu: f64,
    pub expand_ratio: f64,
    pub shrink_ratio: f64,
    pub min_workers: u32,
    pub max_workers: u32,
    /// Give up waiting for a resize to complete after this long.
    pub resize_timeout_secs: f64,
    /// After a resize, no decision for this long (fresh samples must reflect the new size);
    /// the demand policy still grows during it, and only scale-in waits.
    pub cooldown_secs: f64,
    /// Scale out on the mean CPU of this many seconds of samples (0: the latest sample), so
    /// one noisy short sample does not launch workers.
    pub grow_window_secs: f64,
    /// Scale in only if every sample of this many seconds agrees (CPU below the shrink
    /// threshold; for the demand policy, no backlog and fewer workers needed).
    pub scale_in_window_secs: f64,
    /// Thresholds must be exceeded by this much (absolute CPU) before acting.
    pub tolerance: f64,
    /// Samples older than this are too stale to act on.
    pub max_sample_age_secs: f64,
    /// The demand policy sizes the pool to clear the backlog within this many seconds (on
    /// top of keeping up with the arrivals). A worker launched to drain a backlog costs its
    /// boot and the scale-in window besides the draining it does, about two minutes: at a
    /// 60 s target that overhead was twice the work, and a flash crowd cost more instance
    /// time than the CPU step policy; at 300 s it is small, and photos still wait little
    /// longer, as their wait is mostly the boot (`scripts/simulate`).
    pub drain_target_secs: f64,
    /// Photos per second one worker processes, until the workers' own rate has been
    /// measured (while a backlog kept them busy).
    pub assumed_rate_per_worker: f64,
    /// The CPU one accept costs a worker, as a share of processing one photo
    /// (`scripts/bench/worker-cpu` prints both: 7.5 ms against 167 ms for a 1–3 MP photo).
    /// Accepts run ahead of processing, so a worker
    /// taking many uploads processes fewer: the demand policy counts accepts as this much work
    /// to measure what a worker can process and to size the pool.
    pub accept_share: f64,
    /// Workers kept ready beyond the desired size, so growing does not wait for a boot:
    /// started idle processes locally, stopped instances on AWS.
    pub standby_workers: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            kind: PolicyKind::default(),
            grow_cpu: 0.6,
            shrink_cpu: 0.1,
            expand_ratio: 1.5,
            shrink_ratio: 0.5,
            min_workers: 1,
            max_workers: 10,
            resize_timeout_secs: 150.0,
            cooldown_secs: 60.0,
            grow_window_secs: 15.0,
            scale_in_window_secs: 60.0,
            tolerance: 0.02,
            max_sample_age_secs: 30.0,
            drain_target_secs: 300.0,
            assumed_rate_per_worker: 2.0,
            accept_share: 0.045,
            standby_workers: 1,
        }
    }
}

impl Policy {
    /// The policy the original system ran: CPU steps of ×1.5 / ×0.5, no windows, no standby.
    pub fn cpu_step() -> Policy {
        Policy {
            kind: PolicyKind::Cpu,
            tolerance: 0.0,
            grow_window_secs: 0.0,
            scale_in_window_secs: 0.0,
            standby_workers: 0,
            ..Policy::default()
        }
    }

    /// Checks the policy; the message is shown to the operator as is.
    pub fn validate(&self) -> Result<(), String> {
        let in_unit = |v: f64| (0.0..=1.0).contains(&v);
        if !in_unit(self.grow_cpu) || !in_unit(self.shrink_cpu) {
            return Err("CPU thresholds must be between 0 and 1".into());
        }
        if self.grow_cpu <= self.shrink_cpu {
            return Err(format!(
                "the grow threshold ({:.2}) must be above the shrink threshold ({:.2})",
                self.grow_cpu, self.shrink_cpu
            ));
        }
        if !(self.expand_ratio > 1.0 && self.expand_ratio <= 10.0) {
            return Err(format!(
                "the expand ratio ({}) must be above 1 (and at most 10)",
                self.expand_ratio
            ));
        }
        if !(self.shrink_ratio > 0.0 && self.shrink_ratio < 1.0) {
            return Err(format!(
                "the shrink ratio ({}) must be between 0 and 1",
                self.shrink_ratio
            ));
        }
        if self.min_workers < 1 || self.min_workers > self.max_workers {
            return Err(format!(
                "worker bounds must satisfy 1 ≤ min ({}) ≤ max ({})",
                self.min_workers, self.max_workers
            ));
        }
        if self.max_workers > 1000 {
            return Err("at most 1000 workers".into());
        }
        if self.standby_workers > 100 {
            return Err("at most 100 standby workers".into());
        }
        for (name, v) in [
            ("resize timeout", self.resize_timeout_secs),
            ("cooldown", self.cooldown_secs),
            ("scale-in window", self.scale_in_window_secs),
            ("grow window", self.grow_window_secs),
            ("sample age", self.max_sample_age_secs),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("the {name} must be zero or more seconds"));
            }
        }
        if !(self.drain_target_secs.is_finite() && self.drain_target_secs >= 1.0) {
            return Err("the drain target must be at least 1 second".into());
        }
        if !(self.assumed_rate_per_worker.is_finite() && self.assumed_rate_per_worker > 0.0) {
            return Err("the assumed rate per worker must be above 0 photos/s".into());
        }
        if !(0.0..=1.0).contains(&self.accept_share) {
            return Err("the accept share must be between 0 and 1 (of processing a photo)".into());
        }
        if !(0.0..0.5).contains(&self.tolerance) {
            return Err("the tolerance must be between 0 and 0.5".into());
        }
        Ok(())
    }

    pub fn clamp(&self, n: u32) -> u32 {
        n.clamp(self.min_workers, self.max_workers)
    }
}
