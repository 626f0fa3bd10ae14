//! One elasticity experiment on a running deployment: drives a load schedule with
//! `loadgen`, samples the control API's status every second, and when the backlog is
//! processed and the pool has settled writes NAME.csv and NAME.png and prints the headline
//! numbers.
//!
//!     experiment --api URL --token TOKEN --upload URL --images DIR --schedule SPEC
//!                --count N --name NAME [--out DIR] [--settle SECS]
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::api::{Status, WorkerState};
use plotters::prelude::*;

struct Row {
    t: f64,
    desired: u32,
    healthy: u32,
    starting: u32,
    workers: u32,
    cpu: f64,
    rate: f64,
    /// Accepted and not yet processed.
    backlog: u64,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let need = |n: &str| arg(&args, n).ok_or_else(|| anyhow::anyhow!("missing {n}"));
    let (api, token, upload, images, schedule, count, name) = (
        need("--api")?,
        need("--token")?,
        need("--upload")?,
        need("--images")?,
        need("--schedule")?,
        need("--count")?,
        need("--name")?,
    );
    let out = PathBuf::from(arg(&args, "--out").unwrap_or_else(|| "docs/experiments".into()));
    let settle: f64 = arg(&args, "--settle")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300.0);
    std::fs::create_dir_all(&out)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let status = || async {
        http.get(format!("{api}/status"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json::<Status>()
            .await
    };
    let first = status().await?;
    let (min, initial_healthy) = (first.policy.min_workers, first.pool.healthy);
    let loadgen = std::env::current_exe()?.with_file_name("loadgen");
    let report = out.join(format!("{name}-loadgen.json"));
    let started = Instant::now();
    let start_unix = first.now;
    let mut child = tokio::process::Command::new(loadgen)
        .args([
            &upload,
            "experimenter",
            "pass-word-1",
            "1",
            &images,
            &count,
            "--schedule",
            &schedule,
            "--json",
        ])
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let mut rows = Vec::new();
    let mut load_done_at: Option<f64> = None;
    let mut cleared_at: Option<f64> = None;
    let mut last = first;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = started.elapsed().as_secs_f64();
        if let Ok(s) = status().await {
            let serving: Vec<_> = s
                .workers
                .iter()
                .filter(|w| w.state == WorkerState::Healthy)
                .collect();
            let cpu = if serving.is_empty() {
                0.0
            } else {
                serving.iter().filter_map(|w| w.cpu).sum::<f64>() / serving.len() as f64
            };
            rows.push(Row {
                t,
                desired: s.pool.desired,
                healthy: s.pool.healthy,
                starting: s.pool.starting,
                workers: s.workers.len() as u32,
                cpu,
                rate: s.workers.iter().filter_map(|w| w.request_rate).sum(),
                backlog: s.backlog.map_or(0, |b| b.waiting()),
            });
            last = s;
        }
        if load_done_at.is_none() && child.try_wait()?.is_some() {
            load_done_at = Some(t);
        }
        let backlog = last.backlog.map_or(0, |b| b.waiting());
        if load_done_at.is_some() && backlog == 0 && cleared_at.is_none() {
            cleared_at = Some(t);
        }
        if let Some(done) = load_done_at {
            let serving = last
                .workers
                .iter()
                .filter(|w| !w.state.is_standby())
                .count() as u32;
            let settled = backlog == 0 && last.pool.desired == min && serving == min;
            if settled || t - done > settle {
                break;
            }
        }
    }
    let lg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let first_out = last
        .events
        .iter()
        .filter(|e| e.to > e.from && e.at as f64 >= start_unix)
        .map(|e| e.at as f64 - start_unix)
        .fold(f64::INFINITY, f64::min);
    let first_healthy = rows
        .iter()
        .find(|r| r.healthy > initial_healthy)
        .map(|r| r.t);
    let worker_seconds: f64 = rows.iter().map(|r| r.workers as f64).sum();
    let peak_backlog = rows.iter().map(|r| r.backlog).max().unwrap_or(0);
    let failed = last.backlog.map_or(0, |b| b.failed);
    let times = last.processing_times.map_or_else(
        || "no photo processed in the last 5 min".to_string(),
        |t| {
            format!(
                "upload to processed p50 {:.1} s, p99 {:.1} s",
                t.p50_secs, t.p99_secs
            )
        },
    );
    let clear = match (load_done_at, cleared_at) {
        (Some(done), Some(cleared)) => format!(
            "backlog peak {peak_backlog}, empty {:.0} s after the load ended",
            cleared - done
        ),
        _ => format!(
            "backlog peak {peak_backlog}, still {} waiting at the end",
            last.backlog.map_or(0, |b| b.waiting())
        ),
    };
    let peak = rows.iter().map(|r| r.healthy).max().unwrap_or(0);
    let mut csv = String::from("t,desired,healthy,starting,workers,cpu,request_rate,backlog\n");
    for r in &rows {
        writeln!(
            csv,
            "{:.1},{},{},{},{},{:.3},{:.3},{}",
            r.t, r.desired, r.healthy, r.starting, r.workers, r.cpu, r.rate, r.backlog
        )?;
    }
    std::fs::write(out.join(format!("{name}.csv")), csv)?;
    let fmt = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map(|v| format!("{v:.0} s"))
            .unwrap_or_else(|| "never".into())
    };
    let headline = format!(
        "{name}: schedule {schedule}, {} sent, {} accepted, {} refused; {clear}; {failed} failed processing; {times}; first scale-out decision after {}; first new worker healthy after {}; peak {peak} healthy; {worker_seconds:.0} worker-seconds (standby processes included); reply p50 {} ms, p99 {} ms",
        lg["sent"], lg["ok"], lg["failed"], fmt(Some(first_out)), fmt(first_healthy), lg["latency_ms"]["p50"], lg["latency_ms"]["p99"]
    );
    std::fs::write(out.join(format!("{name}.txt")), format!("{headline}\n"))?;
    println!("{headline}");
    chart(&out.join(format!("{name}.png")), &name, &rows, &lg)?;
    Ok(())
}

fn chart(
    path: &std::path::Path,
    name: &str,
    rows: &[Row],
    lg: &serde_json::Value,
) -> anyhow::Result<()> {
    gallery_tools::chart_font()?;
    let end = rows.last().map(|r| r.t).unwrap_or(1.0);
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(280);
    let top_y = rows
        .iter()
        .map(|r| r.desired.max(r.workers))
        .max()
        .unwrap_or(1) as f64
        + 1.0;
    let mut c = ChartBuilder::on(&top)
        .caption(format!("{name}: workers"), ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..end, 0.0..top_y)?;
    c.configure_mesh().x_desc("seconds").draw()?;
    for (label, colour, f) in [
        (
            "desired",
            RED,
            (|r: &Row| r.desired as f64) as fn(&Row) -> f64,
        ),
        ("healthy", BLUE, |r: &Row| r.healthy as f64),
        ("starting", GREEN, |r: &Row| r.starting as f64),
    ] {
        c.draw_series(LineSeries::new(
            rows.iter().map(|r| (r.t, f(r))),
            colour.stroke_width(2),
        ))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    let failures: Vec<(f64, f64)> = lg["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|s| {
                    (
                        s["second"].as_f64().unwrap_or(0.0),
                        s["failed"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let rate_top = rows
        .iter()
        .map(|r| r.rate.max(r.cpu))
        .chain(failures.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let mut c = ChartBuilder::on(&bottom)
        .caption(
            "mean CPU of healthy workers (×100 %), request rate (/s), failed uploads (/s)",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..end, 0.0..rate_top.max(1.0) * 1.1)?;
    c.configure_mesh().x_desc("seconds").draw()?;
    c.draw_series(LineSeries::new(
        rows.iter().map(|r| (r.t, r.cpu)),
        MAGENTA.stroke_width(2),
    ))?
    .label("CPU (1 = 100 %)")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MAGENTA));
    c.draw_series(LineSeries::new(
        rows.iter().map(|r| (r.t, r.rate)),
        BLACK.stroke_width(1),
    ))?
    .label("requests/s")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    c.draw_series(
        failures
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|p| Circle::new(*p, 4, RED.filled())),
    )?
    .label("failed/s")
    .legend(|(x, y)| Circle::new((x + 10, y), 4, RED.filled()));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
