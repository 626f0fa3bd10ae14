//! The text detector on the shared test photos, scored by the project's own evaluator
//! (`shared/tools/det_eval.py`, DetEval-style): recall and precision must both be ≥ 0.9 —
//! on rten, and on OpenVINO in bf16, the one runtime setting that changes the arithmetic.
//! The model is the folded one the workers run; it must outline what the published one does.
mod support;

use std::path::PathBuf;
use std::process::Command;

use gallery_server::detect::{
    DbNetParams, Detection, Detector, Precision, Runtime, TextDetector, Threads,
};

fn test_photos() -> Vec<PathBuf> {
    let dir = PathBuf::from(support::env("GALLERY_TESTDATA"));
    let mut photos: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    assert!(
        photos.len() >= 10,
        "expected the shared test photos in {}",
        dir.display()
    );
    photos
}

/// The detector's boxes on a photo, as a worker finds them (a large JPEG is detected on a
/// scaled decode).
fn boxes(photo: &std::path::Path, detector: &dyn Detector) -> Vec<Detection> {
    let limits = gallery_server::image::DecodeLimits {
        max_side: 20_000,
        max_pixels: 50_000_000,
    };
    gallery_server::pipeline::process(&std::fs::read(photo).unwrap(), detector, limits)
        .unwrap()
        .boxes
}

/// det_eval's line for the detector's boxes on every test photo.
fn scored(detector: &dyn Detector) -> (f64, f64, String) {
    let dir = PathBuf::from(support::env("GALLERY_TESTDATA"));
    let photos = test_photos();
    let all: Vec<_> = photos.iter().map(|p| boxes(p, detector)).collect();
    let out = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(out.path(), serde_json::to_string(&all).unwrap()).unwrap();
    let eval = dir.join("../../tools/det_eval.py");
    let res = Command::new("python3")
        .arg(&eval)
        .arg(out.path())
        .args(&photos)
        .output()
        .expect("python3");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let line = String::from_utf8(res.stdout).unwrap();
    let value = |key: &str| -> f64 {
        let at = line
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("{key} in {line}"));
        line[at + key.len() + 1..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    println!("{line}");
    (value("recall"), value("precision"), line)
}

#[test]
fn text_detection_meets_the_quality_bar() {
    let (recall, precision, line) = scored(support::detector().as_ref());
    assert!(recall >= 0.9, "{line}");
    assert!(precision >= 0.9, "{line}");
}

#[test]
fn text_detection_in_bf16_on_openvino_meets_the_quality_bar() {
    let runtime = Runtime::OpenVino {
        library: PathBuf::from(support::env("GALLERY_TEST_OPENVINO_LIBRARY")),
        precision: Precision::Bf16,
    };
    let detector = TextDetector::load(
        &PathBuf::from(support::env("GALLERY_MODEL_PATH")),
        Threads::ONE,
        DbNetParams::default(),
        &runtime,
    )
    .unwrap();
    let (recall, precision, line) = scored(&detector);
    assert!(recall >= 0.9, "{line}");
    assert!(precision >= 0.9, "{line}");
}

/// The folded model computes the published one's function with its additions reordered
/// (a few 1e-5 on the probability map): every photo gets the same outlines, to the pixel
/// where a box's edge sits on the threshold.
#[test]
fn the_folded_detector_outlines_what_the_published_one_does() {
    let folded_path = PathBuf::from(support::env("GALLERY_MODEL_PATH"));
    let published_path = PathBuf::from(support::env("GALLERY_TEST_PUBLISHED_MODEL_PATH"));
    assert_ne!(
        std::fs::read(&folded_path).unwrap(),
        std::fs::read(&published_path).unwrap(),
        "the workers' model is the published one: nothing was folded"
    );
    let load = |path: &PathBuf| {
        TextDetector::load(path, Threads::ONE, DbNetParams::default(), &Runtime::Rten).unwrap()
    };
    let (folded, published) = (load(&folded_path), load(&published_path));
    let mut total = 0;
    for photo in test_photos() {
        let (a, b) = (boxes(&photo, &folded), boxes(&photo, &published));
        assert_eq!(a.len(), b.len(), "{}: {a:?} against {b:?}", photo.display());
        for (x, y) in a.iter().zip(&b) {
            let apart = [
                x.x0.abs_diff(y.x0),
                x.y0.abs_diff(y.y0),
                x.x1.abs_diff(y.x1),
                x.y1.abs_diff(y.y1),
            ];
            assert!(
                apart.iter().all(|&d| d <= 1) && (x.score - y.score).abs() < 1e-3,
                "{}: {x:?} against {y:?}",
                photo.display()
            );
        }
        total += a.len();
    }
    assert!(total > 0, "no text found on the test photos");
}
