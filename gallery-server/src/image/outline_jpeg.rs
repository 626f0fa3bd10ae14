//! The annotated copy of a JPEG drawn into the JPEG itself: the outlines are painted into the
//! DCT blocks they cross, and every other block is carried over untouched, so neither the full
//! photo is decoded nor the annotated copy encoded again. At 12 MP this replaces a full decode
//! and a full encode (~90 ms of CPU) with entropy decoding and coding (docs/bench-history.md #9).
//!
//! libjpeg-turbo's lossless transform reads the coefficients and hands each block row to a
//! callback before writing them out; the callback dequantises each block a band crosses,
//! returns it to samples, paints the bands' share of each sample, and quantises it back with
//! the photo's own tables (read here from its DQT and SOF markers).
//!
//! Only what this can draw exactly as the pixel path does takes it: 8-bit Huffman-coded YCbCr
//! JPEGs shown as stored (EXIF orientation normal), outlines without labels. Anything else,
//! or any failure, is `None`, and the caller takes the pixel path.
use std::os::raw::{c_int, c_short, c_void};

use image::Rgb;
use turbojpeg::raw as tj;

use super::annotate::Band;

/// A component as the frame header declares it.
#[derive(Debug, Clone, Copy)]
struct Component {
    h: usize,
    v: usize,
    table: usize,
}

/// What the callback needs to know of the photo, read from its markers.
#[derive(Debug)]
struct Layout {
    width: usize,
    height: usize,
    components: [Component; 3],
    /// The largest horizontal and vertical sampling factors (a pixel's share of a sample).
    hmax: usize,
    vmax: usize,
    /// Quantisation tables in natural (row-major) order.
    tables: [Option<[u16; 64]>; 4],
}

/// Zig-zag position → natural index.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

impl Layout {
    /// Reads the markers before the first scan; `None` for anything this module does not draw
    /// into (not 8-bit, not three components, arithmetic or lossless coding, RGB or CMYK).
    fn parse(data: &[u8]) -> Option<Layout> {
        if data.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut tables: [Option<[u16; 64]>; 4] = [None; 4];
        let mut frame = None;
        let mut at = 2;
        loop {
            if *data.get(at)? != 0xFF {
                return None;
            }
            let marker = *data.get(at + 1)?;
            if marker == 0xFF {
                at += 1; // fill byte
                continue;
            }
            let len = u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?]) as usize;
            let body = data.get(at + 4..at + 2 + len)?;
            match marker {
                // Baseline, extended and progressive Huffman frames.
                0xC0..=0xC2 => frame = Some(Self::frame(body)?),
                // Every other frame type (lossless, hierarchical, arithmetic).
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                0xDB => Self::quant_tables(body, &mut tables)?,
                // Adobe's marker: transform 0 means the components are RGB, not YCbCr.
                0xEE if body.starts_with(b"Adobe") && body.get(11) == Some(&0) => return None,
                0xDA => break,
                _ => {}
            }
            at += 2 + len;
        }
        let (width, height, components) = frame?;
        for c in &components {
            tables[c.table]?;
        }
        let (hmax, vmax) = components
            .iter()
            .fold((0, 0), |(h, v), c| (h.max(c.h), v.max(c.v)));
        // Every component's samples must cover whole pixels.
        if components
            .iter()
            .any(|c| hmax % c.h != 0 || vmax % c.v != 0)
        {
            return None;
        }
        Some(Layout {
            width,
            height,
            components,
            hmax,
            vmax,
            tables,
        })
    }

    fn frame(body: &[u8]) -> Option<(usize, usize, [Component; 3])> {
        let (precision, count) = (*body.first()?, *body.get(5)?);
        if precision != 8 || count != 3 {
            return None;
        }
        let height = u16::from_be_bytes([body[1], body[2]]) as usize;
        let width = u16::from_be_bytes([body[3], body[4]]) as usize;
        let mut components = [Component {
            h: 1,
            v: 1,
            table: 0,
        }; 3];
        for (i, c) in components.iter_mut().enumerate() {
            let spec = body.get(6 + 3 * i..9 + 3 * i)?;
            // Component ids 'R', 'G', 'B' name an RGB JPEG.
            if spec[0] == b'R' || spec[0] == b'G' || spec[0] == b'B' {
                return None;
            }
            *c = Component {
                h: (spec[1] >> 4) as usize,
                v: (spec[1] & 15) as usize,
                table: (spec[2] & 3) as usize,
            };
            if c.h == 0 || c.v == 0 {
                return None;
            }
        }
        Some((width, height, components))
    }

    fn quant_tables(mut body: &[u8], tables: &mut [Option<[u16; 64]>; 4]) -> Option<()> {
        while let Some(&pq_tq) = body.first() {
            let wide = pq_tq >> 4 == 1;
            let size = if wide { 128 } else { 64 };
            let values = body.get(1..1 + size)?;
            let mut table = [0u16; 64];
            for (k, &natural) in ZIGZAG.iter().enumerate() {
                table[natural] = if wide {
                    u16::from_be_bytes([values[2 * k], values[2 * k + 1]])
                } else {
                    values[k] as u16
                };
            }
            if table.contains(&0) {
                return None;
            }
            tables[(pq_tq & 3) as usize] = Some(table);
            body = &body[1 + size..];
        }
        Some(())
    }
}

/// The orthonormal 8-point DCT-II basis, `BASIS[k][n]`: the 2-D transform JPEG uses is
/// this applied to rows and columns.
fn basis() -> [[f32; 8]; 8] {
    let mut m = [[0f32; 8]; 8];
    for (k, row) in m.iter_mut().enumerate() {
        let c = if k == 0 { 0.5f32.sqrt() } else { 1.0 };
        for (n, v) in row.iter_mut().enumerate() {
            *v = c / 2.0 * ((2 * n + 1) as f32 * k as f32 * std::f32::consts::PI / 16.0).cos();
        }
    }
    m
}

/// `a · x · aᵀ` for an 8 × 8 block `x` (row-major): with the basis `B` this is the forward
/// DCT of samples, with `Bᵀ` the inverse of coefficients.
fn separable(a: &[[f32; 8]; 8], x: &[f32; 64]) -> [f32; 64] {
    let mut tmp = [0f32; 64];
    for r in 0..8 {
        for c in 0..8 {
            tmp[r * 8 + c] = (0..8).map(|k| x[r * 8 + k] * a[c][k]).sum();
        }
    }
    let mut out = [0f32; 64];
    for r in 0..8 {
        for c in 0..8 {
            out[r * 8 + c] = (0..8).map(|k| a[r][k] * tmp[k * 8 + c]).sum();
        }
    }
    out
}

fn transposed(m: &[[f32; 8]; 8]) -> [[f32; 8]; 8] {
    let mut t = [[0f32; 8]; 8];
    for (r, row) in m.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            t[c][r] = *v;
        }
    }
    t
}

/// A colour as JFIF's Y, Cb and Cr.
fn ycbcr(Rgb([r, g, b]): Rgb<u8>) -> [f32; 3] {
    let (r, g, b) = (r as f32, g as f32, b as f32);
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

/// The callback's state, reached through the transform's `data` pointer.
struct Painter<'a> {
    layout: Layout,
    bands: &'a [Band],
    basis: [[f32; 8]; 8],
    inverse_basis: [[f32; 8]; 8],
    failed: bool,
}

impl Painter<'_> {
    /// Paints one block row of component `ci`: `blocks` blocks of 64 coefficients, the
    /// row's top at sample `top`.
    fn row(&self, ci: usize, top: usize, coefficients: &mut [c_short]) {
        let component = self.layout.components[ci];
        let (sx, sy) = (
            self.layout.hmax / component.h,
            self.layout.vmax / component.v,
        );
        let table = self.layout.tables[component.table].expect("checked in parse");
        // The row's pixels.
        let (py0, py1) = (top * sy, (top + 8) * sy);
        let crossing: Vec<&Band> = self
            .bands
            .iter()
            .filter(|b| (b.y0 as usize) < py1 && (b.y1 as usize) > py0)
            .collect();
        if crossing.is_empty() {
            return;
        }
        let blocks = coefficients.len() / 64;
        let mut done = vec![false; blocks];
        for band in &crossing {
            let first = band.x0 as usize / (8 * sx);
            let last = (band.x1 as usize).div_ceil(8 * sx).min(blocks);
            for bx in first..last {
                if std::mem::replace(&mut done[bx], true) {
                    continue;
                }
                let block = &mut coefficients[bx * 64..bx * 64 + 64];
                self.paint_block(ci, &table, block, bx * 8 * sx, py0, sx, sy, &crossing);
            }
        }
    }

    /// One block whose pixels start at (`px0`, `py0`), each sample covering `sx` × `sy`
    /// pixels: every sample moves towards the band's colour by the share of its pixels a
    /// band covers (a chroma sample half-covered by a line gets half its colour, as
    /// subsampling the pixel path's output would give).
    #[allow(clippy::too_many_arguments)]
    fn paint_block(
        &self,
        ci: usize,
        table: &[u16; 64],
        block: &mut [c_short],
        px0: usize,
        py0: usize,
        sx: usize,
        sy: usize,
        crossing: &[&Band],
    ) {
        let (pw, ph) = (8 * sx, 8 * sy);
        let mut painted: Vec<Option<f32>> = vec![None; pw * ph];
        for band in crossing {
            let value = ycbcr(band.colour)[ci];
            let x0 = (band.x0 as usize).max(px0);
            let x1 = (band.x1 as usize).min(px0 + pw).min(self.layout.width);
            let y0 = (band.y0 as usize).max(py0);
            let y1 = (band.y1 as usize).min(py0 + ph).min(self.layout.height);
            for y in y0..y1 {
                for x in x0..x1 {
                    painted[(y - py0) * pw + (x - px0)] = Some(value);
                }
            }
        }
        if painted.iter().all(Option::is_none) {
            return;
        }
        let mut coefficients = [0f32; 64];
        for (k, c) in coefficients.iter_mut().enumerate() {
            *c = block[k] as f32 * table[k] as f32;
        }
        let mut samples = separable(&self.inverse_basis, &coefficients);
        let area = (sx * sy) as f32;
        for y in 0..8 {
            for x in 0..8 {
                let (mut sum, mut share) = (0f32, 0f32);
                for dy in 0..sy {
                    for dx in 0..sx {
                        if let Some(v) = painted[(y * sy + dy) * pw + x * sx + dx] {
                            sum += v - 128.0;
                            share += 1.0;
                        }
                    }
                }
                if share > 0.0 {
                    let s = &mut samples[y * 8 + x];
                    *s = (*s * (area - share) + sum) / area;
                }
            }
        }
        for s in samples.iter_mut() {
            *s = s.clamp(-128.0, 127.0);
        }
        let out = separable(&self.basis, &samples);
        for (k, c) in out.iter().enumerate() {
            block[k] = (c / table[k] as f32).round().clamp(-2047.0, 2047.0) as c_short;
        }
    }
}

unsafe extern "C" fn paint_row(
    coefficients: *mut c_short,
    array: tj::tjregion,
    _plane: tj::tjregion,
    component: c_int,
    _transform_id: c_int,
    transform: *mut tj::tjtransform,
) -> c_int {
    // SAFETY: `data` is the Painter that `outline` set and keeps alive for the call;
    // `coefficients` holds `array.w / 8` blocks of 64 coefficients (libjpeg-turbo's
    // transform passes one block row at a time).
    let result = std::panic::catch_unwind(|| unsafe {
        let painter = &mut *((*transform).data as *mut Painter);
        let blocks = array.w.max(0) as usize / 8;
        let row = std::slice::from_raw_parts_mut(coefficients, blocks * 64);
        if (component as usize) < 3 {
            painter.row(component as usize, array.y.max(0) as usize, row);
        }
    });
    match result {
        Ok(()) => 0,
        Err(_) => {
            // SAFETY: as above.
            unsafe { (*((*transform).data as *mut Painter)).failed = true };
            -1
        }
    }
}

/// The JPEG `data` with `bands` painted in, or `None` where the pixel path must draw it.
/// Metadata is not carried over (the pixel path writes none either).
pub fn outline(data: &[u8], bands: &[Band]) -> Option<Vec<u8>> {
    let mut painter = Painter {
        layout: Layout::parse(data)?,
        bands,
        basis: basis(),
        inverse_basis: transposed(&basis()),
        failed: false,
    };
    // SAFETY: plain calls into libjpeg-turbo's C API with a handle this function owns and
    // destroys; the output buffer it allocates is copied and freed before returning.
    unsafe {
        let handle = tj::tj3Init(tj::TJINIT_TJINIT_TRANSFORM as c_int);
        if handle.is_null() {
            return None;
        }
        let mut transform: tj::tjtransform = std::mem::zeroed();
        transform.op = tj::TJXOP_TJXOP_NONE as c_int;
        transform.options = tj::TJXOPT_COPYNONE as c_int;
        transform.data = &mut painter as *mut Painter as *mut c_void;
        transform.customFilter = Some(paint_row);
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut size: tj::size_t = 0;
        let status = tj::tj3Transform(
            handle,
            data.as_ptr(),
            data.len() as tj::size_t,
            1,
            &mut out,
            &mut size,
            &transform,
        );
        let result = (status == 0 && !painter.failed && !out.is_null())
            .then(|| std::slice::from_raw_parts(out, size as usize).to_vec());
        if !out.is_null() {
            tj::tj3Free(out as *mut c_void);
        }
        tj::tj3Destroy(handle);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detection;
    use crate::image::annotate::outline_bands;
    use image::RgbImage;

    /// A photo-like image: smooth gradients with some texture, so that blocks carry AC
    /// coefficients.
    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let t = ((x * 7 + y * 13) % 31) as u8;
            Rgb([
                (x * 255 / w) as u8 / 2 + t,
                (y * 255 / h) as u8 / 2 + t,
                100u8.wrapping_add(((x ^ y) & 15) as u8),
            ])
        })
    }

    fn jpeg(img: &RgbImage, subsamp: turbojpeg::Subsamp, progressive: bool) -> Vec<u8> {
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(90).unwrap();
        c.set_subsamp(subsamp).unwrap();
        if progressive {
            c.set_progressive(true).unwrap();
        }
        c.compress_to_vec(turbojpeg::Image {
            pixels: img.as_raw().as_slice(),
            width: img.width() as usize,
            pitch: img.width() as usize * 3,
            height: img.height() as usize,
            format: turbojpeg::PixelFormat::RGB,
        })
        .unwrap()
    }

    fn decode(data: &[u8]) -> RgbImage {
        let img = turbojpeg::decompress(data, turbojpeg::PixelFormat::RGB).unwrap();
        RgbImage::from_raw(img.width as u32, img.height as u32, img.pixels).unwrap()
    }

    fn text_box(x0: u32, y0: u32, x1: u32, y1: u32) -> Detection {
        Detection {
            x0,
            y0,
            x1,
            y1,
            score: 0.9,
            label: None,
        }
    }

    #[test]
    fn outlines_appear_where_the_bands_are_and_nothing_else_changes() {
        let (w, h) = (1000, 700);
        let img = photo(w, h);
        for (subsamp, progressive) in [
            (turbojpeg::Subsamp::Sub2x2, false),
            (turbojpeg::Subsamp::Sub2x1, true),
            (turbojpeg::Subsamp::None, false),
        ] {
            let original = jpeg(&img, subsamp, progressive);
            let boxes = [text_box(101, 203, 377, 260), text_box(600, 50, 980, 690)];
            let bands = outline_bands(w, h, &boxes);
            let outlined = outline(&original, &bands).expect("a YCbCr JPEG is drawn into");
            let (before, after) = (decode(&original), decode(&outlined));
            assert_eq!(after.dimensions(), (w, h));
            let red = |p: &Rgb<u8>| p[0] > 180 && p[1] < 110 && p[2] < 110;
            // Inside every band, away from its edges (chroma is shared by 2 × 2 pixels).
            for band in &bands {
                if band.x1 - band.x0 < 3 || band.y1 - band.y0 < 3 {
                    continue;
                }
                let (x, y) = ((band.x0 + band.x1) / 2, (band.y0 + band.y1) / 2);
                let p = after.get_pixel(x, y);
                assert!(red(p), "{subsamp:?}: ({x}, {y}) in a band is {p:?}");
            }
            // Far from every band (further than a block and the upsampling's reach), the
            // pixels decode as they did.
            let near = |x: u32, y: u32| {
                bands
                    .iter()
                    .any(|b| x + 24 >= b.x0 && x < b.x1 + 24 && y + 24 >= b.y0 && y < b.y1 + 24)
            };
            let mut compared = 0;
            for y in (0..h).step_by(7) {
                for x in (0..w).step_by(7) {
                    if !near(x, y) {
                        assert_eq!(
                            before.get_pixel(x, y),
                            after.get_pixel(x, y),
                            "{subsamp:?} at ({x}, {y})"
                        );
                        compared += 1;
                    }
                }
            }
            assert!(compared > 5000, "{compared} pixels compared");
            // The inside of a box is the photo, not the outline.
            let inside = after.get_pixel(240, 232);
            assert!(!red(inside), "{inside:?}");
        }
    }

    #[test]
    fn looks_like_the_pixel_path() {
        // The same outline drawn both ways, each as stored, differs only by JPEG error.
        let (w, h) = (800, 600);
        let img = photo(w, h);
        let original = jpeg(&img, turbojpeg::Subsamp::Sub2x2, false);
        let boxes = [text_box(40, 40, 300, 120), text_box(350, 300, 760, 580)];
        let bands = outline_bands(w, h, &boxes);
        let outlined = decode(&outline(&original, &bands).unwrap());
        let mut drawn = decode(&original);
        crate::image::annotate::annotate(&mut drawn, &boxes);
        // As the pixel path stores it.
        let drawn = decode(&crate::image::encode::encode_jpeg(&drawn, 85).unwrap());
        // Over the outlines' pixels, where the two ways could differ.
        let (mut diff, mut n) = (0f64, 0);
        for band in &bands {
            for y in band.y0..band.y1 {
                for x in band.x0..band.x1 {
                    let (a, b) = (outlined.get_pixel(x, y), drawn.get_pixel(x, y));
                    diff += (0..3)
                        .map(|c| (a[c] as f64 - b[c] as f64).abs())
                        .sum::<f64>()
                        / 3.0;
                    n += 1;
                }
            }
        }
        let diff = diff / n as f64;
        // 4.5 when written; 50 with nothing painted.
        assert!(
            diff < 10.0,
            "mean difference {diff:.1} per channel over the outlines"
        );
    }

    #[test]
    fn what_it_cannot_draw_into_is_left_to_the_pixel_path() {
        let img = photo(64, 64);
        let bands = outline_bands(64, 64, &[text_box(10, 10, 40, 40)]);
        // Greyscale: one component.
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_subsamp(turbojpeg::Subsamp::Gray).unwrap();
        let grey = c
            .compress_to_vec(turbojpeg::Image {
                pixels: img.as_raw().as_slice(),
                width: 64,
                pitch: 64 * 3,
                height: 64,
                format: turbojpeg::PixelFormat::RGB,
            })
            .unwrap();
        assert!(outline(&grey, &bands).is_none());
        // Not a JPEG, or cut short before its frame.
        assert!(outline(b"\x89PNG\r\n\x1a\n", &bands).is_none());
        let whole = jpeg(&img, turbojpeg::Subsamp::Sub2x2, false);
        assert!(outline(&whole[..100], &bands).is_none());
        // Cut short inside its scan: libjpeg-turbo refuses it rather than inventing blocks.
        assert!(outline(&whole[..whole.len() / 2], &bands).is_none());
    }
}
