//! A channel: the latest frame of one live image plus the viewers watching it.
//!
//! The latest frame sits in a watch slot, never a queue: a viewer that falls
//! behind skips to the newest frame and holds at most one reference to it, so
//! a slow viewer costs neither memory nor time to the others.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::part::Frame;
use super::presence::{GlobalCount, PresenceLog};
use crate::metrics::metrics;

pub struct Channel {
    name: String,
    latest: watch::Sender<Arc<Frame>>,
    /// Exact viewers on this instance.
    viewers: AtomicU64,
    /// With cluster mode: the cluster-wide count (see `presence`).
    pub global: GlobalCount,
    /// Where local count changes are logged for the cluster (set by the registry).
    log: OnceLock<Arc<PresenceLog>>,
    /// Woken when a viewer joins or leaves, for producers that draw the count.
    pub(crate) presence_changed: Notify,
    pub(crate) stats: ChannelStats,
    /// The viewers listed by the viewers API.
    pub records: super::record::Records,
    /// Viewers of this channel still in an upgrade's old process (TLS and
    /// HTTP/2 streams it could not hand over): counted here too.
    elsewhere: AtomicU64,
    /// The seq of the last frame, once the channel is closed (0: open):
    /// each stream ends after sending it, and nothing is published after.
    final_seq: AtomicU64,
    /// After an upgrade, in the old process: the new process draws this
    /// channel's frames (`publish_relayed`); this process's producer's are
    /// not shown.
    relayed: AtomicBool,
}

#[derive(Default)]
pub(crate) struct ChannelStats {
    pub frames_rendered: AtomicU64,
    pub resends: AtomicU64,
    pub parts_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Frames a viewer never got because a newer one replaced them first.
    pub frames_skipped: AtomicU64,
    /// Source frames identical to the one before: not pushed.
    pub frames_unchanged: AtomicU64,
    /// Source frames dropped before publishing (over the channel's fps cap,
    /// or replaced while the previous one was still being processed).
    pub frames_dropped: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
}

/// What the channels API reports.
#[derive(Debug, Serialize)]
pub struct ChannelInfo {
    pub name: String,
    /// Cluster-wide in cluster mode, else this instance's.
    pub viewers: u64,
    /// This instance's share.
    pub local_viewers: u64,
    /// `false` while the cluster cannot be reached (`viewers` is an estimate).
    pub exact: bool,
    pub frame_seq: u64,
    pub frame_bytes: usize,
    pub frames_rendered: u64,
    pub resends: u64,
    pub parts_sent: u64,
    pub bytes_sent: u64,
    pub frames_skipped: u64,
    pub frames_unchanged: u64,
    pub frames_dropped: u64,
    pub connects: u64,
    pub disconnects: u64,
}

impl Channel {
    /// A channel showing `first` until its producer publishes.
    pub fn new(name: String, first_image: &[u8], content_type: &'static str) -> Arc<Channel> {
        let (latest, _) = watch::channel(Arc::new(Frame::new(1, content_type, first_image)));
        let channel = Channel {
            name,
            latest,
            viewers: AtomicU64::new(0),
            global: GlobalCount::default(),
            log: OnceLock::new(),
            presence_changed: Notify::new(),
            stats: ChannelStats::default(),
            records: Default::default(),
            final_seq: AtomicU64::new(0),
            elsewhere: AtomicU64::new(0),
            relayed: AtomicBool::new(false),
        };
        channel.stats.frames_rendered.store(1, Relaxed);
        metrics().frames_rendered.inc();
        Arc::new(channel)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Viewers on this instance, exact.
    pub fn viewers(&self) -> u64 {
        self.viewers.load(Relaxed)
    }

    /// What the channel shows and reports: the cluster-wide count in
    /// cluster mode (local changes included at once), else the local one.
    pub fn shown_viewers(&self) -> u64 {
        let local = self.viewers();
        self.global.shown(local).unwrap_or(local) + self.elsewhere.load(Relaxed)
    }

    /// Sets the viewers still in an upgrade's old process; redraws on change.
    pub(crate) fn set_elsewhere(&self, viewers: u64) {
        if self.elsewhere.swap(viewers, Relaxed) != viewers {
            self.presence_changed.notify_one();
        }
    }

    /// Counts are exact (always, unless the cluster is unreachable).
    pub fn exact(&self) -> bool {
        self.log.get().is_none_or(|log| !log.enabled()) || self.global.exact.load(Relaxed)
    }

    /// Logs this channel's count changes to `log` (the registry does this
    /// when the channel goes live).
    pub(crate) fn attach(&self, log: &Arc<PresenceLog>) {
        let _ = self.log.set(log.clone());
    }

    fn count_changed(&self) {
        if let Some(log) = self.log.get() {
            log.mark(&self.name);
        }
        self.presence_changed.notify_one();
    }

    pub fn latest(&self) -> Arc<Frame> {
        self.latest.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Frame>> {
        self.latest.subscribe()
    }

    /// Makes `image` the latest frame, serialized once for all viewers
    /// (outside the slot's lock; only its number is set inside). A closed
    /// channel publishes nothing more.
    pub fn publish(&self, image: &[u8], content_type: &'static str) {
        if !self.relayed.load(Relaxed) {
            self.put(image, content_type);
        }
    }

    /// A frame the upgrade's new process drew for this channel: from now on
    /// only those are shown here (unless byte for byte the latest).
    pub fn publish_relayed(&self, image: &[u8], content_type: &'static str) {
        self.relayed.store(true, Relaxed);
        if self.latest.borrow().image() != image {
            self.put(image, content_type);
        }
    }

    /// The upgrade's new process sends no more frames: this process's
    /// producer's are shown again (it must be woken to draw).
    pub fn stop_relay(&self) {
        self.relayed.store(false, Relaxed);
    }

    fn put(&self, image: &[u8], content_type: &'static str) {
        let mut frame = Some(Frame::new(0, content_type, image));
        let published = self.latest.send_if_modified(|latest| {
            if self.final_seq.load(Relaxed) != 0 {
                return false;
            }
            let mut frame = frame.take().expect("called once");
            frame.seq = latest.seq + 1;
            *latest = Arc::new(frame);
            true
        });
        if published {
            self.stats.frames_rendered.fetch_add(1, Relaxed);
            metrics().frames_rendered.inc();
        }
    }

    /// Publishes `image` as the channel's last frame: every stream sends it,
    /// then ends cleanly (a reload removed what the channel showed).
    pub fn close_with(&self, image: &[u8], content_type: &'static str) {
        let mut frame = Some(Frame::new(0, content_type, image));
        self.latest.send_if_modified(|latest| {
            if self.final_seq.load(Relaxed) != 0 {
                return false;
            }
            let mut frame = frame.take().expect("called once");
            frame.seq = latest.seq + 1;
            self.final_seq.store(frame.seq, Relaxed);
            *latest = Arc::new(frame);
            true
        });
    }

    /// The seq of the last frame of a closed channel.
    pub fn final_seq(&self) -> Option<u64> {
        Some(self.final_seq.load(Relaxed)).filter(|&seq| seq != 0)
    }

    /// Publishes `image` unless it is byte for byte the latest frame's
    /// (dedupe: an unchanged picture pushes nothing). Returns whether it did.
    pub fn publish_if_changed(&self, image: &[u8], content_type: &'static str) -> bool {
        if self.relayed.load(Relaxed) || self.latest.borrow().image() == image {
            return false;
        }
        self.publish(image, content_type);
        true
    }

    /// Sends the latest frame again to every viewer (keeps proxies from
    /// timing out idle streams; surfaces dead peers as write errors).
    pub fn resend(&self) {
        self.latest.send_modify(|_| {});
        self.stats.resends.fetch_add(1, Relaxed);
    }

    pub(crate) fn viewer_joined(&self) {
        self.viewers.fetch_add(1, Relaxed);
        self.stats.connects.fetch_add(1, Relaxed);
        metrics().viewer_joins.inc();
        self.count_changed();
    }

    pub(crate) fn viewer_left(&self) {
        self.viewers.fetch_sub(1, Relaxed);
        self.stats.disconnects.fetch_add(1, Relaxed);
        metrics().viewer_leaves.inc();
        self.count_changed();
    }

    pub fn info(&self) -> ChannelInfo {
        let frame = self.latest();
        let s = &self.stats;
        ChannelInfo {
            name: self.name.clone(),
            viewers: self.shown_viewers(),
            local_viewers: self.viewers(),
            exact: self.exact(),
            frame_seq: frame.seq,
            frame_bytes: frame.image().len(),
            frames_rendered: s.frames_rendered.load(Relaxed),
            resends: s.resends.load(Relaxed),
            parts_sent: s.parts_sent.load(Relaxed),
            bytes_sent: s.bytes_sent.load(Relaxed),
            frames_skipped: s.frames_skipped.load(Relaxed),
            frames_unchanged: s.frames_unchanged.load(Relaxed),
            frames_dropped: s.frames_dropped.load(Relaxed),
            connects: s.connects.load(Relaxed),
            disconnects: s.disconnects.load(Relaxed),
        }
    }
}
