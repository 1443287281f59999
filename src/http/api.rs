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
    let room = name.strip_prefix("online/").filter(|r| valid_room(r));
    let mut info = match (app.registry.get(name), room) {
        (Some(channel), _) => serde_json::to_value(channel.info()).unwrap_or_default(),
        // A valid room nobody watches is simply empty, not missing: dashboards
        // polling it should read 0, not an error.
        (None, Some(room)) => json!({ "name": OnlineRooms::channel_name(room), "viewers": 0, "live": false }),
        (None, None) => {
            return response::json_error(
                StatusCode::NOT_FOUND,
                "no such channel; channel names look like online/{room}",
            );
        }
    };
    if let (Some(room), Some(map)) = (room, info.as_object_mut()) {
        // The room's figures and per-minute history, watched now or not.
        let figures = serde_json::to_value(app.online.figures(room)).unwrap_or_default();
        map.insert("stats".into(), figures);
        map.insert("history".into(), json!(app.online.stats.history(room)));
        map.insert("shown".into(), json!(app.online.shown_counts()(room)));
    }
    response::json(StatusCode::OK, &info)
}
