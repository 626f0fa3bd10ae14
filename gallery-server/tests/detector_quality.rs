//! The text detector on the shared test photos, scored by the project's own evaluator
//! (`shared/tools/det_eval.py`, DetEval-style): recall and precision must both be ≥ 0.9 —
//! on rten, and on OpenVINO in bf16, the one runtime setting that changes the arithmetic.
mod support;

use std::path::PathBuf;
use std::process::Command;

use gallery_server::detect::{DbNetParams, Detector, Precision, Runtime, TextDetector, Threads};

/// det_eval's line for the detector's boxes on every test photo, as a worker finds them.
fn scored(detector: &dyn Detector) -> (f64, f64, String) {
    let dir = std::path::PathBuf::from(support::env("GALLERY_TESTDATA"));
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

    let limits = gallery_server::image::DecodeLimits {
        max_side: 20_000,
        max_pixels: 50_000_000,
    };
    let mut all = Vec::new();
    for photo in &photos {
        // As a worker sees it (a large JPEG is detected on a scaled decode).
        all.push(
            gallery_server::pipeline::process(&std::fs::read(photo).unwrap(), detector, limits)
                .unwrap()
                .boxes,
        );
    }
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
