//! Users-online rooms: one channel per room whose picture is its own viewer
//! count. A producer task per live room redraws when the count changed,
//! at most once per coalescing interval (a burst of 10,000 connects renders a
//! handful of frames), resends the latest frame every `resend_interval`, and
//! forgets the room when its last viewer leaves.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use super::tasks::Tasks;
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

#[derive(Clone, Copy)]
pub struct Timing {
    pub min_frame_interval: Duration,
    pub resend_interval: Duration,
    pub fanout_parts_per_second: u64,
    /// Where a room's burst backoff stops (see `burst_backoff`).
    pub max_frame_interval: Duration,
}

impl Timing {
    /// The least time between two renders of a channel with `viewers`:
    /// `min_frame_interval`, stretched so one channel sends at most
    /// `fanout_parts_per_second` parts. A change after a quiet spell still
    /// renders at once; only bursts of changes wait.
    pub fn coalesce_interval(&self, viewers: u64) -> Duration {
        let budget = Duration::from_secs_f64(viewers as f64 / self.fanout_parts_per_second.max(1) as f64);
        self.min_frame_interval.max(budget)
    }

    /// The wait before a room's next render, given the wait before this
    /// one and how long after the previous render this one came. While the
    /// count keeps changing (renders come as soon as allowed), each render
    /// doubles the wait, up to `max_frame_interval`: a surge of arrivals is
    /// drawn a few times instead of once per 50 ms for everyone present.
    /// One quiet spell resets it, so a lone change still shows at once.
    pub fn burst_backoff(&self, wait: Duration, since_previous: Duration) -> Duration {
        if since_previous <= wait * 2 {
            (wait * 2).min(self.max_frame_interval).max(self.min_frame_interval)
        } else {
            self.min_frame_interval
        }
    }
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
            let count = self.channel.viewers();
            if count == 0 && self.registry.forget_if_idle(&self.channel) {
                return;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_grows_with_the_audience() {
        let t = Timing {
            min_frame_interval: Duration::from_millis(50),
            resend_interval: Duration::from_secs(10),
            fanout_parts_per_second: 50_000,
            max_frame_interval: Duration::from_millis(1000),
        };
        assert_eq!(t.coalesce_interval(1), Duration::from_millis(50));
        assert_eq!(t.coalesce_interval(2_500), Duration::from_millis(50));
        assert_eq!(t.coalesce_interval(10_000), Duration::from_millis(200));
        assert_eq!(t.coalesce_interval(19_000), Duration::from_millis(380));
    }

    #[test]
    fn bursts_back_off_and_a_quiet_spell_resets() {
        let ms = Duration::from_millis;
        let t = Timing {
            min_frame_interval: ms(50),
            resend_interval: Duration::from_secs(10),
            fanout_parts_per_second: 50_000,
            max_frame_interval: ms(1000),
        };
        // Renders as soon as allowed: the wait doubles, up to the cap.
        assert_eq!(t.burst_backoff(ms(50), ms(50)), ms(100));
        assert_eq!(t.burst_backoff(ms(400), ms(401)), ms(800));
        assert_eq!(t.burst_backoff(ms(800), ms(800)), ms(1000));
        // A change after a quiet spell: back to the minimum.
        assert_eq!(t.burst_backoff(ms(1000), Duration::from_secs(5)), ms(50));
    }
}
