//! Detectors: image in, boxes out. Text detection (PP-OCR's DBNet) is the default; object
//! detection (YOLO, labelled boxes) when the configuration names a YOLO model.
mod dbnet;
mod engine;
mod pool;
mod yolo;

use std::path::PathBuf;

use image::RgbImage;
use serde::Serialize;

pub use common::config::Precision;
pub use dbnet::{DbNetParams, TextDetector};
pub use yolo::{ObjectDetector, YoloParams, COCO};

/// Which library runs the detection model.
#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
    Rten,
    /// ONNX Runtime, from this `libonnxruntime.so`.
    OnnxRuntime(PathBuf),
    /// OpenVINO, from this `libopenvino_c.so`, in this arithmetic.
    OpenVino {
        library: PathBuf,
        precision: Precision,
    },
}

/// How a detector may use the CPU: `per_job` threads for one photo, `jobs` photos at once
/// (a worker's `pipeline_workers`).
#[derive(Debug, Clone, Copy)]
pub struct Threads {
    pub per_job: usize,
    pub jobs: usize,
}

impl Threads {
    pub const ONE: Threads = Threads {
        per_job: 1,
        jobs: 1,
    };
}

/// The detector the configuration asks for.
pub fn from_config(config: &common::config::Config) -> Result<Box<dyn Detector>, DetectError> {
    let threads = Threads {
        per_job: config.detector_threads,
        jobs: config.pipeline_workers(),
    };
    let runtime = runtime(config);
    if let Runtime::OnnxRuntime(library) | Runtime::OpenVino { library, .. } = &runtime {
        tracing::info!(library = %library.display(), "loading the detection runtime");
    }
    Ok(match &config.yolo_model_path {
        Some(path) => {
            let params = YoloParams {
                confidence: config.yolo_confidence,
                iou: config.yolo_iou,
                ..YoloParams::default()
            };
            Box::new(ObjectDetector::load(path, threads, params, &runtime)?)
        }
        None => Box::new(TextDetector::load(
            &config.model_path,
            threads,
            DbNetParams::default(),
            &runtime,
        )?),
    })
}

/// The library the configuration names. The configuration refuses both libraries at once.
pub fn runtime(config: &common::config::Config) -> Runtime {
    use common::config::library;
    match (
        library(&config.openvino_library),
        library(&config.onnxruntime_library),
    ) {
        (Some(library), _) => Runtime::OpenVino {
            library: library.to_path_buf(),
            precision: config.detector_precision,
        },
        (None, Some(library)) => Runtime::OnnxRuntime(library.to_path_buf()),
        (None, None) => Runtime::Rten,
    }
}

impl Detection {
    /// The box in an image `sx` × `sy` times the size of the one it was found in, kept
    /// inside `w` × `h`.
    pub fn scaled(self, sx: f32, sy: f32, w: u32, h: u32) -> Detection {
        let at = |v: u32, s: f32, max: u32| ((v as f32 * s).round() as u32).min(max);
        Detection {
            x0: at(self.x0, sx, w),
            y0: at(self.y0, sy, h),
            x1: at(self.x1, sx, w),
            y1: at(self.y1, sy, h),
            ..self
        }
    }
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
    /// The name and what runs it ("text (PP-OCRv4 DBNet) on OpenVINO"), recorded with each
    /// photo: runtimes and precisions differ by a few pixels.
    fn describe(&self) -> String {
        self.name().to_owned()
    }
    /// What runs the model ("OpenVINO", "rten", …), as people call it.
    fn runtime(&self) -> &'static str {
        ""
    }
    /// The long side the detector reduces every photo to: a photo handed over at any size
    /// at least this long gives the same boxes (the pipeline decodes large JPEGs only that far
    /// for it).
    fn input_side(&self) -> u32;
    /// What the boxes are around.
    fn finds(&self) -> Finds {
        Finds::Text
    }
}

/// What a detector's boxes are around (the pages word it for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finds {
    /// Lines of text, unlabelled.
    Text,
    /// Objects, each box labelled with its class.
    Objects,
}
