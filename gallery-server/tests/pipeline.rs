//! The upload pipeline on large JPEGs, which it decodes scaled for the detector and the
//! thumbnail, then outlines in the JPEG's own coefficients (or, for a photo EXIF turns,
//! decodes in full to draw on): boxes must land where they are in the full photo, also when
//! EXIF turns it, and the stored copies keep the full size.
mod support;

use std::sync::Mutex;

use gallery_server::detect::{DetectError, Detection, Detector};
use gallery_server::image::DecodeLimits;
use gallery_server::pipeline;
use image::{GenericImageView, ImageFormat, Rgb, RgbImage};
use support::images;

/// Finds the one block that stands out from the photo's background (the corner's colour),
/// and remembers the sizes it was shown.
struct BlockFinder {
    seen: Mutex<Vec<(u32, u32)>>,
}

impl Detector for BlockFinder {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        self.seen.lock().unwrap().push(image.dimensions());
        let background = *image.get_pixel(0, 0);
        let differs = |p: &Rgb<u8>| {
            p.0.iter()
                .zip(background.0)
                .any(|(&a, b)| a.abs_diff(b) > 80)
        };
        let (xs, ys): (Vec<u32>, Vec<u32>) = image
            .enumerate_pixels()
            .filter(|(_, _, p)| differs(p))
            .map(|(x, y, _)| (x, y))
            .unzip();
        let (Some(&x0), Some(&y0)) = (xs.iter().min(), ys.iter().min()) else {
            return Ok(vec![]);
        };
        let (x1, y1) = (xs.iter().max().unwrap() + 1, ys.iter().max().unwrap() + 1);
        Ok(vec![Detection {
            x0,
            y0,
            x1,
            y1,
            score: 1.0,
            label: None,
        }])
    }
    fn name(&self) -> &str {
        "bright block"
    }
    fn input_side(&self) -> u32 {
        960
    }
}

const LIMITS: DecodeLimits = DecodeLimits {
    max_side: 20_000,
    max_pixels: 50_000_000,
};

/// A dark `w`×`h` JPEG with a white block over x0..x1, y0..y1.
fn photo(w: u32, h: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            Rgb([250, 250, 250])
        } else {
            Rgb([20, 30, 40])
        }
    });
    images::encode(&img, ImageFormat::Jpeg)
}

fn process(data: &[u8]) -> (pipeline::Processed, Vec<(u32, u32)>) {
    let finder = BlockFinder {
        seen: Mutex::new(Vec::new()),
    };
    let processed = pipeline::process(data, &finder, LIMITS).unwrap();
    (processed, finder.seen.into_inner().unwrap())
}

fn assert_near(found: &Detection, want: (u32, u32, u32, u32)) {
    let got = (found.x0, found.y0, found.x1, found.y1);
    let near = |a: u32, b: u32| a.abs_diff(b) <= 8;
    assert!(
        near(got.0, want.0) && near(got.1, want.1) && near(got.2, want.2) && near(got.3, want.3),
        "found {got:?}, the block is at {want:?}"
    );
}

fn dimensions(jpeg: &[u8]) -> (u32, u32) {
    image::load_from_memory(jpeg).unwrap().dimensions()
}

#[test]
fn a_large_jpeg_is_detected_scaled_and_boxed_in_full_size() {
    let block = (1000, 600, 1800, 1000);
    let (processed, seen) = process(&photo(4000, 3000, block));
    assert_eq!(
        seen,
        [(1000, 750)],
        "the detector should see the 1/4-scale decode"
    );
    assert_eq!(processed.boxes.len(), 1);
    assert_near(&processed.boxes[0], block);
    assert_eq!((processed.width, processed.height), (4000, 3000));
    assert_eq!(dimensions(&processed.annotated), (4000, 3000));
    assert_eq!(dimensions(&processed.thumbnail), (256, 192));
    // The rectangle is drawn on the full-size copy, around the block.
    let annotated = image::load_from_memory(&processed.annotated)
        .unwrap()
        .to_rgb8();
    let edge = annotated.get_pixel(1400, processed.boxes[0].y0);
    assert!(
        edge[0] > 180 && edge[1] < 120,
        "expected the red box edge at the block's top, got {edge:?}"
    );
}

#[test]
fn a_large_jpeg_keeps_its_own_pixels_away_from_the_outlines() {
    let block = (1000, 600, 1800, 1000);
    // Textured, so that encoding it again would change its pixels.
    let img = RgbImage::from_fn(4000, 3000, |x, y| {
        if (block.0..block.2).contains(&x) && (block.1..block.3).contains(&y) {
            Rgb([250, 250, 250])
        } else {
            let t = ((x * 7 + y * 13) % 23) as u8;
            Rgb([20 + t, 30 + t / 2, 40 + (x % 5) as u8])
        }
    });
    let original = images::encode(&img, ImageFormat::Jpeg);
    let (processed, _) = process(&original);
    let before = image::load_from_memory(&original).unwrap().to_rgb8();
    let after = image::load_from_memory(&processed.annotated)
        .unwrap()
        .to_rgb8();
    // Away from the outline (beyond its width and a block or two), nothing was encoded again.
    for (x, y) in [
        (10, 10),
        (3990, 2990),
        (1400, 800),
        (500, 2000),
        (3000, 300),
    ] {
        assert_eq!(
            before.get_pixel(x, y),
            after.get_pixel(x, y),
            "at ({x}, {y})"
        );
    }
    let edge = after.get_pixel(block.0, 800);
    assert!(edge[0] > 180 && edge[1] < 120, "the left edge is {edge:?}");
}

#[test]
fn a_turned_large_jpeg_is_boxed_where_it_shows() {
    // Orientation 6: stored 4000×3000, shown 3000×4000; stored (x, y) shows at (2999 − y, x).
    let (processed, seen) = process(&images::exif_rotated(photo(
        4000,
        3000,
        (1000, 600, 1800, 1000),
    )));
    assert_eq!(seen, [(750, 1000)]);
    assert_eq!((processed.width, processed.height), (3000, 4000));
    assert_near(&processed.boxes[0], (2000, 1000, 2400, 1800));
    assert_eq!(dimensions(&processed.annotated), (3000, 4000));
    assert_eq!(dimensions(&processed.thumbnail), (192, 256));
    // Drawn on the photo as it shows (the outline cannot be drawn into stored blocks that
    // EXIF turns): the box's top edge runs along y = 1000 in the shown photo.
    let annotated = image::load_from_memory(&processed.annotated)
        .unwrap()
        .to_rgb8();
    let edge = annotated.get_pixel(2200, processed.boxes[0].y0);
    assert!(edge[0] > 180 && edge[1] < 120, "the top edge is {edge:?}");
}

#[test]
fn a_photo_too_small_to_scale_is_detected_at_full_size() {
    // 1/2 would give 800 px, less than the detector's 960: one full decode.
    let block = (400, 300, 700, 500);
    let (processed, seen) = process(&photo(1600, 1200, block));
    assert_eq!(seen, [(1600, 1200)]);
    assert_near(&processed.boxes[0], block);
}

#[test]
fn a_cmyk_jpeg_is_processed_though_it_cannot_be_decoded_scaled() {
    // libjpeg-turbo gives no RGB for CMYK; the full decode serves the detector instead.
    let (w, h) = (2400u32, 1800u32);
    let block = (600, 400, 1200, 900);
    let cmyk: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            let inside = (block.0..block.2).contains(&x) && (block.1..block.3).contains(&y);
            // Adobe's inverted CMYK, as libjpeg writes it: 255 is no ink. A dark block on white.
            if inside {
                [255u8, 255, 255, 35]
            } else {
                [255, 255, 255, 255]
            }
        })
        .collect();
    let image = turbojpeg::Image {
        pixels: cmyk.as_slice(),
        width: w as usize,
        pitch: 4 * w as usize,
        height: h as usize,
        format: turbojpeg::PixelFormat::CMYK,
    };
    let jpeg = turbojpeg::compress(image, 90, turbojpeg::Subsamp::None)
        .unwrap()
        .to_vec();
    let (processed, seen) = process(&jpeg);
    assert_eq!(seen, [(w, h)]);
    assert_eq!((processed.width, processed.height), (w, h));
    assert_near(&processed.boxes[0], block);
}
