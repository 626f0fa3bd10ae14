//! The CPU work for one upload: decode → orient → detect → thumbnail → annotate (a large
//! JPEG is decoded scaled down for detect and thumbnail, and annotated in its coefficients or,
//! where that cannot be, decoded in full to annotate).
//! Storing the result is `photos`'; running it on the bounded pool is `jobs`'.
use std::time::{Duration, Instant};

use image::{ImageFormat, RgbImage};

use crate::detect::{DetectError, Detection, Detector};
use crate::image::annotate::{annotate, outline_bands};
use crate::image::decode::{decode_pixels, format_info, inspect, into_rgb, jpeg_preview};
use crate::image::encode::{encode_jpeg, fit_within};
use crate::image::{outline_jpeg, DecodeLimits, ImageError};
use image::metadata::Orientation;

pub const THUMBNAIL_SIDE: u32 = 256;
pub const ANNOTATED_QUALITY: u8 = 85;
pub const THUMBNAIL_QUALITY: u8 = 80;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Detect(#[from] DetectError),
}

/// What the CPU stages produce for one upload.
pub struct Processed {
    pub ext: &'static str,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<Detection>,
    pub annotated: Vec<u8>,
    pub thumbnail: Vec<u8>,
    pub timings: Vec<(&'static str, Duration)>,
}

pub fn process(
    data: &[u8],
    detector: &dyn Detector,
    limits: DecodeLimits,
) -> Result<Processed, PipelineError> {
    let t = Instant::now();
    let header = inspect(data, limits)?;
    let (ext, content_type) = format_info(header.format).expect("checked in inspect");
    let preview = match header.format {
        ImageFormat::Jpeg => jpeg_preview(
            data,
            detector.input_side().max(THUMBNAIL_SIDE),
            header.orientation,
        ),
        _ => None,
    };
    let (seen, decode_took, (annotated, annotate_took), (width, height)) = match preview {
        // A large JPEG is decoded scaled down for the detector and the thumbnail. The outlines
        // are then drawn into the JPEG's own coefficients where they can be, so the full photo
        // is never decoded; otherwise it is decoded in full for the annotated copy once the
        // detector is done (the full photo, 36 MB at 12 MP, never held together with the
        // network's buffers, ~90 MB: a worker's peak is the larger of the two).
        Some(preview) => {
            let preview_took = t.elapsed();
            let seen = look_at(&preview, detector)?;
            let (pw, ph) = preview.dimensions();
            drop(preview);
            let (w, h) = header.shown_size();
            let (sx, sy) = (w as f32 / pw as f32, h as f32 / ph as f32);
            let boxes = seen
                .boxes
                .into_iter()
                .map(|b| b.scaled(sx, sy, w, h))
                .collect();
            let seen = Seen { boxes, ..seen };
            let t = Instant::now();
            let drawable = header.orientation == Orientation::NoTransforms
                && seen.boxes.iter().all(|b| b.label.is_none());
            match drawable
                .then(|| outline_jpeg::outline(data, &outline_bands(w, h, &seen.boxes)))
                .flatten()
            {
                Some(annotated) => (seen, preview_took, (annotated, t.elapsed()), (w, h)),
                None => {
                    let t = Instant::now();
                    let rgb = into_rgb(decode_pixels(data, &header, limits)?);
                    debug_assert_eq!(rgb.dimensions(), (w, h));
                    let decode_took = preview_took + t.elapsed();
                    let drawn = drawn_on(rgb, &seen.boxes)?;
                    (seen, decode_took, drawn, (w, h))
                }
            }
        }
        None => {
            let rgb = into_rgb(decode_pixels(data, &header, limits)?);
            let decode_took = t.elapsed();
            let seen = look_at(&rgb, detector)?;
            let size = rgb.dimensions();
            let drawn = drawn_on(rgb, &seen.boxes)?;
            (seen, decode_took, drawn, size)
        }
    };
    Ok(Processed {
        ext,
        content_type,
        width,
        height,
        boxes: seen.boxes,
        annotated,
        thumbnail: seen.thumbnail,
        timings: vec![
            ("decode", decode_took),
            ("detect", seen.detect_took),
            ("thumbnail", seen.thumbnail_took),
            ("annotate", annotate_took),
        ],
    })
}

/// The annotated copy drawn on the decoded photo and encoded, and what that took.
fn drawn_on(mut rgb: RgbImage, boxes: &[Detection]) -> Result<(Vec<u8>, Duration), ImageError> {
    let t = Instant::now();
    annotate(&mut rgb, boxes);
    Ok((encode_jpeg(&rgb, ANNOTATED_QUALITY)?, t.elapsed()))
}

/// What the detector and the thumbnail made of a photo (or of its scaled decode).
struct Seen {
    boxes: Vec<Detection>,
    detect_took: Duration,
    thumbnail: Vec<u8>,
    thumbnail_took: Duration,
}

fn look_at(img: &RgbImage, detector: &dyn Detector) -> Result<Seen, PipelineError> {
    let t = Instant::now();
    let boxes = detector.detect(img)?;
    let detect_took = t.elapsed();
    let t = Instant::now();
    let thumbnail = thumbnail_of(img)?;
    Ok(Seen {
        boxes,
        detect_took,
        thumbnail,
        thumbnail_took: t.elapsed(),
    })
}

fn thumbnail_of(img: &RgbImage) -> Result<Vec<u8>, ImageError> {
    let (tw, th) = fit_within(img.width(), img.height(), THUMBNAIL_SIDE);
    encode_jpeg(
        &crate::image::resize::bilinear(img, tw, th),
        THUMBNAIL_QUALITY,
    )
}
