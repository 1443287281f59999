//! A camera frame at another width: decode the JPEG, resize (fast_image_resize,
//! SIMD, a bilinear convolution, which is sharp enough for a downscale and
//! several times cheaper than Lanczos), encode again. Done once per source
//! frame per size, for every viewer of that size.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::jpeg::{Rgb, decode, encode_rgb};

/// `jpeg` at `width` (height in proportion), or `None` when it is not
/// wider than that already (it is passed on as it is, never enlarged).
pub fn scaled_jpeg(jpeg: &[u8], width: u32, quality: u8) -> Result<Option<Vec<u8>>, String> {
    // The header alone tells a frame that passes through: no decode.
    if super::jpeg::dimensions(jpeg).is_some_and(|(w, _)| w as u32 <= width) {
        return Ok(None);
    }
    let image = decode(jpeg)?;
    if image.width as u32 <= width {
        return Ok(None);
    }
    Ok(Some(encode_rgb(&scaled(image, width)?, quality)))
}

fn scaled(image: Rgb, width: u32) -> Result<Rgb, String> {
    let (w, h) = (image.width as u32, image.height as u32);
    let height = ((u64::from(h) * u64::from(width) + u64::from(w) / 2) / u64::from(w)).max(1) as u32;
    let src = Image::from_vec_u8(w, h, image.pixels, PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&src, &mut dst, &options).map_err(|e| e.to_string())?;
    Ok(Rgb { width: width as usize, height: height as usize, pixels: dst.into_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_proportions_and_never_enlarges() {
        let image = Rgb { width: 640, height: 360, pixels: [10u8, 200, 30].repeat(640 * 360) };
        let jpeg = encode_rgb(&image, 80);
        let small = scaled_jpeg(&jpeg, 320, 80).unwrap().unwrap();
        assert_eq!(super::super::jpeg::dimensions(&small), Some((320, 180)));
        assert_eq!(scaled_jpeg(&jpeg, 640, 80).unwrap(), None);
        assert!(scaled_jpeg(b"nope", 320, 80).is_err());
    }
}
