//! `/api/v1/badges[/{name}]`: read (open), write and delete (bearer token)
//! badge values.

use super::RequestBody;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::auth::authorize_write;
use super::body::read_limited;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::names::{invalid_name, valid_name};
use crate::sources::badge_state::BadgeUpdate;
use crate::sources::badges::WriteError;

pub fn list(app: &App) -> HttpResponse {
    response::json(StatusCode::OK, &json!({ "badges": app.badges.list() }))
}

pub async fn one(app: &App, name: &str, req: Request<RequestBody>) -> HttpResponse {
    if !valid_name(name) {
        return response::json_error(StatusCode::BAD_REQUEST, &invalid_name("badge"));
    }
    let method = req.method().clone();
    if method == Method::GET || method == Method::HEAD {
        return match app.badges.get(name) {
            Some(state) => response::json(StatusCode::OK, &json!({ "name": name, "state": state })),
            None => response::json_error(StatusCode::NOT_FOUND, &format!("no badge named {name:?}")),
        };
    }
    if let Err(denied) = authorize_write(&app.config, req.headers()) {
        return denied.response();
    }
    if method == Method::DELETE {
        return match app.badges.delete(name).await {
            Ok(true) => response::json(StatusCode::OK, &json!({ "name": name, "deleted": true })),
            Ok(false) => response::json_error(StatusCode::NOT_FOUND, &format!("no badge named {name:?}")),
            Err(e) => write_failed(e),
        };
    }
    let body = match read_limited(req, app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return e.response(),
    };
    let update = match BadgeUpdate::parse(&body, |style| app.badges.is_style(style)) {
        Ok(update) => update,
        Err(message) => return response::json_error(StatusCode::BAD_REQUEST, &message),
    };
    match app.badges.write(name, update).await {
        Ok(state) => response::json(StatusCode::OK, &json!({ "name": name, "state": state })),
        Err(e) => write_failed(e),
    }
}

fn write_failed(error: WriteError) -> HttpResponse {
    match error {
        WriteError::TooManyBadges => {
            response::json_error(StatusCode::INSUFFICIENT_STORAGE, "too many badges (max_badges); delete some first")
        }
        WriteError::Storage(e) => {
            tracing::error!(error = %e, "could not persist badge state");
            response::json_error(StatusCode::INTERNAL_SERVER_ERROR, "could not store the value; nothing was changed")
        }
        WriteError::Panicked => {
            response::json_error(StatusCode::INTERNAL_SERVER_ERROR, "the write failed; nothing was changed")
        }
        WriteError::Unavailable => {
            let mut response = response::json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many writes waiting, or shutting down; nothing was changed: try again",
            );
            response.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
            response
        }
    }
}
