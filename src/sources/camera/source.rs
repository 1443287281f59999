//! The seam between a camera and the push path: a `FrameSource` yields JPEG
//! frames. Pattern, file, upstream MJPEG and local devices implement it;
//! tests drive the whole camera path through it without a device.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::config::camera::SourceConfig;

pub type NextFrame<'a> = Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send + 'a>>;

pub trait FrameSource: Send {
    /// Waits for the next JPEG frame. `Err` says why there is none now (for
    /// the log and the API; never secrets); the source keeps retrying on its
    /// own schedule, so the caller simply calls again. Must be cancel-safe:
    /// the producer also waits on viewers and timers, and a cancelled call
    /// loses nothing.
    fn next_frame(&mut self) -> NextFrame<'_>;

    /// Frames the source replaced before they were taken (the producer was
    /// still busy with an earlier one).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Opens the configured source; failures surface from `next_frame`.
pub fn open(config: &SourceConfig, quality: u8) -> Box<dyn FrameSource> {
    match config {
        SourceConfig::Pattern(c) => Box::new(super::pattern::Pattern::new(c.clone(), quality)),
        SourceConfig::File(c) => Box::new(super::file::FileSource::new(c.clone(), quality)),
        SourceConfig::Mjpeg(c) => Box::new(super::relay::Relay::start(c.clone())),
        #[cfg(feature = "device")]
        SourceConfig::Device(c) => Box::new(super::device::Device::start(c.clone(), quality)),
        #[cfg(not(feature = "device"))]
        SourceConfig::Device(_) => unreachable!("config validation refuses devices without the `device` feature"),
    }
}
