//! The seam between a camera and the push path: a `FrameSource` yields JPEG
//! frames. Pattern, file, upstream MJPEG, ffmpeg and local devices implement it;
//! tests drive the whole camera path through it without a device.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
        SourceConfig::Ffmpeg(c) => Box::new(super::ffmpeg::Ffmpeg::start(c.clone(), quality)),
        #[cfg(feature = "device")]
        SourceConfig::Device(c) => Box::new(super::device::Device::start(c.clone(), quality)),
        #[cfg(not(feature = "device"))]
        SourceConfig::Device(_) => unreachable!("config validation refuses devices without the `device` feature"),
    }
}

/// A source running in a task of its own. The producer waits on viewers and
/// timers as well as frames; were it to poll the source directly, every
/// wake-up would cancel the frame being made (a pattern encode, a file read)
/// and waste it. Here a frame in the making always completes and is kept
/// for the producer: the channel holds one, so the source runs at most one
/// frame ahead. Dropping this stops the task, and with it the source.
pub struct Running {
    frames: mpsc::Receiver<(Result<Bytes, String>, u64)>,
    task: JoinHandle<()>,
}

impl Running {
    pub fn start(mut source: Box<dyn FrameSource>) -> Running {
        let (tx, frames) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            loop {
                let frame = source.next_frame().await;
                if tx.send((frame, source.dropped())).await.is_err() {
                    return;
                }
            }
        });
        Running { frames, task }
    }

    /// The next frame (or why there is none) and the source's dropped count;
    /// `None` if the source's task ended (it panicked). Cancel-safe.
    pub async fn next(&mut self) -> Option<(Result<Bytes, String>, u64)> {
        self.frames.recv().await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}
