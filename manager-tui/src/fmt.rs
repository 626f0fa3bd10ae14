//! How the control plane's figures read, the same in the dashboard and in `--once`.
use common::api::{Backlog, Status};
use common::autoscale::Phase;

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
    format!(
        "grow > {:.0}% ×{} · shrink < {:.0}% ×{} · {}–{} workers · cooldown {:.0} s",
        p.grow_cpu * 100.0,
        p.expand_ratio,
        p.shrink_cpu * 100.0,
        p.shrink_ratio,
        p.min_workers,
        p.max_workers,
        p.cooldown_secs
    )
}
