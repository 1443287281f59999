//! `GET /online.png`, `GET /online/{room}.png`: the users-online badge, live
//! or as one image.

use super::RequestBody;
use hyper::{Method, Request};

use super::client::{Wanted, wanted};
use super::errors::{self, BadRequest};
use super::referer;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::push::body::PushBody;

/// Room names follow the common rule for names.
pub use crate::names::valid_name as valid_room;

pub fn serve(app: &App, room: &str, req: &Request<RequestBody>) -> HttpResponse {
    if !valid_room(room) {
        return errors::text(&BadRequest(crate::names::invalid_name("room")));
    }
    if let Err(reason) = referer::check(&app.config, req.headers()) {
        return errors::text(&reason);
    }
    let head = req.method() == Method::HEAD;
    let (framing, limits) = match wanted(&app.config, req.headers(), req.uri().query(), &app.config.client_limits) {
        Ok(Wanted::Stream(framing, limits)) => (framing, limits),
        Ok(Wanted::Once) => return response::single_image(app.online.snapshot(room), "image/png", head),
        Err(bad) => return errors::text(&bad),
    };
    if head {
        return response::stream(None);
    }
    match app.online.join(room) {
        Ok(viewer) => response::stream(Some(PushBody::new(viewer, framing, &app.shutdown).with_limits(limits))),
        Err(full) => errors::text(&full),
    }
}
