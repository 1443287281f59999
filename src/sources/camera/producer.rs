//! Runs one camera: waits for demand, opens the source, publishes its
//! frames (identical ones skipped, over-rate ones dropped, overlay drawn
//! once per frame for everyone), shows a placeholder while the source is
//! down, resends when the picture is still, and closes the source when
//! demand has been gone for `idle_stop`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use super::source::{Running, open};
use super::{Camera, CameraState, JPEG};
use crate::config::Config;
use crate::config::bounds::Fps;
use crate::metrics::metrics;
use crate::push::registry::Registry;
use crate::render::clock::clock;
use crate::render::format::{NumberFormat, Values, expand, format_number};
use crate::render::jpeg::{self, Rgb};
use crate::render::overlay::Overlay;
use crate::render::overlay_image::{self, ImageItem};
use crate::render::placeholder::{Placeholder, placeholder_jpeg};
use crate::sources::badges::Badges;

/// How often a still picture's overlay text (time, viewers) is looked at.
const OVERLAY_REFRESH: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub(super) struct Producer {
    camera: Arc<Camera>,
    overlay: Option<Arc<Overlay>>,
    /// Picture overlays (masks, PNGs, badges), drawn before the text.
    items: Arc<Vec<ImageItem>>,
    registry: Arc<Registry>,
    badges: Arc<Badges>,
    resend: Duration,
}

/// The last source frame, kept to spot identical frames and to redraw the
/// overlay of a still picture without decoding again.
struct Shown {
    source: Bytes,
    decoded: Option<Arc<Rgb>>,
    text: String,
}

impl Shown {
    /// The picture's size, read from the frame only when a placeholder needs it.
    fn size(&self) -> Option<(u32, u32)> {
        match &self.decoded {
            Some(rgb) => Some((rgb.width as u32, rgb.height as u32)),
            None => jpeg::dimensions(&self.source).map(|(w, h)| (w as u32, h as u32)),
        }
    }
}

impl Producer {
    pub(super) fn new(
        camera: Arc<Camera>,
        (overlay, items): (Option<Overlay>, Vec<ImageItem>),
        registry: Arc<Registry>,
        badges: Arc<Badges>,
        config: &Config,
    ) -> Producer {
        let (overlay, items) = (overlay.map(Arc::new), Arc::new(items));
        Producer { camera, overlay, items, registry, badges, resend: config.resend_interval() }
    }

    fn draws(&self) -> bool {
        self.overlay.is_some() || !self.items.is_empty()
    }

    pub(super) async fn run(self) {
        let camera = &self.camera;
        let mut size = camera.config.source.size_hint();
        loop {
            while !camera.demanded() {
                self.debug_panic_hook();
                tokio::select! {
                    _ = camera.channel.presence_changed.notified() => {}
                    _ = camera.wake.notified() => {}
                }
            }
            camera.state.send_replace(CameraState::Starting);
            let source = Running::start(open(&camera.config.source, camera.config.quality));
            size = self.run_source(source, size).await;
            camera.state.send_replace(CameraState::Idle);
            camera.fps.store(0f64.to_bits(), Relaxed);
            // The next viewer must not be shown this session's last, stale picture.
            self.placeholder(Placeholder::Connecting, size).await;
        }
    }

    /// The `debug_endpoints` test hook: panic once when asked to.
    fn debug_panic_hook(&self) {
        if self.camera.panic_next.swap(false, Relaxed) {
            panic!("forced by /debug/panic/camera/{}", self.camera.name);
        }
    }

    /// Publishes the source's frames until demand has been gone for
    /// `idle_stop`. Returns the last picture size seen.
    async fn run_source(&self, mut source: Running, mut size: (u32, u32)) -> (u32, u32) {
        let camera = &self.camera;
        let stats = &camera.channel.stats;
        // Validated at load: 0 (no cap) or within range.
        let min_gap = Fps::optional("max_fps", camera.config.max_fps).ok().flatten().map(Fps::interval);
        let mut shown: Option<Shown> = None;
        let mut offline = false;
        let mut dropped_seen = 0;
        let mut fps = FpsMeter::default();
        let mut last_publish: Option<Instant> = None;
        let mut last_send = Instant::now();
        let mut idle_since: Option<Instant> = None;
        loop {
            self.debug_panic_hook();
            // Checked on every pass, including the ones that skip a frame.
            if camera.demanded() {
                idle_since = None;
            } else {
                idle_since.get_or_insert_with(Instant::now);
            }
            let far = Instant::now() + Duration::from_secs(86_400);
            let idle_deadline = idle_since.map_or(far, |t| t + camera.idle_stop);
            let overlay_check = if self.draws() && shown.is_some() { Instant::now() + OVERLAY_REFRESH } else { far };
            tokio::select! {
                next = source.next() => {
                    // The source's task ended only if it panicked: so does the
                    // producer, and its supervisor restarts both with backoff.
                    let Some((result, dropped)) = next else { panic!("camera {} source panicked", camera.name) };
                    stats.frames_dropped.fetch_add(dropped.saturating_sub(dropped_seen), Relaxed);
                    dropped_seen = dropped;
                    match result {
                        Ok(jpeg) => {
                            if let (Some(gap), Some(last)) = (min_gap, last_publish)
                                && last.elapsed() < gap
                            {
                                stats.frames_dropped.fetch_add(1, Relaxed);
                                continue;
                            }
                            if !offline && shown.as_ref().is_some_and(|s| s.source == jpeg) {
                                stats.frames_unchanged.fetch_add(1, Relaxed);
                                continue;
                            }
                            let Some(next) = self.show(jpeg, None).await else { continue };
                            shown = Some(next);
                            offline = false;
                            camera.state.send_replace(CameraState::Live);
                            fps.tick(&camera.fps);
                            last_publish = Some(Instant::now());
                            last_send = Instant::now();
                        }
                        Err(reason) => {
                            if !offline {
                                tracing::warn!(camera = %camera.name, %reason, "camera source failed; showing the placeholder");
                                size = shown.as_ref().and_then(Shown::size).unwrap_or(size);
                                self.placeholder(Placeholder::Offline, size).await;
                                offline = true;
                                shown = None;
                                last_send = Instant::now();
                            }
                            let state = CameraState::Offline { reason };
                            camera.state.send_if_modified(|s| if *s != state { *s = state; true } else { false });
                        }
                    }
                }
                _ = camera.channel.presence_changed.notified() => {}
                _ = camera.wake.notified() => {}
                _ = sleep_until(last_send + self.resend) => {
                    camera.channel.resend();
                    last_send = Instant::now();
                }
                _ = sleep_until(overlay_check) => {
                    // A still picture's overlay (clock, viewers) keeps up without a new source frame.
                    if let Some(s) = shown.take() {
                        let stale = last_publish.is_none_or(|t| t.elapsed() >= OVERLAY_REFRESH);
                        shown = if stale && self.overlay_text() != s.text {
                            let source = s.source.clone();
                            let redrawn = self.show(source, s.decoded.clone()).await;
                            if redrawn.is_some() {
                                last_publish = Some(Instant::now());
                                last_send = Instant::now();
                            }
                            redrawn.or(Some(s))
                        } else {
                            Some(s)
                        };
                    }
                }
                _ = sleep_until(idle_deadline) => return shown.as_ref().and_then(Shown::size).unwrap_or(size),
            }
        }
    }

    /// Publishes a source frame: as it is, or with the overlay drawn on it
    /// (off the async threads: decode and encode take milliseconds).
    async fn show(&self, source: Bytes, decoded: Option<Arc<Rgb>>) -> Option<Shown> {
        let camera = &self.camera;
        if !self.draws() {
            camera.channel.publish(&source, JPEG);
            return Some(Shown { source, decoded: None, text: String::new() });
        }
        let text = self.overlay_text();
        let (input, quality, line) = (source.clone(), camera.config.quality, text.clone());
        let (overlay, items, badges) = (self.overlay.clone(), self.items.clone(), self.badges.clone());
        let drawn = tokio::task::spawn_blocking(move || {
            let base = match decoded {
                Some(rgb) => rgb,
                None => Arc::new(jpeg::decode(&input)?),
            };
            let mut image = (*base).clone();
            let badge = |name: &str, template: Option<&str>| badges.draw(name, template, 1.0).ok();
            overlay_image::apply(&mut image, &items, &badge);
            if let Some(overlay) = &overlay {
                overlay.draw(&mut image, &line);
            }
            Ok::<_, String>((jpeg::encode_rgb(&image, quality), base))
        });
        let started = std::time::Instant::now();
        match drawn.await {
            Ok(Ok((out, base))) => {
                metrics().render_seconds.observe(started.elapsed().as_secs_f64());
                camera.channel.publish(&out, JPEG);
                Some(Shown { source, decoded: Some(base), text })
            }
            Ok(Err(reason)) => {
                // One bad frame from upstream: drop it, keep the stream.
                camera.channel.stats.frames_dropped.fetch_add(1, Relaxed);
                tracing::debug!(camera = %camera.name, %reason, "dropped an undecodable frame");
                None
            }
            Err(_) => None,
        }
    }

    /// Publishes a placeholder, drawn and encoded off the async threads.
    async fn placeholder(&self, kind: Placeholder, (width, height): (u32, u32)) {
        let detail = format!("{} UTC", clock(SystemTime::now(), false));
        let name = self.camera.name.clone();
        let drawn = tokio::task::spawn_blocking(move || placeholder_jpeg(kind, &name, &detail, width, height));
        if let Ok(jpeg) = drawn.await {
            self.camera.channel.publish(&jpeg, JPEG);
        }
    }

    fn overlay_text(&self) -> String {
        let Some(overlay) = &self.overlay else { return String::new() };
        expand(overlay.text_template(), self, NumberFormat::Plain)
    }
}

/// What overlay placeholders read.
impl Values for Producer {
    fn number(&self, key: &str) -> Option<f64> {
        let channel = &self.camera.channel;
        match key {
            "viewers" => Some(channel.shown_viewers() as f64),
            "frame" => Some(channel.latest().seq as f64),
            _ if crate::render::format::is_room_key(key) => self.badges.room_figure(key),
            _ => {
                let other = key.strip_prefix("viewers:")?;
                // Cluster-wide, also for a channel live only elsewhere.
                Some(self.registry.count(other).viewers as f64)
            }
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        match key {
            "time" => Some(clock(SystemTime::now(), false)),
            "camera" => Some(self.camera.name.clone()),
            "fps" => Some(format!("{:.1}", f64::from_bits(self.camera.fps.load(Relaxed)))),
            _ => {
                let state = self.badges.get(key.strip_prefix("badge:")?)?;
                state.message.clone().or_else(|| state.value.map(|v| format_number(v, NumberFormat::Plain)))
            }
        }
    }
}

/// Frames published over the last two seconds.
#[derive(Default)]
struct FpsMeter {
    times: VecDeque<Instant>,
}

impl FpsMeter {
    fn tick(&mut self, out: &std::sync::atomic::AtomicU64) {
        let now = Instant::now();
        self.times.push_back(now);
        while self.times.front().is_some_and(|t| now - *t > Duration::from_secs(2)) {
            self.times.pop_front();
        }
        let span = now - *self.times.front().expect("just pushed");
        let fps = if self.times.len() < 2 { 0.0 } else { (self.times.len() - 1) as f64 / span.as_secs_f64() };
        out.store(fps.to_bits(), Relaxed);
    }
}
