//! Autoscaler simulator: the real autoscaler against modelled pools. Per trace and at 1×, 10×
//! and 100× its rate: the original system (uploads processed inside the request, CPU step
//! policy), then ours (accepted into a backlog) under the CPU step policy and under the demand
//! policy.
//!
//!     simulate [--seed N] [--out DIR]
//!
//! Prints a table; writes DIR/sim-summary.csv, DIR/sim-timeline.csv and one PNG per
//! scenario (pool size over time for both policies, with the workers the load needs).
use std::fmt::Write as _;
use std::path::PathBuf;

use gallery_tools::sim::{backlog, synchronous, Model, Report, Timing, Trace};
use plotters::prelude::*;

fn scenarios() -> Vec<(&'static str, Trace)> {
    vec![
        // The original system's two experiments: 1000 photos at 1/s and 500 at 0.5/s (then quiet).
        (
            "original-run-1",
            Trace::Steps(vec![(1000.0, 1.0), (900.0, 0.0)]),
        ),
        (
            "original-run-2",
            Trace::Steps(vec![(1000.0, 0.5), (900.0, 0.0)]),
        ),
        (
            "step",
            Trace::Steps(vec![(300.0, 0.3), (1200.0, 4.0), (900.0, 0.3)]),
        ),
        (
            "diurnal",
            Trace::Diurnal {
                low: 0.1,
                high: 4.0,
                secs: 7200.0,
            },
        ),
        (
            "flash-crowd",
            Trace::Steps(vec![(600.0, 0.5), (300.0, 10.0), (1200.0, 0.5)]),
        ),
    ]
}

fn main() -> anyhow::Result<()> {
    let mut seed = 42u64;
    let mut out = PathBuf::from("target/simulation");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => {
                seed = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--seed needs a number"))?
            }
            "--out" => {
                out = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| anyhow::anyhow!("--out needs a directory"))?
            }
            _ => anyhow::bail!("usage: simulate [--seed N] [--out DIR]"),
        }
    }
    std::fs::create_dir_all(&out)?;
    let base = Model::default();
    let model = base.clone();
    let max_workers = 1000;
    let mut table = String::new();
    let mut summary = String::from(
        "scenario,scale,design,policy,arrived,refused,refused_pct,refused_backlog_full,never_processed,p50_s,p99_s,instance_minutes,resizes,peak_workers\n",
    );
    let mut timeline = String::from("scenario,scale,design,policy,t,desired,healthy,rate\n");
    writeln!(
        table,
        "| scenario | rate | design · policy | uploads | refused | refused % | never processed | to processed p50 / p99 (s) | instance-min | resizes | peak |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for (name, trace) in scenarios() {
        for scale in [1.0, 10.0, 100.0] {
            let trace = trace.scaled(scale);
            // The backlog limit guards the store, which grows with the deployment: an operator
            // running at ×100 sets it ×100 (the same minutes of arrivals).
            let model = Model {
                backlog_limit: (base.backlog_limit as f64 * scale) as usize,
                ..base.clone()
            };
            let runs: Vec<(String, Report)> = vec![
                (
                    "original · CPU step".into(),
                    synchronous::run(&trace, &Timing::cpu_step(max_workers), &model, seed),
                ),
                (
                    "backlog · CPU step".into(),
                    backlog::run(&trace, &Timing::cpu_step(max_workers), &model, seed),
                ),
                (
                    "backlog · demand".into(),
                    backlog::run(&trace, &Timing::demand(max_workers), &model, seed),
                ),
            ];
            for (label, r) in &runs {
                let (design, policy) = label.split_once(" · ").expect("labelled");
                writeln!(
                    table,
                    "| {name} | ×{scale:.0} | {label} | {} | {} | {:.2} | {} | {:.1} / {:.1} | {:.0} | {} | {} |",
                    r.arrived, r.refused, r.refused_pct(), r.never_processed, r.p50, r.p99, r.instance_minutes, r.resizes, r.peak_workers
                )?;
                writeln!(
                    summary,
                    "{name},{scale},{design},{policy},{},{},{:.4},{},{},{:.3},{:.3},{:.2},{},{}",
                    r.arrived,
                    r.refused,
                    r.refused_pct(),
                    r.refused_backlog_full,
                    r.never_processed,
                    r.p50,
                    r.p99,
                    r.instance_minutes,
                    r.resizes,
                    r.peak_workers
                )?;
                for (t, desired, healthy, rate) in &r.timeline {
                    writeln!(
                        timeline,
                        "{name},{scale},{design},{policy},{t:.1},{desired},{healthy},{rate:.3}"
                    )?;
                }
            }
            if scale == 1.0 {
                chart(&out.join(format!("sim-{name}.png")), name, &runs, &model)?;
            }
        }
    }
    std::fs::write(out.join("sim-summary.csv"), summary)?;
    std::fs::write(out.join("sim-timeline.csv"), timeline)?;
    println!(
        "model: {} photos/s processed per worker, accept {:.0} ms of a worker's CPU, boot {} s (standby {} s), {} waiting per worker, clients wait {} s, backlog limit {}; seed {seed}",
        model.capacity, model.accept_cost * 1000.0, model.boot, model.warm_boot, model.queue_limit, model.timeout, model.backlog_limit
    );
    println!("CPU step policy, as the original system ran it: 1-min CPU published 60 s late, polled every 10 s, ×1.5/×0.5, 60 s cooldown, 150 s resize timeout, no standby");
    let demand = Timing::demand(max_workers).policy;
    println!(
        "demand policy: the backlog and 6 s of flow counted every 2 s, drain within {:.0} s, accepts counted at {:.1} % of a photo, rate per worker measured, {:.0} s scale-in window, {} standby",
        demand.drain_target_secs,
        demand.accept_share * 100.0,
        demand.scale_in_window_secs,
        demand.standby_workers
    );
    println!("original: processed inside the request (refused when the worker's queue is full or the client gave up); backlog: accepted, then processed\n");
    print!("{table}");
    println!("\nwrote {}", out.display());
    Ok(())
}

fn chart(
    path: &std::path::Path,
    name: &str,
    runs: &[(String, Report)],
    model: &Model,
) -> anyhow::Result<()> {
    gallery_tools::chart_font()?;
    let end = runs[0].1.timeline.last().map(|p| p.0).unwrap_or(1.0) / 60.0;
    let top = runs
        .iter()
        .flat_map(|(_, r)| r.timeline.iter().map(|p| p.1))
        .max()
        .unwrap_or(1) as f64
        + 1.0;
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(format!("{name}: workers over time"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    c.configure_mesh()
        .x_desc("minutes")
        .y_desc("workers")
        .draw()?;
    let needed: Vec<(f64, f64)> = runs[0]
        .1
        .timeline
        .iter()
        .map(|p| (p.0 / 60.0, (p.3 / model.capacity).ceil()))
        .collect();
    c.draw_series(LineSeries::new(needed, BLACK.mix(0.35).stroke_width(2)))?
        .label("workers the load needs at 100 % CPU")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.35)));
    for ((label, r), colour) in runs.iter().zip([RED, GREEN, BLUE]) {
        let series: Vec<(f64, f64)> = r
            .timeline
            .iter()
            .map(|p| (p.0 / 60.0, p.2 as f64))
            .collect();
        c.draw_series(LineSeries::new(series, colour.stroke_width(2)))?
            .label(format!(
                "{label} (healthy): {} refused, p99 {:.0} s",
                r.refused, r.p99
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
