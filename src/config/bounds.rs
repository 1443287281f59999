//! The accepted range of every number a config file or a URL may carry.
//!
//! Numbers are checked once, where they enter (config load, query parsing),
//! against the ranges here; everything downstream can then do arithmetic on
//! them (`Instant + Duration`, `1 / fps`, byte sums) without a panic or an
//! overflow. The ranges are wide enough for any real deployment and narrow
//! enough that no product of two of them overflows.

use std::fmt::Display;
use std::time::Duration;

/// Frames per second a stream or camera may be capped to.
pub const FPS: (f64, f64) = (0.01, 1000.0);
/// Frames per second a pattern or device source may produce.
pub const SOURCE_FPS: (f64, f64) = (0.01, 120.0);
/// Seconds a stream may be limited to (`max_duration`): up to 30 days.
pub const DURATION_S: (u64, u64) = (1, 30 * 86_400);
/// Bytes a stream may be limited to (`max_bytes`): up to 1 PiB.
pub const BYTES: (u64, u64) = (1, 1 << 50);
/// Width and height of a camera picture, in pixels (also the JPEG decoder's limit).
pub const IMAGE_SIDE: (u32, u32) = (16, 8192);
/// Scales a badge can be drawn at (`?scale=`, `@Nx`); others snap to the nearest.
pub const SCALES: [f32; 5] = [1.0, 1.5, 2.0, 3.0, 4.0];

/// `value` if it lies in `[min, max]`, else a message naming `key` and the range.
pub fn within<T: PartialOrd + Display + Copy>(key: &str, value: T, (min, max): (T, T)) -> Result<T, String> {
    if value >= min && value <= max {
        Ok(value)
    } else {
        Err(format!("{key}: {value} is out of range: use {min} to {max}"))
    }
}

/// Like `within`, but 0 also passes (it means "no limit").
pub fn zero_or_within<T: PartialOrd + Display + Copy + Default>(
    key: &str,
    value: T,
    range: (T, T),
) -> Result<T, String> {
    if value == T::default() {
        return Ok(value);
    }
    within(key, value, range).map_err(|e| format!("{e} (or 0 for no limit)"))
}

/// A frame rate known to be in `FPS` (or `SOURCE_FPS`): its interval is
/// between 1 ms and 100 s, so `Duration` arithmetic on it cannot panic.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fps(f64);

impl Fps {
    pub fn new(key: &str, fps: f64) -> Result<Fps, String> {
        // `within` is false for NaN, so NaN is refused too.
        within(key, fps, FPS).map(Fps)
    }

    /// 0 (or less, which config checks refuse earlier) is no cap.
    pub fn optional(key: &str, fps: f64) -> Result<Option<Fps>, String> {
        if fps == 0.0 { Ok(None) } else { Fps::new(key, fps).map(Some) }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn interval(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.0)
    }
}

/// The scale in `SCALES` nearest to `value`, for a value in `[1, 4]`.
pub fn quantize_scale(key: &str, value: f32) -> Result<f32, String> {
    let (min, max) = (SCALES[0], SCALES[SCALES.len() - 1]);
    let value = within(key, value, (min, max))?;
    // Ties go to the larger scale: sharper, never blurrier.
    let nearest = SCALES.iter().copied().rev().min_by(|a, b| (a - value).abs().total_cmp(&(b - value).abs()));
    Ok(nearest.expect("SCALES is not empty"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_nan_infinities_and_extremes() {
        for bad in [f64::NAN, f64::INFINITY, -1.0, 0.0, 1e-20, 1e-300, 1e308] {
            assert!(Fps::new("max_fps", bad).is_err(), "{bad}");
        }
        assert_eq!(Fps::new("max_fps", 4.0).unwrap().interval(), Duration::from_millis(250));
        assert_eq!(Fps::optional("max_fps", 0.0), Ok(None));
        assert!(Fps::new("max_fps", 1e-20).unwrap_err().contains("max_fps: 0.00000000000000000001 is out of range"));
        assert!(zero_or_within("max_bytes", 0u64, BYTES).is_ok());
        assert!(zero_or_within("max_bytes", u64::MAX, BYTES).unwrap_err().contains("max_bytes"));
    }

    #[test]
    fn scales_snap_to_the_set() {
        assert_eq!(quantize_scale("scale", 1.0), Ok(1.0));
        assert_eq!(quantize_scale("scale", 1.2), Ok(1.0));
        assert_eq!(quantize_scale("scale", 1.25), Ok(1.5));
        assert_eq!(quantize_scale("scale", 2.5), Ok(3.0));
        assert_eq!(quantize_scale("scale", 3.9), Ok(4.0));
        for bad in [f32::NAN, f32::INFINITY, 0.5, 4.01, -1.0] {
            assert!(quantize_scale("scale", bad).is_err(), "{bad}");
        }
    }
}
