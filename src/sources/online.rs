//! Users-online rooms: one channel per room whose picture is its own viewer
//! count. A producer task per live room redraws when the count changed,
//! at most once per coalescing interval (a burst of 10,000 connects renders a
//! handful of frames), resends the latest frame every `resend_interval`, and
//! forgets the room when its last viewer leaves.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use super::tasks::Tasks;
use super::timing::Timing;
use crate::metrics::metrics;
use crate::push::channel::Channel;
use crate::push::registry::{JoinError, Registry};
use crate::push::viewer::ViewerGuard;
use crate::render::online::render_online_png;
use crate::render::template::Template;

const PNG: &str = "image/png";

pub struct OnlineRooms {
    registry: Arc<Registry>,
    tasks: Tasks,
    template: Arc<Template>,
    timing: Timing,
    /// What an empty room shows, rendered once.
    idle_png: Bytes,
}

impl OnlineRooms {
    pub fn new(registry: Arc<Registry>, template: Arc<Template>, timing: Timing, tasks: Tasks) -> OnlineRooms {
        let idle_png = Bytes::from(render_online_png(&template, 0));
        OnlineRooms { registry, tasks, template, timing, idle_png }
    }

    /// The channel name of a room.
    pub fn channel_name(room: &str) -> String {
        format!("online/{room}")
    }

    /// Counts a viewer into `room`, starting the room if it is not live.
    pub fn join(&self, room: &str) -> Result<ViewerGuard, JoinError> {
        let name = Self::channel_name(room);
        // Made for the viewer joining right now: drawn counted.
        let create =
            || Channel::new(name.clone(), &metrics().time_render(|| render_online_png(&self.template, 1)), PNG);
        let (viewer, created) = self.registry.join(&name, create)?;
        if created {
            let producer = Producer {
                channel: viewer.channel().clone(),
                registry: self.registry.clone(),
                template: self.template.clone(),
                timing: self.timing,
            };
            // After a panic the restarted producer draws the count afresh.
            let first = std::sync::atomic::AtomicBool::new(true);
            self.tasks.supervise("producer", name, move || {
                let shown = if first.swap(false, std::sync::atomic::Ordering::Relaxed) { 1 } else { u64::MAX };
                producer.clone().run(shown)
            });
        }
        Ok(viewer)
    }

    /// The room's current picture as one PNG (for `?once` and image proxies).
    pub fn snapshot(&self, room: &str) -> Bytes {
        match self.registry.get(&Self::channel_name(room)) {
            Some(channel) => channel.latest().image(),
            None => self.idle_png.clone(),
        }
    }
}

#[derive(Clone)]
struct Producer {
    channel: Arc<Channel>,
    registry: Arc<Registry>,
    template: Arc<Template>,
    timing: Timing,
}

impl Producer {
    async fn run(self, mut shown: u64) {
        let mut last_render = Instant::now();
        let mut last_send = last_render;
        let mut backoff = self.timing.min_frame_interval;
        loop {
            tokio::select! {
                _ = self.channel.presence_changed.notified() => {}
                _ = sleep_until(last_send + self.timing.resend_interval) => {
                    self.channel.resend();
                    last_send = Instant::now();
                    continue;
                }
            }
            // Coalesce: changes that arrive while we wait are drawn together.
            let wait = backoff.max(self.timing.coalesce_interval(self.channel.viewers()));
            sleep_until(last_render + wait).await;
            if self.channel.viewers() == 0 && self.registry.forget_if_idle(&self.channel) {
                return;
            }
            // Cluster-wide in cluster mode; this instance's count otherwise.
            let count = self.channel.shown_viewers();
            if count != shown {
                let png = metrics().time_render(|| render_online_png(&self.template, count));
                self.channel.publish(&png, PNG);
                shown = count;
                let now = Instant::now();
                backoff = self.timing.burst_backoff(wait, now - last_render);
                last_render = now;
                last_send = last_render;
            }
        }
    }
}
