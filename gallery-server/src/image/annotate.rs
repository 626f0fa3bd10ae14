//! The annotated copy: each detection outlined on the photo, objects with a labelled tab.
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_filled_rect_mut;
use imageproc::rect::Rect;

use crate::detect::Detection;

/// Text boxes are red; object classes get one of these, always the same for a class.
const PALETTE: [Rgb<u8>; 6] = [
    Rgb([40, 160, 255]),
    Rgb([255, 170, 0]),
    Rgb([60, 200, 80]),
    Rgb([200, 60, 220]),
    Rgb([0, 200, 200]),
    Rgb([240, 220, 40]),
];
const TEXT_BOX: Rgb<u8> = Rgb([255, 40, 40]);

fn colour_of(label: Option<&str>) -> Rgb<u8> {
    match label {
        None => TEXT_BOX,
        Some(l) => {
            PALETTE[l
                .bytes()
                .fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
                % PALETTE.len()]
        }
    }
}

/// A filled rectangle of an outline, in pixels (`x1`, `y1` exclusive), inside the photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
    pub colour: Rgb<u8>,
}

fn thickness_for(width: u32, height: u32) -> u32 {
    (width.max(height) / 320).max(2)
}

/// The outlines of `boxes` on a `width` × `height` photo as bands that do not overlap
/// within a box: each box a frame a few pixels thick (scaled with the photo so it stays
/// visible) around and over its edge. Both ways of drawing the annotated copy paint these.
pub fn outline_bands(width: u32, height: u32, boxes: &[Detection]) -> Vec<Band> {
    let grow = thickness_for(width, height) - 1;
    let mut bands = Vec::with_capacity(boxes.len() * 4);
    for b in boxes.iter().filter(|b| b.x1 > b.x0 && b.y1 > b.y0) {
        let colour = colour_of(b.label.as_deref());
        // The frame between the outer rectangle and the box's inside, inclusive bounds.
        let (ox0, oy0) = (b.x0 as i64 - grow as i64, b.y0 as i64 - grow as i64);
        let (ox1, oy1) = ((b.x1 - 1 + grow) as i64, (b.y1 - 1 + grow) as i64);
        let (ix0, iy0, ix1, iy1) = (b.x0 as i64, b.y0 as i64, b.x1 as i64 - 1, b.y1 as i64 - 1);
        let mut push = |x0: i64, y0: i64, x1: i64, y1: i64| {
            let (x0, y0) = (x0.max(0), y0.max(0));
            let (x1, y1) = ((x1 + 1).min(width as i64), (y1 + 1).min(height as i64));
            if x0 < x1 && y0 < y1 {
                bands.push(Band {
                    x0: x0 as u32,
                    y0: y0 as u32,
                    x1: x1 as u32,
                    y1: y1 as u32,
                    colour,
                });
            }
        };
        push(ox0, oy0, ox1, iy0); // top
        push(ox0, iy1.max(iy0 + 1), ox1, oy1); // bottom
        push(ox0, iy0 + 1, ix0, iy1 - 1); // left
        push(ix1.max(ix0 + 1), iy0 + 1, ox1, iy1 - 1); // right
    }
    bands
}

/// Each box outlined (`outline_bands`); a labelled box (an object) gets its label and score
/// on a tab above it (inside it at the top edge).
pub fn annotate(img: &mut RgbImage, boxes: &[Detection]) {
    let (width, height) = img.dimensions();
    let side = width.max(height);
    let thickness = thickness_for(width, height);
    for band in outline_bands(width, height, boxes) {
        draw_filled_rect_mut(
            img,
            Rect::at(band.x0 as i32, band.y0 as i32).of_size(band.x1 - band.x0, band.y1 - band.y0),
            band.colour,
        );
    }
    for b in boxes {
        let colour = colour_of(b.label.as_deref());
        if let Some(label) = &b.label {
            let text = format!("{label} {:.0}%", b.score * 100.0);
            let scale = (side / 640).max(1);
            let (tab_w, tab_h) = (
                text.chars().count() as u32 * 8 * scale + 2 * scale,
                10 * scale,
            );
            let x = b.x0.saturating_sub(thickness - 1);
            let above = b.y0 as i64 - thickness as i64 - tab_h as i64 + 1;
            let y = if above >= 0 { above as u32 } else { b.y0 };
            draw_filled_rect_mut(
                img,
                Rect::at(x as i32, y as i32).of_size(tab_w, tab_h),
                colour,
            );
            draw_label(img, &text, x + scale, y + scale, scale);
        }
    }
}

/// ASCII in an 8×8 bitmap font (font8x8), magnified `scale` times, in white.
fn draw_label(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32) {
    let (w, h) = img.dimensions();
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or([0; 8]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_what_hollow_rectangles_a_few_pixels_thick_cover() {
        // The outline as it was drawn before bands: one hollow rectangle per pixel of thickness.
        let (w, h) = (700, 500);
        let thickness = thickness_for(w, h);
        let mut seed = 7u32;
        let mut next = |m: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 8) % m
        };
        for _ in 0..200 {
            let (x0, y0) = (next(w), next(h));
            let b = Detection {
                x0,
                y0,
                x1: (x0 + 1 + next(200)).min(w),
                y1: (y0 + 1 + next(120)).min(h),
                score: 1.0,
                label: None,
            };
            let mut expected = RgbImage::new(w, h);
            for t in 0..thickness {
                let (x, y) = (b.x0 as i32 - t as i32, b.y0 as i32 - t as i32);
                let (bw, bh) = ((b.x1 - b.x0) + 2 * t, (b.y1 - b.y0) + 2 * t);
                imageproc::drawing::draw_hollow_rect_mut(
                    &mut expected,
                    Rect::at(x, y).of_size(bw, bh),
                    TEXT_BOX,
                );
            }
            let mut painted = RgbImage::new(w, h);
            let mut area = 0;
            for band in outline_bands(w, h, std::slice::from_ref(&b)) {
                area += (band.x1 - band.x0) * (band.y1 - band.y0);
                for y in band.y0..band.y1 {
                    for x in band.x0..band.x1 {
                        painted.put_pixel(x, y, band.colour);
                    }
                }
            }
            assert!(expected == painted, "{b:?}");
            let covered = painted.pixels().filter(|p| **p == TEXT_BOX).count() as u32;
            assert_eq!(area, covered, "bands of one box overlap: {b:?}");
        }
    }

    #[test]
    fn annotate_draws_visible_box_edges() {
        let mut img = RgbImage::from_pixel(100, 100, Rgb([0, 0, 0]));
        annotate(
            &mut img,
            &[Detection {
                x0: 20,
                y0: 20,
                x1: 60,
                y1: 50,
                score: 1.0,
                label: None,
            }],
        );
        assert_eq!(img.get_pixel(20, 30), &Rgb([255, 40, 40]));
        assert_eq!(img.get_pixel(40, 50), &Rgb([255, 40, 40]));
        assert_eq!(
            img.get_pixel(40, 35),
            &Rgb([0, 0, 0]),
            "inside stays untouched"
        );
    }

    #[test]
    fn object_boxes_carry_their_label_above() {
        let mut img = RgbImage::from_pixel(200, 200, Rgb([0, 0, 0]));
        let dog = Detection {
            x0: 50,
            y0: 60,
            x1: 150,
            y1: 150,
            score: 0.87,
            label: Some("dog".into()),
        };
        annotate(&mut img, &[dog]);
        let colour = colour_of(Some("dog"));
        assert_ne!(colour, TEXT_BOX);
        assert_eq!(img.get_pixel(50, 100), &colour, "the box edge");
        // The tab sits on the box's top edge: "dog 87%" is 7 glyphs, 58 pixels wide, 10 high.
        let tab: Vec<&Rgb<u8>> = (49..49 + 58)
            .flat_map(|x| (49..59).map(move |y| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y))
            .collect();
        let white = tab.iter().filter(|p| ***p == Rgb([255, 255, 255])).count();
        let filled = tab.iter().filter(|p| ***p == colour).count();
        assert!(
            white > 40 && filled > white,
            "label text on the tab: {white} white, {filled} tab pixels"
        );
        assert_eq!(
            img.get_pixel(100, 40),
            &Rgb([0, 0, 0]),
            "nothing above the tab"
        );
        // A box at the top edge gets its tab inside.
        let mut img = RgbImage::from_pixel(200, 200, Rgb([0, 0, 0]));
        annotate(
            &mut img,
            &[Detection {
                x0: 10,
                y0: 0,
                x1: 150,
                y1: 100,
                score: 0.5,
                label: Some("cat".into()),
            }],
        );
        let white = (10..60)
            .flat_map(|x| (1..9).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y) == &Rgb([255, 255, 255]))
            .count();
        assert!(white > 30, "label inside the box: {white} white pixels");
    }
}
