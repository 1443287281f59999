//! `GET /camera/{name}.mjpg` (the live stream), `GET /camera/{name}.jpg`
//! (one frame; `?max_delay=ms` waits for a fresh one) and
//! `GET /camera/{name}.html` (the image-pull page for clients that cannot
//! show server push). The drop-in URLs of mjpg-streamer (`/?action=stream`,
//! `/?action=snapshot`) and µStreamer (`/stream`, `/snapshot`) serve the
//! default camera, so pages written for them keep working.

use std::sync::Arc;
use std::time::Duration;

use super::RequestBody;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::client::{Wanted, wanted};
use super::errors::{self, BadRequest};
use super::query;
use super::referer;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::names::{invalid_name, valid_name};
use crate::sources::camera::{Camera, JPEG};

static PULL_PAGE: &str = include_str!("../../templates/pull.html");

/// The camera named in the URL, or the error response.
fn find(app: &App, name: &str, req: &Request<RequestBody>) -> Result<Arc<Camera>, Box<HttpResponse>> {
    if !valid_name(name) {
        return Err(Box::new(errors::text(&BadRequest(invalid_name("camera")))));
    }
    if let Err(reason) = referer::check(&app.config(), req.headers()) {
        return Err(Box::new(errors::text(&reason)));
    }
    app.cameras.get(name).ok_or_else(|| {
        // Private cameras are not named to anyone who asks for a wrong one.
        let config = app.config();
        let cameras = app.cameras.list();
        let known: Vec<&str> =
            cameras.iter().map(|c| c.name()).filter(|n| !config.requires_signature(&format!("camera/{n}"))).collect();
        Box::new(response::text(
            StatusCode::NOT_FOUND,
            format!("no camera named {name:?}; cameras: {}", known.join(", ")),
        ))
    })
}

pub async fn stream(app: &App, name: &str, req: &Request<RequestBody>) -> HttpResponse {
    let camera = match find(app, name, req) {
        Ok(camera) => camera,
        Err(response) => return *response,
    };
    // A camera's own limits replace the server-wide ones.
    let config = app.config();
    let base = camera.config().limits.as_ref().unwrap_or(&config.client_limits);
    let (framing, limits) = match wanted(&config, req, base) {
        Ok(Wanted::Stream(framing, limits)) => (framing, limits),
        Ok(Wanted::Once) => return snapshot_of(app, &camera, None, req).await,
        Err(bad) => return errors::text(&bad),
    };
    if req.method() == Method::HEAD {
        return response::stream(None);
    }
    let width = match asked_width(&camera, req) {
        Ok(width) => width,
        Err(bad) => return errors::text(&bad),
    };
    let viewer = match width {
        Some(width) => match camera.watch_width(&app.registry, &app.tasks, &app.renders, width).await {
            Ok(viewer) => viewer,
            Err(full) => return errors::text(&full),
        },
        None => camera.watch(&app.registry),
    };
    // A starting source gets a moment to produce a real first frame, so the
    // viewer's first picture is live rather than "connecting".
    camera.wait_started(app.config().camera_start_wait()).await;
    response::stream(Some(super::viewers::listed(app, req, viewer, framing, limits)))
}

pub async fn snapshot(app: &App, name: &str, req: &Request<RequestBody>) -> HttpResponse {
    let camera = match find(app, name, req) {
        Ok(camera) => camera,
        Err(response) => return *response,
    };
    let mut max_delay = None;
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if key == "max_delay" {
            match query::whole(&key, &value, (0, app.config().snapshot_max_delay_ms)) {
                Ok(ms) => max_delay = Some(Duration::from_millis(ms)),
                Err(bad) => return errors::text(&bad),
            }
        }
    }
    snapshot_of(app, &camera, max_delay, req).await
}

/// `?width=N` snapped to the camera's `sizes`; `None` without it. The last
/// `width` counts, as for the other limits: a page narrows a signed one by
/// adding its own after `sig`.
fn asked_width(camera: &Camera, req: &Request<RequestBody>) -> Result<Option<u32>, BadRequest> {
    let query = req.uri().query().unwrap_or("");
    let Some((key, value)) = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "width").last() else {
        return Ok(None);
    };
    let asked = query::whole(&key, &value, (1, u64::from(crate::config::bounds::IMAGE_SIDE.1)))? as u32;
    match camera.snap_width(asked) {
        Some(width) => Ok(Some(width)),
        None => Err(BadRequest(format!("width: camera {:?} has no sizes to choose from", camera.name()))),
    }
}

/// The latest frame, after starting the source if it was idle; with
/// `max_delay`, the first frame newer than the request, waiting that long;
/// with `?width=`, at that width.
async fn snapshot_of(
    app: &App,
    camera: &Camera,
    max_delay: Option<Duration>,
    req: &Request<RequestBody>,
) -> HttpResponse {
    let head = req.method() == Method::HEAD;
    let width = match asked_width(camera, req) {
        Ok(width) => width,
        Err(bad) => return errors::text(&bad),
    };
    let current = camera.channel().latest().seq;
    camera.demand();
    let live = camera.wait_started(app.config().camera_start_wait()).await;
    let frame = match max_delay {
        Some(limit) if live => camera.frame_after(current, limit).await,
        _ => camera.channel().latest(),
    };
    let image = match width {
        Some(width) => {
            let fresh = max_delay.is_some() && live;
            match camera.sized_snapshot(&app.registry, &app.renders, &frame, width, fresh).await {
                Ok(image) => image,
                Err(busy) => return errors::text(&busy),
            }
        }
        None => frame.image(),
    };
    let mut response = response::single_image(image, JPEG, head);
    if !live {
        // The placeholder, so an <img> shows why; the status tells programs.
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// The camera the drop-in URLs serve: `default_camera`, else the first
/// (the route table's rule, which signatures follow too).
pub fn default_name(app: &App) -> Option<String> {
    super::route_table::default_camera(&app.config()).map(str::to_string)
}

/// `/stream`, `/?action=stream`: the default camera's stream.
pub async fn default_stream(app: &App, req: &Request<RequestBody>) -> HttpResponse {
    match default_name(app) {
        Some(name) => stream(app, &name, req).await,
        None => response::text(StatusCode::NOT_FOUND, "no cameras are configured"),
    }
}

/// `/snapshot`, `/?action=snapshot`: one frame of the default camera.
pub async fn default_snapshot(app: &App, req: &Request<RequestBody>) -> HttpResponse {
    match default_name(app) {
        Some(name) => snapshot(app, &name, req).await,
        None => response::text(StatusCode::NOT_FOUND, "no cameras are configured"),
    }
}

pub fn pull_page(app: &App, name: &str, req: &Request<RequestBody>) -> HttpResponse {
    let camera = match find(app, name, req) {
        Ok(camera) => camera,
        Err(response) => return *response,
    };
    // Names are validated to [A-Za-z0-9_-], so they are safe in HTML and URLs.
    let page = PULL_PAGE
        .replace("{{name}}", camera.name())
        .replace("{{interval_ms}}", &app.config().pull_interval_ms.to_string());
    response::html(page)
}
