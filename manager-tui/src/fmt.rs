//! How the control plane's figures read, the same in the dashboard and in `--once`.
use common::api::{Backlog, Demand, FrontDoor, ProcessingTimes, Refusals, Status};
use common::autoscale::{Phase, PolicyKind};

pub use common::units::human_bytes;

pub fn clock(unix: f64) -> String {
    let fmt = time::macros::format_description!("[hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// The backlog in one line: "420 queued · 2 processing · 1 failed · oldest 37 s".
pub fn backlog_text(b: &Backlog) -> String {
    let oldest = if b.waiting() > 0 {
        format!(" · oldest {:.0} s", b.oldest_secs)
    } else {
        String::new()
    };
    format!(
        "{} queued · {} processing · {} failed{oldest}",
        b.queued, b.processing, b.failed
    )
}

pub fn phase_text(status: &Status) -> String {
    let a = &status.autoscaler;
    let left = a
        .seconds_left
        .map(|s| format!(", {s:.0} s left"))
        .unwrap_or_default();
    let phase = match a.phase {
        Phase::Idle => "idle".to_string(),
        Phase::Resizing { target, .. } => format!("resizing to {target}{left}"),
        Phase::Cooldown { .. } => format!("cooldown{left}"),
    };
    format!("{}, {phase}", if a.enabled { "on" } else { "off" })
}

pub fn policy_text(status: &Status) -> String {
    let p = &status.policy;
    let sizing = match p.kind {
        PolicyKind::Cpu => format!(
            "CPU step policy: grow > {:.0}% ×{} · shrink < {:.0}% ×{}",
            p.grow_cpu * 100.0,
            p.expand_ratio,
            p.shrink_cpu * 100.0,
            p.shrink_ratio
        ),
        PolicyKind::Demand => format!(
            "demand policy: drain within {:.0} s · {:.1}/s per worker until measured",
            p.drain_target_secs, p.assumed_rate_per_worker
        ),
    };
    format!(
        "{sizing} · {}–{} workers · {} standby · cooldown {:.0} s",
        p.min_workers, p.max_workers, p.standby_workers, p.cooldown_secs
    )
}

/// The flow through the backlog: "accepted 14.8/s · processed 5.1/s · 2.6/s per worker
/// (measured) → 4 needed".
pub fn flow_text(d: &Demand) -> String {
    format!(
        "accepted {:.1}/s · processed {:.1}/s · {:.1}/s per worker ({}) → {} needed",
        d.accepted_per_sec,
        d.processed_per_sec,
        d.rate_per_worker,
        d.rate_source.label(),
        d.needed
    )
}

/// "upload to processed: p50 12 s · p99 35 s (312 photos, last 5 min)".
/// The local balancer's connections and what it turned away.
pub fn front_door_text(f: &FrontDoor) -> String {
    format!(
        "uploads {} · {} not accepted · {} of {} connections open · refused {} · timed out {} · bad bodies {} · worker timeouts {}",
        f.uploads,
        f.refused_uploads,
        f.open_connections,
        f.max_connections,
        f.refused_connections,
        f.timed_out_connections,
        f.bad_bodies,
        f.worker_timeouts
    )
}

/// What an AWS deployment turned away, from CloudWatch.
pub fn refusals_text(r: &Refusals) -> String {
    format!(
        "uploads {} · {} not accepted by the workers · {} answered 5xx by the load balancer itself (any request)",
        r.uploads, r.refused_uploads, r.load_balancer_5xx
    )
}

pub fn times_text(t: &ProcessingTimes) -> String {
    format!(
        "upload to processed: p50 {:.1} s · p99 {:.1} s ({} photos, last 5 min)",
        t.p50_secs, t.p99_secs, t.photos
    )
}
