//! What the autoscaler reads (CPU samples, demand samples, the pool) and what it answers.
use serde::{Deserialize, Serialize};

/// Where the autoscaler is in its cycle. Times are seconds on the caller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Resizing { target: u32, since: f64 },
    Cooldown { until: f64 },
}

/// What the pool looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PoolView {
    /// The size the pool is asked to be.
    pub desired: u32,
    /// Workers serving and passing health checks.
    pub healthy: u32,
    /// Workers launched but not yet healthy.
    pub starting: u32,
}

/// Average CPU (0–1) over the healthy workers at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: f64,
    pub cpu: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub phase: Phase,
    pub resize: Option<Resize>,
    /// The processing rate per worker measured at this step, for the caller to keep and
    /// pass back as [`Signals::learned_rate`].
    pub learned_rate: Option<f64>,
}

impl Decision {
    pub fn stay(phase: Phase) -> Decision {
        Decision {
            phase,
            resize: None,
            learned_rate: None,
        }
    }
}

/// The backlog and the flow through it at one instant, as the database counts it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DemandSample {
    pub at: f64,
    /// Accepted and waiting for a processor.
    pub queued: u64,
    /// Claimed by a processor now.
    pub processing: u64,
    /// Uploads accepted per second over the last few seconds.
    pub arrivals_per_sec: f64,
    /// Photos processed (ready or failed) per second over the same seconds.
    pub processed_per_sec: f64,
    /// Healthy workers when it was counted.
    pub healthy: u32,
}

/// Photos queued no longer than this many seconds of arrivals are the flow passing through,
/// not a backlog: processors take them as fast as they come.
pub const FLOW_SECS: f64 = 2.0;

impl DemandSample {
    pub fn waiting(&self) -> u64 {
        self.queued + self.processing
    }

    /// Whether more waits than the flow passing through: photos the processors are behind on.
    pub fn has_backlog(&self) -> bool {
        self.queued as f64 > self.arrivals_per_sec * FLOW_SECS
    }
}

/// Everything the autoscaler may read, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals<'a> {
    pub cpu: &'a [Sample],
    pub demand: &'a [DemandSample],
    /// The last processing rate per worker the demand policy measured, however long ago:
    /// without it, the policy would forget what a worker can do once the samples that showed
    /// it age out, shrink on the assumed rate, and relearn it with a backlog.
    pub learned_rate: Option<f64>,
}
