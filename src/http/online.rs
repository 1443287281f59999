//! `GET /online.png`, `GET /online/{room}.png`: the users-online badge, live
//! or as one image; `.svg` is one SVG of it, and `?style=sparkline` one
//! picture of the room's last 24 h.

use super::RequestBody;
use hyper::{Method, Request};

use super::client::{Wanted, wanted};
use super::client_addr::{PeerAddr, client_ip};
use super::errors::{self, BadRequest};
use super::referer;
use super::response::{self, HttpResponse};
use super::routes::Format;
use crate::app::App;
use crate::render::format::MapValues;
use crate::sources::online::{FirstFrameError, Joining};

/// Room names follow the common rule for names.
pub use crate::names::valid_name as valid_room;

/// Minutes per point of the room sparkline (24 h in 144 points).
const SPARKLINE_BUCKET: usize = 10;

pub async fn serve(app: &App, room: &str, format: Format, req: &Request<RequestBody>) -> HttpResponse {
    if !valid_room(room) {
        return errors::text(&BadRequest(crate::names::invalid_name("room")));
    }
    if let Err(reason) = referer::check(&app.config(), req.headers()) {
        return errors::text(&reason);
    }
    let head = req.method() == Method::HEAD;
    // Signed, if named at all (checked before this handler).
    let member = match super::member::signed_member(req.uri().query()) {
        Ok(member) => member,
        Err(bad) => return errors::text(&bad),
    };
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match (&*key, &*value) {
            ("style", "sparkline") => return sparkline(app, room, head).await,
            ("style", other) => {
                return errors::text(&BadRequest(format!(
                    "style={other:?}: a room's badge takes its look from the online template; \
                     style=sparkline shows its last 24 h"
                )));
            }
            ("logo" | "logoColor" | "logoWidth", _) => {
                return errors::text(&BadRequest(format!(
                    "{key}: a room's badge takes its look from the online template (put a logo on /badge/ URLs)"
                )));
            }
            _ => {}
        }
    }
    if format == Format::Svg {
        return match app.online.snapshot_svg(room, &app.renders).await {
            Ok(Ok(svg)) => response::svg_now(svg, head),
            Ok(Err(too_large)) => errors::text(&too_large),
            Err(busy) => errors::text(&busy),
        };
    }
    let (framing, limits) = match wanted(&app.config(), req, &app.config().client_limits) {
        Ok(Wanted::Stream(framing, limits)) => (framing, limits),
        Ok(Wanted::Once) => {
            return match app.online.snapshot(room, &app.renders).await {
                Ok(png) => response::single_image(png, "image/png", head),
                Err(busy) => errors::text(&busy),
            };
        }
        Err(bad) => return errors::text(&bad),
    };
    if head {
        return response::stream(None);
    }
    let peer = req.extensions().get::<PeerAddr>().map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.0);
    let client = client_ip(peer, req.headers(), &app.config().trusted_proxies, app.config().client_address_header);
    // Drawn in the render pool, and refused before drawing past the cap.
    let first = match app.online.first_frame(room, &app.renders).await {
        Ok(first) => first,
        Err(FirstFrameError::Full(full)) => return errors::text(&full),
        Err(FirstFrameError::Busy(busy)) => return errors::text(&busy),
    };
    match app.online.join_as(room, Joining::Viewer(client, member), first) {
        Ok(viewer) => response::stream(Some(super::viewers::listed(app, req, viewer, framing, limits))),
        Err(full) => errors::text(&full),
    }
}

/// The room's viewer count over the last 24 h (the highest count of each
/// 10 minutes), one PNG; not a live stream, so it counts nobody.
async fn sparkline(app: &App, room: &str, head: bool) -> HttpResponse {
    // In a cluster: the cluster's minutes.
    app.online.stats.ask_history(room);
    app.online.settle_all(&[], &[room.to_string()]).await;
    let minutes = app.online.stats.history(room);
    let history = minutes.chunks(SPARKLINE_BUCKET).map(|c| c.iter().copied().max().unwrap_or(0) as f64).collect();
    let mut values = MapValues { history, ..MapValues::default() };
    let now = app.online.shown_counts()(room);
    values.text.insert("label".into(), format!("{room} · 24 h"));
    values.text.insert("value".into(), now.to_string());
    let template = app.badges.templates().get("room-sparkline").expect("room-sparkline is built in");
    match app.renders.run(move || template.render_png(&values, 1.0)).await {
        Ok(Ok(png)) => response::single_image(bytes::Bytes::from(png), "image/png", head),
        Ok(Err(too_large)) => errors::text(&too_large),
        Err(busy) => errors::text(&busy),
    }
}
