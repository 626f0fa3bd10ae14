//! Times the upload pipeline stage by stage on one thread over a directory of photos and
//! prints one JSON document: median milliseconds per stage for each photo size class
//! (`photo*` 1–2 MP, `big*` 12 MP), whole-pipeline photos per second per core, and the
//! process's peak RSS with the model loaded. `scripts/bench-pipeline` compares it with the
//! Python reference.
//!
//!     bench-pipeline MODEL DIR [RUNS] [onnxruntime|openvino|openvino-bf16 LIBRARY]
//!
//! With a runtime and its library, the detector runs on it instead of rten.
use std::collections::BTreeMap;
use std::time::Instant;

use gallery_server::detect::{DbNetParams, Precision, Runtime, TextDetector, Threads};
use gallery_server::image::DecodeLimits;
use gallery_server::pipeline;
use serde_json::json;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(common::metrics::proc_kib(&status, "VmHWM")? as f64 / 1024.0)
}

fn main() -> anyhow::Result<()> {
    // As the worker runs.
    gallery_server::allocator::limit_retention();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: bench-pipeline MODEL DIR [RUNS] [onnxruntime|openvino|openvino-bf16 LIBRARY]";
    anyhow::ensure!(args.len() >= 2, usage);
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let runtime = match (args.get(3).map(String::as_str), args.get(4)) {
        (None, _) => Runtime::Rten,
        (Some("onnxruntime"), Some(library)) => Runtime::OnnxRuntime(library.into()),
        (Some("openvino"), Some(library)) => Runtime::OpenVino {
            library: library.into(),
            precision: Precision::F32,
        },
        (Some("openvino-bf16"), Some(library)) => Runtime::OpenVino {
            library: library.into(),
            precision: Precision::Bf16,
        },
        _ => anyhow::bail!(usage),
    };
    let detector = TextDetector::load(
        std::path::Path::new(&args[0]),
        Threads::ONE,
        DbNetParams::default(),
        &runtime,
    )?;
    let implementation = match &runtime {
        Runtime::Rten => "ours (rten + image)",
        Runtime::OnnxRuntime(_) => "ours (ONNX Runtime via ort + image)",
        Runtime::OpenVino {
            precision: Precision::F32 | Precision::Auto,
            ..
        } => "ours (OpenVINO via openvino + image)",
        Runtime::OpenVino {
            precision: Precision::Bf16,
            ..
        } => "ours (OpenVINO in bf16 via openvino + image; not the same arithmetic)",
    };
    let rss_model = peak_rss_mb();
    let limits = DecodeLimits {
        max_side: 20_000,
        max_pixels: 50_000_000,
    };
    let mut files: Vec<_> = std::fs::read_dir(&args[1])?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "jpg"));
    files.sort();
    let mut stages: BTreeMap<&str, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    // One untimed pass over every photo first warms caches and the allocator, as a running
    // worker would be (warming photo by photo left the first class timed, 12 MP, ~30 ms
    // slower in detection than the same work timed alone).
    for file in &files {
        pipeline::process(&std::fs::read(file)?, &detector, limits)?;
    }
    for file in &files {
        let class = if file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("big")
        {
            "12MP"
        } else {
            "1-2MP"
        };
        let data = std::fs::read(file)?;
        for _ in 0..runs {
            // The stages as the worker runs them (a large JPEG is decoded scaled for the
            // detector and the thumbnail, then in full: both count as decode).
            let t = Instant::now();
            let processed = pipeline::process(&data, &detector, limits)?;
            let total = t.elapsed().as_secs_f64() * 1000.0;
            let class = stages.entry(class).or_default();
            for (stage, took) in processed.timings {
                class
                    .entry(stage)
                    .or_default()
                    .push(took.as_secs_f64() * 1000.0);
            }
            class.entry("total").or_default().push(total);
        }
    }
    let classes: serde_json::Map<String, serde_json::Value> = stages
        .into_iter()
        .map(|(class, s)| {
            let medians: serde_json::Map<String, serde_json::Value> = s
                .into_iter()
                .map(|(stage, v)| (stage.to_string(), json!(median(v))))
                .collect();
            (class.to_string(), json!(medians))
        })
        .collect();
    println!(
        "{}",
        json!({ "implementation": implementation, "runs": runs, "classes": classes,
                "rss_mb_model_loaded": rss_model, "peak_rss_mb": peak_rss_mb() })
    );
    Ok(())
}
