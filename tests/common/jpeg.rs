//! JPEG helpers for camera tests: solid test images and what served frames
//! decode to (with real decoding, through zune-jpeg).

use framecast::render::jpeg::{Rgb, decode, encode_rgb};

pub fn solid_jpeg(rgb: [u8; 3], width: usize, height: usize) -> Vec<u8> {
    encode_rgb(&Rgb { width, height, pixels: rgb.repeat(width * height) }, 90)
}

pub fn decoded(jpeg: &[u8]) -> Rgb {
    decode(jpeg).unwrap_or_else(|e| panic!("served frame does not decode: {e}"))
}

pub fn pixel(image: &Rgb, x: usize, y: usize) -> [u8; 3] {
    let i = (y * image.width + x) * 3;
    [image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]]
}

/// Whether every channel is within `tolerance` of `want`.
pub fn near(have: [u8; 3], want: [u8; 3], tolerance: u8) -> bool {
    have.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= tolerance)
}

/// The average colour of a frame.
pub fn mean(jpeg: &[u8]) -> [u8; 3] {
    let image = decoded(jpeg);
    let mut sum = [0u64; 3];
    for px in image.pixels.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += px[c] as u64;
        }
    }
    let n = (image.width * image.height) as u64;
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

/// The placeholder's stripe along the bottom: red when offline, blue while connecting.
pub fn placeholder_kind(jpeg: &[u8]) -> Option<&'static str> {
    let image = decoded(jpeg);
    let [r, g, b] = pixel(&image, image.width / 2, image.height - 2);
    if r > 150 && g < 110 && b < 110 {
        Some("offline")
    } else if b > 150 && r < 120 {
        Some("connecting")
    } else {
        None
    }
}
