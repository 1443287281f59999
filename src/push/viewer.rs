//! A viewer's presence, tied to a value's lifetime: created when a stream
//! starts, dropped with the response body however the stream ends (FIN, RST,
//! write error, stall, limit, panic). Drop runs exactly once, so no path can
//! leak a viewer or remove one twice.

use std::sync::Arc;

use super::channel::Channel;

pub struct ViewerGuard {
    channel: Arc<Channel>,
    /// Dropped right after the viewer left (a room's session record).
    companion: Option<Box<dyn Send + Sync>>,
}

impl ViewerGuard {
    /// Counts a viewer in. Only the registry calls this, under its lock, so a
    /// channel being forgotten can never gain a viewer.
    pub(super) fn join(channel: Arc<Channel>) -> ViewerGuard {
        channel.viewer_joined();
        ViewerGuard { channel, companion: None }
    }

    /// Ties `companion` to this viewer: it is dropped when the viewer leaves.
    pub fn with_companion(mut self, companion: Box<dyn Send + Sync>) -> ViewerGuard {
        self.companion = Some(companion);
        self
    }

    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.channel.viewer_left();
        drop(self.companion.take());
    }
}
