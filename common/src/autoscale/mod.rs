//! The autoscaler: a pure function of (phase, pool, signals, policy, now) → decision, so it
//! can be unit-tested, property-tested and simulated offline. Two policies: [`cpu`], the CPU
//! step policy the original system ran, and [`demand`], which sizes the pool on the backlog
//! and the arrivals at the workers' measured processing rate.
pub mod cpu;
pub mod demand;
mod policy;
mod signals;

pub use policy::{Policy, PolicyKind};
pub use signals::{Decision, DemandSample, Phase, PoolView, Resize, Sample, Signals, FLOW_SECS};

/// One tick of the autoscaler, by the policy's kind.
pub fn step(
    phase: Phase,
    pool: PoolView,
    signals: &Signals,
    policy: &Policy,
    now: f64,
) -> Decision {
    match policy.kind {
        PolicyKind::Cpu => cpu::step(phase, pool, signals.cpu, policy, now),
        PolicyKind::Demand => demand::step(
            phase,
            pool,
            signals.demand,
            signals.learned_rate,
            policy,
            now,
        ),
    }
}
