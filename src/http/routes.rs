//! Request → handler. Anything unknown is a 404, a known path with the
//! wrong method a 405.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::response::{self, HttpResponse};
use super::{api, demo, online};
use crate::app::App;

enum Route<'a> {
    Demo,
    Online(&'a str),
    Channels,
    Channel(&'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    Some(match path {
        "/" | "/index.html" => Route::Demo,
        "/online.png" => Route::Online("default"),
        "/api/v1/channels" => Route::Channels,
        _ => {
            if let Some(room) = path
                .strip_prefix("/online/")
                .and_then(|r| r.strip_suffix(".png"))
            {
                Route::Online(room)
            } else if let Some(name) = path.strip_prefix("/api/v1/channels/") {
                Route::Channel(name)
            } else {
                return None;
            }
        }
    })
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let Some(route) = route(req.uri().path()) else {
        return Ok(response::text(StatusCode::NOT_FOUND, "not found"));
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(response::method_not_allowed("GET, HEAD"));
    }
    Ok(match route {
        Route::Demo => demo::index(&req),
        Route::Online(room) => online::serve(&app, room, &req),
        Route::Channels => api::list(&app),
        Route::Channel(name) => api::one(&app, name),
    })
}
