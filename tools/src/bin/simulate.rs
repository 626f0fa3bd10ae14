//! Autoscaler simulator: the real autoscaler against a modelled pool, the seed's policy and
//! timing against ours, on the seed's two runs and other traces at 1×, 10× and 100× rate.
//!
//!     simulate [--seed N] [--out DIR]
//!
//! Prints a table; writes DIR/sim-summary.csv, DIR/sim-timeline.csv and one PNG per
//! scenario (pool size over time for both policies, with the workers the load needs).
use std::fmt::Write as _;
use std::path::PathBuf;

use gallery_tools::sim::{self, Model, Report, Timing, Trace};
use plotters::prelude::*;

fn scenarios() -> Vec<(&'static str, Trace)> {
    vec![
        // The seed's experiments: 1000 photos at 1/s and 500 at 0.5/s (then quiet).
        (
            "seed-run-1",
            Trace::Steps(vec![(1000.0, 1.0), (900.0, 0.0)]),
        ),
        (
            "seed-run-2",
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
    let model = Model::default();
    let max_workers = 1000;
    let mut table = String::new();
    let mut summary = String::from("scenario,scale,policy,arrived,lost,lost_pct,p99_wait_s,instance_minutes,resizes,peak_workers\n");
    let mut timeline = String::from("scenario,scale,policy,t,desired,healthy,rate\n");
    writeln!(
        table,
        "| scenario | rate | policy | uploads | lost | lost % | p99 wait (s) | instance-min | resizes | peak |\n|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for (name, trace) in scenarios() {
        for scale in [1.0, 10.0, 100.0] {
            let trace = trace.scaled(scale);
            let mut runs: Vec<(Timing, Report)> = Vec::new();
            for timing in [Timing::seed(max_workers), Timing::ours(max_workers)] {
                let r = sim::run(&trace, &timing, &model, seed);
                let lost_pct = 100.0 * r.lost as f64 / r.arrived.max(1) as f64;
                writeln!(
                    table,
                    "| {name} | ×{scale:.0} | {} | {} | {} | {lost_pct:.2} | {:.1} | {:.0} | {} | {} |",
                    timing.name, r.arrived, r.lost, r.p99_wait, r.instance_minutes, r.resizes, r.peak_workers
                )?;
                writeln!(
                    summary,
                    "{name},{scale},{},{},{},{lost_pct:.4},{:.3},{:.2},{},{}",
                    timing.name,
                    r.arrived,
                    r.lost,
                    r.p99_wait,
                    r.instance_minutes,
                    r.resizes,
                    r.peak_workers
                )?;
                for (t, desired, healthy, rate) in &r.timeline {
                    writeln!(
                        timeline,
                        "{name},{scale},{},{t:.1},{desired},{healthy},{rate:.3}",
                        timing.name
                    )?;
                }
                runs.push((timing, r));
            }
            if scale == 1.0 {
                chart(&out.join(format!("sim-{name}.png")), name, &runs, &model)?;
            }
        }
    }
    std::fs::write(out.join("sim-summary.csv"), summary)?;
    std::fs::write(out.join("sim-timeline.csv"), timeline)?;
    println!(
        "model: {} uploads/s per worker, boot {} s, queue {} per worker, timeout {} s; seed {seed}",
        model.capacity, model.boot, model.queue_limit, model.timeout
    );
    println!("seed timing: 1-min CPU published 60 s late, polled every 10 s, ×1.5/×0.5, 60 s cooldown, 150 s resize timeout");
    println!("our timing: 5 s CPU samples used at once, 15 s grow window, 60 s scale-in window, same ratios and cooldown\n");
    print!("{table}");
    println!("\nwrote {}", out.display());
    Ok(())
}

fn chart(
    path: &std::path::Path,
    name: &str,
    runs: &[(Timing, Report)],
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
    for ((timing, r), colour) in runs.iter().zip([RED, BLUE]) {
        let series: Vec<(f64, f64)> = r
            .timeline
            .iter()
            .map(|p| (p.0 / 60.0, p.2 as f64))
            .collect();
        c.draw_series(LineSeries::new(series, colour.stroke_width(2)))?
            .label(format!("{} (healthy), lost {}", timing.name, r.lost))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
