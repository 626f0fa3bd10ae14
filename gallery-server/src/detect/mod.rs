//! Detectors: image in, boxes out. Text detection (PP-OCR's DBNet) is the default.
mod dbnet;

use image::RgbImage;
use serde::Serialize;

pub use dbnet::{DbNetParams, TextDetector};

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
}
