//! `manager-tui --once`: the dashboard's status as text (or the API's JSON) for scripts.
use std::fmt::Write;

use common::api::Status;
use common::autoscale::Phase;

pub use common::units::human_bytes;

pub fn clock(unix: f64) -> String {
    let fmt = time::macros::format_description!("[hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix as i64).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_default()
}

pub fn phase_text(status: &Status) -> String {
    let a = &status.autoscaler;
    let left = a.seconds_left.map(|s| format!(", {s:.0} s left")).unwrap_or_default();
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

pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let p = &status.pool;
    let _ = writeln!(out, "gallery · {} · balancer {} · {} UTC", status.deployment, status.balancer, clock(status.now));
    let _ = writeln!(
        out,
        "pool: {} desired · {} healthy · {} starting · {} unhealthy · {} draining",
        p.desired, p.healthy, p.starting, p.unhealthy, p.draining
    );
    let _ = writeln!(out, "autoscaler: {} · {}", phase_text(status), policy_text(status));
    if let Some(problem) = &status.launch_problem {
        let wait = (problem.retry_at - status.now).max(0.0);
        let _ = writeln!(out, "launch: failed {} in a row, retry in {wait:.0} s: {}", problem.failures, problem.error);
    }
    if status.workers.is_empty() {
        let _ = writeln!(out, "workers: none");
    } else {
        let _ = writeln!(out, "workers:");
        let width = status.workers.iter().map(|w| w.id.len()).max().unwrap_or(0).max(10);
        for w in &status.workers {
            let cpu = w.cpu.map(|c| format!("{:5.1}%", c * 100.0)).unwrap_or_else(|| "    –".into());
            let req = w.request_rate.map(|r| format!("{r:6.2}/s")).unwrap_or_else(|| "      –".into());
            let _ = writeln!(out, "  {:<width$} {:<9} cpu {cpu}  req {req}  {}", w.id, w.state.as_str(), w.address);
        }
    }
    match &status.totals {
        Some(t) => {
            let _ = writeln!(
                out,
                "totals: {} accounts · {} photos · {} objects · {}",
                t.accounts,
                t.photos,
                t.objects,
                human_bytes(t.bytes)
            );
        }
        None => {
            let _ = writeln!(out, "totals: unavailable");
        }
    }
    if !status.events.is_empty() {
        let _ = writeln!(out, "last events:");
        for e in status.events.iter().take(5) {
            let _ = writeln!(out, "  {}  {} → {}  {}", clock(e.at as f64), e.from, e.to, e.reason);
        }
    }
    out
}
