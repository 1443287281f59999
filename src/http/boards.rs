//! `GET /board/{name}.png` (and `{name}@2x.png`): a board, live, or one
//! image with `?once`.

use super::RequestBody;
use hyper::{Method, Request, StatusCode};

use super::badges::split_scale;
use super::client::{Wanted, wanted};
use super::errors::{self, BadRequest};
use super::query;
use super::referer;
use super::response::{self, HttpResponse};
use crate::app::App;

pub async fn serve(app: &App, stem: &str, req: &Request<RequestBody>) -> HttpResponse {
    let (name, scale) = split_scale(stem);
    let mut scale = match scale {
        Ok(scale) => scale,
        Err(message) => return errors::text(&BadRequest(format!("invalid scale suffix {message}"))),
    };
    if !app.boards.exists(name) {
        // Private boards are not named to anyone who asks for a wrong one.
        let config = app.config();
        let known: Vec<String> =
            app.boards.names().into_iter().filter(|n| !config.requires_signature(&format!("board/{n}"))).collect();
        let known = if known.is_empty() { "none are configured".to_string() } else { known.join(", ") };
        return response::text(StatusCode::NOT_FOUND, format!("no board named {name:?}; boards: {known}"));
    }
    if let Err(reason) = referer::check(&app.config(), req.headers()) {
        return errors::text(&reason);
    }
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if key == "scale" {
            match query::scale(&key, &value) {
                Ok(s) => scale = s,
                Err(bad) => return errors::text(&bad),
            }
        }
    }
    let head = req.method() == Method::HEAD;
    let (framing, limits) = match wanted(&app.config(), req, &app.config().client_limits) {
        Ok(Wanted::Stream(framing, limits)) => (framing, limits),
        Ok(Wanted::Once) => {
            // In a cluster: the rooms' counts and figures as the cluster has them.
            let channels = app.boards.channels_shown(name);
            app.online.settle_shown(&channels).await;
            let (boards, name) = (app.boards.clone(), name.to_string());
            return match app.renders.run(move || boards.render(&name, scale)).await {
                Ok(Ok(png)) => response::single_image(png, "image/png", head),
                Ok(Err(too_large)) => errors::text(&too_large),
                Err(busy) => errors::text(&busy),
            };
        }
        Err(bad) => return errors::text(&bad),
    };
    if head {
        return response::stream(None);
    }
    // Refused before drawing: a join past a cap costs no render.
    if let Err(full) = app.boards.admits(name, scale) {
        return errors::text(&full);
    }
    let first = match app.boards.first_frame(name, scale).await {
        Ok(first) => first,
        Err(busy) => return errors::text(&busy),
    };
    match app.boards.join(name, scale, first) {
        Ok(viewer) => response::stream(Some(super::viewers::listed(app, req, viewer, framing, limits))),
        Err(full) => errors::text(&full),
    }
}
