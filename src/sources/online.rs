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

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use super::room_stats::{Member, RoomFigures, RoomStats, SessionGuard};
use super::tasks::Tasks;
use super::timing::Timings;
use crate::config::rooms::{CountMode, RoomConfig};
use crate::metrics::metrics;
use crate::push::channel::Channel;
use crate::push::registry::{JoinError, Kind, Registry};
use crate::push::viewer::ViewerGuard;
use crate::render::format::ROOM_KEYS;
use crate::render::online::{RoomPeople, RoomValues, render_room_png};
use crate::render::pool::{Busy, RenderPool};
use crate::render::size::TooLarge;
use crate::render::template::Template;

const PNG: &str = "image/png";

/// A not-yet-live room's first picture, drawn before its viewer joins.
pub struct FirstFrame {
    values: RoomValues,
    png: Bytes,
}

/// Why a room's first picture was not drawn: the room cap, or a busy pool.
#[derive(Debug, thiserror::Error)]
pub enum FirstFrameError {
    #[error(transparent)]
    Full(JoinError),
    #[error(transparent)]
    Busy(Busy),
}

pub struct OnlineRooms {
    registry: Arc<Registry>,
    tasks: Tasks,
    defs: Arc<ArcSwap<RoomDefs>>,
    timing: Timings,
    pub stats: Arc<RoomStats>,
}

/// What the config says of rooms: their templates and settings. A reload
/// swaps it whole; producers draw with the new one at their next frame.
pub struct RoomDefs {
    /// The `online` template, for rooms that name none.
    online: Look,
    /// The `people` template, for `count: "people"` rooms that name none.
    people: Look,
    /// Rooms that name a template (`rooms.NAME.template`).
    named: BTreeMap<String, Look>,
    configs: BTreeMap<String, RoomConfig>,
    /// Whether any room's template shows room figures (then they redraw it).
    shows_figures: bool,
}

/// A template and which of a room's values it shows.
struct Look {
    template: Arc<Template>,
    people: bool,
    names: bool,
}

impl Look {
    fn new(template: Arc<Template>) -> Look {
        let json = serde_json::to_string(&*template).unwrap_or_default();
        Look { people: mentions(&json, &PEOPLE_KEYS), names: mentions(&json, &["member_names"]), template }
    }
}

fn mentions(json: &str, keys: &[&str]) -> bool {
    keys.iter().any(|k| json.contains(&format!("{{{k}")))
}

/// The placeholders that show a room's people.
const PEOPLE_KEYS: [&str; 5] = ["members", "guests", "hidden", "online", "member_names"];

impl RoomDefs {
    /// `online` and `people` are the built-in (or `template_dir`) templates;
    /// `named` the one each room with `template` names (checked to exist).
    pub fn new(
        online: Arc<Template>,
        people: Arc<Template>,
        named: BTreeMap<String, Arc<Template>>,
        configs: BTreeMap<String, RoomConfig>,
    ) -> RoomDefs {
        let all = [&online, &people].into_iter().chain(named.values());
        let shows_figures =
            all.map(|t| serde_json::to_string(&**t).unwrap_or_default()).any(|j| mentions(&j, ROOM_KEYS));
        let named = named.into_iter().map(|(room, t)| (room, Look::new(t))).collect();
        RoomDefs { online: Look::new(online), people: Look::new(people), named, configs, shows_figures }
    }

    fn mode(&self, room: &str) -> CountMode {
        self.configs.get(room).map(|c| c.count).unwrap_or_default()
    }

    fn look(&self, room: &str) -> &Look {
        match (self.named.get(room), self.mode(room)) {
            (Some(look), _) => look,
            (None, CountMode::People) => &self.people,
            (None, _) => &self.online,
        }
    }

    /// What `room` is drawn with.
    fn template_for(&self, room: &str) -> &Arc<Template> {
        &self.look(room).template
    }

    /// The room's members and guests, if its template shows them.
    fn people(&self, stats: &RoomStats, room: &str) -> RoomPeople {
        let look = self.look(room);
        if !look.people {
            return RoomPeople::default();
        }
        let now = stats.people(room, look.names);
        RoomPeople { members: now.members, guests: now.guests, hidden: now.hidden, names: now.names }
    }
}

/// Who joins a room, for its statistics.
pub enum Joining {
    /// A viewer from this address, a signed member or a guest: a new session.
    Viewer(IpAddr, Option<Member>),
    /// A viewer an upgrade's old process handed over: its session began
    /// there, at this instant, and goes on.
    Moved(IpAddr, std::time::Instant, Option<Member>),
    /// An upgrade's relay, standing in for viewers counted in the old
    /// process: no session.
    Relay,
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
        defs: RoomDefs,
        timing: Timings,
        tasks: Tasks,
        stats: Arc<RoomStats>,
    ) -> OnlineRooms {
        OnlineRooms { registry, tasks, defs: Arc::new(ArcSwap::from_pointee(defs)), timing, stats }
    }

    /// A reload's rooms: live rooms redraw with them at their next frame
    /// (the reload wakes them; an unchanged picture pushes nothing).
    pub fn apply(&self, defs: RoomDefs) {
        self.defs.store(Arc::new(defs));
    }

    fn mode(&self, room: &str) -> CountMode {
        self.defs.load().mode(room)
    }

    /// What the room's badge shows now: its count (streams, cluster-wide
    /// in cluster mode, or distinct addresses) and figures.
    fn values(&self, room: &str) -> RoomValues {
        let count = shown_count(&self.registry, &self.stats, self.mode(room), room);
        let defs = self.defs.load();
        let figures = if defs.shows_figures { figure_values(&self.stats.figures(room)) } else { Vec::new() };
        RoomValues { count, figures, people: defs.people(&self.stats, room) }
    }

    /// In a cluster, waits (boundedly) until the room's count, and its
    /// figures if the picture shows them, are the cluster's. Returns
    /// whether they are (`false`: Redis out of reach, answer marked).
    pub async fn settle(&self, room: &str) -> bool {
        let figures = if self.defs.load().shows_figures { vec![room.to_string()] } else { Vec::new() };
        self.settle_all(&[Self::channel_name(room)], &figures).await
    }

    /// In a cluster, waits until the counts of `channels` and the figures
    /// of `rooms` are the cluster's, both at once under one deadline
    /// (`SETTLE_DEADLINE`). Returns whether they are.
    pub async fn settle_all(&self, channels: &[String], rooms: &[String]) -> bool {
        let deadline = crate::push::registry::SETTLE_DEADLINE;
        let (counted, figured) = tokio::join!(self.registry.settle(channels), self.stats.settle(rooms, deadline));
        counted && figured
    }

    /// `settle_all` for a picture showing `channels`: their counts, and the
    /// figures of the rooms among them (`{peak_today:ROOM}` names its
    /// room's channel too).
    pub async fn settle_shown(&self, channels: &[String]) -> bool {
        let rooms: Vec<String> =
            channels.iter().filter_map(|c| c.strip_prefix("online/")).map(str::to_string).collect();
        self.settle_all(channels, &rooms).await
    }

    /// The room's figures for the JSON API and `/metrics`.
    pub fn figures(&self, room: &str) -> RoomFigures {
        self.stats.figures(room)
    }

    /// The channel name of a room.
    pub fn channel_name(room: &str) -> String {
        format!("online/{room}")
    }

    /// Which cap a new channel of `room` counts against.
    fn kind(&self, room: &str) -> Kind<'static> {
        if self.defs.load().configs.contains_key(room) { Kind::ConfiguredRoom } else { Kind::Room }
    }

    /// What a new viewer of `room` is shown first when the room is not
    /// live yet: its values (counting the viewer joining now) and their
    /// picture, drawn in the render pool. `Ok(None)` when the room is live
    /// (its latest frame is shown); a cap reached or a busy pool is the
    /// request's answer, before anything was drawn or counted.
    pub async fn first_frame(&self, room: &str, renders: &RenderPool) -> Result<Option<FirstFrame>, FirstFrameError> {
        let name = Self::channel_name(room);
        if self.registry.get(&name).is_some() {
            return Ok(None);
        }
        self.registry.admits(self.kind(room), &name).map_err(FirstFrameError::Full)?;
        // Watched on other instances: the first picture counts them too.
        self.settle(room).await;
        let values = self.values(room);
        let values = RoomValues { count: values.count + 1, ..values };
        let (template, drawn) = (self.defs.load().template_for(room).clone(), values.clone());
        // Viewers arriving together share one drawing (and its values).
        let draw = move || (Bytes::from(metrics().time_render(|| render_room_png(&template, &drawn))), drawn);
        let (png, values) = renders.run_shared(&name, draw).await.map_err(FirstFrameError::Busy)?;
        Ok(Some(FirstFrame { values, png }))
    }

    /// Counts a viewer from `addr` into `room`, starting the room if it is
    /// not live with `first` (from `first_frame`); the viewer is a session
    /// in the room's statistics until its stream ends.
    pub fn join(&self, room: &str, addr: IpAddr, first: Option<FirstFrame>) -> Result<ViewerGuard, JoinError> {
        self.join_as(room, Joining::Viewer(addr, None), first)
    }

    /// As `join`, for any who (`Joining`).
    pub fn join_as(&self, room: &str, who: Joining, first: Option<FirstFrame>) -> Result<ViewerGuard, JoinError> {
        let name = Self::channel_name(room);
        // The room was live when `first_frame` looked; should it have ended
        // since, its first picture is drawn here after all (rare, and small).
        let first = first.unwrap_or_else(|| {
            let values = self.values(room);
            let values = RoomValues { count: values.count + 1, ..values };
            let png =
                Bytes::from(metrics().time_render(|| render_room_png(self.defs.load().template_for(room), &values)));
            FirstFrame { values, png }
        });
        let create = || Channel::new(name.clone(), &first.png, PNG);
        let (viewer, created) = self.registry.join(self.kind(room), &name, create)?;
        let first = first.values;
        let channel = viewer.channel().clone();
        let session = match who {
            Joining::Viewer(addr, member) => Some((addr, None, member)),
            Joining::Moved(addr, since, member) => Some((addr, Some(since), member)),
            Joining::Relay => None,
        };
        let guard = session.map(|(addr, since, member)| {
            let session = self.stats.joined_as(room, addr, since, member);
            self.stats.observe(room, shown_count(&self.registry, &self.stats, self.mode(room), room));
            let woken = channel.clone();
            SessionGuard {
                stats: self.stats.clone(),
                session,
                // Joins and leaves change figures and the address count after
                // the stream count: the producer looks again.
                after: Some(Box::new(move || woken.presence_changed.notify_one())),
            }
        });
        channel.presence_changed.notify_one();
        if created {
            let producer = Producer {
                channel,
                registry: self.registry.clone(),
                defs: self.defs.clone(),
                timing: self.timing.clone(),
                stats: self.stats.clone(),
                room: room.to_string(),
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

    /// The room's current picture as one PNG (for `?once` and image
    /// proxies): the live frame, or drawn in the render pool.
    pub async fn snapshot(&self, room: &str, renders: &RenderPool) -> Result<Bytes, Busy> {
        if let Some(channel) = self.registry.get(&Self::channel_name(room)) {
            return Ok(channel.latest().image());
        }
        self.settle(room).await;
        let (template, values) = (self.defs.load().template_for(room).clone(), self.values(room));
        renders.run(move || Bytes::from(render_room_png(&template, &values))).await
    }

    /// The room's badge now as SVG, drawn in the render pool.
    pub async fn snapshot_svg(&self, room: &str, renders: &RenderPool) -> Result<Result<String, TooLarge>, Busy> {
        self.settle(room).await;
        let (template, values) = (self.defs.load().template_for(room).clone(), self.values(room));
        renders.run(move || template.render_svg(&values, 1.0)).await
    }

    /// Samples every room's count into its history and saves the figures,
    /// every `every` (a minute by default), off the async threads.
    pub fn start_sampler(&self, every: std::time::Duration) {
        let (registry, stats, defs) = (self.registry.clone(), self.stats.clone(), self.defs.clone());
        self.tasks.supervise("room-stats", "sampler".into(), move || {
            let (registry, stats, defs) = (registry.clone(), stats.clone(), defs.clone());
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let defs = defs.load();
                    let counts: std::collections::HashMap<String, u64> = stats
                        .rooms()
                        .into_iter()
                        .map(|room| {
                            let mode = defs.mode(&room);
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

    /// The count each room shows (cluster-wide in cluster mode).
    pub fn shown_counts(&self) -> impl Fn(&str) -> u64 + '_ {
        move |room: &str| shown_count(&self.registry, &self.stats, self.mode(room), room)
    }
}

fn shown_count(registry: &Registry, stats: &RoomStats, mode: CountMode, room: &str) -> u64 {
    match mode {
        CountMode::Addresses => stats.live_addresses(room),
        // Members (five tabs are one) and guests (one per address).
        CountMode::People => stats.people(room, false).online(),
        // Cluster-wide in cluster mode; this instance's count otherwise.
        // Also for a room live only on other instances (then as fetched).
        CountMode::Streams => registry.count(&OnlineRooms::channel_name(room)).viewers,
    }
}

#[derive(Clone)]
struct Producer {
    channel: Arc<Channel>,
    registry: Arc<Registry>,
    defs: Arc<ArcSwap<RoomDefs>>,
    timing: Timings,
    stats: Arc<RoomStats>,
    room: String,
}

impl Producer {
    /// `shown`: what the channel's first frame shows (`None`: unknown).
    async fn run(self, mut shown: Option<RoomValues>) {
        let mut last_render = Instant::now();
        let mut last_send = last_render;
        let mut backoff = self.timing.get().min_frame_interval;
        // The definitions the latest frame was drawn with: after a reload the
        // room is drawn again, and pushed only if the picture changed.
        let mut drawn_with = self.defs.load_full();
        loop {
            let timing = self.timing.get();
            tokio::select! {
                _ = self.channel.presence_changed.notified() => {}
                _ = sleep_until(last_send + timing.resend_interval) => {
                    self.channel.resend();
                    last_send = Instant::now();
                    continue;
                }
            }
            // Coalesce: changes that arrive while we wait are drawn together.
            let wait = backoff.max(timing.coalesce_interval(self.channel.viewers()));
            sleep_until(last_render + wait).await;
            if self.channel.viewers() == 0 && self.registry.forget_if_idle(&self.channel) {
                return;
            }
            let defs = self.defs.load_full();
            let count = shown_count(&self.registry, &self.stats, defs.mode(&self.room), &self.room);
            self.stats.observe(&self.room, count);
            let figures = if defs.shows_figures {
                super::online::figure_values(&self.stats.figures(&self.room))
            } else {
                Vec::new()
            };
            let values = RoomValues { count, figures, people: defs.people(&self.stats, &self.room) };
            let reloaded = !Arc::ptr_eq(&defs, &drawn_with);
            if shown.as_ref() != Some(&values) || reloaded {
                let png = metrics().time_render(|| render_room_png(defs.template_for(&self.room), &values));
                let pushed = self.channel.publish_if_changed(&png, PNG);
                shown = Some(values);
                drawn_with = defs;
                if pushed {
                    let now = Instant::now();
                    backoff = timing.burst_backoff(wait, now - last_render);
                    last_render = now;
                    last_send = last_render;
                }
            }
        }
    }
}
