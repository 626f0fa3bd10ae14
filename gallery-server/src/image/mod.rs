//! Image handling that is ours to get right: [`decode`] (format by content, limits before
//! allocation, EXIF orientation), [`encode`] (JPEG), [`annotate`] (drawing the boxes),
//! [`outline_jpeg`] (drawing them into a JPEG's coefficients) and [`resize`] (for the network
//! and the thumbnail).
pub mod annotate;
pub mod decode;
pub mod encode;
pub mod outline_jpeg;
pub mod resize;

/// Decompression-bomb limits, checked against the header before decoding.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_side: u32,
    pub max_pixels: u64,
}

impl DecodeLimits {
    /// The limits the configuration sets (`max_image_side`, `max_image_pixels`).
    pub fn of(config: &common::config::Config) -> DecodeLimits {
        DecodeLimits {
            max_side: config.max_image_side,
            max_pixels: config.max_image_pixels,
        }
    }
}

/// Why an image was refused or could not be written. Every refusal is the uploader's to fix
/// except `Encode`.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not an image (supported: JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    NotAnImage,
    #[error("{0} images are not supported (supported: JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    Unsupported(String),
    #[error("the image is {w}×{h} pixels; the limit is {max_side} pixels per side and {max_pixels} pixels in all")]
    TooManyPixels {
        w: u32,
        h: u32,
        max_side: u32,
        max_pixels: u64,
    },
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
    #[error("encoding failed: {0}")]
    Encode(String),
}
