//! Writing JPEGs (libjpeg-turbo) and choosing sizes for them.
use image::RgbImage;

use super::ImageError;

pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let (w, h) = img.dimensions();
    if w.max(h) > 65_535 {
        return Err(ImageError::Encode(
            "JPEG cannot hold more than 65535 pixels per side".into(),
        ));
    }
    let encode = || -> Result<Vec<u8>, turbojpeg::Error> {
        let mut compressor = turbojpeg::Compressor::new()?;
        compressor.set_quality(quality as i32)?;
        // 4:2:0, as photo encoders (and libjpeg's defaults) do at these qualities.
        compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2)?;
        let image = turbojpeg::Image {
            pixels: img.as_raw().as_slice(),
            width: w as usize,
            pitch: 3 * w as usize,
            height: h as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        compressor.compress_to_vec(image)
    };
    encode().map_err(|e| ImageError::Encode(e.to_string()))
}

/// Size keeping the aspect ratio with the long side at most `side`.
pub fn fit_within(w: u32, h: u32, side: u32) -> (u32, u32) {
    if w.max(h) <= side {
        return (w, h);
    }
    if w >= h {
        (
            side,
            ((h as u64 * side as u64 + w as u64 / 2) / w as u64).max(1) as u32,
        )
    } else {
        (
            ((w as u64 * side as u64 + h as u64 / 2) / h as u64).max(1) as u32,
            side,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_within_keeps_aspect() {
        assert_eq!(fit_within(1600, 1200, 256), (256, 192));
        assert_eq!(fit_within(1200, 1600, 256), (192, 256));
        assert_eq!(fit_within(100, 50, 256), (100, 50));
        assert_eq!(fit_within(10000, 10, 256), (256, 1));
    }
}
