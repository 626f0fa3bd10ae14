//! Detectors: image in, boxes out. Text detection (PP-OCR's DBNet) is the default; object
//! detection (YOLO, labelled boxes) when the configuration names a YOLO model.
mod dbnet;
mod engine;
mod yolo;

use image::RgbImage;
use serde::Serialize;

pub use dbnet::{DbNetParams, TextDetector};
pub use yolo::{ObjectDetector, YoloParams, COCO};

/// The detector the configuration asks for.
pub fn from_config(config: &common::config::Config) -> Result<Box<dyn Detector>, DetectError> {
    let threads = config.detector_threads;
    // An empty setting (GALLERY_ONNXRUNTIME_LIBRARY=) means rten, like an absent one.
    let onnxruntime = config.onnxruntime_library.as_ref().filter(|p| !p.as_os_str().is_empty());
    match onnxruntime {
        Some(library) => tracing::info!(library = %library.display(), "detection runs on ONNX Runtime"),
        None => tracing::info!("detection runs on rten"),
    }
    Ok(match &config.yolo_model_path {
        Some(path) => {
            let params = YoloParams { confidence: config.yolo_confidence, iou: config.yolo_iou, ..YoloParams::default() };
            Box::new(ObjectDetector::load(path, threads, params, onnxruntime)?)
        }
        None => Box::new(TextDetector::load(&config.model_path, threads, DbNetParams::default(), onnxruntime)?),
    })
}

/// An axis-aligned box in original-image pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("cannot load detection model {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("detection failed: {0}")]
    Run(String),
}

pub trait Detector: Send + Sync {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, DetectError>;
    fn name(&self) -> &str;
    /// What one box is, singular and plural, for the pages ("text region", "text regions").
    fn finds(&self) -> (&'static str, &'static str) {
        ("text region", "text regions")
    }
}
