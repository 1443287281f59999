//! A viewer's presence, tied to a value's lifetime: created when a stream
//! starts, dropped with the response body however the stream ends (FIN, RST,
//! write error, stall, limit, panic). Drop runs exactly once, so no path can
//! leak a viewer or remove one twice.

use std::sync::Arc;

use super::channel::Channel;
use super::record::ViewerRecord;

pub struct ViewerGuard {
    channel: Arc<Channel>,
    /// Dropped right after the viewer left (a room's session record).
    companion: Option<Box<dyn Send + Sync>>,
    /// This viewer's entry in the channel's list, if listed.
    record: Option<Arc<ViewerRecord>>,
}

impl ViewerGuard {
    /// Counts a viewer in. Only the registry calls this, under its lock, so a
    /// channel being forgotten can never gain a viewer.
    pub(super) fn join(channel: Arc<Channel>) -> ViewerGuard {
        channel.viewer_joined();
        ViewerGuard { channel, companion: None, record: None }
    }

    /// Lists this viewer in its channel until it leaves.
    pub fn with_record(mut self, record: Arc<ViewerRecord>) -> ViewerGuard {
        self.channel.records.add(record.clone());
        self.record = Some(record);
        self
    }

    pub fn record(&self) -> Option<&Arc<ViewerRecord>> {
        self.record.as_ref()
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
        if let Some(record) = &self.record {
            self.channel.records.remove(record.id);
        }
        self.channel.viewer_left();
        drop(self.companion.take());
    }
}
