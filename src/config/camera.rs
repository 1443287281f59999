//! Camera and per-client-limit settings: the `cameras` and `client_limits`
//! keys of the config, with their validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::bounds::{FPS, IMAGE_SIDE, SOURCE_FPS, within, zero_or_within};
use super::limits::LimitsConfig;
use super::url::HttpUrl;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub source: SourceConfig,
    /// Run the source even with nobody watching (default: only on demand).
    #[serde(default)]
    pub always_on: bool,
    /// Frames per second at most; faster source frames are dropped (0: the source's rate).
    #[serde(default)]
    pub max_fps: f64,
    /// Stats burned into every frame; without it (and `overlays`) frames
    /// pass through byte for byte.
    #[serde(default)]
    pub overlay: Option<OverlayConfig>,
    /// Picture overlays: privacy masks, PNG watermarks, live badges.
    #[serde(default)]
    pub overlays: Vec<OverlayItemConfig>,
    /// JPEG quality when framecast encodes (pattern, overlay, PNG files, raw devices).
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Per-client limits for this camera's streams, replacing `client_limits`.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// Only signed URLs (`exp`, `sig`) may show it: a private camera.
    #[serde(default)]
    pub require_signature: bool,
    /// Widths a viewer may ask for (`?width=`; others snap to the nearest):
    /// each size with viewers is encoded once per frame for all of them.
    #[serde(default = "default_sizes")]
    pub sizes: Vec<u32>,
}

fn default_sizes() -> Vec<u32> {
    vec![320, 640, 1280]
}

fn default_quality() -> u8 {
    80
}

/// Where frames come from; `kind` names the variant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    Pattern(PatternConfig),
    File(FileConfig),
    Mjpeg(MjpegConfig),
    Device(DeviceConfig),
    Ffmpeg(FfmpegConfig),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default = "default_fps")]
    pub fps: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// A JPEG or PNG file; pushed whenever it is replaced or rewritten.
    pub path: PathBuf,
    /// How often the file is looked at.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MjpegConfig {
    /// `http://host[:port]/path` of an MJPEG stream (an IP camera, another framecast).
    pub url: HttpUrl,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Upstream frames larger than this are discarded.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Connecting, or silence from a connected upstream, longer than this reconnects.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Anything ffmpeg reads: RTSP/H.264 cameras, files, test sources.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FfmpegConfig {
    /// ffmpeg's input arguments, e.g. `["-rtsp_transport", "tcp", "-i",
    /// "rtsp://cam/stream"]`; framecast adds its own output arguments.
    pub args: Vec<String>,
    /// The ffmpeg to run (Debian's by default).
    #[serde(default = "default_ffmpeg")]
    pub program: String,
    /// Frames larger than this end the run (it restarts).
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// No frame for this long restarts ffmpeg.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_ffmpeg() -> String {
    "ffmpeg".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// V4L2 index (`/dev/videoN`).
    #[serde(default)]
    pub index: u32,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default = "default_fps")]
    pub fps: f64,
}

fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    360
}
fn default_fps() -> f64 {
    10.0
}
fn default_poll_ms() -> u64 {
    250
}
fn default_max_frame_bytes() -> usize {
    4 << 20
}
fn default_timeout_ms() -> u64 {
    10_000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    #[default]
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayConfig {
    /// Placeholders: `{viewers}` (of this stream), `{time}` (UTC), `{fps}`,
    /// `{frame}`, `{camera}`, `{badge:NAME}`, `{viewers:CHANNEL}`; `\n` starts a line.
    pub text: String,
    #[serde(default)]
    pub position: Position,
    /// Text size in pixels.
    #[serde(default = "default_text_size")]
    pub size: f32,
    #[serde(default)]
    pub bold: bool,
    #[serde(default = "default_text_color")]
    pub color: String,
    /// The box behind the text; alpha makes it translucent (`#000000a0`).
    #[serde(default = "default_box_color")]
    pub background: String,
    /// Distance from the frame's edges, in pixels.
    #[serde(default = "default_margin")]
    pub margin: u32,
}

/// One picture overlay: exactly one of `png`, `badge` or `mask`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayItemConfig {
    /// A PNG (a logo, a watermark; alpha is kept), read once at startup.
    #[serde(default)]
    pub png: Option<PathBuf>,
    /// A badge, drawn as it is now (its template, or `template`).
    #[serde(default)]
    pub badge: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    /// Privacy mask: rectangles `[x, y, width, height]` in frame pixels.
    #[serde(default)]
    pub mask: Vec<[u32; 4]>,
    /// The mask's colour.
    #[serde(default = "default_mask_color")]
    pub color: String,
    #[serde(default)]
    pub position: Position,
    #[serde(default = "default_margin")]
    pub margin: u32,
    /// 0 (invisible) to 1 (as drawn).
    #[serde(default = "default_opacity")]
    pub opacity: f32,
}

fn default_mask_color() -> String {
    "#000000".into()
}
fn default_opacity() -> f32 {
    1.0
}

impl OverlayItemConfig {
    pub fn validate(&self, key: &str) -> Result<(), String> {
        let kinds = [self.png.is_some(), self.badge.is_some(), !self.mask.is_empty()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(format!("{key}: give exactly one of png, badge or mask"));
        }
        if self.mask.len() > 64 {
            return Err(format!("{key}.mask: at most 64 rectangles"));
        }
        within(&format!("{key}.opacity"), self.opacity, (0.0, 1.0))?;
        within(&format!("{key}.margin"), self.margin, (0, 4096))?;
        if let Some(name) = self.badge.as_ref().filter(|n| !crate::names::valid_name(n)) {
            return Err(format!("{key}.badge: {name:?} is invalid: {}", crate::names::invalid_name("badge")));
        }
        Ok(())
    }
}

fn default_text_size() -> f32 {
    16.0
}
fn default_text_color() -> String {
    "#ffffff".into()
}
fn default_box_color() -> String {
    "#000000a0".into()
}
fn default_margin() -> u32 {
    8
}

impl CameraConfig {
    pub fn validate(&self, name: &str) -> Result<(), String> {
        let key = format!("cameras.{name}");
        if !crate::names::valid_name(name) {
            return Err(format!("{key}: {}", crate::names::invalid_name("camera")));
        }
        let size = |w: u32, h: u32| -> Result<(), String> {
            let (min, max) = IMAGE_SIDE;
            if !(min..=max).contains(&w) || !(min..=max).contains(&h) {
                return Err(format!("{key}.source: {w}x{h} is invalid: width and height must be {min} to {max}"));
            }
            Ok(())
        };
        let fps = |fps: f64| within(&format!("{key}.source.fps"), fps, SOURCE_FPS).map(|_| ());
        match &self.source {
            SourceConfig::Pattern(p) => {
                size(p.width, p.height)?;
                fps(p.fps)?;
            }
            SourceConfig::Device(d) => {
                size(d.width, d.height)?;
                fps(d.fps)?;
                if !cfg!(feature = "device") {
                    return Err(format!(
                        "{key}.source: kind \"device\" needs a build with local camera support: \
                         cargo build --release --features device"
                    ));
                }
            }
            SourceConfig::File(f) => {
                within(&format!("{key}.source.poll_ms"), f.poll_ms, (10, 3_600_000))?;
            }
            SourceConfig::Ffmpeg(f) => {
                within(&format!("{key}.source.max_frame_bytes"), f.max_frame_bytes, (1024, 64 << 20))?;
                within(&format!("{key}.source.timeout_ms"), f.timeout_ms, (100, 3_600_000))?;
                if !f.args.iter().any(|a| a == "-i") {
                    return Err(format!("{key}.source.args: give ffmpeg an input: [..., \"-i\", \"rtsp://…\"]"));
                }
                if f.args.len() > 64 || f.args.iter().any(|a| a.len() > 4096) {
                    return Err(format!("{key}.source.args: at most 64 arguments of 4096 characters"));
                }
            }
            SourceConfig::Mjpeg(m) => {
                within(&format!("{key}.source.max_frame_bytes"), m.max_frame_bytes, (1024, 64 << 20))?;
                within(&format!("{key}.source.timeout_ms"), m.timeout_ms, (100, 3_600_000))?;
                if m.password.is_some() && m.username.is_none() {
                    return Err(format!("{key}.source.password: set username as well"));
                }
            }
        }
        zero_or_within(&format!("{key}.max_fps"), self.max_fps, FPS)?;
        if self.sizes.len() > 8 {
            return Err(format!("{key}.sizes: at most 8 widths"));
        }
        for &w in &self.sizes {
            within(&format!("{key}.sizes"), w, IMAGE_SIDE)?;
        }
        if !(1..=100).contains(&self.quality) {
            return Err(format!("{key}.quality: {} is invalid: use 1 to 100", self.quality));
        }
        if let Some(limits) = &self.limits {
            limits.validate(&format!("{key}.limits"))?;
        }
        // The overlay's text and colours are checked where it is built
        // (`sources::camera::check`), by the renderer that draws them.
        if self.overlays.len() > 16 {
            return Err(format!("{key}.overlays: at most 16 items"));
        }
        for (i, item) in self.overlays.iter().enumerate() {
            item.validate(&format!("{key}.overlays[{i}]"))?;
        }
        if let Some(overlay) = &self.overlay {
            within(&format!("{key}.overlay.size"), overlay.size, (6.0, 200.0))?;
            within(&format!("{key}.overlay.margin"), overlay.margin, (0, 4096))?;
        }
        Ok(())
    }
}

impl SourceConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Pattern(_) => "pattern",
            SourceConfig::File(_) => "file",
            SourceConfig::Mjpeg(_) => "mjpeg",
            SourceConfig::Device(_) => "device",
            SourceConfig::Ffmpeg(_) => "ffmpeg",
        }
    }

    /// The picture size to draw placeholders at before any frame is seen.
    pub fn size_hint(&self) -> (u32, u32) {
        match self {
            SourceConfig::Pattern(p) => (p.width, p.height),
            SourceConfig::Device(d) => (d.width, d.height),
            SourceConfig::File(_) | SourceConfig::Mjpeg(_) | SourceConfig::Ffmpeg(_) => (640, 360),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<CameraConfig, String> {
        let config = super::super::Config::parse(&serde_json::json!({ "cameras": { "cam": json } }).to_string())?;
        Ok(config.cameras["cam"].clone())
    }

    #[test]
    fn sources_parse_and_unknown_keys_are_named() {
        assert!(parse(serde_json::json!({"source": {"kind": "pattern", "fps": 5}})).is_ok());
        let err = parse(serde_json::json!({"source": {"kind": "pattern", "fsp": 5}})).unwrap_err();
        assert!(err.contains("fsp"), "{err}");
        let err = parse(serde_json::json!({"source": {"kind": "webcam"}})).unwrap_err();
        assert!(err.contains("webcam"), "{err}");
        let err = parse(serde_json::json!({"source": {"kind": "mjpeg", "url": "ftp://x"}})).unwrap_err();
        assert!(err.contains("cameras.cam.source: url \"ftp://x\""), "{err}");
        let err = parse(serde_json::json!({"source": {"kind": "pattern", "fps": 1e-300}})).unwrap_err();
        assert!(err.contains("cameras.cam.source.fps") && err.contains("out of range"), "{err}");
        let err = parse(serde_json::json!({"source": {"kind": "pattern"}, "max_fps": 1e-19})).unwrap_err();
        assert!(err.contains("cameras.cam.max_fps"), "{err}");
        let err = parse(serde_json::json!({"source": {"kind": "pattern", "width": 99999}})).unwrap_err();
        assert!(err.contains("width and height"), "{err}");
    }
}
