//! `manager-tui --once`: the dashboard's status as text (or the API's JSON) for scripts.
use std::fmt::Write;

use common::api::Status;

use crate::fmt::{
    backlog_text, clock, flow_text, front_door_text, human_bytes, phase_text, policy_text,
    refusals_text, times_text,
};

pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let p = &status.pool;
    let _ = writeln!(
        out,
        "gallery · {} · balancer {} · {} UTC",
        status.deployment,
        status.balancer,
        clock(status.now)
    );
    let _ = writeln!(
        out,
        "pool: {} desired · {} healthy · {} starting · {} unhealthy · {} draining · {} standby ({} ready)",
        p.desired, p.healthy, p.starting, p.unhealthy, p.draining, p.standby, p.standby_ready
    );
    match &status.backlog {
        Some(b) => {
            let _ = writeln!(out, "backlog: {}", backlog_text(b));
        }
        None => {
            let _ = writeln!(out, "backlog: unavailable");
        }
    }
    if let Some(d) = &status.demand {
        let _ = writeln!(out, "flow: {}", flow_text(d));
    }
    if let Some(t) = &status.processing_times {
        let _ = writeln!(out, "{}", times_text(t));
    }
    if let Some(f) = &status.front_door {
        let _ = writeln!(out, "balancer: {}", front_door_text(f));
    }
    if let Some(r) = &status.refusals {
        let _ = writeln!(out, "load balancer (CloudWatch): {}", refusals_text(r));
    }
    let _ = writeln!(
        out,
        "autoscaler: {} · {}",
        phase_text(status),
        policy_text(status)
    );
    if let Some(problem) = &status.launch_problem {
        let wait = (problem.retry_at - status.now).max(0.0);
        let _ = writeln!(
            out,
            "launch: failed {} in a row, retry in {wait:.0} s: {}",
            problem.failures, problem.error
        );
    }
    if status.workers.is_empty() {
        let _ = writeln!(out, "workers: none");
    } else {
        let _ = writeln!(out, "workers:");
        let width = status
            .workers
            .iter()
            .map(|w| w.id.len())
            .max()
            .unwrap_or(0)
            .max(10);
        for w in &status.workers {
            let cpu = w
                .cpu
                .map(|c| format!("{:5.1}%", c * 100.0))
                .unwrap_or_else(|| "    –".into());
            let req = w
                .request_rate
                .map(|r| format!("{r:6.2}/s"))
                .unwrap_or_else(|| "      –".into());
            let _ = writeln!(
                out,
                "  {:<width$} {:<9} cpu {cpu}  req {req}  {}",
                w.id,
                w.state.as_str(),
                w.address
            );
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
            let _ = writeln!(
                out,
                "  {}  {} → {}  {}",
                clock(e.at as f64),
                e.from,
                e.to,
                e.reason
            );
        }
    }
    out
}
