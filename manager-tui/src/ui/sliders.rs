//! The autoscaler's settings as the dashboard slides them: each with its range, step and how
//! its value reads.
use common::autoscale::{Policy, PolicyKind};

/// One autoscaler setting the operator can slide.
pub struct Slider {
    pub label: &'static str,
    pub get: fn(&Policy) -> f64,
    pub set: fn(&mut Policy, f64),
    pub step: f64,
    pub min: f64,
    pub max: f64,
    pub show: fn(f64) -> String,
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}
fn ratio(v: f64) -> String {
    format!("×{v:.2}")
}
fn count(v: f64) -> String {
    format!("{v:.0}")
}
fn secs(v: f64) -> String {
    format!("{v:.0} s")
}
fn rate(v: f64) -> String {
    format!("{v:.1}/s")
}
fn kind(v: f64) -> String {
    kind_of(v).label().to_string()
}
fn kind_of(v: f64) -> PolicyKind {
    if v < 0.5 {
        PolicyKind::Cpu
    } else {
        PolicyKind::Demand
    }
}
fn kind_value(p: &Policy) -> f64 {
    match p.kind {
        PolicyKind::Cpu => 0.0,
        PolicyKind::Demand => 1.0,
    }
}

pub const SLIDERS: [Slider; 11] = [
    Slider {
        label: "policy",
        get: kind_value,
        set: |p, v| p.kind = kind_of(v),
        step: 1.0,
        min: 0.0,
        max: 1.0,
        show: kind,
    },
    Slider {
        label: "drain backlog in",
        get: |p| p.drain_target_secs,
        set: |p, v| p.drain_target_secs = v,
        step: 10.0,
        min: 10.0,
        max: 600.0,
        show: secs,
    },
    Slider {
        label: "assumed rate",
        get: |p| p.assumed_rate_per_worker,
        set: |p, v| p.assumed_rate_per_worker = v,
        step: 0.5,
        min: 0.5,
        max: 50.0,
        show: rate,
    },
    Slider {
        label: "warm standby",
        get: |p| p.standby_workers as f64,
        set: |p, v| p.standby_workers = v as u32,
        step: 1.0,
        min: 0.0,
        max: 20.0,
        show: count,
    },
    Slider {
        label: "grow above CPU",
        get: |p| p.grow_cpu,
        set: |p, v| p.grow_cpu = v,
        step: 0.05,
        min: 0.05,
        max: 1.0,
        show: pct,
    },
    Slider {
        label: "shrink below CPU",
        get: |p| p.shrink_cpu,
        set: |p, v| p.shrink_cpu = v,
        step: 0.05,
        min: 0.0,
        max: 0.95,
        show: pct,
    },
    Slider {
        label: "expand ratio",
        get: |p| p.expand_ratio,
        set: |p, v| p.expand_ratio = v,
        step: 0.25,
        min: 1.25,
        max: 10.0,
        show: ratio,
    },
    Slider {
        label: "shrink ratio",
        get: |p| p.shrink_ratio,
        set: |p, v| p.shrink_ratio = v,
        step: 0.05,
        min: 0.05,
        max: 0.95,
        show: ratio,
    },
    Slider {
        label: "min workers",
        get: |p| p.min_workers as f64,
        set: |p, v| p.min_workers = v as u32,
        step: 1.0,
        min: 1.0,
        max: 100.0,
        show: count,
    },
    Slider {
        label: "max workers",
        get: |p| p.max_workers as f64,
        set: |p, v| p.max_workers = v as u32,
        step: 1.0,
        min: 1.0,
        max: 100.0,
        show: count,
    },
    Slider {
        label: "cooldown",
        get: |p| p.cooldown_secs,
        set: |p, v| p.cooldown_secs = v,
        step: 10.0,
        min: 0.0,
        max: 600.0,
        show: secs,
    },
];
