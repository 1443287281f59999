//! Sizes per viewer, encoded once per size: `?width=N`, snapped to the
//! nearest of the camera's `sizes`, is a derived channel `camera/NAME@wN`.
//! Its producer takes each new source frame (after the overlay), scales
//! and encodes it once off the async threads, and publishes it for all of
//! that size's viewers; a frame not wider than N passes through as it is.
//! The derived channel keeps the camera's source running, resends when the
//! camera resends, and stops with its last viewer.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{Camera, JPEG};
use crate::push::channel::Channel;
use crate::push::registry::{JoinError, Registry};
use crate::push::viewer::ViewerGuard;
use crate::render::scale::scaled_jpeg;
use crate::sources::tasks::Tasks;

impl Camera {
    /// The allowed width nearest to `asked` (the smaller on a tie), or
    /// `None` when the camera has no `sizes`.
    pub fn snap_width(&self, asked: u32) -> Option<u32> {
        self.config.sizes.iter().copied().min_by_key(|w| (w.abs_diff(asked), *w))
    }

    /// The name of the derived channel for `width`.
    pub fn sized_name(&self, width: u32) -> String {
        format!("{}@w{width}", self.channel.name())
    }

    /// Counts a viewer into this camera at `width` (snapped), starting that
    /// size's channel and producer if nobody watches it yet.
    pub async fn watch_width(
        self: &Arc<Self>,
        registry: &Arc<Registry>,
        tasks: &Tasks,
        width: u32,
    ) -> Result<ViewerGuard, JoinError> {
        let name = self.sized_name(width);
        // The first frame, made before joining so the viewer's first part
        // is already the right size.
        let first = match registry.get(&name) {
            Some(channel) => channel.latest().image(),
            None => scale(self.channel.latest().image(), width, self.config.quality).await,
        };
        let (viewer, created) = registry.join(&name, || Channel::new(name.clone(), &first, JPEG))?;
        if created {
            let (camera, registry, channel) = (self.clone(), registry.clone(), viewer.channel().clone());
            tasks.supervise("producer", name, move || run(camera.clone(), registry.clone(), channel.clone(), width));
        }
        Ok(viewer)
    }
}

/// `jpeg` at `width`, off the async threads; the frame itself when it is
/// not wider, or cannot be decoded.
pub async fn scale(jpeg: Bytes, width: u32, quality: u8) -> Bytes {
    let source = jpeg.clone();
    match tokio::task::spawn_blocking(move || scaled_jpeg(&source, width, quality)).await {
        Ok(Ok(Some(scaled))) => Bytes::from(scaled),
        _ => jpeg,
    }
}

/// Holds the camera's source running while a derived channel lives.
struct Demand(Arc<Camera>);

impl Demand {
    fn new(camera: Arc<Camera>) -> Demand {
        camera.derived.fetch_add(1, Relaxed);
        camera.wake.notify_one();
        Demand(camera)
    }
}

impl Drop for Demand {
    fn drop(&mut self) {
        self.0.derived.fetch_sub(1, Relaxed);
        self.0.wake.notify_one();
    }
}

async fn run(camera: Arc<Camera>, registry: Arc<Registry>, channel: Arc<Channel>, width: u32) {
    let _demand = Demand::new(camera.clone());
    let mut frames = camera.channel.subscribe();
    let mut last_seq = frames.borrow_and_update().seq;
    loop {
        let source_sent = tokio::select! {
            changed = frames.changed() => {
                if changed.is_err() {
                    return;
                }
                true
            }
            _ = channel.presence_changed.notified() => false,
        };
        if channel.viewers() == 0 && registry.forget_if_idle(&channel) {
            return;
        }
        let frame = frames.borrow_and_update().clone();
        if frame.seq == last_seq {
            // The camera resent its frame: so does this size.
            if source_sent {
                channel.resend();
            }
            continue;
        }
        last_seq = frame.seq;
        // Frames that arrive while this one is scaled are skipped: the
        // watch slot holds only the newest.
        let scaled = scale(frame.image(), width, camera.config.quality).await;
        channel.publish(&scaled, JPEG);
    }
}
