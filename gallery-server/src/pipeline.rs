//! One upload: decode → orient → detect → thumbnail → annotate (CPU, on the bounded pool; a
//! large JPEG is first decoded scaled down for detect and thumbnail, then in full to annotate),
//! then store the three objects and insert the row (I/O). A photo row exists only when its
//! three objects do; any failure removes what was written.
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::db::{self, Db, Photo};
use common::store::SharedStore;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Rgb, RgbImage};
use imageproc::drawing::draw_hollow_rect_mut;
use imageproc::rect::Rect;
use tokio::sync::Semaphore;

use crate::detect::{DetectError, Detection, Detector};

pub const THUMBNAIL_SIDE: u32 = 256;
pub const ANNOTATED_QUALITY: u8 = 85;
pub const THUMBNAIL_QUALITY: u8 = 80;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not an image (supported: JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    NotAnImage,
    #[error("{0} images are not supported (supported: JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    Unsupported(String),
    #[error("the image is {w}×{h} pixels; the limit is {max_side} pixels per side and {max_pixels} pixels in all")]
    TooManyPixels { w: u32, h: u32, max_side: u32, max_pixels: u64 },
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("encoding failed: {0}")]
    Encode(String),
}

#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_side: u32,
    pub max_pixels: u64,
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

fn format_info(format: ImageFormat) -> Option<(&'static str, &'static str)> {
    Some(match format {
        ImageFormat::Jpeg => ("jpg", "image/jpeg"),
        ImageFormat::Png => ("png", "image/png"),
        ImageFormat::WebP => ("webp", "image/webp"),
        ImageFormat::Gif => ("gif", "image/gif"),
        ImageFormat::Bmp => ("bmp", "image/bmp"),
        ImageFormat::Tiff => ("tiff", "image/tiff"),
        _ => return None,
    })
}

/// What the header says, checked before any pixel memory is allocated.
struct Header {
    format: ImageFormat,
    orientation: Orientation,
}

/// Recognises the format by content (never by file name) and refuses images whose header
/// promises more pixels than allowed.
fn inspect(data: &[u8], limits: DecodeLimits) -> Result<Header, PipelineError> {
    if data.is_empty() {
        return Err(PipelineError::Empty);
    }
    let format = image::guess_format(data).map_err(|_| PipelineError::NotAnImage)?;
    if format_info(format).is_none() {
        return Err(PipelineError::Unsupported(format!("{format:?}").to_uppercase()));
    }
    let corrupt = |e: image::ImageError| PipelineError::Corrupt(e.to_string());
    let mut decoder = ImageReader::with_format(Cursor::new(data), format).into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w > limits.max_side || h > limits.max_side || w as u64 * h as u64 > limits.max_pixels {
        return Err(PipelineError::TooManyPixels { w, h, max_side: limits.max_side, max_pixels: limits.max_pixels });
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(data) {
        return Err(PipelineError::Corrupt("the JPEG data is truncated".into()));
    }
    let orientation = decoder.orientation().map_err(corrupt)?;
    Ok(Header { format, orientation })
}

/// Decodes by content (never by file name), refusing images whose header promises more
/// pixels than allowed before any pixel memory is allocated, and applies EXIF orientation.
pub fn decode(data: &[u8], limits: DecodeLimits) -> Result<(DynamicImage, ImageFormat), PipelineError> {
    let header = inspect(data, limits)?;
    Ok((decode_pixels(data, &header, limits)?, header.format))
}

fn decode_pixels(data: &[u8], header: &Header, limits: DecodeLimits) -> Result<DynamicImage, PipelineError> {
    if header.format == ImageFormat::Jpeg {
        if let Some(rgb) = turbo_decode(data, header.orientation, |_| Some(turbojpeg::ScalingFactor::ONE)) {
            return Ok(DynamicImage::ImageRgb8(rgb));
        }
    }
    let corrupt = |e: image::ImageError| PipelineError::Corrupt(e.to_string());
    let mut reader = ImageReader::with_format(Cursor::new(data), header.format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_pixels * 8 + (64 << 20));
    reader.limits(decoder_limits);
    let mut img = DynamicImage::from_decoder(reader.into_decoder().map_err(corrupt)?).map_err(corrupt)?;
    img.apply_orientation(header.orientation);
    Ok(img)
}

/// A JPEG decoded at the smallest of 1/8, 1/4 and 1/2 of its size whose long side is still
/// at least `side` (scaled in libjpeg-turbo's inverse DCT, this costs a fraction of a full
/// decode: 13 ms instead of 36 for 12 MP at 1/4), oriented. None when no reduction is that
/// large, or libjpeg-turbo cannot decode it: the full decode then serves.
fn jpeg_preview(data: &[u8], side: u32, orientation: Orientation) -> Option<RgbImage> {
    use turbojpeg::ScalingFactor;
    let fits = |h: &turbojpeg::DecompressHeader, f: ScalingFactor| {
        let s = h.scaled(f);
        s.width.max(s.height) >= side as usize
    };
    turbo_decode(data, orientation, |h| {
        [ScalingFactor::ONE_EIGHTH, ScalingFactor::ONE_QUARTER, ScalingFactor::ONE_HALF].into_iter().find(|f| fits(h, *f))
    })
}

/// A JPEG decoded to RGB by libjpeg-turbo (faster than the image crate's decoder: 36 vs 42 ms
/// at 12 MP) at the scale `scale` picks from its header, oriented. None when there is no
/// scale, or libjpeg-turbo cannot give RGB (CMYK) or objects to the data: the image crate's
/// decoder then decodes it or says what is wrong.
fn turbo_decode(
    data: &[u8],
    orientation: Orientation,
    scale: impl FnOnce(&turbojpeg::DecompressHeader) -> Option<turbojpeg::ScalingFactor>,
) -> Option<RgbImage> {
    let mut decompressor = turbojpeg::Decompressor::new().ok()?;
    let header = decompressor.read_header(data).ok()?;
    let factor = scale(&header)?;
    let size = header.scaled(factor);
    decompressor.set_scaling_factor(factor).ok()?;
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; 3 * size.width * size.height],
        width: size.width,
        pitch: 3 * size.width,
        height: size.height,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor.decompress(data, image.as_deref_mut()).ok()?;
    let rgb = RgbImage::from_raw(size.width as u32, size.height as u32, image.pixels)?;
    if orientation == Orientation::NoTransforms {
        return Some(rgb);
    }
    let mut img = DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(orientation);
    Some(img.into_rgb8())
}

/// The JPEG decoder fills a cut-off file with grey instead of failing; a complete file ends
/// with the EOI marker (possibly followed by padding some cameras append).
fn jpeg_is_complete(data: &[u8]) -> bool {
    let tail = &data[data.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Flattens onto white so transparent areas do not turn black. Takes the image: an RGB
/// photo (most JPEGs) keeps its buffer instead of being copied (36 MB at 12 MP).
pub fn into_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y);
        let a = p[3] as u32;
        Rgb([0, 1, 2].map(|c| ((p[c] as u32 * a + 255 * (255 - a)) / 255) as u8))
    })
}

pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let (w, h) = img.dimensions();
    if w.max(h) > 65_535 {
        return Err(PipelineError::Encode("JPEG cannot hold more than 65535 pixels per side".into()));
    }
    let encode = || -> Result<Vec<u8>, turbojpeg::Error> {
        let mut compressor = turbojpeg::Compressor::new()?;
        compressor.set_quality(quality as i32)?;
        // 4:2:0, as photo encoders (and libjpeg's defaults) do at these qualities.
        compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2)?;
        let image = turbojpeg::Image {
            pixels: img.as_raw().as_slice(),
            width: w as usize,
            pitch: 3 * w as usize,
            height: h as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        compressor.compress_to_vec(image)
    };
    encode().map_err(|e| PipelineError::Encode(e.to_string()))
}

/// Text boxes are red; object classes get one of these, always the same for a class.
const PALETTE: [Rgb<u8>; 6] =
    [Rgb([40, 160, 255]), Rgb([255, 170, 0]), Rgb([60, 200, 80]), Rgb([200, 60, 220]), Rgb([0, 200, 200]), Rgb([240, 220, 40])];
const TEXT_BOX: Rgb<u8> = Rgb([255, 40, 40]);

fn colour_of(label: Option<&str>) -> Rgb<u8> {
    match label {
        None => TEXT_BOX,
        Some(l) => PALETTE[l.bytes().fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % PALETTE.len()],
    }
}

/// Rectangles a few pixels thick, scaled with the photo so they stay visible; a labelled
/// box (an object) gets its label and score on a tab above it (inside it at the top edge).
pub fn annotate(img: &mut RgbImage, boxes: &[Detection]) {
    let side = img.width().max(img.height());
    let thickness = (side / 320).max(2);
    for b in boxes {
        let colour = colour_of(b.label.as_deref());
        for t in 0..thickness {
            let (x0, y0) = (b.x0 as i32 - t as i32, b.y0 as i32 - t as i32);
            let (w, h) = ((b.x1 - b.x0) + 2 * t, (b.y1 - b.y0) + 2 * t);
            if w > 0 && h > 0 {
                draw_hollow_rect_mut(img, Rect::at(x0, y0).of_size(w, h), colour);
            }
        }
        if let Some(label) = &b.label {
            let text = format!("{label} {:.0}%", b.score * 100.0);
            let scale = (side / 640).max(1);
            let (tab_w, tab_h) = (text.chars().count() as u32 * 8 * scale + 2 * scale, 10 * scale);
            let x = b.x0.saturating_sub(thickness - 1);
            let above = b.y0 as i64 - thickness as i64 - tab_h as i64 + 1;
            let y = if above >= 0 { above as u32 } else { b.y0 };
            imageproc::drawing::draw_filled_rect_mut(img, Rect::at(x as i32, y as i32).of_size(tab_w, tab_h), colour);
            draw_label(img, &text, x + scale, y + scale, scale);
        }
    }
}

/// ASCII in an 8×8 bitmap font (font8x8), magnified `scale` times, in white.
fn draw_label(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32) {
    let (w, h) = img.dimensions();
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY.get(ch as usize).copied().unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u32 {
                if bits >> col & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let px = x + (i as u32 * 8 + col) * scale + dx;
                        let py = y + row as u32 * scale + dy;
                        if px < w && py < h {
                            img.put_pixel(px, py, Rgb([255, 255, 255]));
                        }
                    }
                }
            }
        }
    }
}

pub fn process(data: &[u8], detector: &dyn Detector, limits: DecodeLimits) -> Result<Processed, PipelineError> {
    let t = Instant::now();
    let header = inspect(data, limits)?;
    let (ext, content_type) = format_info(header.format).expect("checked in inspect");
    let preview = match header.format {
        ImageFormat::Jpeg => jpeg_preview(data, detector.input_side().max(THUMBNAIL_SIDE), header.orientation),
        _ => None,
    };
    let (mut rgb, seen, decode_took) = match preview {
        // A large JPEG is decoded twice: scaled down for the detector and the thumbnail, then
        // in full for the annotated copy once the detector is done. About the same CPU as one
        // full decode and two reductions, and the full photo (36 MB at 12 MP) is never held
        // together with the network's buffers (~90 MB): a worker's peak is the larger of the two.
        Some(preview) => {
            let preview_took = t.elapsed();
            let seen = look_at(&preview, detector)?;
            let (pw, ph) = preview.dimensions();
            drop(preview);
            let t = Instant::now();
            let rgb = into_rgb(decode_pixels(data, &header, limits)?);
            let (w, h) = rgb.dimensions();
            let (sx, sy) = (w as f32 / pw as f32, h as f32 / ph as f32);
            let boxes = seen.boxes.into_iter().map(|b| b.scaled(sx, sy, w, h)).collect();
            (rgb, Seen { boxes, ..seen }, preview_took + t.elapsed())
        }
        None => {
            let rgb = into_rgb(decode_pixels(data, &header, limits)?);
            let decode_took = t.elapsed();
            let seen = look_at(&rgb, detector)?;
            (rgb, seen, decode_took)
        }
    };
    let t = Instant::now();
    let (width, height) = rgb.dimensions();
    annotate(&mut rgb, &seen.boxes);
    let annotated = encode_jpeg(&rgb, ANNOTATED_QUALITY)?;
    let timings = vec![("decode", decode_took), ("detect", seen.detect_took), ("thumbnail", seen.thumbnail_took), ("annotate", t.elapsed())];
    Ok(Processed { ext, content_type, width, height, boxes: seen.boxes, annotated, thumbnail: seen.thumbnail, timings })
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
    Ok(Seen { boxes, detect_took, thumbnail, thumbnail_took: t.elapsed() })
}

fn thumbnail_of(img: &RgbImage) -> Result<Vec<u8>, PipelineError> {
    let (tw, th) = fit_within(img.width(), img.height(), THUMBNAIL_SIDE);
    encode_jpeg(&crate::resize::bilinear(img, tw, th), THUMBNAIL_QUALITY)
}

/// Size keeping the aspect ratio with the long side at most `side`.
pub fn fit_within(w: u32, h: u32, side: u32) -> (u32, u32) {
    if w.max(h) <= side {
        return (w, h);
    }
    if w >= h {
        (side, ((h as u64 * side as u64 + w as u64 / 2) / w as u64).max(1) as u32)
    } else {
        (((w as u64 * side as u64 + h as u64 / 2) / h as u64).max(1) as u32, side)
    }
}

/// Bounds CPU work: `workers` jobs run at once, at most `queue` more wait; beyond that the
/// caller is told to come back later instead of piling up memory and latency.
#[derive(Clone)]
pub struct JobPool {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

#[derive(Debug)]
pub struct Busy;

impl JobPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        JobPool { admitted: Arc::new(Semaphore::new(workers + queue)), running: Arc::new(Semaphore::new(workers)) }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Result<T, tokio::task::JoinError>, Busy> {
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| Busy)?;
        let _running = self.running.clone().acquire_owned().await.expect("semaphore never closed");
        Ok(tokio::task::spawn_blocking(job).await)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] common::store::StoreError),
    #[error(transparent)]
    Db(#[from] db::DbError),
}

/// Writes the three objects, then the row. Runs as its own task so that a client hanging up
/// mid-way cannot cancel it between the writes and the clean-up.
pub async fn commit(
    store: SharedStore,
    db: Db,
    photo: Photo,
    original: Bytes,
    processed: Processed,
) -> Result<Photo, CommitError> {
    tokio::spawn(async move {
        let objects = [
            (photo.original_key(), original, photo.content_type.clone()),
            (photo.annotated_key(), Bytes::from(processed.annotated), "image/jpeg".to_string()),
            (photo.thumbnail_key(), Bytes::from(processed.thumbnail), "image/jpeg".to_string()),
        ];
        let keys: Vec<String> = objects.iter().map(|o| o.0.clone()).collect();
        let mut result: Result<(), CommitError> = Ok(());
        for (key, data, content_type) in objects {
            if let Err(e) = store.put(&key, data, &content_type).await {
                result = Err(e.into());
                break;
            }
        }
        if result.is_ok() {
            result = match db.insert_photo(&photo).await {
                Ok(()) => Ok(()),
                // The insert may have committed before the connection broke: if the row is
                // there, the photo is saved and its objects must stay.
                Err(e) => match db.photo(&photo.id).await {
                    Ok(Some(_)) => Ok(()),
                    _ => Err(e.into()),
                },
            };
        }
        if let Err(e) = result {
            for key in &keys {
                if let Err(del) = store.delete(key).await {
                    tracing::error!(%key, error = %del, "could not remove object of a failed upload");
                }
            }
            return Err(e);
        }
        Ok(photo)
    })
    .await
    .expect("commit task panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_within_keeps_aspect() {
        assert_eq!(fit_within(1600, 1200, 256), (256, 192));
        assert_eq!(fit_within(1200, 1600, 256), (192, 256));
        assert_eq!(fit_within(100, 50, 256), (100, 50));
        assert_eq!(fit_within(10000, 10, 256), (256, 1));
    }

    #[test]
    fn annotate_draws_visible_box_edges() {
        let mut img = RgbImage::from_pixel(100, 100, Rgb([0, 0, 0]));
        annotate(&mut img, &[Detection { x0: 20, y0: 20, x1: 60, y1: 50, score: 1.0, label: None }]);
        assert_eq!(img.get_pixel(20, 30), &Rgb([255, 40, 40]));
        assert_eq!(img.get_pixel(40, 50), &Rgb([255, 40, 40]));
        assert_eq!(img.get_pixel(40, 35), &Rgb([0, 0, 0]), "inside stays untouched");
    }

    #[test]
    fn object_boxes_carry_their_label_above() {
        let mut img = RgbImage::from_pixel(200, 200, Rgb([0, 0, 0]));
        let dog = Detection { x0: 50, y0: 60, x1: 150, y1: 150, score: 0.87, label: Some("dog".into()) };
        annotate(&mut img, &[dog]);
        let colour = colour_of(Some("dog"));
        assert_ne!(colour, TEXT_BOX);
        assert_eq!(img.get_pixel(50, 100), &colour, "the box edge");
        // The tab sits on the box's top edge: "dog 87%" is 7 glyphs, 58 pixels wide, 10 high.
        let tab: Vec<&Rgb<u8>> = (49..49 + 58).flat_map(|x| (49..59).map(move |y| (x, y))).map(|(x, y)| img.get_pixel(x, y)).collect();
        let white = tab.iter().filter(|p| ***p == Rgb([255, 255, 255])).count();
        let filled = tab.iter().filter(|p| ***p == colour).count();
        assert!(white > 40 && filled > white, "label text on the tab: {white} white, {filled} tab pixels");
        assert_eq!(img.get_pixel(100, 40), &Rgb([0, 0, 0]), "nothing above the tab");
        // A box at the top edge gets its tab inside.
        let mut img = RgbImage::from_pixel(200, 200, Rgb([0, 0, 0]));
        annotate(&mut img, &[Detection { x0: 10, y0: 0, x1: 150, y1: 100, score: 0.5, label: Some("cat".into()) }]);
        let white = (10..60).flat_map(|x| (1..9).map(move |y| (x, y))).filter(|&(x, y)| img.get_pixel(x, y) == &Rgb([255, 255, 255])).count();
        assert!(white > 30, "label inside the box: {white} white pixels");
    }

    #[tokio::test]
    async fn job_pool_refuses_beyond_queue() {
        let pool = JobPool::new(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let r1 = rx.clone();
        let p1 = pool.clone();
        let first = tokio::spawn(async move { p1.run(move || r1.lock().unwrap().recv().unwrap()).await });
        let r2 = rx.clone();
        let p2 = pool.clone();
        let second = tokio::spawn(async move { p2.run(move || r2.lock().unwrap().recv().unwrap()).await });
        // Wait until both are admitted (one running, one queued) before the third tries.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.admitted.available_permits() > 0 {
            assert!(Instant::now() < deadline, "jobs were not admitted");
            tokio::task::yield_now().await;
        }
        assert!(pool.run(|| ()).await.is_err(), "third job must be refused");
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().is_ok());
    }
}
