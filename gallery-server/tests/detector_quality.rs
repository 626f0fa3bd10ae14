//! The text detector on the shared test photos, scored by the project's own evaluator
//! (`shared/tools/det_eval.py`, DetEval-style): recall and precision must both be ≥ 0.9.
mod support;

use std::process::Command;

#[test]
fn text_detection_meets_the_quality_bar() {
    let dir = std::path::PathBuf::from(support::env("GALLERY_TESTDATA"));
    let mut photos: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    assert!(photos.len() >= 10, "expected the shared test photos in {}", dir.display());

    let detector = support::detector();
    let limits = gallery_server::pipeline::DecodeLimits { max_side: 20_000, max_pixels: 50_000_000 };
    let mut all = Vec::new();
    for photo in &photos {
        // As a worker sees it (a large JPEG is detected on a scaled decode).
        all.push(gallery_server::pipeline::process(&std::fs::read(photo).unwrap(), detector.as_ref(), limits).unwrap().boxes);
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(out.path(), serde_json::to_string(&all).unwrap()).unwrap();
    let eval = dir.join("../../tools/det_eval.py");
    let res = Command::new("python3").arg(&eval).arg(out.path()).args(&photos).output().expect("python3");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let line = String::from_utf8(res.stdout).unwrap();
    let value = |key: &str| -> f64 {
        let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("{key} in {line}"));
        line[at + key.len() + 1..].split_whitespace().next().unwrap().parse().unwrap()
    };
    println!("{line}");
    assert!(value("recall") >= 0.9, "{line}");
    assert!(value("precision") >= 0.9, "{line}");
}
