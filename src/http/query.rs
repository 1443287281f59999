//! Numbers from a URL's query (and `@Nx` suffixes), parsed into bounded
//! values at the edge. Anything out of range, negative, NaN, infinite or
//! not a number is a `400` whose message names the parameter and the range
//! it accepts; nothing past this point sees an unchecked number.

use super::errors::BadRequest;
use crate::config::bounds::{self, Fps};

/// `key=value` as a frame rate in `bounds::FPS`.
pub fn fps(key: &str, value: &str) -> Result<Fps, BadRequest> {
    let (min, max) = bounds::FPS;
    let parsed = value.parse::<f64>().ok().and_then(|f| Fps::new(key, f).ok());
    parsed.ok_or_else(|| BadRequest(format!("{key}={value:?} is invalid: use a number from {min} to {max}")))
}

/// `key=value` as a whole number in `[min, max]`.
pub fn whole(key: &str, value: &str, (min, max): (u64, u64)) -> Result<u64, BadRequest> {
    let parsed = value.parse::<u64>().ok().filter(|n| (min..=max).contains(n));
    parsed.ok_or_else(|| BadRequest(format!("{key}={value:?} is invalid: use a whole number from {min} to {max}")))
}

/// `key=value` as a badge scale, snapped to `bounds::SCALES`.
pub fn scale(key: &str, value: &str) -> Result<f32, BadRequest> {
    let parsed = value.parse::<f32>().ok().and_then(|s| bounds::quantize_scale(key, s).ok());
    parsed.ok_or_else(|| {
        let (min, max) = (bounds::SCALES[0], bounds::SCALES[bounds::SCALES.len() - 1]);
        BadRequest(format!("{key}={value:?} is invalid: use a number from {min} to {max} (drawn at 1, 1.5, 2, 3 or 4)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_bad_number_is_named() {
        for bad in ["", "x", "NaN", "inf", "-inf", "-1", "0", "1e-20", "1e-19", "1e308", "0x10", "1,5"] {
            let err = fps("max_fps", bad).unwrap_err().0;
            assert!(err.starts_with("max_fps=") && err.contains("0.01 to 1000"), "{err}");
            assert!(scale("scale", bad).is_err(), "{bad}");
        }
        for bad in ["", "-1", "0", "1.5", "18446744073709551616", "99999999999"] {
            assert!(whole("max_duration", bad, bounds::DURATION_S).unwrap_err().0.contains("1 to 2592000"), "{bad}");
        }
        assert_eq!(whole("max_bytes", "1000", bounds::BYTES), Ok(1000));
        assert_eq!(scale("scale", "2.2"), Ok(2.0));
        assert_eq!(fps("max_fps", "2").unwrap().get(), 2.0);
    }
}
