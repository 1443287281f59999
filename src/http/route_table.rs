//! The route table: a request's path (and, for mjpg-streamer's `/?action=`,
//! its query) → the `Route`, and what each route serves in the sense of
//! signatures: its `Resource` (`camera/NAME`, `badge/NAME`, `board/NAME`,
//! `online/ROOM`) in a `Form` (`.mjpg`, `.jpg`, ...). Dispatch, the
//! signature check and `framecast sign` all read this one parse, so the
//! router and the signer cannot disagree about what a URL shows.

use std::fmt;

use hyper::Method;

use super::badges::split_scale;
use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The demo page (`/`, `/index.html` without `?action=`).
    Demo,
    Health,
    Metrics,
    Online(String, Format),
    Channels,
    Channel(String),
    ChannelViewers(String),
    Viewer(String),
    /// The stem: the name, perhaps with `@Nx`.
    Badge(String, Format),
    Board(String),
    StaticBadge(String, Format),
    BadgeList,
    BadgeApi(String),
    /// `/api/v1/badges/NAME/shields`: the value in shields.io's endpoint schema.
    BadgeShields(String),
    CameraStream(String),
    CameraSnapshot(String),
    CameraPull(String),
    Cameras,
    CameraApi(String),
    /// `POST /api/v1/admin/reload` (API token): re-reads the config file.
    AdminReload,
    /// The default camera at µStreamer's `/stream` and `/snapshot` and
    /// mjpg-streamer's `/?action=stream|snapshot` (`/index.html` too).
    DefaultStream,
    /// µStreamer's `/state`: the default camera's source and clients, as JSON.
    DefaultState,
    DefaultSnapshot,
    /// Test hooks, only with `debug_endpoints`: a handler that panics, and
    /// a camera producer made to panic on its next pass.
    DebugPanic,
    DebugPanicProducer(String),
    /// Test hook, only with `debug_endpoints`: moves the room-figures clock
    /// forward (`?advance_s=`), so day rollover is tested without waiting a day.
    DebugClock,
}

/// What a badge URL's extension asks for: a live PNG stream (or one PNG),
/// or one SVG (browsers do not paint SVG parts of a live stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

/// The kinds of resource a signature can be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Camera,
    Badge,
    Board,
    Online,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Camera => "camera",
            Kind::Badge => "badge",
            Kind::Board => "board",
            Kind::Online => "online",
        }
    }

    /// Every form a resource of this kind is served in.
    pub fn forms(self) -> &'static [Form] {
        match self {
            Kind::Camera => &[Form::Mjpg, Form::Jpg, Form::Html],
            Kind::Badge | Kind::Online => &[Form::Png, Form::Svg],
            Kind::Board => &[Form::Png],
        }
    }
}

/// A signable resource: `camera/door`, `badge/build`, `board/ops`, `online/staff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: Kind,
    pub name: String,
}

impl Resource {
    /// `camera/door` → the camera `door`; `None` for any other text.
    pub fn parse(text: &str) -> Option<Resource> {
        let (kind, name) = text.split_once('/')?;
        let kind = match kind {
            "camera" => Kind::Camera,
            "badge" => Kind::Badge,
            "board" => Kind::Board,
            "online" => Kind::Online,
            _ => return None,
        };
        Some(Resource { kind, name: name.to_string() })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

/// The form a route serves its resource in, named by its extension
/// (`/stream` is `mjpg`, `/snapshot` is `jpg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Form {
    Mjpg,
    Jpg,
    Html,
    Png,
    Svg,
}

impl Form {
    pub fn ext(self) -> &'static str {
        match self {
            Form::Mjpg => "mjpg",
            Form::Jpg => "jpg",
            Form::Html => "html",
            Form::Png => "png",
            Form::Svg => "svg",
        }
    }

    pub fn parse(ext: &str) -> Option<Form> {
        [Form::Mjpg, Form::Jpg, Form::Html, Form::Png, Form::Svg].into_iter().find(|f| f.ext() == ext)
    }
}

impl From<Format> for Form {
    fn from(format: Format) -> Form {
        match format {
            Format::Png => Form::Png,
            Format::Svg => Form::Svg,
        }
    }
}

pub const READ: &[Method] = &[Method::GET, Method::HEAD];
pub const DELETE_ONLY: &[Method] = &[Method::DELETE];
pub const POST_ONLY: &[Method] = &[Method::POST];
pub const READ_WRITE: &[Method] = &[Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE];

/// The camera the drop-in URLs serve: `default_camera`, else the first
/// configured (cameras are kept in name order).
pub fn default_camera(config: &Config) -> Option<&str> {
    config.default_camera.as_deref().or_else(|| config.cameras.keys().next().map(String::as_str))
}

impl Route {
    /// The route `path` names; `query` matters only to `/?action=`.
    pub fn parse(path: &str, query: Option<&str>) -> Option<Route> {
        let png = |prefix: &str| path.strip_prefix(prefix).and_then(|r| r.strip_suffix(".png")).map(str::to_string);
        let image = |prefix: &str| {
            let rest = path.strip_prefix(prefix)?;
            let (stem, format) = match rest.rsplit_once('.')? {
                (stem, "png") => (stem, Format::Png),
                (stem, "svg") => (stem, Format::Svg),
                _ => return None,
            };
            Some((stem.to_string(), format))
        };
        Some(match path {
            // mjpg-streamer's URLs: `/?action=stream`, `/?action=snapshot`
            // (the first `action` counts).
            "/" | "/index.html" => {
                let action = form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == "action");
                match action.as_ref().map(|(_, v)| &**v) {
                    Some("stream") => Route::DefaultStream,
                    Some("snapshot") => Route::DefaultSnapshot,
                    _ => Route::Demo,
                }
            }
            "/healthz" => Route::Health,
            "/metrics" => Route::Metrics,
            "/online.png" => Route::Online("default".into(), Format::Png),
            "/online.svg" => Route::Online("default".into(), Format::Svg),
            "/api/v1/channels" => Route::Channels,
            "/api/v1/badges" => Route::BadgeList,
            "/api/v1/cameras" => Route::Cameras,
            "/api/v1/admin/reload" => Route::AdminReload,
            "/stream" => Route::DefaultStream,
            "/snapshot" => Route::DefaultSnapshot,
            "/state" => Route::DefaultState,
            "/debug/panic" => Route::DebugPanic,
            "/debug/clock" => Route::DebugClock,
            _ => {
                if let Some((room, format)) = image("/online/") {
                    Route::Online(room, format)
                } else if let Some((content, format)) = image("/badge/static/") {
                    Route::StaticBadge(content, format)
                } else if let Some((stem, format)) = image("/badge/") {
                    Route::Badge(stem, format)
                } else if let Some(stem) = png("/board/") {
                    Route::Board(stem)
                } else if let Some(name) = path.strip_prefix("/api/v1/channels/") {
                    match name.strip_suffix("/viewers") {
                        Some(channel) => Route::ChannelViewers(channel.to_string()),
                        None => Route::Channel(name.to_string()),
                    }
                } else if let Some(id) = path.strip_prefix("/api/v1/viewers/") {
                    Route::Viewer(id.to_string())
                } else if let Some(file) = path.strip_prefix("/camera/") {
                    match file.rsplit_once('.') {
                        Some((name, "mjpg")) => Route::CameraStream(name.to_string()),
                        Some((name, "jpg")) => Route::CameraSnapshot(name.to_string()),
                        Some((name, "html")) => Route::CameraPull(name.to_string()),
                        _ => return None,
                    }
                } else if let Some(name) = path.strip_prefix("/api/v1/cameras/") {
                    Route::CameraApi(name.to_string())
                } else if let Some(name) = path.strip_prefix("/api/v1/badges/") {
                    match name.strip_suffix("/shields") {
                        Some(badge) => Route::BadgeShields(badge.to_string()),
                        None => Route::BadgeApi(name.to_string()),
                    }
                } else if let Some(name) = path.strip_prefix("/debug/panic/camera/") {
                    Route::DebugPanicProducer(name.to_string())
                } else {
                    return None;
                }
            }
        })
    }

    pub fn methods(&self) -> &'static [Method] {
        match self {
            Route::BadgeApi(_) => READ_WRITE,
            Route::Viewer(_) => DELETE_ONLY,
            Route::AdminReload => POST_ONLY,
            _ => READ,
        }
    }

    /// The resource this route shows and the form it shows it in: what a
    /// signature must be for when the resource has `require_signature`.
    /// `None` is public by nature. No wildcard: a new route must say.
    pub fn serves(&self, default_camera: Option<&str>) -> Option<(Resource, Form)> {
        let of = |kind, name: &str, form| Some((Resource { kind, name: name.to_string() }, form));
        match self {
            Route::CameraStream(name) => of(Kind::Camera, name, Form::Mjpg),
            Route::CameraSnapshot(name) => of(Kind::Camera, name, Form::Jpg),
            Route::CameraPull(name) => of(Kind::Camera, name, Form::Html),
            Route::DefaultStream => of(Kind::Camera, default_camera?, Form::Mjpg),
            Route::DefaultSnapshot => of(Kind::Camera, default_camera?, Form::Jpg),
            // The name as the handler reads it: the stem without `@Nx`.
            Route::Badge(stem, format) => of(Kind::Badge, split_scale(stem).0, (*format).into()),
            Route::Board(stem) => of(Kind::Board, split_scale(stem).0, Form::Png),
            Route::Online(room, format) => of(Kind::Online, room, (*format).into()),
            // Public by nature: the page, health, the metrics text, static
            // badges (all in the URL), debug hooks (off unless configured),
            // and the JSON API, which guards private data itself (tokens).
            Route::Demo
            | Route::Health
            | Route::Metrics
            | Route::StaticBadge(..)
            | Route::DebugPanic
            | Route::DebugPanicProducer(_)
            | Route::DebugClock
            | Route::Channels
            | Route::Channel(_)
            | Route::ChannelViewers(_)
            | Route::Viewer(_)
            | Route::BadgeList
            | Route::BadgeApi(_)
            | Route::BadgeShields(_)
            | Route::DefaultState
            | Route::Cameras
            | Route::CameraApi(_)
            | Route::AdminReload => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One URL of every route, and what it serves (`None`: public by nature).
    const EVERY_ROUTE: &[(&str, Option<(&str, Form)>)] = &[
        ("/", None),
        ("/index.html?action=other", None),
        ("/?action=stream", Some(("camera/door", Form::Mjpg))),
        ("/index.html?action=stream", Some(("camera/door", Form::Mjpg))),
        ("/?action=snapshot&action=stream", Some(("camera/door", Form::Jpg))),
        ("/index.html?action=snapshot", Some(("camera/door", Form::Jpg))),
        ("/stream", Some(("camera/door", Form::Mjpg))),
        ("/snapshot?width=320", Some(("camera/door", Form::Jpg))),
        ("/camera/door.mjpg", Some(("camera/door", Form::Mjpg))),
        ("/camera/door.jpg", Some(("camera/door", Form::Jpg))),
        ("/camera/door.html", Some(("camera/door", Form::Html))),
        ("/badge/build.png", Some(("badge/build", Form::Png))),
        ("/badge/build@2x.png", Some(("badge/build", Form::Png))),
        ("/badge/build.svg", Some(("badge/build", Form::Svg))),
        ("/board/ops.png", Some(("board/ops", Form::Png))),
        ("/board/ops@2x.png", Some(("board/ops", Form::Png))),
        ("/online.png", Some(("online/default", Form::Png))),
        ("/online.svg", Some(("online/default", Form::Svg))),
        ("/online/staff.png", Some(("online/staff", Form::Png))),
        ("/online/staff.svg", Some(("online/staff", Form::Svg))),
        ("/badge/static/a-b-green.png", None),
        ("/healthz", None),
        ("/metrics", None),
        ("/api/v1/channels", None),
        ("/api/v1/channels/online/staff", None),
        ("/api/v1/badges/build/shields", None),
        ("/state", None),
        ("/api/v1/channels/camera/door/viewers", None),
        ("/api/v1/viewers/abc", None),
        ("/api/v1/badges", None),
        ("/api/v1/badges/build", None),
        ("/api/v1/cameras", None),
        ("/api/v1/cameras/door", None),
        ("/api/v1/admin/reload", None),
        ("/debug/panic", None),
        ("/debug/panic/camera/door", None),
        ("/debug/clock", None),
    ];

    /// Every variant, named: a variant added to `Route` does not compile
    /// here until it is listed, and then fails until `EVERY_ROUTE` has a URL
    /// of it, stating what it serves.
    fn variant(route: &Route) -> &'static str {
        match route {
            Route::Demo => "Demo",
            Route::Health => "Health",
            Route::Metrics => "Metrics",
            Route::Online(..) => "Online",
            Route::Channels => "Channels",
            Route::Channel(_) => "Channel",
            Route::ChannelViewers(_) => "ChannelViewers",
            Route::Viewer(_) => "Viewer",
            Route::Badge(..) => "Badge",
            Route::Board(_) => "Board",
            Route::StaticBadge(..) => "StaticBadge",
            Route::BadgeList => "BadgeList",
            Route::BadgeApi(_) => "BadgeApi",
            Route::BadgeShields(_) => "BadgeShields",
            Route::DefaultState => "DefaultState",
            Route::CameraStream(_) => "CameraStream",
            Route::CameraSnapshot(_) => "CameraSnapshot",
            Route::CameraPull(_) => "CameraPull",
            Route::Cameras => "Cameras",
            Route::CameraApi(_) => "CameraApi",
            Route::AdminReload => "AdminReload",
            Route::DefaultStream => "DefaultStream",
            Route::DefaultSnapshot => "DefaultSnapshot",
            Route::DebugPanic => "DebugPanic",
            Route::DebugPanicProducer(_) => "DebugPanicProducer",
            Route::DebugClock => "DebugClock",
        }
    }
    const VARIANTS: usize = 26;

    #[test]
    fn every_route_states_what_it_serves() {
        let mut seen = std::collections::BTreeSet::new();
        for (url, want) in EVERY_ROUTE {
            let (path, query) = url.split_once('?').map_or((*url, None), |(p, q)| (p, Some(q)));
            let route = Route::parse(path, query).unwrap_or_else(|| panic!("{url} is not a route"));
            seen.insert(variant(&route));
            let got = route.serves(Some("door")).map(|(r, f)| (r.to_string(), f));
            assert_eq!(got, want.map(|(r, f)| (r.to_string(), f)), "{url}");
        }
        assert_eq!(seen.len(), VARIANTS, "a route without a URL in EVERY_ROUTE; seen: {seen:?}");
    }

    #[test]
    fn the_default_camera_is_resolved_once() {
        assert_eq!(Route::parse("/stream", None).unwrap().serves(None), None, "no cameras: nothing to sign");
        let pattern = r#"{"source": {"kind": "pattern"}}"#;
        let two = format!(r#"{{"cameras": {{"b": {pattern}, "a": {pattern}}}}}"#);
        assert_eq!(default_camera(&Config::parse(&two).unwrap()), Some("a"), "the first by name");
        let chosen = format!(r#"{{"cameras": {{"b": {pattern}, "a": {pattern}}}, "default_camera": "b"}}"#);
        assert_eq!(default_camera(&Config::parse(&chosen).unwrap()), Some("b"));
        for form in Kind::Camera.forms().iter().chain(Kind::Badge.forms()) {
            assert_eq!(Form::parse(form.ext()), Some(*form));
        }
        assert_eq!(Form::parse("gif"), None);
    }
}
