//! Resizing RGB images with SIMD convolution (fast_image_resize): the detector's input and
//! the thumbnail. Several times faster than `image::imageops` on the sizes photos come in,
//! and antialiased the same way (the kernel widens with the reduction).
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// `img` resized to exactly `width` × `height` with a bilinear (triangle) filter.
pub fn bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize(
        img,
        width,
        height,
        ResizeAlg::Convolution(FilterType::Bilinear),
    )
}

/// A network's input. A large reduction (a 12 MP photo to 960 px) interpolates between the
/// nearest source pixels, as PP-OCR's own preprocessing does (OpenCV's INTER_LINEAR), instead
/// of filtering every pixel: 8–9 ms instead of 10–13 on a freshly decoded 12 MP photo, and the
/// detector finds the same boxes (quality test unchanged). Smaller reductions keep the
/// antialiasing filter, which costs little there.
pub fn for_network(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if img.width() > 4 * width && img.height() > 4 * height {
        resize(
            img,
            width,
            height,
            ResizeAlg::Interpolation(FilterType::Bilinear),
        )
    } else {
        bilinear(img, width, height)
    }
}

fn resize(img: &RgbImage, width: u32, height: u32, alg: ResizeAlg) -> RgbImage {
    if img.dimensions() == (width, height) {
        return img.clone();
    }
    let src = ImageRef::new(img.width(), img.height(), img.as_raw(), PixelType::U8x3)
        .expect("an RgbImage buffer fits its size");
    let mut dst = Image::new(width.max(1), height.max(1), PixelType::U8x3);
    Resizer::new()
        .resize(&src, &mut dst, &ResizeOptions::new().resize_alg(alg))
        .expect("same pixel type on both sides");
    RgbImage::from_raw(width.max(1), height.max(1), dst.into_vec())
        .expect("the buffer fits its size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn keeps_flat_colour_and_averages_stripes() {
        let flat = RgbImage::from_pixel(640, 480, Rgb([10, 200, 30]));
        let small = bilinear(&flat, 64, 48);
        assert_eq!(small.dimensions(), (64, 48));
        assert!(small.pixels().all(|p| *p == Rgb([10, 200, 30])));
        // One-pixel black and white columns average to grey when reduced tenfold.
        let stripes = RgbImage::from_fn(640, 480, |x, _| {
            if x % 2 == 0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let grey = bilinear(&stripes, 64, 48);
        assert!(
            grey.pixels().all(|p| (120..=135).contains(&p[0])),
            "{:?}",
            grey.get_pixel(10, 10)
        );
    }
}
