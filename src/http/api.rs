//! `GET /api/v1/channels[/{name}]`: live channels with exact viewer counts
//! and frame counters; `GET /api/v1/cameras[/{name}]`: camera sources. JSON.

use hyper::StatusCode;
use serde_json::json;

use super::online::valid_room;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::push::channel::ChannelInfo;
use crate::sources::online::OnlineRooms;

pub fn list(app: &App) -> HttpResponse {
    let channels: Vec<ChannelInfo> = app.registry.list().iter().map(|c| c.info()).collect();
    let viewers: u64 = channels.iter().map(|c| c.viewers).sum();
    response::json(StatusCode::OK, &json!({ "viewers": viewers, "channels": channels }))
}

/// `GET /api/v1/cameras`: each camera's source state, fps and channel counters.
pub fn cameras(app: &App) -> HttpResponse {
    let cameras: Vec<_> = app.cameras.list().map(|c| c.info()).collect();
    response::json(StatusCode::OK, &json!({ "cameras": cameras }))
}

pub fn camera(app: &App, name: &str) -> HttpResponse {
    match app.cameras.get(name) {
        Some(camera) => response::json(StatusCode::OK, &camera.info()),
        None => response::json_error(StatusCode::NOT_FOUND, "no such camera"),
    }
}

pub fn one(app: &App, name: &str) -> HttpResponse {
    if let Some(channel) = app.registry.get(name) {
        return response::json(StatusCode::OK, &channel.info());
    }
    // A valid room nobody watches is simply empty, not missing: dashboards
    // polling it should read 0, not an error.
    match name.strip_prefix("online/") {
        Some(room) if valid_room(room) => response::json(
            StatusCode::OK,
            &json!({ "name": OnlineRooms::channel_name(room), "viewers": 0, "live": false }),
        ),
        _ => response::json_error(StatusCode::NOT_FOUND, "no such channel; channel names look like online/{room}"),
    }
}
