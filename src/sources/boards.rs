//! Boards: a grid of tiles (badges, rooms' viewer counts, text) as one live
//! image, `board/NAME` on the shared push path. The producer redraws when
//! any tile's input changes (a badge's state at once, a room's count within
//! a quarter second), coalesced like a room, and pushes only frames that
//! differ; one frame for every viewer. While a board is watched, its
//! badges' polled sources poll. Frames are drawn in the render pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::FutureExt;
use tiny_skia::Pixmap;
use tokio::time::{Instant, sleep_until};

use super::badges::Badges;
use super::tasks::Tasks;
use super::timing::{Timing, Timings};
use crate::config::Config;
use crate::config::boards::{BoardConfig, TileConfig};
use crate::metrics::metrics;
use crate::push::channel::Channel;
use crate::push::registry::{JoinError, Kind, Registry};
use crate::push::viewer::ViewerGuard;
use crate::render::board::{compose, text_tile};
use crate::render::color::parse_color;
use crate::render::online::OnlineCount;
use crate::render::png::{encode_png, encode_png_board};
use crate::render::pool::Busy;
use crate::render::size::TooLarge;
use crate::store::BadgeState;

const PNG: &str = "image/png";
/// How often a board with room tiles looks at their counts.
const ROOM_CHECK: Duration = Duration::from_millis(250);
/// A text tile's colour.
const TEXT_COLOR: &str = "#24292f";

pub struct Boards {
    registry: Arc<Registry>,
    badges: Arc<Badges>,
    /// Swapped whole by a reload; a live board redraws from the new one.
    boards: ArcSwap<BTreeMap<String, Arc<BoardConfig>>>,
    timing: Timings,
    tasks: Tasks,
}

/// Checks every board against the badges and templates it names (also for
/// a reload, before anything is applied).
pub fn check(config: &Config, badges: &crate::sources::badges::Defs) -> Result<(), String> {
    for (name, board) in &config.boards {
        if let Some(bg) = &board.background {
            parse_color(bg).map_err(|e| format!("boards.{name}.background: {e}"))?;
        }
        for (i, tile) in board.tiles.iter().enumerate() {
            if let Some(template) = &tile.template
                && badges.templates.get(template).is_none()
            {
                return Err(format!("boards.{name}.tiles[{i}].template: no template named {template:?}"));
            }
            if let Some(badge) = &tile.badge
                && !config.badges.contains_key(badge)
            {
                return Err(format!(
                    "boards.{name}.tiles[{i}].badge: {badge:?} is not declared in badges (declare it, with or without a source)"
                ));
            }
        }
    }
    Ok(())
}

fn definitions(config: &Config) -> BTreeMap<String, Arc<BoardConfig>> {
    config.boards.iter().map(|(name, board)| (name.clone(), Arc::new(board.clone()))).collect()
}

impl Boards {
    /// Checks every board against the badges and templates it names.
    pub fn new(config: &Config, registry: Arc<Registry>, badges: Arc<Badges>, tasks: Tasks) -> Result<Boards, String> {
        check(config, &badges.defs())?;
        let boards = ArcSwap::from_pointee(definitions(config));
        Ok(Boards { registry, badges, boards, timing: Timings::new(Timing::from_config(config)), tasks })
    }

    /// A reload's boards (checked by `check`): live boards redraw from them
    /// at their next frame; a removed board's channels are ended by the
    /// reload.
    pub fn apply(&self, config: &Config) {
        self.timing.set(Timing::from_config(config));
        self.boards.store(Arc::new(definitions(config)));
    }

    fn board(&self, name: &str) -> Option<Arc<BoardConfig>> {
        self.boards.load().get(name).cloned()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.boards.load().contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.boards.load().keys().cloned().collect()
    }

    fn draw_tile(&self, tile: &TileConfig, scale: f32) -> Result<Pixmap, TooLarge> {
        if let Some(badge) = &tile.badge {
            self.badges.draw(badge, tile.template.as_deref(), scale)
        } else if let Some(room) = &tile.room {
            let template = self.badges.templates().get(tile.template.as_deref().unwrap_or("online"));
            let template = template.expect("checked at startup, or the built-in online");
            template.draw(&OnlineCount(self.room_count(room)), scale)
        } else {
            let text_color = parse_color(TEXT_COLOR).expect("a valid colour");
            text_tile(tile.text.as_deref().unwrap_or(""), text_color, scale)
        }
    }

    fn room_count(&self, room: &str) -> u64 {
        // Cluster-wide, also for a room live only elsewhere.
        self.registry.count(&format!("online/{room}")).viewers
    }

    /// What a tile shows now, if that alone decides its picture (a badge
    /// whose template shows other channels or badges is always redrawn).
    fn tile_input(&self, tile: &TileConfig) -> Option<TileInput> {
        if let Some(badge) = &tile.badge {
            let state = self.badges.get(badge);
            let template = self.badges.template_for_tile(badge, tile.template.as_deref(), state.as_deref());
            (template.watched_channels().is_empty() && !template.shows_other_badges())
                .then_some(TileInput::Badge(state))
        } else if let Some(room) = &tile.room {
            Some(TileInput::Room(self.room_count(room)))
        } else {
            Some(TileInput::Text)
        }
    }

    /// The board, redrawing only tiles whose input changed since `cache`
    /// last saw them: one change costs one tile, the layout and the encode.
    fn render_cached(
        &self,
        board: &BoardConfig,
        scale: f32,
        cache: &mut Vec<Option<(TileInput, Pixmap)>>,
    ) -> Result<Bytes, TooLarge> {
        cache.resize_with(board.tiles.len(), || None);
        for (tile, cached) in board.tiles.iter().zip(cache.iter_mut()) {
            let input = self.tile_input(tile);
            let fresh = matches!((&input, &*cached), (Some(now), Some((then, _))) if now.same(then));
            if !fresh {
                let pixmap = self.draw_tile(tile, scale)?;
                *cached = input.map(|input| (input, pixmap.clone())).or(Some((TileInput::Never, pixmap)));
            }
        }
        let tiles: Vec<Pixmap> = cache.iter().map(|c| c.as_ref().expect("filled above").1.clone()).collect();
        let background = board.background.as_deref().and_then(|c| parse_color(c).ok());
        let pixmap = compose(&tiles, board.columns as usize, board.gap as f32 * scale, background)?;
        Ok(Bytes::from(encode_png_board(&pixmap)))
    }

    /// The board as a PNG now (`?once`).
    /// The channels whose counts the board shows: its rooms and what its
    /// badges' templates name, for a one-off answer to wait for.
    pub fn channels_shown(&self, name: &str) -> Vec<String> {
        let Some(board) = self.board(name) else { return Vec::new() };
        let mut channels = Vec::new();
        for tile in &board.tiles {
            if let Some(room) = &tile.room {
                channels.push(format!("online/{room}"));
            }
            if let Some(badge) = &tile.badge {
                let state = self.badges.get(badge);
                let template = self.badges.template_for_tile(badge, tile.template.as_deref(), state.as_deref());
                channels.extend(template.watched_channels());
            }
        }
        channels
    }

    pub fn render(&self, name: &str, scale: f32) -> Result<Bytes, TooLarge> {
        // Gone in a reload since the caller looked: an empty board.
        let board = self.board(name).unwrap_or_default();
        for badge in board.tiles.iter().filter_map(|t| t.badge.as_deref()) {
            self.badges.interest.asked(badge);
        }
        metrics().time_render(|| self.render_cached(&board, scale, &mut Vec::new()))
    }

    /// A live frame; a board too large to draw says so instead.
    fn render_live(&self, name: &str, scale: f32, cache: &mut Vec<Option<(TileInput, Pixmap)>>) -> Bytes {
        let board = self.board(name).unwrap_or_default();
        metrics().time_render(|| self.render_cached(&board, scale, cache)).unwrap_or_else(|too_large| {
            let mut message = Pixmap::new(1, 1).expect("1x1");
            if let Ok(text) = text_tile(&format!("board too large: {too_large}"), tiny_skia::Color::BLACK, 1.0) {
                message = text;
            }
            Bytes::from(encode_png(&message))
        })
    }

    /// Whether a viewer may join: the board's channel is live, or the
    /// board cap has room. Asked before the first frame is drawn.
    pub fn admits(&self, name: &str, scale: f32) -> Result<(), JoinError> {
        self.registry.admits(Kind::Board, &channel_name(name, scale))
    }

    /// What a viewer is shown first: the live channel's latest frame, or,
    /// with none live, the board drawn in the render pool (busy: a `503`).
    pub async fn first_frame(self: &Arc<Self>, name: &str, scale: f32) -> Result<Bytes, Busy> {
        if let Some(channel) = self.registry.get(&channel_name(name, scale)) {
            return Ok(channel.latest().image());
        }
        // In a cluster: its rooms as the cluster counts them.
        self.registry.settle(&self.channels_shown(name)).await;
        let key = channel_name(name, scale);
        let (boards, name) = (self.clone(), name.to_string());
        self.badges.renders.run_shared(&key, move || boards.render_live(&name, scale, &mut Vec::new())).await
    }

    /// Counts a viewer in, starting the board's channel with `first` (from
    /// `first_frame`) if needed.
    pub fn join(self: &Arc<Self>, name: &str, scale: f32, first: Bytes) -> Result<ViewerGuard, JoinError> {
        let channel_name = channel_name(name, scale);
        let create = || Channel::new(channel_name.clone(), &first, PNG);
        let (viewer, created) = self.registry.join(Kind::Board, &channel_name, create)?;
        if created {
            let producer =
                Producer { boards: self.clone(), name: name.to_string(), scale, channel: viewer.channel().clone() };
            self.tasks.supervise("producer", channel_name, move || producer.clone().run());
        }
        Ok(viewer)
    }
}

fn channel_name(name: &str, scale: f32) -> String {
    if scale == 1.0 { format!("board/{name}") } else { format!("board/{name}@{scale}x") }
}

/// What a cached tile was drawn from.
enum TileInput {
    Badge(Option<Arc<BadgeState>>),
    Room(u64),
    Text,
    /// Drawn from more than this (other channels): always redrawn.
    Never,
}

impl TileInput {
    fn same(&self, other: &TileInput) -> bool {
        match (self, other) {
            // A write replaces the state's Arc: the same Arc, the same state.
            (TileInput::Badge(a), TileInput::Badge(b)) => match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            },
            (TileInput::Room(a), TileInput::Room(b)) => a == b,
            (TileInput::Text, TileInput::Text) => true,
            _ => false,
        }
    }
}

#[derive(Clone)]
struct Producer {
    boards: Arc<Boards>,
    name: String,
    scale: f32,
    channel: Arc<Channel>,
}

impl Producer {
    async fn run(self) {
        let boards = &self.boards;
        // A reload that changes the board starts over with it, drawn at once.
        let mut at_once = false;
        while let Some(board) = boards.board(&self.name) {
            if !self.follow(&board, at_once).await {
                return;
            }
            at_once = true;
        }
    }

    /// Draws `board` as its inputs change, until the channel is forgotten
    /// (`false`) or a reload replaced the board's definition (`true`).
    async fn follow(&self, board: &Arc<BoardConfig>, mut at_once: bool) -> bool {
        let boards = &self.boards;
        let badge_names: Vec<String> = board.tiles.iter().filter_map(|t| t.badge.clone()).collect();
        // Its badges' sources poll while the board is watched.
        let _watching: Vec<_> = badge_names.iter().map(|b| boards.badges.interest.watch(b)).collect();
        let mut slots: Vec<_> = badge_names.iter().map(|b| boards.badges.subscribe(b)).collect();
        let has_rooms = board.tiles.iter().any(|t| t.room.is_some());
        let mut rooms = tokio::time::interval(ROOM_CHECK);
        let mut last_render = Instant::now();
        let mut last_send = last_render;
        let mut tiles: Vec<Option<(TileInput, Pixmap)>> = Vec::new();
        let mut seen = boards.boards.load_full();
        loop {
            let timing = boards.timing.get();
            let any_badge = async {
                if slots.is_empty() {
                    return std::future::pending().await;
                }
                let changed = slots.iter_mut().map(|s| s.changed().boxed());
                let (result, _, _) = futures_util::future::select_all(changed).await;
                result
            };
            tokio::select! {
                result = any_badge => if result.is_err() { slots.clear() },
                _ = rooms.tick(), if has_rooms => {}
                _ = self.channel.presence_changed.notified() => {}
                _ = sleep_until(last_send + timing.resend_interval) => {
                    self.channel.resend();
                    last_send = Instant::now();
                    continue;
                }
                _ = std::future::ready(()), if std::mem::take(&mut at_once) => {}
            }
            let now = boards.boards.load_full();
            if !Arc::ptr_eq(&now, &seen) {
                // A reload: a changed (or removed) board starts over; an
                // unchanged one redraws every tile (templates may differ)
                // and pushes only if the picture changed.
                if now.get(&self.name).is_none_or(|b| **b != **board) {
                    return true;
                }
                tiles.clear();
                seen = now;
            }
            sleep_until(last_render + timing.coalesce_interval(self.channel.viewers())).await;
            if self.channel.viewers() == 0 && boards.registry.forget_if_idle(&self.channel) {
                return false;
            }
            for slot in &mut slots {
                slot.borrow_and_update();
            }
            let (drawing, name, scale) = (boards.clone(), self.name.clone(), self.scale);
            let draw = move || {
                let png = drawing.render_live(&name, scale, &mut tiles);
                (png, tiles)
            };
            let Some((png, drawn)) = boards.badges.renders.run_waiting(draw).await else { return false };
            tiles = drawn;
            if self.channel.publish_if_changed(&png, PNG) {
                last_render = Instant::now();
                last_send = last_render;
            }
        }
    }
}
