//! `/api/v1/badges[/{name}]`: read (open), write and delete (bearer token)
//! badge values. A private badge (`require_signature`) reads only with a
//! token or its signature; a polled source's URL and error text only with
//! a token.

use super::RequestBody;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::auth::authorize_write;
use super::body::read_limited;
use super::errors::{self, BadRequest};
use super::private::{has_token, may_see};
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::names::{invalid_name, valid_name};
use crate::sources::badge_state::BadgeUpdate;
use crate::sources::polled::SourceStatus;

pub fn list(app: &App, req: &Request<RequestBody>) -> HttpResponse {
    let mut badges = app.badges.list();
    badges.retain(|name, _| may_see(app, req, &format!("badge/{name}")));
    response::json(StatusCode::OK, &json!({ "badges": badges }))
}

/// A polled source's status as `req` may see it: where it fetches from and
/// why it failed (internal hosts, ports) only with a token.
fn source_view(app: &App, req: &Request<RequestBody>, status: Option<SourceStatus>) -> Option<Value> {
    let status = status?;
    let failed = status.last_error.is_some();
    let mut view = serde_json::to_value(status).ok()?;
    if let (false, Some(map)) = (has_token(app, req), view.as_object_mut()) {
        map.remove("url");
        if failed {
            map.insert("last_error".into(), json!("error"));
        }
    }
    Some(view)
}

pub async fn one(app: &App, name: &str, req: Request<RequestBody>) -> HttpResponse {
    if !valid_name(name) {
        return errors::json(&BadRequest(invalid_name("badge")));
    }
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD {
        if !may_see(app, &req, &format!("badge/{name}")) {
            return not_found(name);
        }
        let source = source_view(app, &req, app.pollers.status(name));
        return match app.badges.get(name) {
            Some(state) => response::json(StatusCode::OK, &json!({ "name": name, "state": state, "source": source })),
            None if source.is_some() => {
                response::json(StatusCode::OK, &json!({ "name": name, "state": null, "source": source }))
            }
            None => not_found(name),
        };
    }
    if let Err(denied) = authorize_write(&app.config(), req.headers()) {
        return errors::json(&denied);
    }
    // An upgrade's new process holds the values now: ask again there (the
    // same address, a new connection, a moment later).
    if app.handing_over.load(std::sync::atomic::Ordering::SeqCst) {
        let mut busy = response::json_error(StatusCode::SERVICE_UNAVAILABLE, "upgrading: send it again in a second");
        busy.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("1"));
        busy.headers_mut().insert("connection", hyper::header::HeaderValue::from_static("close"));
        return busy;
    }
    if method == Method::DELETE {
        return match app.badges.delete(name).await {
            Ok(true) => response::json(StatusCode::OK, &json!({ "name": name, "deleted": true })),
            Ok(false) => not_found(name),
            Err(e) => errors::json(&e),
        };
    }
    let body = match read_limited(req, app.config().max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return errors::json(&e),
    };
    let update = match BadgeUpdate::parse(&body, |style| app.badges.is_style(style)) {
        Ok(update) => update,
        Err(invalid) => return errors::json(&invalid),
    };
    match app.badges.write(name, update).await {
        Ok(state) => response::json(StatusCode::OK, &json!({ "name": name, "state": state })),
        Err(e) => errors::json(&e),
    }
}

/// The answer for a missing badge, and for a private one to whoever may not
/// see it: the same bytes, so it does not confirm the badge exists.
fn not_found(name: &str) -> HttpResponse {
    response::json_error(StatusCode::NOT_FOUND, &format!("no badge named {name:?}"))
}

/// `GET /api/v1/badges/NAME/shields`: the badge as shields.io's endpoint
/// schema, so shields' `endpoint` badge (which image proxies such as
/// GitHub's camo can show, where a live stream cannot be) shows its value.
/// A private badge reads as a missing one to whoever may not see it.
pub fn shields(app: &App, name: &str, req: &Request<RequestBody>) -> HttpResponse {
    if !valid_name(name) {
        return errors::json(&BadRequest(invalid_name("badge")));
    }
    // Nothing is looked up for a badge the caller may not see: a private
    // one costs what a missing one does.
    let found = may_see(app, req, &format!("badge/{name}")).then(|| app.badges.shields(name)).flatten();
    match found {
        Some(json) => response::json(StatusCode::OK, &json),
        // Still the schema: shields draws "not found" instead of an error.
        None => response::json(
            StatusCode::NOT_FOUND,
            &json!({ "schemaVersion": 1, "label": name, "message": "not found", "color": "lightgrey", "isError": true }),
        ),
    }
}
