//! The annotated copy: each detection outlined on the photo, objects with a labelled tab.
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_hollow_rect_mut;
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
            let (tab_w, tab_h) = (
                text.chars().count() as u32 * 8 * scale + 2 * scale,
                10 * scale,
            );
            let x = b.x0.saturating_sub(thickness - 1);
            let above = b.y0 as i64 - thickness as i64 - tab_h as i64 + 1;
            let y = if above >= 0 { above as u32 } else { b.y0 };
            imageproc::drawing::draw_filled_rect_mut(
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
