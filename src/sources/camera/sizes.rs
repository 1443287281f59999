//! Sizes per viewer, encoded once per size: `?width=N`, snapped to the
//! nearest of the camera's `sizes`, is a derived channel `camera/NAME@wN`.
//! Its producer takes each new source frame (after the overlay), scales
//! and encodes it once off the async threads, and publishes it for all of
//! that size's viewers; a frame not wider than N passes through as it is.
//! The derived channel keeps the camera's source running, resends when the
//! camera resends, and stops with its last viewer.
//!
//! Sized snapshots (`.jpg?width=N`) take that channel's latest frame when
//! the size is live; otherwise the frame is scaled in the bounded render
//! pool (`Busy` when it is full), and every scaling goes through the
//! camera's `ScaledFrames`, so a (frame, width) is scaled once for all.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{Camera, JPEG};
use crate::metrics::metrics;
use crate::push::channel::Channel;
use crate::push::part::Frame;
use crate::push::registry::{JoinError, Kind, Registry};
use crate::push::viewer::ViewerGuard;
use crate::render::pool::{Busy, RenderPool};
use crate::render::scale::scaled_jpeg;
use crate::sources::tasks::Tasks;

/// Why a viewer could not join a size.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeRefused {
    #[error(transparent)]
    Full(#[from] JoinError),
    /// Its first frame could not be scaled: the render pool is full.
    #[error(transparent)]
    Busy(#[from] Busy),
}

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
        renders: &RenderPool,
        width: u32,
    ) -> Result<ViewerGuard, SizeRefused> {
        let name = self.sized_name(width);
        // The first frame, made before joining so the viewer's first part
        // is already the right size.
        let first = match registry.get(&name) {
            Some(channel) => channel.latest().image(),
            None => self.scaled_in(renders, &self.channel.latest(), width).await?,
        };
        let (viewer, created) = registry.join(Kind::CameraSize, &name, || Channel::new(name.clone(), &first, JPEG))?;
        if created {
            let (camera, registry, channel) = (self.clone(), registry.clone(), viewer.channel().clone());
            tasks.supervise("producer", name, move || run(camera.clone(), registry.clone(), channel.clone(), width));
        }
        Ok(viewer)
    }

    /// A sized snapshot of `frame`: the size channel's latest frame when
    /// that size is live and no fresher frame was asked for (`fresh`: a
    /// `max_delay` wait), else `frame` scaled in the render pool.
    pub async fn sized_snapshot(
        &self,
        registry: &Registry,
        renders: &RenderPool,
        frame: &Frame,
        width: u32,
        fresh: bool,
    ) -> Result<Bytes, Busy> {
        if !fresh && let Some(channel) = registry.get(&self.sized_name(width)) {
            return Ok(channel.latest().image());
        }
        self.scaled_in(renders, frame, width).await
    }

    /// `frame` at `width`, scaled in the bounded render pool (once per
    /// frame and width, whoever asks).
    async fn scaled_in(&self, renders: &RenderPool, frame: &Frame, width: u32) -> Result<Bytes, Busy> {
        let (jpeg, quality) = (frame.image(), self.config.quality);
        let scale = renders.run(move || scale_now(jpeg, width, quality));
        self.scaled.get(frame.seq, width, scale).await
    }

    /// `frame` at `width` for a size channel's producer: on a blocking
    /// thread of its own, one frame at a time per size channel (and size
    /// channels are capped), so live sizes never wait behind one-off renders.
    async fn scaled_for_channel(&self, frame: &Frame, width: u32) -> Bytes {
        let (jpeg, quality) = (frame.image(), self.config.quality);
        let scale = || {
            let jpeg = jpeg.clone();
            async move {
                let original = jpeg.clone();
                Ok(tokio::task::spawn_blocking(move || scale_now(jpeg, width, quality)).await.unwrap_or(original))
            }
        };
        match self.scaled.get(frame.seq, width, scale()).await {
            Ok(scaled) => scaled,
            // A request's attempt at the same frame found the pool full.
            Err(Busy) => scale().await.unwrap_or(jpeg),
        }
    }
}

/// `jpeg` at `width`, now; the frame itself when it is not wider, or cannot
/// be decoded.
fn scale_now(jpeg: Bytes, width: u32, quality: u8) -> Bytes {
    match scaled_jpeg(&jpeg, width, quality) {
        Ok(Some(scaled)) => {
            metrics().frames_scaled.inc();
            Bytes::from(scaled)
        }
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
        let scaled = camera.scaled_for_channel(&frame, width).await;
        channel.publish(&scaled, JPEG);
    }
}
