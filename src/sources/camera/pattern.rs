//! The synthetic test pattern as a frame source, at its configured fps.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use super::source::{FrameSource, NextFrame};
use crate::config::camera::PatternConfig;
use crate::render::jpeg::encode_pixmap;
use crate::render::pattern::draw_pattern;

pub struct Pattern {
    config: PatternConfig,
    quality: u8,
    frame: u64,
    next_at: Instant,
}

impl Pattern {
    pub fn new(config: PatternConfig, quality: u8) -> Pattern {
        Pattern { config, quality, frame: 0, next_at: Instant::now() }
    }
}

impl FrameSource for Pattern {
    fn next_frame(&mut self) -> NextFrame<'_> {
        Box::pin(async move {
            sleep_until(self.next_at).await;
            let (c, n, quality) = (self.config.clone(), self.frame + 1, self.quality);
            // Off the async threads: a 1080p encode takes milliseconds.
            let jpeg = tokio::task::spawn_blocking(move || {
                encode_pixmap(&draw_pattern(c.width, c.height, c.fps, n, SystemTime::now()), quality)
            })
            .await
            .map_err(|e| format!("pattern render failed: {e}"))?;
            // State changes only once the frame exists: cancel-safe.
            self.frame = n;
            let interval = Duration::from_secs_f64(1.0 / self.config.fps);
            // After a pause (nobody took frames) restart the clock instead of bursting.
            self.next_at = (self.next_at + interval).max(Instant::now());
            Ok(Bytes::from(jpeg))
        })
    }
}
