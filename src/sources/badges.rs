//! Live value badges: each badge's state sits in a watch slot; writes are
//! persisted, then published. Every (badge, template, scale) being watched
//! is a channel on the shared push path, with a producer that redraws when
//! the state or a shown viewer count changes, pushes only frames that differ
//! (dedupe), resends periodically and is forgotten when nobody watches.
//! Every picture is drawn in the render pool, never on an async thread: a
//! custom logo's cost is bounded, but not small enough to stall a worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::badge_state::{BadgeState, BadgeView};
use super::badge_writer::WriterQueue;
use super::polled::interest::Interest;
use super::tasks::Tasks;
use super::timing::Timings;
use crate::config::BadgeConfig;
use crate::metrics::metrics;
use crate::push::channel::Channel;
use crate::push::registry::{JoinError, Kind, Registry};
use crate::push::viewer::ViewerGuard;
use crate::render::logo::Logo;
use crate::render::pool::{Busy, RenderPool};
use crate::render::size::TooLarge;
use crate::render::template::{Template, Templates};
use crate::store::{Store, StoreError};

const PNG: &str = "image/png";
const DEFAULT_TEMPLATE: &str = "flat";
/// How often a badge showing other channels' viewer counts looks at them.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

type Slot = watch::Sender<Option<Arc<BadgeState>>>;

pub struct Badges {
    registry: Arc<Registry>,
    /// What the config defines, swapped whole by a reload.
    defs: ArcSwap<Defs>,
    timing: Timings,
    slots: Mutex<HashMap<String, Slot>>,
    /// Changes go through one task, so the store and the slots change in
    /// the same order and no client can cancel one half-way.
    pub(super) writer: WriterQueue,
    tasks: Tasks,
    /// Who is watching which badge, for polled sources.
    pub interest: Arc<Interest>,
    rooms: Arc<super::room_stats::RoomStats>,
    /// Where live badges (and boards) are drawn.
    pub(super) renders: Arc<RenderPool>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("too many badges (max_badges); delete some first")]
    TooManyBadges,
    /// The store failed (disk full, I/O error); nothing was changed.
    #[error("could not store the value: {0}")]
    Storage(#[source] StoreError),
    /// The write queue is full, or the server is shutting down.
    #[error("too many writes waiting, or shutting down; nothing was changed: try again")]
    Unavailable,
    /// The change panicked; nothing was changed.
    #[error("the write failed; nothing was changed")]
    Panicked,
}

impl WriteError {
    /// For `framecast_store_write_failures_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            // A quota a client reached, not a store in trouble.
            WriteError::TooManyBadges => "max_badges",
            WriteError::Storage(StoreError::Full) => "full",
            WriteError::Storage(StoreError::Failed(_)) | WriteError::Panicked => "failed",
            WriteError::Unavailable | WriteError::Storage(StoreError::Unavailable | StoreError::Conflict(_)) => {
                "unavailable"
            }
        }
    }
}

/// What a viewer asked to see: a template fixed by the URL, or the badge's own.
#[derive(Debug, Clone)]
pub struct Look {
    pub template: Option<String>,
    pub scale: f32,
    /// A logo fixed by the URL (`?logo=`), and its part of the channel name.
    pub logo: Option<Logo>,
    pub logo_query: String,
}

impl Default for Look {
    fn default() -> Look {
        Look { template: None, scale: 1.0, logo: None, logo_query: String::new() }
    }
}

/// What the config says of badges: a reload replaces it whole, and live
/// producers draw with the new one at their next frame.
pub struct Defs {
    pub templates: Templates,
    pub declared: BTreeMap<String, BadgeConfig>,
    pub max_badges: usize,
    pub history_len: usize,
}

impl Defs {
    /// Checks that every declared badge's template exists.
    pub fn new(
        templates: Templates,
        declared: BTreeMap<String, BadgeConfig>,
        max_badges: usize,
        history_len: usize,
    ) -> Result<Defs, String> {
        for (name, config) in &declared {
            let template = config.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
            if templates.get(template).is_none() {
                return Err(format!("badges.{name}.template: no template named {template:?}"));
            }
        }
        Ok(Defs { templates, declared, max_badges, history_len })
    }
}

pub struct BadgeSettings {
    /// Room figures, for `{peak_today:ROOM}` and the like.
    pub rooms: Arc<super::room_stats::RoomStats>,
    pub timing: Timings,
    /// Where live badges are drawn.
    pub renders: Arc<RenderPool>,
}

impl Badges {
    pub fn new(
        registry: Arc<Registry>,
        defs: Defs,
        mut store: Box<dyn Store>,
        settings: BadgeSettings,
        tasks: Tasks,
    ) -> Result<Badges, String> {
        let saved = store.load().map_err(|e| format!("database: {e}"))?;
        let slots = saved.into_iter().map(|(name, state)| (name, watch::channel(Some(Arc::new(state))).0)).collect();
        Ok(Badges {
            registry,
            defs: ArcSwap::from_pointee(defs),
            rooms: settings.rooms,
            timing: settings.timing,
            slots: Mutex::new(slots),
            writer: WriterQueue::new(store),
            tasks,
            interest: Arc::default(),
            renders: settings.renders,
        })
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The templates as the config says now.
    pub fn templates(&self) -> Templates {
        self.defs.load().templates.clone()
    }

    /// What the config says now.
    pub fn defs(&self) -> Arc<Defs> {
        self.defs.load_full()
    }

    /// A reload's new definitions: live producers draw with them at their
    /// next frame (the reload wakes them).
    pub fn apply(&self, defs: Defs) {
        self.defs.store(Arc::new(defs));
    }

    /// Whether `name` is a template a badge can be drawn with.
    pub fn is_style(&self, name: &str) -> bool {
        self.defs.load().templates.get(name).is_some()
    }

    pub fn get(&self, name: &str) -> Option<Arc<BadgeState>> {
        self.slots().get(name).and_then(|s| s.borrow().clone())
    }

    /// Written, or declared in the config.
    pub fn exists(&self, name: &str) -> bool {
        self.defs.load().declared.contains_key(name) || self.get(name).is_some()
    }

    pub fn list(&self) -> BTreeMap<String, Arc<BadgeState>> {
        self.slots().iter().filter_map(|(n, s)| Some((n.clone(), s.borrow().clone()?))).collect()
    }

    /// Whether a badge that does not exist yet may be created while
    /// `existing` exist: declared ones always may.
    pub(super) fn may_create(&self, name: &str, existing: usize) -> bool {
        let defs = self.defs.load();
        defs.declared.contains_key(name) || existing < defs.max_badges
    }

    /// Badges that have a value.
    pub(super) fn count(&self) -> usize {
        self.slots().values().filter(|slot| slot.borrow().is_some()).count()
    }

    pub(super) fn history_len(&self) -> usize {
        self.defs.load().history_len
    }

    /// Shows a value another instance stored (cluster mode).
    pub fn show_remote(&self, name: &str, state: Option<BadgeState>) {
        self.publish(name, state.map(Arc::new));
    }

    /// Makes `state` the badge's current state (after it is stored).
    pub(super) fn publish(&self, name: &str, state: Option<Arc<BadgeState>>) {
        let mut slots = self.slots();
        match slots.get(name) {
            Some(slot) => {
                slot.send_replace(state);
            }
            None => {
                slots.insert(name.to_string(), watch::channel(state).0);
            }
        }
        // Slots of deleted badges nobody watches are dropped, so deletes
        // cannot grow the map.
        slots.retain(|_, slot| slot.borrow().is_some() || slot.receiver_count() > 0);
    }

    /// `{peak_today:ROOM}` and the other room figures.
    pub fn room_figure(&self, key: &str) -> Option<f64> {
        let (figure, room) = key.split_once(':')?;
        let figures = super::online::figure_values(&self.rooms.figures(room));
        figures.into_iter().find(|(k, _)| *k == figure).map(|(_, v)| v)
    }

    /// The template for `look` given the badge's state.
    fn template_for(&self, name: &str, look: &Look, state: Option<&BadgeState>) -> Arc<Template> {
        let defs = self.defs.load();
        let declared = defs.declared.get(name).and_then(|c| c.template.as_deref());
        let chosen = look.template.as_deref().or(state.and_then(|s| s.style.as_deref())).or(declared);
        chosen
            .and_then(|t| defs.templates.get(t))
            .unwrap_or_else(|| defs.templates.get(DEFAULT_TEMPLATE).expect("flat is built in"))
    }

    fn render(
        &self,
        name: &str,
        look: &Look,
        state: Option<&BadgeState>,
        own_viewers: u64,
    ) -> Result<Vec<u8>, TooLarge> {
        let out = |t: &Template, v: &dyn crate::render::format::Values| t.render_png(v, look.scale);
        metrics().time_render(|| self.render_with(name, look, state, own_viewers, out))
    }

    /// The badge's template and values for `look`, handed to `out`.
    fn render_with<T>(
        &self,
        name: &str,
        look: &Look,
        state: Option<&BadgeState>,
        own_viewers: u64,
        out: impl FnOnce(&Template, &dyn crate::render::format::Values) -> T,
    ) -> T {
        let label =
            self.defs.load().declared.get(name).and_then(|c| c.label.clone()).unwrap_or_else(|| name.to_string());
        let registry = &self.registry;
        let viewers = |channel: &str| {
            if channel.is_empty() { own_viewers } else { registry.count(channel).viewers }
        };
        let others = |other: &str| self.get(other);
        let view = BadgeView {
            state,
            default_label: &label,
            viewers: &viewers,
            others: &others,
            figures: &|k| self.room_figure(k),
            url_logo: look.logo.clone(),
        };
        out(&self.template_for(name, look, state), &view)
    }

    /// Badge `name` in shields.io's endpoint schema (`schemaVersion: 1`,
    /// with only that schema's keys): its label, its message (a value in
    /// plain digits), colours and logo now, for shields' `endpoint` badge
    /// (`/api/v1/badges/NAME/shields`). `None`: no such badge. Asking keeps
    /// a polled source polling, as a viewer does.
    pub fn shields(&self, name: &str) -> Option<serde_json::Value> {
        use crate::render::format::{NumberFormat, expand};
        self.interest.asked(name);
        let state = self.get(name);
        if state.is_none() && !self.defs.load().declared.contains_key(name) {
            return None;
        }
        let out = |_: &Template, v: &dyn crate::render::format::Values| {
            let mut json = serde_json::json!({
                "schemaVersion": 1,
                "label": v.text("label").unwrap_or_default(),
                "message": expand("{message}", v, NumberFormat::Plain),
                "color": v.text("color").unwrap_or_else(|| "lightgrey".into()),
                "isError": state.as_ref().is_some_and(|s| s.is_error),
                // shields caches at least this long anyway.
                "cacheSeconds": 300,
            });
            let map = json.as_object_mut().expect("an object");
            let s = state.as_deref();
            let mut put = |key: &str, value: Option<String>| {
                if let Some(value) = value {
                    map.insert(key.into(), value.into());
                }
            };
            put("labelColor", v.text("label_color"));
            put("namedLogo", s.and_then(|s| s.named_logo.clone()));
            put("logoSvg", s.and_then(|s| s.logo_svg.as_deref()).and_then(svg_text));
            put("logoColor", s.and_then(|s| s.logo_color.clone()));
            put("style", s.and_then(|s| s.style.clone()));
            json
        };
        Some(self.render_with(name, &Look::default(), state.as_deref(), 0, out))
    }

    /// The badge as it is now, as SVG (`/badge/NAME.svg`).
    pub fn snapshot_svg(&self, name: &str, look: &Look) -> Result<String, TooLarge> {
        self.interest.asked(name);
        let viewers = self.registry.count(&channel_name(name, look)).viewers;
        let out = |t: &Template, v: &dyn crate::render::format::Values| t.render_svg(v, look.scale);
        self.render_with(name, look, self.get(name).as_deref(), viewers, out)
    }

    /// What a live stream shows: the badge, or, for a value that would
    /// draw larger than the size limit at this look, the same template
    /// saying "too large".
    fn render_live(&self, name: &str, look: &Look, state: Option<&BadgeState>, own_viewers: u64) -> Vec<u8> {
        self.render(name, look, state, own_viewers).unwrap_or_else(|_| {
            let fallback = BadgeState { message: Some("too large".into()), ..BadgeState::default() };
            let template = self.template_for(name, look, state);
            let view = BadgeView {
                state: Some(&fallback),
                default_label: "",
                viewers: &|_| 0,
                others: &|_| None,
                figures: &|_| None,
                url_logo: None,
            };
            template.render_png(&view, 1.0).unwrap_or_default()
        })
    }

    /// The badge drawn now with `template` (or its own look), for a board.
    pub fn draw(&self, name: &str, template: Option<&str>, scale: f32) -> Result<tiny_skia::Pixmap, TooLarge> {
        let look = Look { template: template.map(str::to_string), scale, ..Look::default() };
        let state = self.get(name);
        let label =
            self.defs.load().declared.get(name).and_then(|c| c.label.clone()).unwrap_or_else(|| name.to_string());
        let registry = &self.registry;
        let viewers = |channel: &str| registry.count(channel).viewers;
        let others = |other: &str| self.get(other);
        let view = BadgeView {
            state: state.as_deref(),
            default_label: &label,
            viewers: &viewers,
            others: &others,
            figures: &|k| self.room_figure(k),
            url_logo: None,
        };
        self.template_for(name, &look, state.as_deref()).draw(&view, scale)
    }

    /// The template a board tile of `name` is drawn with.
    pub fn template_for_tile(&self, name: &str, template: Option<&str>, state: Option<&BadgeState>) -> Arc<Template> {
        self.template_for(name, &Look { template: template.map(str::to_string), ..Look::default() }, state)
    }

    /// Follows a badge's state (made empty if it has none yet).
    pub fn subscribe(&self, name: &str) -> watch::Receiver<Option<Arc<BadgeState>>> {
        self.slots().entry(name.to_string()).or_insert_with(|| watch::channel(None).0).subscribe()
    }

    /// The channels whose counts the badge shows at `look`: its own, and
    /// those its template names (`{viewers:CHANNEL}`), for a one-off
    /// answer to wait for in a cluster.
    pub fn channels_shown(&self, name: &str, look: &Look) -> Vec<String> {
        let state = self.get(name);
        let mut channels = self.template_for(name, look, state.as_deref()).watched_channels();
        channels.push(channel_name(name, look));
        channels
    }

    /// One PNG of the badge as it is now (for `?once`).
    pub fn snapshot(&self, name: &str, look: &Look) -> Result<Bytes, TooLarge> {
        self.interest.asked(name);
        let viewers = self.registry.count(&channel_name(name, look)).viewers;
        self.render(name, look, self.get(name).as_deref(), viewers).map(Bytes::from)
    }

    /// Which cap a new channel for `look` counts against: a look the URL
    /// chose counts against the look caps; the badge's own does not.
    fn kind<'a>(name: &'a str, look: &Look) -> Kind<'a> {
        let own = channel_name(name, look) == channel_name(name, &Look::default());
        if own { Kind::Badge } else { Kind::Look(name) }
    }

    /// Whether a viewer of `look` may join: its channel is live, or its cap
    /// has room. Asked before the first frame is drawn, so a refusal costs
    /// no render.
    pub fn admits(&self, name: &str, look: &Look) -> Result<(), JoinError> {
        self.registry.admits(Self::kind(name, look), &channel_name(name, look))
    }

    /// What a viewer of `look` is shown first: the live channel's latest
    /// frame, or, with none live, the badge drawn in the render pool (busy:
    /// a `503`, as for one-off renders).
    pub async fn first_frame(self: &Arc<Self>, name: &str, look: &Look) -> Result<Bytes, Busy> {
        if let Some(channel) = self.registry.get(&channel_name(name, look)) {
            return Ok(channel.latest().image());
        }
        // In a cluster: counting the viewers of other instances too.
        self.registry.settle(&self.channels_shown(name, look)).await;
        let key = channel_name(name, look);
        let viewers = self.registry.count(&key).viewers + 1;
        let (badges, name, look) = (self.clone(), name.to_string(), look.clone());
        let draw = move || Bytes::from(badges.render_live(&name, &look, badges.get(&name).as_deref(), viewers));
        self.renders.run_shared(&key, draw).await
    }

    /// Counts a viewer in, starting the channel for `look` with `first`
    /// (from `first_frame`) if needed.
    pub fn join(self: &Arc<Self>, name: &str, look: Look, first: Bytes) -> Result<ViewerGuard, JoinError> {
        let kind = Self::kind(name, &look);
        let channel_name = channel_name(name, &look);
        let slot = {
            let mut slots = self.slots();
            slots.entry(name.to_string()).or_insert_with(|| watch::channel(None).0).subscribe()
        };
        let create = || Channel::new(channel_name.clone(), &first, PNG);
        let (viewer, created) = self.registry.join(kind, &channel_name, create)?;
        if created {
            let channel = viewer.channel().clone();
            let producer = Producer { badges: self.clone(), name: name.to_string(), look, channel, slot };
            self.tasks.supervise("producer", channel_name, move || producer.clone().run());
        }
        Ok(viewer)
    }
}

/// `badge/NAME`, or `badge/NAME/TEMPLATE[@Sx][~LOGO]` for a look fixed by
/// the URL.
pub fn channel_name(name: &str, look: &Look) -> String {
    let mut s = format!("badge/{name}");
    if let Some(t) = &look.template {
        s.push('/');
        s.push_str(t);
    }
    if look.scale != 1.0 {
        s.push_str(&format!("@{}x", look.scale));
    }
    if !look.logo_query.is_empty() {
        s.push('~');
        s.push_str(&look.logo_query);
    }
    s
}

#[derive(Clone)]
struct Producer {
    badges: Arc<Badges>,
    name: String,
    look: Look,
    channel: Arc<Channel>,
    slot: watch::Receiver<Option<Arc<BadgeState>>>,
}

impl Producer {
    async fn run(mut self) {
        // A polled source polls while this channel runs.
        let _watching = self.badges.interest.watch(&self.name);
        let mut poll = tokio::time::interval(WATCH_INTERVAL);
        let mut last_render = Instant::now();
        let mut last_send = last_render;
        let mut slot_open = true;
        loop {
            // Asked each pass: a reload may give the badge another template.
            let watches_others = {
                let state = self.slot.borrow().clone();
                let template = self.badges.template_for(&self.name, &self.look, state.as_deref());
                !template.watched_channels().is_empty() || template.shows_other_badges()
            };
            tokio::select! {
                changed = self.slot.changed(), if slot_open => slot_open = changed.is_ok(),
                _ = self.channel.presence_changed.notified() => {}
                _ = poll.tick(), if watches_others => {}
                _ = sleep_until(last_send + self.badges.timing.get().resend_interval) => {
                    self.channel.resend();
                    last_send = Instant::now();
                    continue;
                }
            }
            sleep_until(last_render + self.badges.timing.get().coalesce_interval(self.channel.viewers())).await;
            if self.channel.viewers() == 0 && self.badges.registry.forget_if_idle(&self.channel) {
                return;
            }
            let viewers = self.channel.shown_viewers();
            let state = self.slot.borrow_and_update().clone();
            let (badges, name, look) = (self.badges.clone(), self.name.clone(), self.look.clone());
            let draw = move || badges.render_live(&name, &look, state.as_deref(), viewers);
            let Some(png) = self.badges.renders.run_waiting(draw).await else { return };
            // Dedupe: a write that draws the same picture pushes nothing.
            if self.channel.publish_if_changed(&png, PNG) {
                last_render = Instant::now();
                last_send = last_render;
            }
        }
    }
}

/// A stored custom logo (base64, optionally as a `data:` URI) as the SVG
/// text shields' `logoSvg` carries.
fn svg_text(stored: &str) -> Option<String> {
    use base64::Engine;
    let b64 = stored.trim().strip_prefix("data:image/svg+xml;base64,").unwrap_or(stored.trim());
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}
