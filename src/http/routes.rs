//! Request → handler. Anything unknown is a 404; a known path with a method
//! it does not take is a 405 naming the ones it does.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::ORIGIN;
use hyper::{Method, Request, StatusCode};

use super::RequestBody;
use super::response::{self, HttpResponse};
use super::{api, badge_api, badges, boards, camera, cors, demo, online, private, signed, static_badge, viewers};
use crate::app::App;
use crate::metrics::{Status, metrics};
use crate::panics;
use crate::push::gauges::ViewerGauges;
use crate::sources::room_gauges::RoomGauges;

enum Route {
    Demo,
    Health,
    Metrics,
    Online(String, Format),
    Channels,
    Channel(String),
    ChannelViewers(String),
    Viewer(String),
    Badge(String, Format),
    Board(String),
    StaticBadge(String, Format),
    BadgeList,
    BadgeApi(String),
    CameraStream(String),
    CameraSnapshot(String),
    CameraPull(String),
    Cameras,
    CameraApi(String),
    /// µStreamer's `/stream` and `/snapshot` (mjpg-streamer's are `/?action=…`):
    /// the default camera.
    DefaultStream,
    DefaultSnapshot,
    /// Test hooks, only with `debug_endpoints`: a handler that panics, and
    /// a camera producer made to panic on its next pass.
    DebugPanic,
    DebugPanicProducer(String),
}

/// What a badge URL's extension asks for: a live PNG stream (or one PNG),
/// or one SVG (browsers do not paint SVG parts of a live stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

const READ: &[Method] = &[Method::GET, Method::HEAD];
const DELETE_ONLY: &[Method] = &[Method::DELETE];
const READ_WRITE: &[Method] = &[Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE];

impl Route {
    fn parse(path: &str) -> Option<Route> {
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
            "/" | "/index.html" => Route::Demo,
            "/healthz" => Route::Health,
            "/metrics" => Route::Metrics,
            "/online.png" => Route::Online("default".into(), Format::Png),
            "/online.svg" => Route::Online("default".into(), Format::Svg),
            "/api/v1/channels" => Route::Channels,
            "/api/v1/badges" => Route::BadgeList,
            "/api/v1/cameras" => Route::Cameras,
            "/stream" => Route::DefaultStream,
            "/snapshot" => Route::DefaultSnapshot,
            "/debug/panic" => Route::DebugPanic,
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
                    Route::BadgeApi(name.to_string())
                } else if let Some(name) = path.strip_prefix("/debug/panic/camera/") {
                    Route::DebugPanicProducer(name.to_string())
                } else {
                    return None;
                }
            }
        })
    }

    fn methods(&self) -> &'static [Method] {
        match self {
            Route::BadgeApi(_) => READ_WRITE,
            Route::Viewer(_) => DELETE_ONLY,
            _ => READ,
        }
    }
}

/// A resource with `require_signature` needs a valid signed URL; the time
/// it has left goes with the request (a stream ends then).
fn check_signature(app: &App, req: &mut Request<RequestBody>) -> Result<(), signed::Refused> {
    let (path, query) = (req.uri().path(), req.uri().query());
    let default_camera = || camera::default_name(app);
    let Some(resource) = signed::resource(path, query, default_camera) else { return Ok(()) };
    if !app.config.requires_signature(&resource) {
        return Ok(());
    }
    let left = signed::verify(&app.config.url_signing_keys, &resource, query)?;
    req.extensions_mut().insert(signed::ValidFor(left));
    Ok(())
}

fn query_value(req: &Request<RequestBody>, key: &str) -> Option<String> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// Answers one request. A panic anywhere in routing or a handler is caught
/// here: the client gets a 500, the log one line with the request line, and
/// `framecast_panics_total{where="handler"}` counts it; the connection and
/// the process serve on.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    Ok(respond(&app, req.map(BodyExt::boxed)).await)
}

/// `handle` for a request with any body.
pub async fn respond(app: &Arc<App>, req: Request<RequestBody>) -> HttpResponse {
    let request_line = format!("{} {}", req.method(), req.uri());
    // The JSON API's CORS headers depend on the request's `Origin`.
    let api = cors::is_api(req.uri().path());
    let origin = api.then(|| req.headers().get(ORIGIN).cloned()).flatten();
    let preflight = api.then(|| cors::preflight(&app.config, req.method(), req.headers())).flatten();
    let mut response = match preflight {
        Some(preflight) => preflight,
        None => match panics::catch("handler", request_line, route(app, req)).await {
            Ok(response) => response,
            Err(()) => response::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error; it was logged"),
        },
    };
    if api {
        cors::apply(&app.config, origin.as_ref(), &mut response);
    }
    metrics().responses.get_or_create(&Status { status: response.status().as_u16() }).inc();
    response
}

async fn route(app: &Arc<App>, mut req: Request<RequestBody>) -> HttpResponse {
    let route = Route::parse(req.uri().path())
        .filter(|r| app.config.debug_endpoints || !matches!(r, Route::DebugPanic | Route::DebugPanicProducer(_)));
    let Some(route) = route else {
        return response::text(StatusCode::NOT_FOUND, "not found");
    };
    if !route.methods().contains(req.method()) {
        let allow = match route.methods() {
            m if m == READ_WRITE => "GET, HEAD, PUT, POST, DELETE",
            m if m == DELETE_ONLY => "DELETE",
            _ => "GET, HEAD",
        };
        return response::method_not_allowed(allow);
    }
    let app = &**app;
    if let Err(refused) = check_signature(app, &mut req) {
        return response::text(StatusCode::FORBIDDEN, refused.to_string());
    }
    match route {
        // mjpg-streamer's URLs: `/?action=stream`, `/?action=snapshot`.
        Route::Demo => match query_value(&req, "action").as_deref() {
            Some("stream") => camera::default_stream(app, &req).await,
            Some("snapshot") => camera::default_snapshot(app, &req).await,
            _ => demo::index(app, &req),
        },
        Route::DefaultStream => camera::default_stream(app, &req).await,
        Route::DefaultSnapshot => camera::default_snapshot(app, &req).await,
        Route::Health => response::text(StatusCode::OK, "ok"),
        Route::Metrics => {
            let shown = private::metrics_channels(app, &req);
            let viewers = Box::new(ViewerGauges { registry: app.registry.clone(), shown });
            let rooms = Box::new(RoomGauges(app.online.stats.clone()));
            response::prometheus(metrics().encode(vec![viewers, rooms]))
        }
        Route::Online(room, format) => online::serve(app, &room, format, &req).await,
        Route::Channels => api::list(app, &req),
        Route::Channel(name) => api::one(app, &name, &req),
        Route::ChannelViewers(name) => viewers::list(app, &name, &req),
        Route::Viewer(id) => viewers::kick(app, &id, &req),
        Route::Badge(stem, format) => badges::serve(app, &stem, format, &req).await,
        Route::Board(stem) => boards::serve(app, &stem, &req).await,
        Route::StaticBadge(content, format) => static_badge::serve(app, &content, format, &req).await,
        Route::BadgeList => badge_api::list(app, &req),
        Route::BadgeApi(name) => badge_api::one(app, &name, req).await,
        Route::CameraStream(name) => camera::stream(app, &name, &req).await,
        Route::CameraSnapshot(name) => camera::snapshot(app, &name, &req).await,
        Route::CameraPull(name) => camera::pull_page(app, &name, &req),
        Route::Cameras => api::cameras(app, &req),
        Route::CameraApi(name) => api::camera(app, &name, &req),
        Route::DebugPanic => panic!("forced by /debug/panic"),
        Route::DebugPanicProducer(name) => match app.cameras.get(&name) {
            Some(camera) => {
                camera.panic_on_next_pass();
                response::text(StatusCode::OK, "the producer will panic")
            }
            None => response::text(StatusCode::NOT_FOUND, "no such camera"),
        },
    }
}
