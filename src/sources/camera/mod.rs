//! Cameras: JPEG streams on the same push path as badges. Each configured
//! camera is a permanent channel `camera/{name}` with a producer that runs
//! its frame source only while someone watches (or `always_on`), shows a
//! placeholder while the source is starting or down, and stops it again
//! `camera_idle_stop_ms` after the last viewer or snapshot.

#[cfg(feature = "device")]
pub mod device;
pub mod ffmpeg;
pub mod file;
pub mod pattern;
mod producer;
pub mod relay;
pub mod scaled;
pub mod sizes;
pub mod slot;
pub mod source;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, timeout};

use crate::config::Config;
use crate::config::camera::{CameraConfig, OverlayConfig};
use crate::push::channel::{Channel, ChannelInfo};
use crate::push::part::Frame;
use crate::push::registry::Registry;
use crate::push::viewer::ViewerGuard;
use crate::render::format::parse_with;
use crate::render::overlay::Overlay;
use crate::render::overlay_image::ImageItem;
use crate::render::placeholder::{Placeholder, placeholder_jpeg};
use crate::sources::badges::Badges;
use crate::sources::tasks::Tasks;

pub const JPEG: &str = "image/jpeg";

/// Placeholders an overlay may use: what the producer can fill in.
fn overlay_key_known(key: &str) -> bool {
    matches!(key, "viewers" | "time" | "fps" | "frame" | "camera")
        || key.strip_prefix("badge:").is_some_and(crate::names::valid_name)
        || key.strip_prefix("viewers:").is_some_and(|c| !c.is_empty())
        || (crate::render::format::is_room_key(key) && key.contains(':'))
}

const OVERLAY_KEYS: &str = "viewers, time, fps, frame, camera, badge:NAME, viewers:CHANNEL, peak_today:ROOM, unique_today:ROOM, sessions_today:ROOM";

/// The overlay of camera `name`, its text and colours checked by the
/// renderer that will draw them; errors name the config key.
fn build_overlay(name: &str, config: &OverlayConfig) -> Result<Overlay, String> {
    parse_with(&config.text, &overlay_key_known, OVERLAY_KEYS)
        .map_err(|e| format!("cameras.{name}.overlay.text: {e}"))?;
    Overlay::new(config).map_err(|e| format!("cameras.{name}.{e}"))
}

/// The picture overlays of camera `name`, their PNGs read now.
fn build_items(name: &str, config: &CameraConfig) -> Result<Vec<ImageItem>, String> {
    let items = config.overlays.iter().enumerate();
    items.map(|(i, item)| ImageItem::new(item, &format!("cameras.{name}.overlays[{i}]"))).collect()
}

/// Checks what only the renderer can (overlay placeholders and colours),
/// as `serve` does at startup: for `check-config`.
pub fn check(config: &Config) -> Result<(), String> {
    for (name, camera) in &config.cameras {
        build_items(name, camera)?;
        if let Some(overlay) = &camera.overlay {
            build_overlay(name, overlay)?;
        }
    }
    Ok(())
}

/// What a camera's source is doing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum CameraState {
    /// Nobody watches; the source is closed.
    Idle,
    /// Opened, no frame yet.
    Starting,
    Live,
    /// The source failed; viewers see the placeholder while it retries.
    Offline {
        reason: String,
    },
}

pub struct Camera {
    name: String,
    config: CameraConfig,
    channel: Arc<Channel>,
    state: watch::Sender<CameraState>,
    /// Snapshots keep the source running until then.
    demand_until: Mutex<Option<Instant>>,
    /// Woken by snapshot demand (viewers wake it through the channel).
    wake: Notify,
    /// Published frames per second, as f64 bits.
    fps: AtomicU64,
    idle_stop: Duration,
    /// Set by the `debug_endpoints` test hook: the producer panics once.
    panic_next: AtomicBool,
    /// Live derived channels (`sizes`): they keep the source running.
    derived: std::sync::atomic::AtomicUsize,
    /// Recent frames at other widths, each scaled once.
    scaled: scaled::ScaledFrames,
}

/// What `GET /api/v1/cameras` reports per camera.
#[derive(Debug, Serialize)]
pub struct CameraInfo {
    pub name: String,
    pub kind: &'static str,
    #[serde(flatten)]
    pub state: CameraState,
    pub always_on: bool,
    pub overlay: bool,
    pub fps: f64,
    pub channel: ChannelInfo,
}

pub struct Cameras {
    cameras: BTreeMap<String, Arc<Camera>>,
}

impl Cameras {
    /// Registers every configured camera's channel and starts its producer
    /// (which waits, idle, for demand). Needs a tokio runtime.
    pub fn start(
        config: &Config,
        registry: &Arc<Registry>,
        badges: &Arc<Badges>,
        tasks: &Tasks,
    ) -> Result<Cameras, String> {
        let mut cameras = BTreeMap::new();
        for (name, camera_config) in &config.cameras {
            let (width, height) = camera_config.source.size_hint();
            let first = placeholder_jpeg(Placeholder::Connecting, name, "", width, height);
            let channel = Channel::new(format!("camera/{name}"), &first, JPEG);
            registry.insert_permanent(channel.clone());
            let camera = Arc::new(Camera {
                name: name.clone(),
                config: camera_config.clone(),
                channel,
                state: watch::channel(CameraState::Idle).0,
                demand_until: Mutex::new(None),
                wake: Notify::new(),
                fps: AtomicU64::new(0),
                idle_stop: config.camera_idle_stop(),
                panic_next: AtomicBool::new(false),
                derived: Default::default(),
                // The latest frame or two at each size.
                scaled: scaled::ScaledFrames::new(2 * camera_config.sizes.len()),
            });
            let overlay = camera_config.overlay.as_ref().map(|o| build_overlay(name, o)).transpose()?;
            let items = build_items(name, camera_config)?;
            let producer =
                producer::Producer::new(camera.clone(), (overlay, items), registry.clone(), badges.clone(), config);
            tasks.supervise("producer", format!("camera/{name}"), move || producer.clone().run());
            cameras.insert(name.clone(), camera);
        }
        Ok(Cameras { cameras })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Camera>> {
        self.cameras.get(name)
    }

    pub fn list(&self) -> impl Iterator<Item = &Arc<Camera>> {
        self.cameras.values()
    }
}

impl Camera {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &CameraConfig {
        &self.config
    }

    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    pub fn state(&self) -> CameraState {
        self.state.borrow().clone()
    }

    /// Counts a stream viewer in; the producer starts the source if idle.
    pub fn watch(&self, registry: &Registry) -> ViewerGuard {
        registry.join_permanent(&self.channel)
    }

    /// Test hook: the producer panics on its next pass (and is restarted).
    pub fn panic_on_next_pass(&self) {
        self.panic_next.store(true, Relaxed);
        self.wake.notify_one();
    }

    /// A snapshot wants frames: keep (or get) the source running a while.
    pub fn demand(&self) {
        *self.demand_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + self.idle_stop);
        self.wake.notify_one();
    }

    fn demanded(&self) -> bool {
        let snapshots = self.demand_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|t| t > Instant::now());
        self.config.always_on || self.channel.viewers() > 0 || self.derived.load(Relaxed) > 0 || snapshots
    }

    /// Waits up to `limit` for the source to show a real frame or fail.
    /// Returns whether it is live.
    pub async fn wait_started(&self, limit: Duration) -> bool {
        let mut state = self.state.subscribe();
        let settled = |s: &CameraState| matches!(s, CameraState::Live | CameraState::Offline { .. });
        matches!(timeout(limit, state.wait_for(settled)).await, Ok(Ok(s)) if *s == CameraState::Live)
    }

    /// The first frame newer than `after`, waiting up to `limit`; else the latest.
    pub async fn frame_after(&self, after: u64, limit: Duration) -> Arc<Frame> {
        let mut frames = self.channel.subscribe();
        match timeout(limit, frames.wait_for(|f| f.seq > after)).await {
            Ok(Ok(frame)) => frame.clone(),
            _ => self.channel.latest(),
        }
    }

    pub fn info(&self) -> CameraInfo {
        CameraInfo {
            name: self.name.clone(),
            kind: self.config.source.kind(),
            state: self.state(),
            always_on: self.config.always_on,
            overlay: self.config.overlay.is_some() || !self.config.overlays.is_empty(),
            fps: f64::from_bits(self.fps.load(Relaxed)),
            channel: self.channel.info(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_errors_name_the_key() {
        let config =
            Config::parse(r#"{"cameras": {"cam": {"source": {"kind": "pattern"}, "overlay": {"text": "{viewrs}"}}}}"#)
                .unwrap();
        let err = check(&config).unwrap_err();
        assert!(err.contains("cameras.cam.overlay.text") && err.contains("unknown placeholder {viewrs}"), "{err}");
        let config = Config::parse(
            r#"{"cameras": {"cam": {"source": {"kind": "pattern"}, "overlay": {"text": "x", "color": "nope"}}}}"#,
        )
        .unwrap();
        assert!(check(&config).unwrap_err().contains("cameras.cam.overlay.color"));
    }
}
