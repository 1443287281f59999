//! Per-client limits on one stream, as configured (`client_limits`, and a
//! camera's `limits`): a longest duration, a byte budget, an fps cap.

use std::time::Duration;

use serde::Deserialize;

use super::bounds::{BYTES, DURATION_S, FPS, Fps, zero_or_within};

/// Per-client limits as configured; 0 means none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// A stream ends after this many seconds.
    #[serde(default)]
    pub max_duration_s: u64,
    /// A stream ends before a part would take it past this many bytes.
    #[serde(default)]
    pub max_bytes: u64,
    /// Frames per second to one client at most; it gets the latest frame at that pace.
    #[serde(default)]
    pub max_fps: f64,
}

impl LimitsConfig {
    pub fn validate(&self, key: &str) -> Result<(), String> {
        zero_or_within(&format!("{key}.max_fps"), self.max_fps, FPS)?;
        zero_or_within(&format!("{key}.max_duration_s"), self.max_duration_s, DURATION_S)?;
        zero_or_within(&format!("{key}.max_bytes"), self.max_bytes, BYTES)?;
        Ok(())
    }

    /// The fps cap, `None` for 0 (validated: never out of range).
    pub fn max_fps(&self) -> Option<Fps> {
        Fps::optional("max_fps", self.max_fps).ok().flatten()
    }

    pub fn max_duration(&self) -> Option<Duration> {
        (self.max_duration_s > 0).then(|| Duration::from_secs(self.max_duration_s))
    }
}
