//! JPEG in and out: decode with zune-jpeg, encode with jpeg-encoder (SIMD).
//! Camera streams must be JPEG: ffmpeg and OpenCV refuse PNG parts.

use jpeg_encoder::{ColorType, Encoder};
use tiny_skia::Pixmap;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Largest picture accepted from any source (8K UHD): bounds decode memory.
pub const MAX_SIDE: usize = crate::config::bounds::IMAGE_SIDE.1 as usize;

/// Interleaved 8-bit RGB pixels.
#[derive(Clone)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Whether `data` starts like a JPEG (SOI marker).
pub fn looks_like_jpeg(data: &[u8]) -> bool {
    data.starts_with(&[0xFF, 0xD8])
}

/// Whether `data` is a whole JPEG: SOI first, EOI last (trailing padding
/// some cameras add is allowed). Catches truncated frames without decoding.
pub fn looks_complete(data: &[u8]) -> bool {
    let end = data.iter().rposition(|&b| !matches!(b, 0 | b'\r' | b'\n')).map_or(0, |i| i + 1);
    looks_like_jpeg(data) && data[..end].ends_with(&[0xFF, 0xD9])
}

pub fn decode(jpeg: &[u8]) -> Result<Rgb, String> {
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    let pixels = decoder.decode().map_err(|e| format!("not a decodable JPEG: {e:?}"))?;
    let (width, height) = decoder.dimensions().ok_or("JPEG without dimensions")?;
    if pixels.len() != width * height * 3 {
        return Err("JPEG decoded to an unexpected size".into());
    }
    Ok(Rgb { width, height, pixels })
}

/// The width and height a JPEG declares, without decoding it.
pub fn dimensions(jpeg: &[u8]) -> Option<(usize, usize)> {
    let mut decoder = JpegDecoder::new(ZCursor::new(jpeg));
    decoder.decode_headers().ok()?;
    decoder.dimensions()
}

pub fn encode_rgb(image: &Rgb, quality: u8) -> Vec<u8> {
    encode(&image.pixels, image.width, image.height, ColorType::Rgb, quality)
}

/// An opaque pixmap as JPEG (premultiplied equals straight when opaque; alpha is ignored).
pub fn encode_pixmap(pixmap: &Pixmap, quality: u8) -> Vec<u8> {
    encode(pixmap.data(), pixmap.width() as usize, pixmap.height() as usize, ColorType::Rgba, quality)
}

fn encode(data: &[u8], width: usize, height: usize, color: ColorType, quality: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height / 4);
    let encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    // Sizes are bounded by MAX_SIDE (< u16::MAX), so neither the cast nor the encode can fail.
    encoder.encode(data, width as u16, height as u16, color).expect("in-memory JPEG encode of a bounded image");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_size_and_roughly_the_colour() {
        let image = Rgb { width: 64, height: 32, pixels: [200u8, 40, 90].repeat(64 * 32) };
        let jpeg = encode_rgb(&image, 90);
        assert!(looks_like_jpeg(&jpeg) && looks_complete(&jpeg));
        assert!(!looks_complete(&jpeg[..jpeg.len() - 10]));
        let mut padded = jpeg.clone();
        padded.extend_from_slice(b"\r\n\0");
        assert!(looks_complete(&padded));
        assert_eq!(dimensions(&jpeg), Some((64, 32)));
        let back = decode(&jpeg).unwrap();
        assert_eq!((back.width, back.height), (64, 32));
        let close = |a: u8, b: u8| a.abs_diff(b) <= 6;
        assert!(close(back.pixels[0], 200) && close(back.pixels[1], 40) && close(back.pixels[2], 90));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2, 3]).is_err());
        assert!(dimensions(b"not a jpeg").is_none());
    }
}
