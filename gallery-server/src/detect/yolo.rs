//! Object detection with YOLO-family ONNX models (YOLOv8/v11 exports: one output
//! `[1, 4 + classes, candidates]`, boxes as centre/size in input pixels, class scores already
//! through a sigmoid). Letterbox in, class-wise non-maximum suppression out, COCO names when
//! the model has COCO's 80 classes.
use std::path::Path;

use image::RgbImage;

use super::engine::Engine;
use super::{DetectError, Detection, Detector};
use super::{Finds, Runtime, Threads};

pub const COCO: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

#[derive(Debug, Clone)]
pub struct YoloParams {
    /// A candidate's best class score must exceed this.
    pub confidence: f32,
    /// Boxes of one class overlapping a better one by more than this (IoU) are dropped.
    pub iou: f32,
    pub max_detections: usize,
}

impl Default for YoloParams {
    // Ultralytics' prediction defaults.
    fn default() -> Self {
        YoloParams {
            confidence: 0.25,
            iou: 0.45,
            max_detections: 300,
        }
    }
}

pub struct ObjectDetector {
    engine: Engine,
    /// The square input side the model was exported with (640 when it does not say).
    side: u32,
    params: YoloParams,
}

impl ObjectDetector {
    pub fn load(
        path: &Path,
        threads: Threads,
        params: YoloParams,
        runtime: &Runtime,
    ) -> Result<Self, DetectError> {
        let engine = Engine::load(path, threads, runtime)?;
        let side = match engine.fixed_input_size() {
            Some((h, w)) if h == w => h as u32,
            Some((h, w)) => {
                return Err(DetectError::Load {
                    path: path.display().to_string(),
                    reason: format!(
                        "input {w}×{h} is not square; export the model with a square imgsz"
                    ),
                })
            }
            None => 640,
        };
        engine.prepare(path, [1, 3, side as usize, side as usize])?;
        Ok(ObjectDetector {
            engine,
            side,
            params,
        })
    }
}

/// Where an image lands in the square input: scale, then padding left and top.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub width: u32,
    pub height: u32,
}

impl Letterbox {
    pub fn new(w: u32, h: u32, side: u32) -> Letterbox {
        let scale = (side as f32 / w as f32).min(side as f32 / h as f32);
        let width = ((w as f32 * scale).round() as u32).clamp(1, side);
        let height = ((h as f32 * scale).round() as u32).clamp(1, side);
        Letterbox {
            scale,
            pad_x: ((side - width) / 2) as f32,
            pad_y: ((side - height) / 2) as f32,
            width,
            height,
        }
    }

    /// Writes the network's NCHW input (`data`, 3 × `side`²): `resized` (this letterbox's
    /// width × height) placed at the padding offsets of a `side` square of Ultralytics' grey
    /// (114), as planes scaled to 0–1.
    pub fn fill_input(&self, resized: &RgbImage, side: u32, data: &mut [f32]) {
        let (side, width) = (side as usize, self.width as usize);
        let plane = side * side;
        data.fill(114.0 / 255.0);
        let (r, rest) = data.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        let (px, py) = (self.pad_x as usize, self.pad_y as usize);
        for (y, row) in resized.as_raw().chunks_exact(3 * width).enumerate() {
            let at = (y + py) * side + px;
            let (r, g, b) = (
                &mut r[at..at + width],
                &mut g[at..at + width],
                &mut b[at..at + width],
            );
            for (((p, r), g), b) in row.chunks_exact(3).zip(r).zip(g).zip(b) {
                (*r, *g, *b) = (
                    p[0] as f32 / 255.0,
                    p[1] as f32 / 255.0,
                    p[2] as f32 / 255.0,
                );
            }
        }
    }

    /// An input-space box (corners) in original-image pixels, clamped to the image.
    pub fn to_image(
        self,
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        img_w: u32,
        img_h: u32,
    ) -> (u32, u32, u32, u32) {
        let x = |v: f32| {
            ((v - self.pad_x) / self.scale)
                .clamp(0.0, img_w.saturating_sub(1) as f32)
                .round() as u32
        };
        let y = |v: f32| {
            ((v - self.pad_y) / self.scale)
                .clamp(0.0, img_h.saturating_sub(1) as f32)
                .round() as u32
        };
        (x(x0), y(y0), x(x1), y(y1))
    }
}

/// One candidate before suppression, in input pixels.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    class: usize,
    score: f32,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

fn iou(a: &Candidate, b: &Candidate) -> f32 {
    let w = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let h = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = w * h;
    let union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Decodes a `[4 + classes, candidates]` output (row-major) into detections in original-image
/// pixels: best class per candidate, confidence filter, class-wise NMS, best first.
pub fn decode(
    output: &[f32],
    rows: usize,
    candidates: usize,
    letterbox: &Letterbox,
    params: &YoloParams,
    img_w: u32,
    img_h: u32,
) -> Vec<Detection> {
    let classes = rows.saturating_sub(4);
    let at = |row: usize, i: usize| output[row * candidates + i];
    let mut found: Vec<Candidate> = (0..candidates)
        .filter_map(|i| {
            let (class, score) = (0..classes)
                .map(|c| (c, at(4 + c, i)))
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            if score <= params.confidence {
                return None;
            }
            let (cx, cy, w, h) = (at(0, i), at(1, i), at(2, i), at(3, i));
            Some(Candidate {
                class,
                score,
                x0: cx - w / 2.0,
                y0: cy - h / 2.0,
                x1: cx + w / 2.0,
                y1: cy + h / 2.0,
            })
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in found {
        if kept.len() >= params.max_detections {
            break;
        }
        if kept
            .iter()
            .all(|k| k.class != c.class || iou(k, &c) <= params.iou)
        {
            kept.push(c);
        }
    }
    kept.into_iter()
        .filter_map(|c| {
            let (x0, y0, x1, y1) = letterbox.to_image(c.x0, c.y0, c.x1, c.y1, img_w, img_h);
            // A box wholly in the padding has nothing of the photo in it.
            (x1 > x0 && y1 > y0).then(|| Detection {
                x0,
                y0,
                x1,
                y1,
                score: c.score,
                label: Some(class_name(c.class, classes)),
            })
        })
        .collect()
}

fn class_name(class: usize, classes: usize) -> String {
    if classes == COCO.len() {
        COCO[class].to_owned()
    } else {
        format!("class {class}")
    }
}

impl Detector for ObjectDetector {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let (w, h) = image.dimensions();
        let side = self.side;
        let lb = Letterbox::new(w, h, side);
        let resized = crate::image::resize::for_network(image, lb.width, lb.height);
        let (shape, data) = self
            .engine
            .run([1, 3, side as usize, side as usize], |data| {
                lb.fill_input(&resized, side, data)
            })?;
        let [_, rows, candidates] = shape[..] else {
            return Err(DetectError::Run(format!(
                "expected a [1, 4 + classes, N] output, got {shape:?}"
            )));
        };
        if rows < 5 {
            return Err(DetectError::Run(format!(
                "output has {rows} rows; a YOLO model has 4 + classes"
            )));
        }
        Ok(decode(&data, rows, candidates, &lb, &self.params, w, h))
    }

    fn name(&self) -> &str {
        "objects (YOLO)"
    }

    fn describe(&self) -> String {
        format!("{} on {}", self.name(), self.engine.runtime())
    }

    fn runtime(&self) -> &'static str {
        self.engine.runtime()
    }

    fn input_side(&self) -> u32 {
        self.side
    }

    fn finds(&self) -> Finds {
        Finds::Objects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// An output with the given candidates: (cx, cy, w, h, class, score), 80 classes.
    fn output(cands: &[(f32, f32, f32, f32, usize, f32)]) -> (Vec<f32>, usize, usize) {
        let rows = 84;
        let n = cands.len();
        let mut out = vec![0.0; rows * n];
        for (i, &(cx, cy, w, h, class, score)) in cands.iter().enumerate() {
            out[i] = cx;
            out[n + i] = cy;
            out[2 * n + i] = w;
            out[3 * n + i] = h;
            out[(4 + class) * n + i] = score;
        }
        (out, rows, n)
    }

    #[test]
    fn letterbox_centres_the_image_and_maps_back() {
        let lb = Letterbox::new(1280, 720, 640);
        assert_eq!(
            (lb.width, lb.height, lb.pad_x, lb.pad_y),
            (640, 360, 0.0, 140.0)
        );
        // The input's centre is the image's centre.
        assert_eq!(
            lb.to_image(270.0, 295.0, 370.0, 345.0, 1280, 720),
            (540, 310, 740, 410)
        );
    }

    #[test]
    fn the_input_is_the_image_centred_on_grey_planes() {
        // A 4 × 2 image into an 8 square: scale 2 (8 × 4), 2 rows of grey above and below.
        let lb = Letterbox::new(4, 2, 8);
        assert_eq!((lb.width, lb.height, lb.pad_x, lb.pad_y), (8, 4, 0.0, 2.0));
        let resized = RgbImage::from_fn(8, 4, |x, y| Rgb([255, (x * 10) as u8, (y * 50) as u8]));
        // Whatever the buffer held before (OpenVINO reuses its input) is overwritten.
        let mut input = vec![f32::NAN; 3 * 64];
        lb.fill_input(&resized, 8, &mut input);
        let at = |c: usize, x: usize, y: usize| input[c * 64 + y * 8 + x];
        let grey = 114.0 / 255.0;
        for x in 0..8 {
            for y in [0, 1, 6, 7] {
                assert_eq!(
                    (at(0, x, y), at(1, x, y), at(2, x, y)),
                    (grey, grey, grey),
                    "padding at {x},{y}"
                );
            }
        }
        // The image's pixel (5, 3) lands at (5, 3 + 2), channel by channel.
        assert_eq!(
            (at(0, 5, 5), at(1, 5, 5), at(2, 5, 5)),
            (1.0, 50.0 / 255.0, 150.0 / 255.0)
        );
        assert_eq!((at(0, 0, 2), at(1, 0, 2), at(2, 0, 2)), (1.0, 0.0, 0.0));
    }

    #[test]
    fn suppression_is_per_class_and_keeps_the_best() {
        let lb = Letterbox::new(640, 640, 640);
        let (out, rows, n) = output(&[
            (100.0, 100.0, 80.0, 80.0, 0, 0.9),  // person
            (104.0, 100.0, 80.0, 80.0, 0, 0.8),  // the same person, worse: suppressed
            (102.0, 100.0, 80.0, 80.0, 16, 0.7), // a dog in the same place: kept
            (400.0, 400.0, 50.0, 50.0, 2, 0.2),  // a car below the confidence threshold
        ]);
        let found = decode(&out, rows, n, &lb, &YoloParams::default(), 640, 640);
        let labels: Vec<(&str, f32)> = found
            .iter()
            .map(|d| (d.label.as_deref().unwrap(), d.score))
            .collect();
        assert_eq!(labels, vec![("person", 0.9), ("dog", 0.7)]);
        assert_eq!(
            (found[0].x0, found[0].y0, found[0].x1, found[0].y1),
            (60, 60, 140, 140)
        );
    }
}
