//! Request → handler. Anything unknown is a 404; a known path with a method
//! it does not take is a 405 naming the ones it does.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::ORIGIN;
use hyper::{Request, StatusCode};

use super::RequestBody;
use super::response::{self, HttpResponse};
use super::route_table::{self, DELETE_ONLY, POST_ONLY, READ_WRITE, Route};
use super::{
    admin, api, badge_api, badges, boards, camera, cors, demo, online, private, signed, static_badge, ustreamer_state,
    viewers,
};
use crate::app::App;
use crate::metrics::{Status, metrics};
use crate::panics;
use crate::push::gauges::ViewerGauges;
use crate::sources::camera::gauges::CameraGauges;
use crate::sources::room_gauges::RoomGauges;

/// Handlers name badge formats from here; the route table owns them.
pub use super::route_table::Format;

/// A resource with `require_signature` needs a valid signed URL for the
/// resource and form the route serves; the time it has left goes with the
/// request (a stream ends then).
fn check_signature(app: &App, route: &Route, req: &mut Request<RequestBody>) -> Result<(), signed::Refused> {
    let Some((resource, form)) = route.serves(route_table::default_camera(&app.config())) else { return Ok(()) };
    // A room URL that names a member is signed, on a public room too: only
    // a signed member counts as one (`member`).
    let names_member = matches!(route, Route::Online(..)) && super::member::named(req.uri().query());
    if !names_member && !app.config().requires_signature(&resource.to_string()) {
        return Ok(());
    }
    let left = signed::verify(&app.config().url_signing_keys, &resource, form, req.uri().query())?;
    req.extensions_mut().insert(signed::ValidFor(left));
    Ok(())
}

/// Answers one request. A panic anywhere in routing or a handler is caught
/// here: the client gets a 500, the log one line with the request line, and
/// `framecast_panics_total{where="handler"}` counts it; the connection and
/// the process serve on.
/// Which reload a request was checked under.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Epoch(pub u64);

/// Set on every answer while a cluster instance cannot reach Redis.
pub const DEGRADED: &str = "x-framecast-degraded";

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    Ok(respond(&app, req.map(BodyExt::boxed)).await)
}

/// `handle` for a request with any body.
pub async fn respond(app: &Arc<App>, req: Request<RequestBody>) -> HttpResponse {
    let request_line = format!("{} {}", req.method(), req.uri());
    // The JSON API's CORS headers depend on the request's `Origin`.
    let api = cors::is_api(req.uri().path());
    let origin = api.then(|| req.headers().get(ORIGIN).cloned()).flatten();
    let preflight = api.then(|| cors::preflight(&app.config(), req.method(), req.headers())).flatten();
    let mut response = match preflight {
        Some(preflight) => preflight,
        None => match panics::catch("handler", request_line, route(app, req)).await {
            Ok(response) => response,
            Err(()) => response::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error; it was logged"),
        },
    };
    if api {
        cors::apply(&app.config(), origin.as_ref(), &mut response);
    }
    // A cluster instance that cannot reach Redis says so on every answer:
    // the counts in it are this instance's estimate, not the cluster's.
    if app.registry.remote.degraded() {
        response.headers_mut().insert(DEGRADED, hyper::header::HeaderValue::from_static("redis-unreachable"));
    }
    metrics().responses.get_or_create(&Status { status: response.status().as_u16() }).inc();
    response
}

async fn route(app: &Arc<App>, mut req: Request<RequestBody>) -> HttpResponse {
    let route = Route::parse(req.uri().path(), req.uri().query()).filter(|r| {
        app.config().debug_endpoints
            || !matches!(r, Route::DebugPanic | Route::DebugPanicProducer(_) | Route::DebugClock)
    });
    let Some(route) = route else {
        return response::text(StatusCode::NOT_FOUND, "not found");
    };
    if !route.methods().contains(req.method()) {
        let allow = match route.methods() {
            m if m == READ_WRITE => "GET, HEAD, PUT, POST, DELETE",
            m if m == DELETE_ONLY => "DELETE",
            m if m == POST_ONLY => "POST",
            _ => "GET, HEAD",
        };
        return response::method_not_allowed(allow);
    }
    let shared = app.clone();
    let app = &**app;
    // The config this request is checked under (see `App::epoch`).
    req.extensions_mut().insert(Epoch(app.epoch()));
    if let Err(refused) = check_signature(app, &route, &mut req) {
        return response::text(StatusCode::FORBIDDEN, refused.to_string());
    }
    match route {
        Route::Demo => demo::index(app, &req),
        Route::DefaultStream => camera::default_stream(app, &req).await,
        Route::DefaultSnapshot => camera::default_snapshot(app, &req).await,
        Route::Health => response::text(StatusCode::OK, "ok"),
        Route::Metrics => {
            let shown = private::metrics_channels(app, &req);
            // Configured rooms are listed on every instance, with the
            // cluster's count whether or not they are watched here.
            let rooms: Vec<String> =
                app.config().rooms.keys().map(|r| format!("online/{r}")).filter(|c| shown(c)).collect();
            app.online.settle_shown(&rooms).await;
            let cameras = app.cameras.list().into_iter().map(|c| c.info());
            let cameras = cameras.filter(|c| shown(&format!("camera/{}", c.name))).map(|c| (c.name, c.fps)).collect();
            let cameras = Box::new(CameraGauges(cameras));
            let viewers = Box::new(ViewerGauges { registry: app.registry.clone(), shown, always: rooms });
            let rooms = Box::new(RoomGauges(app.online.stats.clone()));
            response::prometheus(metrics().encode(vec![viewers, rooms, cameras]))
        }
        Route::Online(room, format) => online::serve(app, &room, format, &req).await,
        Route::Channels => api::list(app, &req),
        Route::Channel(name) => api::one(app, &name, &req).await,
        Route::ChannelViewers(name) => viewers::list(app, &name, &req),
        Route::Viewer(id) => viewers::kick(app, &id, &req),
        Route::Badge(stem, format) => badges::serve(app, &stem, format, &req).await,
        Route::Board(stem) => boards::serve(app, &stem, &req).await,
        Route::StaticBadge(content, format) => static_badge::serve(app, &content, format, &req).await,
        Route::BadgeList => badge_api::list(app, &req),
        Route::BadgeApi(name) => badge_api::one(app, &name, req).await,
        Route::BadgeShields(name) => badge_api::shields(app, &name, &req),
        Route::DefaultState => ustreamer_state::state(app, &req),
        Route::CameraStream(name) => camera::stream(app, &name, &req).await,
        Route::CameraSnapshot(name) => camera::snapshot(app, &name, &req).await,
        Route::CameraPull(name) => camera::pull_page(app, &name, &req),
        Route::Cameras => api::cameras(app, &req),
        Route::CameraApi(name) => api::camera(app, &name, &req),
        Route::AdminReload => admin::reload(&shared, &req).await,
        Route::DebugPanic => panic!("forced by /debug/panic"),
        Route::DebugClock => {
            let query = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes());
            let asked =
                query.into_iter().find(|(k, _)| k == "advance_s").map(|(_, v)| v.into_owned()).unwrap_or_default();
            match super::query::whole("advance_s", &asked, (1, 30 * 86_400)) {
                Ok(seconds) => {
                    crate::sources::room_stats::advance_clock(seconds);
                    response::text(StatusCode::OK, "the room-figures clock moved forward")
                }
                Err(bad) => super::errors::text(&bad),
            }
        }
        Route::DebugPanicProducer(name) => match app.cameras.get(&name) {
            Some(camera) => {
                camera.panic_on_next_pass();
                response::text(StatusCode::OK, "the producer will panic")
            }
            None => response::text(StatusCode::NOT_FOUND, "no such camera"),
        },
    }
}
