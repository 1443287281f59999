//! Request → handler. Anything unknown is a 404; a known path with a method
//! it does not take is a 405 naming the ones it does.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::response::{self, HttpResponse};
use super::{api, badge_api, badges, camera, demo, online, static_badge};
use crate::app::App;
use crate::metrics::{Status, metrics};

enum Route {
    Demo,
    Health,
    Metrics,
    Online(String),
    Channels,
    Channel(String),
    Badge(String),
    StaticBadge(String),
    BadgeList,
    BadgeApi(String),
    CameraStream(String),
    CameraSnapshot(String),
    CameraPull(String),
    Cameras,
    CameraApi(String),
}

const READ: &[Method] = &[Method::GET, Method::HEAD];
const READ_WRITE: &[Method] = &[Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE];

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let png = |prefix: &str| path.strip_prefix(prefix).and_then(|r| r.strip_suffix(".png")).map(str::to_string);
        Some(match path {
            "/" | "/index.html" => Route::Demo,
            "/healthz" => Route::Health,
            "/metrics" => Route::Metrics,
            "/online.png" => Route::Online("default".into()),
            "/api/v1/channels" => Route::Channels,
            "/api/v1/badges" => Route::BadgeList,
            "/api/v1/cameras" => Route::Cameras,
            _ => {
                if let Some(room) = png("/online/") {
                    Route::Online(room)
                } else if let Some(content) = png("/badge/static/") {
                    Route::StaticBadge(content)
                } else if let Some(stem) = png("/badge/") {
                    Route::Badge(stem)
                } else if let Some(name) = path.strip_prefix("/api/v1/channels/") {
                    Route::Channel(name.to_string())
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
                } else {
                    return None;
                }
            }
        })
    }

    fn methods(&self) -> &'static [Method] {
        match self {
            Route::BadgeApi(_) => READ_WRITE,
            _ => READ,
        }
    }
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let response = route(&app, req).await;
    metrics().responses.get_or_create(&Status { status: response.status().as_u16() }).inc();
    Ok(response)
}

async fn route(app: &Arc<App>, req: Request<Incoming>) -> HttpResponse {
    let Some(route) = Route::parse(req.uri().path()) else {
        return response::text(StatusCode::NOT_FOUND, "not found");
    };
    if !route.methods().contains(req.method()) {
        let allow = if route.methods() == READ_WRITE { "GET, HEAD, PUT, POST, DELETE" } else { "GET, HEAD" };
        return response::method_not_allowed(allow);
    }
    let app = &**app;
    match route {
        Route::Demo => demo::index(app, &req),
        Route::Health => response::text(StatusCode::OK, "ok"),
        Route::Metrics => response::prometheus(metrics().encode(&app.registry)),
        Route::Online(room) => online::serve(app, &room, &req),
        Route::Channels => api::list(app),
        Route::Channel(name) => api::one(app, &name),
        Route::Badge(stem) => badges::serve(app, &stem, &req),
        Route::StaticBadge(content) => static_badge::serve(app, &content, &req),
        Route::BadgeList => badge_api::list(app),
        Route::BadgeApi(name) => badge_api::one(app, &name, req).await,
        Route::CameraStream(name) => camera::stream(app, &name, &req).await,
        Route::CameraSnapshot(name) => camera::snapshot(app, &name, &req).await,
        Route::CameraPull(name) => camera::pull_page(app, &name, &req),
        Route::Cameras => api::cameras(app),
        Route::CameraApi(name) => api::camera(app, &name),
    }
}
