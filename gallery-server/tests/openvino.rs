//! Text detection on OpenVINO, which compiles the model per input shape and keeps only the
//! last few: photos of every shape, in any order and two at a time, get rten's boxes.
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use gallery_server::detect::{
    DbNetParams, Detection, Detector, Precision, Runtime, TextDetector, Threads,
};
use image::RgbImage;

fn openvino(library: &std::path::Path) -> Runtime {
    Runtime::OpenVino {
        library: library.to_path_buf(),
        precision: Precision::F32,
    }
}

fn load(runtime: Runtime, threads: Threads) -> TextDetector {
    TextDetector::load(
        &PathBuf::from(support::env("GALLERY_MODEL_PATH")),
        threads,
        DbNetParams::default(),
        &runtime,
    )
    .unwrap()
}

/// One photo cut and turned into four shapes, each its own network input size, then the first
/// again: by then more shapes were compiled than are kept, so the first is compiled afresh.
fn shapes() -> Vec<(&'static str, RgbImage)> {
    let photo = image::open(support::testdata("photo000.jpg"))
        .unwrap()
        .to_rgb8();
    let (w, h) = photo.dimensions();
    let crop = |cw: u32, ch: u32| {
        image::imageops::crop_imm(&photo, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image()
    };
    vec![
        ("landscape", photo.clone()),
        ("portrait", image::imageops::rotate90(&photo)),
        ("square", crop(h, h)),
        ("wide", crop(w, w / 2)),
        ("landscape again", photo.clone()),
    ]
}

fn assert_same(what: &str, want: &[Detection], got: &[Detection]) {
    // Two runtimes sum in different orders; a probability at the threshold may move an edge
    // by a pixel, no more.
    assert_eq!(
        want.len(),
        got.len(),
        "{what}: same number of boxes:\n{want:?}\n{got:?}"
    );
    for (a, b) in want.iter().zip(got) {
        let off = [
            a.x0.abs_diff(b.x0),
            a.y0.abs_diff(b.y0),
            a.x1.abs_diff(b.x1),
            a.y1.abs_diff(b.y1),
        ];
        assert!(off.iter().all(|d| *d <= 3), "{what}: {a:?} vs {b:?}");
    }
}

#[test]
fn photos_of_every_shape_get_rtens_boxes_also_two_at_a_time() {
    let library = PathBuf::from(support::env("GALLERY_TEST_OPENVINO_LIBRARY"));
    let rten = load(Runtime::Rten, Threads::ONE);
    let images = shapes();
    let want: Vec<Vec<Detection>> = images
        .iter()
        .map(|(_, image)| rten.detect(image).unwrap())
        .collect();
    assert!(
        want.iter().all(|boxes| !boxes.is_empty()),
        "every cut shows text: {want:?}"
    );

    let one = load(openvino(&library), Threads::ONE);
    // What each photo records as its detector.
    assert_eq!(
        (rten.describe(), one.describe()),
        (
            "text (PP-OCRv4 DBNet) on rten".into(),
            "text (PP-OCRv4 DBNet) on OpenVINO".into()
        )
    );
    for ((what, image), want) in images.iter().zip(&want) {
        assert_same(what, want, &one.detect(image).unwrap());
    }

    // Two photos in flight on one detector, each thread going through the shapes from a
    // different start: requests are lent per shape while shapes are compiled and dropped.
    let two = Arc::new(load(
        openvino(&library),
        Threads {
            per_job: 1,
            jobs: 2,
        },
    ));
    let images = Arc::new(images);
    let want = Arc::new(want);
    let threads: Vec<_> = (0..2)
        .map(|start| {
            let (two, images, want) = (two.clone(), images.clone(), want.clone());
            std::thread::spawn(move || {
                for i in (0..images.len()).map(|i| (i + start * 2) % images.len()) {
                    assert_same(images[i].0, &want[i], &two.detect(&images[i].1).unwrap());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a detecting thread failed");
    }
}

#[test]
fn a_library_that_is_not_openvino_is_a_clear_load_error() {
    let not_a_library = tempfile::NamedTempFile::new().unwrap();
    let err = TextDetector::load(
        &PathBuf::from(support::env("GALLERY_MODEL_PATH")),
        Threads::ONE,
        DbNetParams::default(),
        &openvino(not_a_library.path()),
    )
    .err()
    .expect("loading must fail");
    let message = err.to_string();
    assert!(message.contains("cannot load OpenVINO from"), "{message}");
}

#[test]
fn a_model_openvino_cannot_read_fails_at_load() {
    let library = PathBuf::from(support::env("GALLERY_TEST_OPENVINO_LIBRARY"));
    let model = tempfile::Builder::new().suffix(".onnx").tempfile().unwrap();
    std::fs::write(model.path(), b"not a model").unwrap();
    let err = TextDetector::load(
        model.path(),
        Threads::ONE,
        DbNetParams::default(),
        &openvino(&library),
    )
    .err()
    .expect("loading must fail");
    let message = err.to_string();
    assert!(
        message.contains("cannot load detection model")
            && message.contains(&model.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn auto_precision_runs_in_bf16_exactly_where_the_cpu_has_bf16_units() {
    let library = PathBuf::from(support::env("GALLERY_TEST_OPENVINO_LIBRARY"));
    let detector = load(
        Runtime::OpenVino {
            library,
            precision: Precision::Auto,
        },
        Threads::ONE,
    );
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let bf16_units = flags
        .split_whitespace()
        .any(|f| f == "avx512_bf16" || f == "amx_bf16");
    let want = if bf16_units {
        "OpenVINO (bf16)"
    } else {
        "OpenVINO"
    };
    assert_eq!(detector.runtime(), want, "CPU flags: {flags}");
    // And it finds text as the configured precisions do.
    let photo = image::open(support::testdata("photo000.jpg"))
        .unwrap()
        .to_rgb8();
    assert!(!detector.detect(&photo).unwrap().is_empty());
}
