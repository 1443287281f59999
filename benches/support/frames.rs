//! Camera-like test frames: the test pattern with per-pixel noise, so JPEG
//! sizes and decode times resemble a real 720p camera (~50 KB at quality 80)
//! rather than flat colour bars.
#![allow(dead_code)] // each bench uses its own subset

use std::time::{Duration, SystemTime};

use framecast::render::jpeg::{Rgb, encode_rgb};
use framecast::render::pattern::draw_pattern;

/// Frame `n` of a `width`×`height` noisy pattern as RGB.
pub fn camera_rgb(width: u32, height: u32, n: u64, noise: u8) -> Rgb {
    let pixmap = draw_pattern(width, height, 30.0, n, SystemTime::UNIX_EPOCH + Duration::from_secs(n));
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ n;
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for px in pixmap.data().chunks_exact(4) {
        for &c in &px[..3] {
            // xorshift: cheap, deterministic grain.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let jitter = (seed % (2 * noise as u64 + 1)) as i16 - noise as i16;
            pixels.push((c as i16 + jitter).clamp(0, 255) as u8);
        }
    }
    Rgb { width: width as usize, height: height as usize, pixels }
}

/// `count` distinct 1280×720 JPEGs of about 50 KB each.
pub fn camera_jpegs(count: u64) -> Vec<Vec<u8>> {
    (0..count).map(|n| encode_rgb(&camera_rgb(1280, 720, n, 4), 80)).collect()
}
