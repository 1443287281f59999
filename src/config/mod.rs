//! Runtime configuration: the embedded defaults (`src/default-config.json`)
//! with an optional user JSON file laid over them key by key, parsed into
//! typed, already-validated values (bounded numbers, `HttpUrl`, `Origin`).
//! A leaf: what needs a renderer to check (overlay text) is checked where
//! the renderer is built.
//!
//! May import: names.
//!
//! One source of truth for defaults: the embedded file lists every key, so a
//! user file only names what it changes, and an unknown key is an error that
//! names it (serde's `deny_unknown_fields`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

pub mod boards;
pub mod bounds;
pub mod camera;
pub mod fonts;
pub mod limits;
pub mod polled;
pub mod privacy;
pub mod rooms;
pub mod tls;
pub mod url;

use boards::BoardConfig;
use camera::CameraConfig;
use limits::LimitsConfig;
use polled::PollConfig;
use rooms::{Cidr, ClientAddressHeader, RoomConfig};
use tls::TlsConfig;
use url::Origin;

const DEFAULT_CONFIG: &str = include_str!("default-config.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`--listen` overrides).
    pub listen: SocketAddr,
    /// How often the latest frame is sent again when nothing changed, so
    /// proxies with idle timeouts keep the stream and dead peers surface.
    pub resend_interval_ms: u64,
    /// Renders of one channel are at least this far apart: bursts of
    /// connects coalesce into a handful of frames.
    pub min_frame_interval_ms: u64,
    /// While a room's count keeps changing, its renders back off (doubling)
    /// up to this far apart; a quiet spell resets them.
    pub max_frame_interval_ms: u64,
    /// Fan-out budget of one channel: a channel with V viewers renders at
    /// most every V / this seconds, so big audiences coalesce more.
    pub fanout_parts_per_second: u64,
    /// A viewer whose socket accepts no byte for this long is dropped.
    pub write_stall_timeout_ms: u64,
    /// Kernel send buffer per connection (`SO_SNDBUF`; 0 = kernel autotuning,
    /// up to 4 MB each). Bounds memory per slow viewer and how stale the
    /// frames queued for it can get.
    pub send_buffer_bytes: usize,
    pub tcp_keepalive_idle_ms: u64,
    pub tcp_keepalive_interval_ms: u64,
    pub tcp_keepalive_retries: u32,
    /// Unacknowledged data older than this closes the socket (Linux
    /// `TCP_USER_TIMEOUT`): how vanished peers leave the count.
    pub tcp_user_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    /// On SIGTERM/SIGINT, streams end at once; connections get this long to
    /// finish before the process exits anyway.
    pub shutdown_timeout_ms: u64,
    /// After a binary upgrade, the old process serves the streams it could
    /// not hand over (TLS, HTTP/2) at most this long, then exits.
    pub upgrade_drain_max_ms: u64,
    /// Open connections at most; beyond it new ones get a 503.
    pub max_connections: usize,
    /// Open connections from one address at most (0: no limit). Behind a
    /// reverse proxy every connection comes from the proxy: set 0 there.
    pub max_connections_per_ip: usize,
    /// Distinct live rooms at most, so invented names cannot grow memory.
    /// Other kinds of live channel have caps of their own.
    pub max_rooms: usize,
    /// Rooms not listed under `rooms` that keep figures (peaks, distinct
    /// viewers, history) at most; one idle for a day is forgotten, rows and
    /// all. Past it a new such room still streams, without figures.
    pub max_unconfigured_rooms: usize,
    /// Extra templates (`NAME.json`), added to and overriding the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// Fallback font files, tried in order after the embedded DejaVu Sans
    /// for each character it lacks (CJK, Devanagari, emoji, ...).
    pub fonts: Vec<fonts::FontFile>,
    /// Also fall back to the machine's fonts (after `fonts`).
    pub system_fonts: bool,
    /// Bearer tokens that may write badge values; none means writes are off.
    pub api_tokens: Vec<String>,
    /// Keys for signed URLs (`require_signature`): the first signs, all
    /// verify, so a key can be rotated out. Never logged.
    pub url_signing_keys: Vec<String>,
    /// The embedded database (SQLite) where badge values and history are
    /// kept across restarts; null keeps them in memory only.
    pub database: Option<PathBuf>,
    /// A state file of an earlier release: if it exists at startup, its
    /// values are imported into `database` and it is renamed `*.migrated`.
    pub state_file: Option<PathBuf>,
    /// Badges at most (each written name is one).
    pub max_badges: usize,
    /// Live badge looks chosen by the URL (template, scale, logo, logo
    /// colour) at most, all badges together; a badge's own look is not one.
    pub max_badge_looks: usize,
    /// Live board channels (a board at a scale) at most.
    pub max_board_channels: usize,
    /// Live camera size channels (a camera at one of its `sizes`) at most.
    pub max_camera_size_channels: usize,
    /// Live looks of one badge at most, so one badge's anonymous looks
    /// cannot take every place, and a write redraws a bounded number.
    pub max_looks_per_badge: usize,
    /// Numeric values kept per badge, for sparklines.
    pub history_len: usize,
    /// API request bodies larger than this get a 413.
    pub max_body_bytes: usize,
    /// Badges declared up front: they exist (showing "no value") before their
    /// first write, with their template and label.
    pub badges: BTreeMap<String, BadgeConfig>,
    /// Origins (`https://forum.example.org`) whose pages may embed images;
    /// empty means any.
    pub allowed_referers: Vec<Origin>,
    /// With `allowed_referers` set, also refuse requests carrying no Referer.
    pub require_referer: bool,
    /// Origins (`https://dash.example.org`, or `"*"` for any) whose pages
    /// may read the JSON API's answers in a browser (CORS); empty: none.
    /// Live images always allow any origin.
    pub cors_allow_origins: Vec<String>,
    /// User-Agent substrings of fetchers that cannot hold a stream (image
    /// proxies, link previewers): they get one plain image.
    pub single_image_user_agents: Vec<String>,
    /// User-Agent substrings of crawlers (search engines, link previews):
    /// they get one plain image and are never counted.
    pub bot_user_agents: Vec<String>,
    /// User-Agent substrings of non-browser readers (ffmpeg, OpenCV, ...):
    /// they get the framing where each part is complete by its own length.
    pub reader_user_agents: Vec<String>,
    /// User-Agent substrings of browsers that let a left page's live image
    /// go only when more data for it arrives (Firefox: at the second part).
    pub departure_resend_user_agents: Vec<String>,
    /// Such viewers get the latest frame again this often when nothing
    /// changed, so they leave the count within about twice this.
    pub departure_resend_interval_ms: u64,
    /// Camera streams by name (`/camera/{name}.mjpg`).
    pub cameras: BTreeMap<String, CameraConfig>,
    /// The camera `/stream`, `/snapshot` and `/?action=stream|snapshot`
    /// serve (null: the first camera by name).
    pub default_camera: Option<String>,
    /// Limits for every stream (a camera's own `limits` replace them); URL
    /// query parameters may tighten them, never loosen.
    pub client_limits: LimitsConfig,
    /// An on-demand camera's source stops this long after its last viewer or snapshot.
    pub camera_idle_stop_ms: u64,
    /// A starting camera's first viewer waits this long for a real frame
    /// before the stream begins with a "connecting" frame.
    pub camera_start_wait_ms: u64,
    /// The longest `?max_delay=` a snapshot may wait for a fresh frame.
    pub snapshot_max_delay_ms: u64,
    /// The image-pull page fetches snapshots no faster than this.
    pub pull_interval_ms: u64,
    /// One-off renders (static badges, `?once`) running at once at most;
    /// they run off the async threads.
    pub max_concurrent_renders: usize,
    /// How long a one-off render may wait for a free slot before the
    /// request gets `503` + `Retry-After`.
    pub render_queue_ms: u64,
    /// Test hooks (`/debug/panic...`) that force panics; never in production.
    pub debug_endpoints: bool,
    /// Cluster mode: several instances count viewers as one, through Redis
    /// (null: this instance alone).
    pub cluster: Option<ClusterConfig>,
    /// HTTPS (HTTP/2 and HTTP/1.1) on a listener of its own (null: none).
    pub tls: Option<TlsConfig>,
    /// HTTP/2 streams one connection may have open at once (what the
    /// server announces as SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_streams_per_connection: u32,
    /// HTTP/2 keep-alive PINGs: sent after this long without a frame from
    /// the client; unanswered within `http2_keepalive_timeout_ms`, the
    /// connection and every stream on it end.
    pub http2_keepalive_interval_ms: u64,
    pub http2_keepalive_timeout_ms: u64,
    /// Hosts (`host` or `host:port`) polled badge sources may fetch from;
    /// empty: nothing is fetched.
    pub allowed_fetch_hosts: Vec<String>,
    /// Boards by name (`/board/{name}.png`).
    pub boards: BTreeMap<String, BoardConfig>,
    /// Rooms with settings of their own (`count: "addresses"`); any other
    /// room counts streams.
    pub rooms: BTreeMap<String, RoomConfig>,
    /// When a room's statistics day starts, `HH:MM` in UTC.
    pub day_starts_at: String,
    /// Peers (addresses or CIDR blocks) whose `client_address_header`
    /// names the client; anyone else's is ignored.
    pub trusted_proxies: Vec<Cidr>,
    /// The one header a trusted proxy names the client in:
    /// `"x-forwarded-for"` or `"forwarded"`; the other is never read.
    pub client_address_header: ClientAddressHeader,
    /// Distinct viewers counted per room and day at most; past it
    /// `unique_today` stops growing and says so.
    pub max_unique_per_room: usize,
    /// How often each room's count is sampled into its 24 h history and
    /// the room figures are saved.
    pub room_sample_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://host:port[/db]` of the Redis that holds the shared counts.
    pub redis_url: String,
    /// An instance that stops renewing for this long leaves every count.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// How often an instance renews its lease.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
}

fn default_lease_ms() -> u64 {
    3000
}

fn default_heartbeat_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadgeConfig {
    /// Template name; default `flat`.
    #[serde(default)]
    pub template: Option<String>,
    /// Label shown until a write sets one; default: the badge's name.
    #[serde(default)]
    pub label: Option<String>,
    /// Where framecast fetches the value itself (none: values are written).
    #[serde(default)]
    pub source: Option<PollConfig>,
    /// Only signed URLs (`exp`, `sig`) may show it.
    #[serde(default)]
    pub require_signature: bool,
}

impl Config {
    /// The embedded defaults alone.
    pub fn embedded() -> Config {
        Self::from_overrides(Value::Object(Default::default())).expect("embedded default config is valid")
    }

    /// Defaults overlaid with the JSON file at `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Defaults overlaid with a JSON document.
    pub fn parse(text: &str) -> Result<Config, String> {
        let overrides: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        Self::from_overrides(overrides)
    }

    fn from_overrides(overrides: Value) -> Result<Config, String> {
        let Value::Object(overrides) = overrides else {
            return Err("the config must be a JSON object".into());
        };
        let mut merged: Value = serde_json::from_str(DEFAULT_CONFIG).expect("embedded JSON parses");
        let map = merged.as_object_mut().expect("embedded config is an object");
        map.extend(overrides);
        // The error names the key path (`cameras.porch.source.url`), not
        // just what was wrong.
        let config: Config = serde_path_to_error::deserialize(merged).map_err(|e| match e.path().to_string() {
            path if path == "." => e.inner().to_string(),
            path => format!("{path}: {}", e.inner()),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Whether a signed URL is needed for `resource` (`camera/NAME`,
    /// `badge/NAME`, `board/NAME`, `online/ROOM`).
    pub fn requires_signature(&self, resource: &str) -> bool {
        match resource.split_once('/') {
            Some(("camera", n)) => self.cameras.get(n).is_some_and(|c| c.require_signature),
            Some(("badge", n)) => self.badges.get(n).is_some_and(|c| c.require_signature),
            Some(("board", n)) => self.boards.get(n).is_some_and(|c| c.require_signature),
            Some(("online", n)) => self.rooms.get(n).is_some_and(|c| c.require_signature),
            _ => false,
        }
    }

    fn requires_any_signature(&self) -> bool {
        self.cameras.values().any(|c| c.require_signature)
            || self.badges.values().any(|c| c.require_signature)
            || self.boards.values().any(|c| c.require_signature)
            || self.rooms.values().any(|c| c.require_signature)
    }

    /// Every top-level number in the config, its value and its accepted
    /// range: checked at load so nothing downstream can overflow (`Instant +
    /// Duration` panics), and the one source `docs/limits.md` is checked
    /// against (`tests/docs.rs`).
    pub fn ranges(&self) -> [(&'static str, u64, (u64, u64)); 36] {
        const MS_HOUR: u64 = 3_600_000;
        [
            ("resend_interval_ms", self.resend_interval_ms, (10, MS_HOUR)),
            ("min_frame_interval_ms", self.min_frame_interval_ms, (0, 60_000)),
            ("max_frame_interval_ms", self.max_frame_interval_ms, (0, 600_000)),
            ("fanout_parts_per_second", self.fanout_parts_per_second, (1, 100_000_000)),
            ("write_stall_timeout_ms", self.write_stall_timeout_ms, (100, MS_HOUR)),
            ("send_buffer_bytes", self.send_buffer_bytes as u64, (0, 64 << 20)),
            // The kernel counts keepalive in whole seconds, at most 32767.
            ("tcp_keepalive_idle_ms", self.tcp_keepalive_idle_ms, (1000, 32_767_000)),
            ("tcp_keepalive_interval_ms", self.tcp_keepalive_interval_ms, (1000, 32_767_000)),
            ("tcp_keepalive_retries", u64::from(self.tcp_keepalive_retries), (1, 127)),
            ("tcp_user_timeout_ms", self.tcp_user_timeout_ms, (0, MS_HOUR)),
            ("header_read_timeout_ms", self.header_read_timeout_ms, (100, 600_000)),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms, (0, 600_000)),
            ("upgrade_drain_max_ms", self.upgrade_drain_max_ms, (0, 604_800_000)),
            ("max_connections", self.max_connections as u64, (1, 1_000_000)),
            ("max_connections_per_ip", self.max_connections_per_ip as u64, (0, 1_000_000)),
            ("max_rooms", self.max_rooms as u64, (1, 1_000_000)),
            ("max_unconfigured_rooms", self.max_unconfigured_rooms as u64, (0, 1_000_000)),
            ("max_badges", self.max_badges as u64, (1, 1_000_000)),
            ("max_badge_looks", self.max_badge_looks as u64, (1, 1_000_000)),
            ("max_board_channels", self.max_board_channels as u64, (1, 100_000)),
            ("max_camera_size_channels", self.max_camera_size_channels as u64, (1, 10_000)),
            ("max_looks_per_badge", self.max_looks_per_badge as u64, (1, 10_000)),
            ("history_len", self.history_len as u64, (1, 10_000)),
            ("max_body_bytes", self.max_body_bytes as u64, (1, 16 << 20)),
            ("camera_idle_stop_ms", self.camera_idle_stop_ms, (0, MS_HOUR)),
            ("camera_start_wait_ms", self.camera_start_wait_ms, (0, 60_000)),
            ("snapshot_max_delay_ms", self.snapshot_max_delay_ms, (0, 600_000)),
            ("pull_interval_ms", self.pull_interval_ms, (20, MS_HOUR)),
            ("max_concurrent_renders", self.max_concurrent_renders as u64, (1, 256)),
            ("render_queue_ms", self.render_queue_ms, (0, 10_000)),
            ("departure_resend_interval_ms", self.departure_resend_interval_ms, (100, MS_HOUR)),
            ("max_streams_per_connection", u64::from(self.max_streams_per_connection), (1, 1000)),
            ("http2_keepalive_interval_ms", self.http2_keepalive_interval_ms, (1000, MS_HOUR)),
            ("http2_keepalive_timeout_ms", self.http2_keepalive_timeout_ms, (1000, MS_HOUR)),
            ("max_unique_per_room", self.max_unique_per_room as u64, (1, 10_000_000)),
            ("room_sample_ms", self.room_sample_ms, (1000, 60_000)),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        let ranges = self.ranges();
        for (key, value, range) in ranges {
            bounds::within(key, value, range)?;
        }
        for (name, badge) in &self.badges {
            if !crate::names::valid_name(name) {
                return Err(format!("badges: {name:?} is invalid: {}", crate::names::invalid_name("badge")));
            }
            if let Some(source) = &badge.source {
                source.validate(&format!("badges.{name}.source"), &self.allowed_fetch_hosts)?;
            }
        }
        rooms::day_start_seconds(&self.day_starts_at)?;
        fonts::validate(&self.fonts)?;
        if let Some(name) = self.rooms.keys().find(|n| !crate::names::valid_name(n)) {
            return Err(format!("rooms: {name:?} is invalid: {}", crate::names::invalid_name("room")));
        }
        for (name, board) in &self.boards {
            if !crate::names::valid_name(name) {
                return Err(format!("boards: {name:?} is invalid: {}", crate::names::invalid_name("board")));
            }
            board.validate(&format!("boards.{name}"))?;
            privacy::board_keeps_tiles_private(self, name, board)?;
        }
        if let Some(key) = self.url_signing_keys.iter().find(|k| k.len() < 16) {
            return Err(format!("url_signing_keys: a key of {} characters is too short: use 16 or more", key.len()));
        }
        if self.url_signing_keys.is_empty() && self.requires_any_signature() {
            return Err("require_signature is set, but url_signing_keys is empty: add a key (16+ characters)".into());
        }
        if let Some(token) = self.api_tokens.iter().find(|t| t.len() < 16) {
            // Never echo the token itself.
            return Err(format!("api_tokens: a token of {} characters is too short: use 16 or more", token.len()));
        }
        for (name, camera) in &self.cameras {
            camera.validate(name)?;
            privacy::camera_shows_nothing_private(self, name, camera)?;
        }
        if let Some(name) = self.default_camera.as_ref().filter(|n| !self.cameras.contains_key(*n)) {
            return Err(format!("default_camera: {name:?} is not a configured camera"));
        }
        self.client_limits.validate("client_limits")?;
        if self.max_frame_interval_ms < self.min_frame_interval_ms {
            return Err(format!(
                "max_frame_interval_ms: {} is invalid: it must be at least min_frame_interval_ms ({})",
                self.max_frame_interval_ms, self.min_frame_interval_ms
            ));
        }
        if let Some(cluster) = &self.cluster {
            if !cluster.redis_url.starts_with("redis://") {
                return Err(format!("cluster.redis_url: {:?} is invalid: use redis://host:port", cluster.redis_url));
            }
            bounds::within("cluster.heartbeat_ms", cluster.heartbeat_ms, (100, 60_000))?;
            bounds::within("cluster.lease_ms", cluster.lease_ms, (2 * cluster.heartbeat_ms, 600_000))
                .map_err(|e| format!("{e} (at least twice heartbeat_ms)"))?;
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        for entry in &self.cors_allow_origins {
            // The exact form browsers send, so a match is a plain comparison.
            if entry != "*" && Origin::of(entry).is_none_or(|o| o.as_str() != entry) {
                return Err(format!(
                    "cors_allow_origins: {entry:?} is invalid: use \"*\" or an origin like \"https://dash.example.org\" \
                     (lower case, no path, no default port)"
                ));
            }
        }
        if self.require_referer && self.allowed_referers.is_empty() {
            return Err("require_referer: true is invalid without allowed_referers".into());
        }
        Ok(())
    }

    pub fn resend_interval(&self) -> Duration {
        Duration::from_millis(self.resend_interval_ms)
    }
    pub fn min_frame_interval(&self) -> Duration {
        Duration::from_millis(self.min_frame_interval_ms)
    }
    pub fn write_stall_timeout(&self) -> Duration {
        Duration::from_millis(self.write_stall_timeout_ms)
    }
    pub fn camera_idle_stop(&self) -> Duration {
        Duration::from_millis(self.camera_idle_stop_ms)
    }
    pub fn camera_start_wait(&self) -> Duration {
        Duration::from_millis(self.camera_start_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_load() {
        let c = Config::embedded();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.resend_interval(), Duration::from_secs(10));
    }

    #[test]
    fn overrides_replace_only_named_keys() {
        let c = Config::parse(r#"{"resend_interval_ms": 1500}"#).unwrap();
        assert_eq!(c.resend_interval_ms, 1500);
        assert_eq!(c.max_rooms, Config::embedded().max_rooms);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse(r#"{"resend_intervall_ms": 1}"#).unwrap_err();
        assert!(err.contains("resend_intervall_ms"), "{err}");
    }

    #[test]
    fn a_board_of_private_tiles_is_private() {
        let board = |private: bool| {
            format!(
                r#"{{"url_signing_keys": ["0123456789abcdef"], "badges": {{"pay": {{"require_signature": true}}}},
                    "rooms": {{"staff": {{"require_signature": true}}}},
                    "boards": {{"wall": {{"tiles": [{{"text": "x"}}, {{"room": "staff"}}], "require_signature": {private}}}}}}}"#
            )
        };
        let err = Config::parse(&board(false)).unwrap_err();
        assert!(err.contains("boards.wall.tiles[1]") && err.contains("room \"staff\""), "{err}");
        assert!(Config::parse(&board(true)).is_ok());
        let err = Config::parse(&board(false).replace(r#"{"room": "staff"}"#, r#"{"badge": "pay"}"#)).unwrap_err();
        assert!(err.contains("badge \"pay\"") && err.contains("board \"wall\""), "{err}");
    }

    #[test]
    fn bad_values_name_key_and_reason() {
        let err = Config::parse(r#"{"resend_interval_ms": 0}"#).unwrap_err();
        assert!(err.contains("resend_interval_ms: 0 is out of range: use 10 to 3600000"), "{err}");
        let err = Config::parse(r#"{"resend_interval_ms": 18446744073709551615}"#).unwrap_err();
        assert!(err.contains("resend_interval_ms"), "{err}");
        let err = Config::parse(r#"{"client_limits": {"max_fps": 1e-20}}"#).unwrap_err();
        assert!(err.contains("client_limits.max_fps") && err.contains("out of range"), "{err}");
        let err = Config::parse(r#"{"allowed_referers": ["forum"]}"#).unwrap_err();
        assert!(err.contains("allowed_referers"), "{err}");
        let err = Config::parse(r#"{"tcp_keepalive_interval_ms": 500}"#).unwrap_err();
        assert!(err.contains("tcp_keepalive_interval_ms: 500 is out of range"), "{err}");
        let err = Config::parse(r#"{"max_looks_per_badge": 0}"#).unwrap_err();
        assert!(err.contains("max_looks_per_badge: 0 is out of range: use 1 to 10000"), "{err}");
        let err = Config::parse(r#"{"max_camera_size_channels": 10001}"#).unwrap_err();
        assert!(err.contains("max_camera_size_channels"), "{err}");
        let err = Config::parse(r#"{"client_address_header": "x-real-ip"}"#).unwrap_err();
        assert!(err.contains("client_address_header"), "{err}");
        let err = Config::parse(r#"{"max_unconfigured_rooms": 2000000}"#).unwrap_err();
        assert!(err.contains("max_unconfigured_rooms: 2000000 is out of range"), "{err}");
        let err = Config::parse(r#"{"listen": "nope"}"#).unwrap_err();
        assert!(err.contains("invalid"), "{err}");
    }
}
