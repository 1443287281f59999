//! `/api/v1/badges[/{name}]`: read (open), write and delete (bearer token)
//! badge values.

use super::RequestBody;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::auth::authorize_write;
use super::body::read_limited;
use super::errors::{self, BadRequest};
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::names::{invalid_name, valid_name};
use crate::sources::badge_state::BadgeUpdate;

pub fn list(app: &App) -> HttpResponse {
    response::json(StatusCode::OK, &json!({ "badges": app.badges.list() }))
}

pub async fn one(app: &App, name: &str, req: Request<RequestBody>) -> HttpResponse {
    if !valid_name(name) {
        return errors::json(&BadRequest(invalid_name("badge")));
    }
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD {
        let source = app.pollers.status(name);
        return match app.badges.get(name) {
            Some(state) => response::json(StatusCode::OK, &json!({ "name": name, "state": state, "source": source })),
            None if source.is_some() => {
                response::json(StatusCode::OK, &json!({ "name": name, "state": null, "source": source }))
            }
            None => response::json_error(StatusCode::NOT_FOUND, &format!("no badge named {name:?}")),
        };
    }
    if let Err(denied) = authorize_write(&app.config, req.headers()) {
        return errors::json(&denied);
    }
    if method == Method::DELETE {
        return match app.badges.delete(name).await {
            Ok(true) => response::json(StatusCode::OK, &json!({ "name": name, "deleted": true })),
            Ok(false) => response::json_error(StatusCode::NOT_FOUND, &format!("no badge named {name:?}")),
            Err(e) => errors::json(&e),
        };
    }
    let body = match read_limited(req, app.config.max_body_bytes).await {
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
