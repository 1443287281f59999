//! Users-online rooms: one channel per room whose picture is its own viewer
//! count. A producer task per live room redraws when the count changed,
//! at most once per coalescing interval (a burst of 10,000 connects renders a
//! handful of frames), resends the latest frame every `resend_interval`, and
//! forgets the room when its last viewer leaves. Each stream is also a
//! session in the room's statistics (`room_stats.rs`); a room configured
//! with `count: "addresses"` shows distinct addresses instead of streams.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use super::room_stats::{RoomFigures, RoomStats, SessionGuard};
use super::tasks::Tasks;
use super::timing::Timing;
use crate::config::rooms::{CountMode, RoomConfig};
use crate::metrics::metrics;
use crate::push::channel::Channel;
use crate::push::registry::{JoinError, Kind, Registry};
use crate::push::viewer::ViewerGuard;
use crate::render::format::ROOM_KEYS;
use crate::render::online::{RoomValues, render_room_png};
use crate::render::template::Template;

const PNG: &str = "image/png";

pub struct OnlineRooms {
    registry: Arc<Registry>,
    tasks: Tasks,
    template: Arc<Template>,
    timing: Timing,
    pub stats: Arc<RoomStats>,
    configs: Arc<BTreeMap<String, RoomConfig>>,
    /// Whether the template shows room figures (then they redraw it too).
    shows_figures: bool,
}

/// A room's figures as template values.
pub fn figure_values(f: &RoomFigures) -> Vec<(&'static str, f64)> {
    let values = [
        f.peak_today as f64,
        f.peak_all_time as f64,
        f.unique_today as f64,
        f.sessions_today as f64,
        f.mean_session_s.round(),
    ];
    ROOM_KEYS.iter().copied().zip(values).collect()
}

impl OnlineRooms {
    pub fn new(
        registry: Arc<Registry>,
        template: Arc<Template>,
        timing: Timing,
        tasks: Tasks,
        stats: Arc<RoomStats>,
        configs: BTreeMap<String, RoomConfig>,
    ) -> OnlineRooms {
        let json = serde_json::to_string(&*template).unwrap_or_default();
        let shows_figures = ROOM_KEYS.iter().any(|k| json.contains(&format!("{{{k}")));
        OnlineRooms { registry, tasks, template, timing, stats, configs: Arc::new(configs), shows_figures }
    }

    fn mode(&self, room: &str) -> CountMode {
        self.configs.get(room).map(|c| c.count).unwrap_or_default()
    }

    /// What the room's badge shows now: its count (streams, cluster-wide
    /// in cluster mode, or distinct addresses) and figures.
    fn values(&self, room: &str) -> RoomValues {
        let count = shown_count(&self.registry, &self.stats, self.mode(room), room);
        let figures = if self.shows_figures { figure_values(&self.stats.figures(room)) } else { Vec::new() };
        RoomValues { count, figures }
    }

    /// The room's figures for the JSON API and `/metrics`.
    pub fn figures(&self, room: &str) -> RoomFigures {
        self.stats.figures(room)
    }

    /// The channel name of a room.
    pub fn channel_name(room: &str) -> String {
        format!("online/{room}")
    }

    /// Counts a viewer from `addr` into `room`, starting the room if it is
    /// not live; the viewer is a session in the room's statistics until
    /// its stream ends.
    pub fn join(&self, room: &str, addr: IpAddr) -> Result<ViewerGuard, JoinError> {
        let name = Self::channel_name(room);
        // Made for the viewer joining right now: drawn counted.
        let first = RoomValues { count: 1, ..self.values(room) };
        let create =
            || Channel::new(name.clone(), &metrics().time_render(|| render_room_png(&self.template, &first)), PNG);
        let (viewer, created) = self.registry.join(Kind::Room, &name, create)?;
        let channel = viewer.channel().clone();
        let session = self.stats.joined(room, addr);
        self.stats.observe(room, shown_count(&self.registry, &self.stats, self.mode(room), room));
        let woken = channel.clone();
        let guard = SessionGuard {
            stats: self.stats.clone(),
            session,
            // Joins and leaves change figures and the address count after
            // the stream count: the producer looks again.
            after: Some(Box::new(move || woken.presence_changed.notify_one())),
        };
        channel.presence_changed.notify_one();
        if created {
            let producer = Producer {
                channel,
                registry: self.registry.clone(),
                template: self.template.clone(),
                timing: self.timing,
                stats: self.stats.clone(),
                mode: self.mode(room),
                room: room.to_string(),
                shows_figures: self.shows_figures,
            };
            // After a panic the restarted producer draws the count afresh.
            let first_run = std::sync::atomic::AtomicBool::new(true);
            self.tasks.supervise("producer", name, move || {
                let shown = if first_run.swap(false, std::sync::atomic::Ordering::Relaxed) {
                    Some(first.clone())
                } else {
                    None
                };
                producer.clone().run(shown)
            });
        }
        Ok(viewer.with_companion(Box::new(guard)))
    }

    /// The room's current picture as one PNG (for `?once` and image proxies).
    pub fn snapshot(&self, room: &str) -> Bytes {
        match self.registry.get(&Self::channel_name(room)) {
            Some(channel) => channel.latest().image(),
            None => Bytes::from(render_room_png(&self.template, &self.values(room))),
        }
    }

    /// The room's badge now as SVG.
    pub fn snapshot_svg(&self, room: &str) -> Result<String, crate::render::size::TooLarge> {
        self.template.render_svg(&self.values(room), 1.0)
    }

    /// Samples every room's count into its history and saves the figures,
    /// every `every` (a minute by default), off the async threads.
    pub fn start_sampler(&self, every: std::time::Duration) {
        let (registry, stats, configs) = (self.registry.clone(), self.stats.clone(), self.configs.clone());
        self.tasks.supervise("room-stats", "sampler".into(), move || {
            let (registry, stats, configs) = (registry.clone(), stats.clone(), configs.clone());
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let counts: std::collections::HashMap<String, u64> = stats
                        .rooms()
                        .into_iter()
                        .map(|room| {
                            let mode = configs.get(&room).map(|c| c.count).unwrap_or_default();
                            let live = registry.get(&OnlineRooms::channel_name(&room)).is_some();
                            let count = if live { shown_count(&registry, &stats, mode, &room) } else { 0 };
                            (room, count)
                        })
                        .collect();
                    let stats = stats.clone();
                    let saved = tokio::task::spawn_blocking(move || {
                        stats.sample(|room| counts.get(room).copied().unwrap_or(0))
                    });
                    if let Ok(Err(e)) = saved.await {
                        tracing::warn!("saving room statistics failed (kept for the next try): {e}");
                    }
                }
            }
        });
    }

    /// Rooms that are live now, with the count each shows.
    pub fn shown_counts(&self) -> impl Fn(&str) -> u64 + '_ {
        move |room: &str| match self.registry.get(&Self::channel_name(room)) {
            Some(_) => shown_count(&self.registry, &self.stats, self.mode(room), room),
            None => 0,
        }
    }
}

fn shown_count(registry: &Registry, stats: &RoomStats, mode: CountMode, room: &str) -> u64 {
    match mode {
        CountMode::Addresses => stats.live_addresses(room),
        // Cluster-wide in cluster mode; this instance's count otherwise.
        CountMode::Streams => registry.get(&OnlineRooms::channel_name(room)).map_or(0, |c| c.shown_viewers()),
    }
}

#[derive(Clone)]
struct Producer {
    channel: Arc<Channel>,
    registry: Arc<Registry>,
    template: Arc<Template>,
    timing: Timing,
    stats: Arc<RoomStats>,
    mode: CountMode,
    room: String,
    shows_figures: bool,
}

impl Producer {
    /// `shown`: what the channel's first frame shows (`None`: unknown).
    async fn run(self, mut shown: Option<RoomValues>) {
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
            let count = shown_count(&self.registry, &self.stats, self.mode, &self.room);
            self.stats.observe(&self.room, count);
            let figures = if self.shows_figures {
                super::online::figure_values(&self.stats.figures(&self.room))
            } else {
                Vec::new()
            };
            let values = RoomValues { count, figures };
            if shown.as_ref() != Some(&values) {
                let png = metrics().time_render(|| render_room_png(&self.template, &values));
                self.channel.publish(&png, PNG);
                shown = Some(values);
                let now = Instant::now();
                backoff = self.timing.burst_backoff(wait, now - last_render);
                last_render = now;
                last_send = last_render;
            }
        }
    }
}
