//! Upload load generator, with the positional interface of the course's generator:
//!
//!     loadgen URL USERNAME PASSWORD RATE IMAGE_DIR COUNT [--json FILE] [--schedule SPEC]
//!             [--max-in-flight N] [--timeout SECS]
//!
//! Open loop: request i is sent at start + i/RATE whether or not earlier ones have been
//! answered (no coordinated omission). At most `--max-in-flight` are outstanding; a request
//! that cannot be sent on time because of that bound is counted as "not sent on time".
//! `--schedule 60s@1,120s@5,60s@0` replaces RATE with steps (COUNT then caps the total).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::multipart::{Form, Part};
use serde_json::json;

struct Args {
    url: String,
    username: String,
    password: String,
    schedule: Vec<(f64, f64)>,
    images: Vec<(String, Vec<u8>)>,
    count: u64,
    json: Option<PathBuf>,
    max_in_flight: usize,
    timeout: Duration,
}

const USAGE: &str = "usage: loadgen URL USERNAME PASSWORD RATE IMAGE_DIR COUNT [--json FILE] [--schedule 60s@1,120s@5] [--max-in-flight N] [--timeout SECS]";

fn parse_schedule(spec: &str) -> Result<Vec<(f64, f64)>, String> {
    spec.split(',')
        .map(|step| {
            let (dur, rate) = step
                .split_once('@')
                .ok_or(format!("schedule step {step:?} is not DURATION@RATE"))?;
            let secs: f64 = dur
                .trim_end_matches('s')
                .parse()
                .map_err(|_| format!("bad duration {dur:?}"))?;
            let rate: f64 = rate.parse().map_err(|_| format!("bad rate {rate:?}"))?;
            if secs <= 0.0 || rate < 0.0 {
                return Err(format!(
                    "schedule step {step:?} needs a positive duration and a rate ≥ 0"
                ));
            }
            Ok((secs, rate))
        })
        .collect()
}

fn parse() -> Result<Args, String> {
    let mut positional = Vec::new();
    let (mut json, mut schedule, mut max_in_flight, mut timeout) = (None, None, 256, 60.0);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = Some(PathBuf::from(it.next().ok_or("--json needs a file")?)),
            "--schedule" => {
                schedule = Some(parse_schedule(
                    &it.next().ok_or("--schedule needs a spec")?,
                )?)
            }
            "--max-in-flight" => {
                max_in_flight = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--max-in-flight needs a number")?
            }
            "--timeout" => {
                timeout = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--timeout needs seconds")?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => positional.push(a),
        }
    }
    let [url, username, password, rate, dir, count] =
        <[String; 6]>::try_from(positional).map_err(|_| USAGE.to_string())?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| format!("RATE {rate:?} is not a number"))?;
    let count: u64 = count
        .parse()
        .map_err(|_| format!("COUNT {count:?} is not a whole number"))?;
    if rate <= 0.0 && schedule.is_none() {
        return Err("RATE must be above 0".into());
    }
    let mut images: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map_err(|e| format!("IMAGE_DIR {dir}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| matches!(e.to_str(), Some("jpg" | "jpeg" | "png" | "webp")))
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    images.sort();
    if images.is_empty() {
        return Err(format!("no images (.jpg, .png, .webp) in {dir}"));
    }
    Ok(Args {
        url,
        username,
        password,
        schedule: schedule.unwrap_or_else(|| vec![(count as f64 / rate, rate)]),
        images,
        count,
        json,
        max_in_flight,
        timeout: Duration::from_secs_f64(timeout),
    })
}

/// Send times (seconds from start) for the schedule, at most `count` of them.
fn send_times(schedule: &[(f64, f64)], count: u64) -> Vec<f64> {
    let mut times = Vec::new();
    let mut start = 0.0;
    for &(secs, rate) in schedule {
        if rate > 0.0 {
            let n = (secs * rate).round() as u64;
            for i in 0..n {
                times.push(start + i as f64 / rate);
            }
        }
        start += secs;
    }
    times.truncate(count as usize);
    times
}

#[derive(Default)]
struct Second {
    sent: u64,
    ok: u64,
    failed: u64,
    in_flight: u64,
    latencies: Vec<u64>,
}

#[derive(Default)]
struct Tally {
    responses: BTreeMap<String, u64>,
    answered: u64,
    ok: u64,
    connection_errors: u64,
    timeouts: u64,
    late: u64,
    in_flight: u64,
    timeline: BTreeMap<u64, Second>,
}

fn progress_line(sent: u64, responses: &BTreeMap<String, u64>) -> String {
    let inner: Vec<String> = responses
        .iter()
        .map(|(k, v)| format!("'{k}': {v}"))
        .collect();
    format!(
        "Uploaded: {sent} files, responses: {{{}}}",
        inner.join(", ")
    )
}

#[tokio::main]
async fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let http = reqwest::Client::builder()
        .timeout(args.timeout)
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let register = args.url.replace("/api/upload", "/api/register");
    match http
        .post(&register)
        .multipart(
            Form::new()
                .text("username", args.username.clone())
                .text("password", args.password.clone()),
        )
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            if !status.is_success() && status.as_u16() != 409 {
                eprintln!("loadgen: registering {}: {status} {body}", args.username);
            }
        }
        Err(e) => {
            eprintln!("loadgen: cannot reach {register}: {e}");
            std::process::exit(1);
        }
    }

    let times = send_times(&args.schedule, args.count);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).unwrap(),
    ));
    let images = Arc::new(args.images);
    let slots = Arc::new(tokio::sync::Semaphore::new(args.max_in_flight));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(times.len());
    let mut sent = 0u64;
    for (i, at) in times.iter().enumerate() {
        tokio::time::sleep_until((start + Duration::from_secs_f64(*at)).into()).await;
        let second = start.elapsed().as_secs();
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let mut t = tally.lock().unwrap();
            t.late += 1;
            t.timeline.entry(second).or_default().failed += 1;
            continue;
        };
        sent += 1;
        {
            let mut t = tally.lock().unwrap();
            t.in_flight += 1;
            let s = t.timeline.entry(second).or_default();
            s.sent += 1;
        }
        let (http, url, user, pass) = (
            http.clone(),
            args.url.clone(),
            args.username.clone(),
            args.password.clone(),
        );
        let (images, tally, hist) = (images.clone(), tally.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let (name, data) = &images[i % images.len()];
            let form = Form::new()
                .text("username", user)
                .text("password", pass)
                .part("file", Part::bytes(data.clone()).file_name(name.clone()));
            let began = Instant::now();
            let result = http.post(&url).multipart(form).send().await;
            let (key, ok) = match result {
                Ok(res) => {
                    let status = res.status();
                    let body = res.text().await.unwrap_or_default();
                    let ok = status.is_success() && body == "/api/upload successful!";
                    (
                        if status.is_success() {
                            body
                        } else {
                            format!("{} {}", status.as_u16(), body.lines().next().unwrap_or(""))
                        },
                        Some(ok),
                    )
                }
                Err(e) if e.is_timeout() => ("TIMEOUT".to_string(), None),
                Err(_) => ("CONNECTION_ERR".to_string(), None),
            };
            let millis = began.elapsed().as_millis() as u64;
            let done = start.elapsed().as_secs();
            let mut t = tally.lock().unwrap();
            t.in_flight -= 1;
            *t.responses.entry(key.clone()).or_default() += 1;
            match ok {
                Some(true) => t.ok += 1,
                Some(false) => {}
                None if key == "TIMEOUT" => t.timeouts += 1,
                None => t.connection_errors += 1,
            }
            if ok.is_some() {
                t.answered += 1;
                hist.lock().unwrap().record(millis.max(1)).ok();
            }
            let in_flight = t.in_flight;
            let s = t.timeline.entry(done).or_default();
            if ok == Some(true) {
                s.ok += 1
            } else {
                s.failed += 1
            }
            s.in_flight = in_flight;
            s.latencies.push(millis);
            println!("{}", progress_line(sent_so_far(&t), &t.responses));
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let t = tally.lock().unwrap();
    let h = hist.lock().unwrap();
    let failed = sent - t.ok;
    println!("{}", progress_line(sent, &t.responses));
    println!();
    println!(
        "sent {sent} · answered {} · ok {} · failed {failed} (connection errors {}, timeouts {}) · not sent on time {}",
        t.answered, t.ok, t.connection_errors, t.timeouts, t.late
    );
    if !h.is_empty() {
        println!(
            "latency ms: p50 {} · p90 {} · p99 {} · p99.9 {} · max {}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
    }
    println!(
        "achieved {:.2} uploads/s over {elapsed:.1} s",
        t.ok as f64 / elapsed.max(1e-9)
    );
    if let Some(path) = &args.json {
        let timeline: Vec<serde_json::Value> = t
            .timeline
            .iter()
            .map(|(sec, s)| {
                let mut l = s.latencies.clone();
                l.sort_unstable();
                let p99 = l.get(((l.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)).copied();
                json!({"second": sec, "sent": s.sent, "ok": s.ok, "failed": s.failed, "in_flight": s.in_flight, "p99_ms": p99})
            })
            .collect();
        let summary = json!({
            "sent": sent, "answered": t.answered, "ok": t.ok, "failed": failed,
            "connection_errors": t.connection_errors, "timeouts": t.timeouts, "not_sent_on_time": t.late,
            "responses": t.responses, "elapsed_s": elapsed, "achieved_rate": t.ok as f64 / elapsed.max(1e-9),
            "latency_ms": if !h.is_empty() { json!({
                "p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9), "p99": h.value_at_quantile(0.99),
                "p99_9": h.value_at_quantile(0.999), "max": h.max() }) } else { json!(null) },
            "timeline": timeline,
        });
        if let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&summary).unwrap()) {
            eprintln!("loadgen: writing {}: {e}", path.display());
        }
    }
    if failed > 0 || t.late > 0 {
        std::process::exit(1);
    }
}

fn sent_so_far(t: &Tally) -> u64 {
    t.timeline.values().map(|s| s.sent).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(send_times(&[(2.0, 2.0)], 100), vec![0.0, 0.5, 1.0, 1.5]);
        assert_eq!(
            send_times(&[(1.0, 2.0), (2.0, 0.0), (1.0, 1.0)], 100),
            vec![0.0, 0.5, 3.0]
        );
        assert_eq!(send_times(&[(10.0, 1.0)], 3).len(), 3);
        assert_eq!(
            parse_schedule("60s@1,120s@5,60s@0").unwrap(),
            vec![(60.0, 1.0), (120.0, 5.0), (60.0, 0.0)]
        );
        assert!(parse_schedule("60@").is_err());
        assert!(parse_schedule("0s@1").is_err());
    }

    #[test]
    fn progress_in_the_seed_form() {
        let mut r = BTreeMap::new();
        r.insert("/api/upload successful!".to_string(), 11);
        r.insert("CONNECTION_ERR".to_string(), 1);
        assert_eq!(
            progress_line(12, &r),
            "Uploaded: 12 files, responses: {'/api/upload successful!': 11, 'CONNECTION_ERR': 1}"
        );
    }
}
