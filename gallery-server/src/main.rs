//! `gallery-server` runs a worker; `gallery-server detect [--json] FILE...` prints the text
//! boxes the detector finds.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use common::config::Config;
use gallery_server::detect::Detector;

const USAGE: &str = "usage: gallery-server [serve]\n       gallery-server detect [--json] FILE...";

const DEFAULT_LOG: &str = "info,rocket=error,hyper=warn,gallery_server::routes=error";

fn main() -> ExitCode {
    gallery_server::allocator::limit_retention();
    common::logging::init(DEFAULT_LOG);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("detect") => detect(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gallery-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_detector(config: &Config) -> anyhow::Result<Box<dyn Detector>> {
    Ok(gallery_server::detect::from_config(config)?)
}

#[rocket::main]
async fn serve() -> anyhow::Result<()> {
    let config = Config::load()?;
    let detector: Arc<dyn Detector> = Arc::from(gallery_server::jobs::at_processing_priority(
        "detector",
        || load_detector(&config),
    )?);
    let rocket = gallery_server::build(config, detector).await?;
    let rocket = rocket.ignite().await?;
    let cfg = rocket.config();
    // Scripts and the control plane wait for this line.
    tracing::info!("listening on http://{}:{}", cfg.address, cfg.port);
    rocket.launch().await?;
    Ok(())
}

fn detect(args: &[String]) -> anyhow::Result<()> {
    let json = args.iter().any(|a| a == "--json");
    let files: Vec<PathBuf> = args
        .iter()
        .filter(|a| *a != "--json")
        .map(PathBuf::from)
        .collect();
    anyhow::ensure!(!files.is_empty(), "no files given\n{USAGE}");
    // Only the model path matters here; the database need not be configured.
    let mut config: Config =
        figment::Figment::from(figment::providers::Serialized::defaults(Config::default()))
            .merge(Config::env().only(&[
                "model_path",
                "detector_threads",
                "yolo_model_path",
                "yolo_confidence",
                "yolo_iou",
                "onnxruntime_library",
                "openvino_library",
                "detector_precision",
            ]))
            .extract()?;
    if config.detector_threads == 0 {
        config.detector_threads = 1;
    }
    config.check_detector()?;
    let detector = load_detector(&config)?;
    let limits = gallery_server::image::DecodeLimits::of(&config);
    let mut all = Vec::new();
    for file in &files {
        let data = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        // The whole pipeline, so that large JPEGs are detected on the same scaled decode as
        // in the worker.
        let boxes = gallery_server::pipeline::process(&data, detector.as_ref(), limits)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            .boxes;
        if !json {
            println!("{}: {} boxes", file.display(), boxes.len());
            for b in &boxes {
                let label = b
                    .label
                    .as_deref()
                    .map(|l| format!("  {l}"))
                    .unwrap_or_default();
                println!(
                    "  ({}, {}) – ({}, {})  score {:.2}{label}",
                    b.x0, b.y0, b.x1, b.y1, b.score
                );
            }
        }
        all.push(boxes);
    }
    if json {
        println!("{}", serde_json::to_string(&all)?);
    }
    Ok(())
}
