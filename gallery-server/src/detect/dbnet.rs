//! PP-OCRv4 DBNet text detection with rten, post-processed the way PP-OCR/RapidOCR do:
//! threshold the probability map, dilate, trace region outlines, fit minimum-area
//! rectangles, score them on the map, grow ("unclip") them by the DB offset, and scale
//! back to the original image.
use std::path::Path;

use super::engine::Engine;
use super::{DetectError, Detection, Detector};
use super::{Runtime, Threads};
use image::{GrayImage, RgbImage};
use imageproc::contours::{find_contours, BorderType};
use imageproc::geometry::min_area_rect;
use imageproc::point::Point;

#[derive(Debug, Clone)]
pub struct DbNetParams {
    /// The longer side of the network input, in pixels (rounded to a multiple of 32).
    pub max_side: u32,
    /// Probability above which a pixel is text.
    pub threshold: f32,
    /// Mean probability inside a candidate box below which it is dropped.
    pub box_threshold: f32,
    /// How far boxes grow beyond the shrunk text kernels DBNet predicts.
    pub unclip_ratio: f32,
    /// Shortest side, in input pixels, of a box worth keeping.
    pub min_size: f32,
    pub max_candidates: usize,
    pub dilate: bool,
}

impl Default for DbNetParams {
    // RapidOCR's settings for this model.
    fn default() -> Self {
        DbNetParams {
            max_side: 960,
            threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
            min_size: 3.0,
            max_candidates: 1000,
            dilate: true,
        }
    }
}

pub struct TextDetector {
    engine: Engine,
    params: DbNetParams,
}

impl TextDetector {
    pub fn load(
        path: &Path,
        threads: Threads,
        params: DbNetParams,
        runtime: &Runtime,
    ) -> Result<Self, DetectError> {
        let detector = TextDetector {
            engine: Engine::load(path, threads, runtime)?,
            params,
        };
        // Most photos are a camera's 4:3 landscape: ready for those before the first upload.
        let (w, h) = detector.input_size(4032, 3024);
        detector
            .engine
            .prepare(path, [1, 3, h as usize, w as usize])?;
        Ok(detector)
    }

    pub fn input_size(&self, w: u32, h: u32) -> (u32, u32) {
        input_size(self.params.max_side, w, h)
    }
}

/// Network input size for an image: long side at most `max_side`, both sides multiples of 32
/// (the network downsamples five times). Halves round up: a 4:3 photo's short side (22.5 ×
/// 32 at 960) goes to 736. PP-OCR's own preprocessing, and the reference pipeline, round
/// them to even (704): 4 % less network per 4:3 photo, and on 4:3 crops of the test photos
/// it found slightly fewer words (`docs/bench-history.md` #15), so ours keeps the pixels.
fn input_size(max_side: u32, w: u32, h: u32) -> (u32, u32) {
    let scale = (max_side as f32 / w.max(h) as f32).min(1.0);
    let round32 = |v: u32| (((v as f32 * scale) / 32.0).round() as u32 * 32).max(32);
    (round32(w), round32(h))
}

impl Detector for TextDetector {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let (w, h) = image.dimensions();
        let (iw, ih) = self.input_size(w, h);
        let resized = crate::image::resize::for_network(image, iw, ih);
        let plane = (iw * ih) as usize;
        let fill = |data: &mut [f32]| {
            let (r, rest) = data.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            // Interleaved RGB to planes, normalised as RapidOCR does (mean 0.5, std 0.5).
            let norm = |v: u8| v as f32 * (1.0 / 127.5) - 1.0;
            for (((px, r), g), b) in resized.as_raw().chunks_exact(3).zip(r).zip(g).zip(b) {
                (*r, *g, *b) = (norm(px[0]), norm(px[1]), norm(px[2]));
            }
        };
        let (shape, data) = self.engine.run([1, 3, ih as usize, iw as usize], fill)?;
        let [_, _, ph, pw] = shape[..] else {
            return Err(DetectError::Run(format!(
                "expected a [1, 1, h, w] probability map, got {shape:?}"
            )));
        };
        let prob = ProbMap { w: pw, h: ph, data };
        Ok(boxes_from_map(&prob, &self.params, w, h))
    }

    fn name(&self) -> &str {
        "text (PP-OCRv4 DBNet)"
    }

    fn describe(&self) -> String {
        format!("{} on {}", self.name(), self.engine.runtime())
    }

    fn runtime(&self) -> &'static str {
        self.engine.runtime()
    }

    fn input_side(&self) -> u32 {
        self.params.max_side
    }
}

/// The network's text probability per input pixel, row-major.
pub struct ProbMap {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

impl ProbMap {
    fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.w + x]
    }
}

pub fn boxes_from_map(prob: &ProbMap, p: &DbNetParams, orig_w: u32, orig_h: u32) -> Vec<Detection> {
    let (w, h) = (prob.w, prob.h);
    let mut mask: Vec<u8> = prob
        .data
        .iter()
        .map(|&v| if v > p.threshold { 255 } else { 0 })
        .collect();
    if p.dilate {
        // 2x2 dilation joins characters split by a one-pixel gap, as RapidOCR does: a pixel
        // is on when it or its left, upper or upper-left neighbour is. Bottom row first, so
        // each row still reads the undilated row above it.
        for y in (0..h).rev() {
            let (above, row) = mask.split_at_mut(y * w);
            let row = &mut row[..w];
            for x in (1..w).rev() {
                row[x] |= row[x - 1];
            }
            if y > 0 {
                let above = &above[(y - 1) * w..];
                row[0] |= above[0];
                for x in 1..w {
                    row[x] |= above[x] | above[x - 1];
                }
            }
        }
    }
    let mask = GrayImage::from_raw(w as u32, h as u32, mask).expect("one byte per map pixel");
    let sx = orig_w as f32 / prob.w as f32;
    let sy = orig_h as f32 / prob.h as f32;
    let mut out = Vec::new();
    let contours = find_contours::<i32>(&mask);
    for contour in contours
        .iter()
        .filter(|c| c.border_type == BorderType::Outer)
        .take(p.max_candidates)
    {
        let Some(rect) = Rect::fit(&contour.points) else {
            continue;
        };
        if rect.short_side() < p.min_size {
            continue;
        }
        let score = rect.mean_inside(prob);
        if score < p.box_threshold {
            continue;
        }
        let grown = rect.unclip(p.unclip_ratio);
        if grown.short_side() < p.min_size + 2.0 {
            continue;
        }
        let (x0, y0, x1, y1) = grown.bounds();
        let clamp = |v: f32, max: u32| (v.max(0.0).round() as u32).min(max);
        let det = Detection {
            x0: clamp(x0 * sx, orig_w),
            y0: clamp(y0 * sy, orig_h),
            x1: clamp(x1 * sx, orig_w),
            y1: clamp(y1 * sy, orig_h),
            score,
            label: None,
        };
        if det.x1 > det.x0 && det.y1 > det.y0 {
            out.push(det);
        }
    }
    out.sort_by_key(|d| (d.y0, d.x0));
    out
}

/// A rotated rectangle: centre, unit axes and half extents along them.
#[derive(Debug, Clone, Copy)]
struct Rect {
    cx: f32,
    cy: f32,
    u: (f32, f32),
    v: (f32, f32),
    half_w: f32,
    half_h: f32,
}

impl Rect {
    fn fit(points: &[Point<i32>]) -> Option<Rect> {
        if points.is_empty() {
            return None;
        }
        let corners = min_area_rect(points);
        let [a, b, _, d] = corners;
        let cx = corners.iter().map(|p| p.x as f32).sum::<f32>() / 4.0;
        let cy = corners.iter().map(|p| p.y as f32).sum::<f32>() / 4.0;
        let (ux, uy) = ((b.x - a.x) as f32, (b.y - a.y) as f32);
        let (vx, vy) = ((d.x - a.x) as f32, (d.y - a.y) as f32);
        let w = ux.hypot(uy);
        let h = vx.hypot(vy);
        let (u, v) = match (w > 0.0, h > 0.0) {
            (true, true) => ((ux / w, uy / w), (vx / h, vy / h)),
            (true, false) => ((ux / w, uy / w), (-uy / w, ux / w)),
            (false, true) => ((vy / h, -vx / h), (vx / h, vy / h)),
            (false, false) => ((1.0, 0.0), (0.0, 1.0)),
        };
        Some(Rect {
            cx,
            cy,
            u,
            v,
            half_w: w / 2.0,
            half_h: h / 2.0,
        })
    }

    fn short_side(&self) -> f32 {
        2.0 * self.half_w.min(self.half_h)
    }

    /// DB's unclip: offset the polygon outwards by area × ratio / perimeter.
    fn unclip(&self, ratio: f32) -> Rect {
        let (w, h) = (2.0 * self.half_w, 2.0 * self.half_h);
        let d = w * h * ratio / (2.0 * (w + h)).max(f32::EPSILON);
        Rect {
            half_w: self.half_w + d,
            half_h: self.half_h + d,
            ..*self
        }
    }

    fn corners(&self) -> [(f32, f32); 4] {
        let mut out = [(0.0, 0.0); 4];
        for (i, (su, sv)) in [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]
            .into_iter()
            .enumerate()
        {
            out[i] = (
                self.cx + su * self.half_w * self.u.0 + sv * self.half_h * self.v.0,
                self.cy + su * self.half_w * self.u.1 + sv * self.half_h * self.v.1,
            );
        }
        out
    }

    fn bounds(&self) -> (f32, f32, f32, f32) {
        let c = self.corners();
        let xs = c.map(|p| p.0);
        let ys = c.map(|p| p.1);
        let min = |a: [f32; 4]| a.into_iter().fold(f32::INFINITY, f32::min);
        let max = |a: [f32; 4]| a.into_iter().fold(f32::NEG_INFINITY, f32::max);
        (min(xs), min(ys), max(xs), max(ys))
    }

    fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let a = dx * self.u.0 + dy * self.u.1;
        let b = dx * self.v.0 + dy * self.v.1;
        a.abs() <= self.half_w + 0.5 && b.abs() <= self.half_h + 0.5
    }

    /// Mean probability over the map pixels inside the rectangle (PP-OCR's "fast" score).
    fn mean_inside(&self, prob: &ProbMap) -> f32 {
        let (x0, y0, x1, y1) = self.bounds();
        let clip = |v: f32, n: usize| (v.max(0.0) as usize).min(n - 1);
        let (x0, x1) = (clip(x0.floor(), prob.w), clip(x1.ceil(), prob.w));
        let (y0, y1) = (clip(y0.floor(), prob.h), clip(y1.ceil(), prob.h));
        let (mut sum, mut n) = (0.0f32, 0u32);
        for y in y0..=y1 {
            for x in x0..=x1 {
                if self.contains(x as f32, y as f32) {
                    sum += prob.at(x, y);
                    n += 1;
                }
            }
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_with(w: usize, h: usize, blocks: &[(usize, usize, usize, usize, f32)]) -> ProbMap {
        let mut data = vec![0.0; w * h];
        for &(x0, y0, x1, y1, v) in blocks {
            for y in y0..y1 {
                for x in x0..x1 {
                    data[y * w + x] = v;
                }
            }
        }
        ProbMap { w, h, data }
    }

    #[test]
    fn input_sizes_keep_the_long_side_and_round_to_32() {
        // A camera's 4:3 either way up, whatever its resolution: 720 px is 22.5 × 32.
        for (w, h) in [(4032, 3024), (1600, 1200), (1280, 960)] {
            assert_eq!(input_size(960, w, h), (960, 736));
            assert_eq!(input_size(960, h, w), (736, 960));
        }
        assert_eq!(input_size(960, 1920, 1080), (960, 544));
        // Not enlarged; rounded to the nearest multiple of 32 (48 is 1.5 × 32: to 64).
        assert_eq!(input_size(960, 100, 48), (96, 64));
        assert_eq!(input_size(960, 10, 10), (32, 32));
    }

    #[test]
    fn one_confident_region_becomes_one_grown_box_in_original_pixels() {
        // A 40x8 text kernel at (20,10) on a 100x50 map of a 200x100 image.
        let prob = map_with(100, 50, &[(20, 10, 60, 18, 0.9)]);
        let boxes = boxes_from_map(&prob, &DbNetParams::default(), 200, 100);
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let b = &boxes[0];
        // Kernel spans x 40..120, y 20..36 in the original; unclip grows it on every side.
        assert!(b.x0 < 40 && b.x1 > 118 && b.y0 < 20 && b.y1 > 34, "{b:?}");
        assert!(
            b.x0 > 20 && b.x1 < 140 && b.y0 > 5 && b.y1 < 50,
            "grown too far: {b:?}"
        );
        // The mean covers the dilated rim too, where the map is 0, so it sits below 0.9.
        assert!(b.score > 0.7 && b.score <= 0.9, "{b:?}");
    }

    #[test]
    fn weak_and_tiny_regions_are_dropped() {
        let prob = map_with(100, 50, &[(10, 10, 50, 18, 0.4), (70, 30, 72, 32, 0.9)]);
        // 0.4 passes the pixel threshold but not the box score; the 2x2 blob is too small.
        assert!(boxes_from_map(&prob, &DbNetParams::default(), 100, 50).is_empty());
    }

    #[test]
    fn separate_regions_are_separate_boxes_sorted_top_to_bottom() {
        let prob = map_with(100, 60, &[(10, 40, 50, 48, 0.8), (10, 5, 50, 13, 0.8)]);
        let boxes = boxes_from_map(&prob, &DbNetParams::default(), 100, 60);
        assert_eq!(boxes.len(), 2);
        assert!(boxes[0].y1 < boxes[1].y0);
    }

    #[test]
    fn dilation_joins_words_split_by_a_one_pixel_gap() {
        // Two kernels with one empty column between them, and two with one empty row.
        let prob = map_with(
            100,
            60,
            &[
                (10, 10, 30, 18, 0.9),
                (31, 10, 50, 18, 0.9),
                (60, 30, 90, 38, 0.9),
                (60, 39, 90, 47, 0.9),
            ],
        );
        let joined = boxes_from_map(&prob, &DbNetParams::default(), 100, 60);
        assert_eq!(joined.len(), 2, "{joined:?}");
        assert!(joined[0].x0 < 10 && joined[0].x1 > 50, "{joined:?}");
        assert!(joined[1].y0 < 30 && joined[1].y1 > 47, "{joined:?}");
        let apart = boxes_from_map(
            &prob,
            &DbNetParams {
                dilate: false,
                ..DbNetParams::default()
            },
            100,
            60,
        );
        assert_eq!(apart.len(), 4, "{apart:?}");
    }
}
