//! Cameras: JPEG streams on the same push path as badges. Each configured
//! camera is a permanent channel `camera/{name}` with a producer that runs
//! its frame source only while someone watches (or `always_on`), shows a
//! placeholder while the source is starting or down, and stops it again
//! `camera_idle_stop_ms` after the last viewer or snapshot.

#[cfg(feature = "device")]
pub mod device;
pub mod ffmpeg;
pub mod file;
pub mod gauges;
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

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

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

/// What a camera's producer draws over its frames: the text overlay and
/// the picture items.
type Drawn = (Option<Overlay>, Vec<ImageItem>);

/// Builds camera `name`'s overlays (reading their pictures now).
fn drawn_parts(name: &str, config: &CameraConfig) -> Result<Drawn, String> {
    let overlay = config.overlay.as_ref().map(|o| build_overlay(name, o)).transpose()?;
    Ok((overlay, build_items(name, config)?))
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
    /// Shared with the camera that replaces this one in a reload, as is
    /// `derived`: sizes live across it keep its source running.
    wake: Arc<Notify>,
    /// Published frames per second, as f64 bits.
    fps: AtomicU64,
    idle_stop: Duration,
    /// Set by the `debug_endpoints` test hook: the producer panics once.
    panic_next: AtomicBool,
    /// Live derived channels (`sizes`): they keep the source running.
    derived: Arc<std::sync::atomic::AtomicUsize>,
    /// Cancelled when a reload replaces or removes the camera: its
    /// producer stops (closing its source).
    stop: CancellationToken,
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
    /// Swapped whole by a reload.
    cameras: ArcSwap<BTreeMap<String, Arc<Camera>>>,
    registry: Arc<Registry>,
    badges: Arc<Badges>,
    tasks: Tasks,
}

/// What a reload did to the cameras.
#[derive(Default)]
pub struct CamerasApplied {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    /// Their channels: the reload ends their streams after a last frame.
    pub removed: Vec<Arc<Channel>>,
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
        let cameras = Cameras {
            cameras: ArcSwap::default(),
            registry: registry.clone(),
            badges: badges.clone(),
            tasks: tasks.clone(),
        };
        let mut started = BTreeMap::new();
        for (name, camera_config) in &config.cameras {
            let drawn = drawn_parts(name, camera_config)?;
            started.insert(name.clone(), cameras.start_one(config, name, camera_config, drawn, None));
        }
        cameras.cameras.store(Arc::new(started));
        Ok(cameras)
    }

    /// Starts camera `name`'s producer, on `replacing`'s channel (and its
    /// demand) when a reload changes a camera, else on a new channel.
    fn start_one(
        &self,
        config: &Config,
        name: &str,
        camera_config: &CameraConfig,
        (overlay, items): Drawn,
        replacing: Option<&Camera>,
    ) -> Arc<Camera> {
        let channel = match replacing {
            Some(old) => old.channel.clone(),
            None => {
                let (width, height) = camera_config.source.size_hint();
                let first = placeholder_jpeg(Placeholder::Connecting, name, "", width, height);
                let channel = Channel::new(format!("camera/{name}"), &first, JPEG);
                self.registry.insert_permanent(channel.clone());
                channel
            }
        };
        let camera = Arc::new(Camera {
            name: name.to_string(),
            config: camera_config.clone(),
            channel,
            state: watch::channel(CameraState::Idle).0,
            demand_until: Mutex::new(None),
            wake: replacing.map_or_else(Default::default, |old| old.wake.clone()),
            fps: AtomicU64::new(0),
            idle_stop: config.camera_idle_stop(),
            panic_next: AtomicBool::new(false),
            derived: replacing.map_or_else(Default::default, |old| old.derived.clone()),
            stop: self.tasks.shutdown.child_token(),
            // The latest frame or two at each size.
            scaled: scaled::ScaledFrames::new(2 * camera_config.sizes.len()),
        });
        let producer = producer::Producer::new(
            camera.clone(),
            (overlay, items),
            self.registry.clone(),
            self.badges.clone(),
            config,
        );
        let stop = camera.stop.clone();
        self.tasks.supervise("producer", format!("camera/{name}"), move || {
            let (producer, stop) = (producer.clone(), stop.clone());
            async move {
                tokio::select! {
                    () = producer.run() => {}
                    () = stop.cancelled() => {}
                }
            }
        });
        camera
    }

    /// A reload's cameras: new ones start, changed ones restart their
    /// source with the new settings on the same channel (their viewers
    /// stay), removed ones stop. Unchanged ones go on as they are. Every
    /// overlay is built before anything starts or stops, so a picture file
    /// gone since the check refuses the whole change, not half of it.
    pub fn apply(&self, config: &Config) -> Result<CamerasApplied, String> {
        let old = self.cameras.load_full();
        let unchanged = |name: &str, c: &CameraConfig| {
            old.get(name).is_some_and(|camera| camera.config == *c && camera.idle_stop == config.camera_idle_stop())
        };
        let mut drawn = BTreeMap::new();
        for (name, camera_config) in config.cameras.iter().filter(|(name, c)| !unchanged(name, c)) {
            drawn.insert(name.clone(), drawn_parts(name, camera_config)?);
        }
        let mut next = BTreeMap::new();
        let mut applied = CamerasApplied::default();
        for (name, camera_config) in &config.cameras {
            let Some(parts) = drawn.remove(name) else {
                next.insert(name.clone(), old.get(name).expect("unchanged cameras exist").clone());
                continue;
            };
            let replacing = old.get(name);
            next.insert(name.clone(), self.start_one(config, name, camera_config, parts, replacing.map(|c| &**c)));
            match replacing {
                Some(camera) => {
                    camera.stop.cancel();
                    applied.changed.push(name.clone());
                }
                None => applied.added.push(name.clone()),
            }
        }
        for (name, camera) in old.iter().filter(|(name, _)| !config.cameras.contains_key(*name)) {
            camera.stop.cancel();
            self.registry.remove(&camera.channel);
            applied.removed.push(camera.channel.clone());
            tracing::info!(camera = %name, "camera removed by the reload");
        }
        self.cameras.store(Arc::new(next));
        Ok(applied)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Camera>> {
        self.cameras.load().get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Camera>> {
        self.cameras.load().values().cloned().collect()
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
