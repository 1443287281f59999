//! The largest picture a template may draw. Text and scale come from
//! anonymous URLs and API writes; measuring first (glyph metrics only, no
//! rasterizing) and refusing beyond these bounds keeps one request from
//! allocating and drawing megapixels.

/// Widest (and tallest) picture, in pixels.
pub const MAX_SIDE: u32 = 4096;
/// Most pixels in one picture (4 MiB of RGBA).
pub const MAX_PIXELS: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the image would be {width}x{height} pixels; the limit is {MAX_SIDE} a side and {MAX_PIXELS} pixels: \
     use shorter text or a smaller scale"
)]
pub struct TooLarge {
    pub width: u64,
    pub height: u64,
}

/// `(w, h)` as whole pixels, if a picture that size is allowed.
pub fn checked(w: f32, h: f32) -> Result<(u32, u32), TooLarge> {
    // Saturating casts: NaN becomes 0, infinity u64::MAX; both are refused.
    let (width, height) = (w.ceil() as u64, h.ceil() as u64);
    let too_large = TooLarge { width, height };
    if width == 0 || height == 0 || width > u64::from(MAX_SIDE) || height > u64::from(MAX_SIDE) {
        return Err(too_large);
    }
    if width * height > MAX_PIXELS {
        return Err(too_large);
    }
    Ok((width as u32, height as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(checked(100.0, 20.0), Ok((100, 20)));
        assert!(checked(4097.0, 20.0).is_err());
        assert!(checked(2048.0, 1024.0).is_err());
        assert!(checked(f32::NAN, 20.0).is_err());
        assert!(checked(f32::INFINITY, 20.0).is_err());
        assert!(checked(0.0, 20.0).is_err());
    }
}
