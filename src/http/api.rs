//! `GET /api/v1/channels[/{name}]`: live channels with exact viewer counts
//! and frame counters; `GET /api/v1/cameras[/{name}]`: camera sources. JSON.
//! Private resources show only to a token or their signature (`private`);
//! a camera's failure text only to a token.

use hyper::{Request, StatusCode};
use serde_json::json;

use super::RequestBody;
use super::online::valid_room;
use super::private::{has_token, may_see, may_see_channel};
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::push::channel::ChannelInfo;
use crate::sources::camera::{CameraInfo, CameraState};

const NO_SUCH_CHANNEL: &str = "no such channel; channel names look like online/{room}";

pub fn list(app: &App, req: &Request<RequestBody>) -> HttpResponse {
    let channels: Vec<ChannelInfo> =
        app.registry.list().iter().filter(|c| may_see_channel(app, req, c.name())).map(|c| c.info()).collect();
    // The total of what is listed, so it names no private audience either.
    let viewers: u64 = channels.iter().map(|c| c.viewers).sum();
    response::json(StatusCode::OK, &json!({ "viewers": viewers, "channels": channels }))
}

/// A camera's state as `req` may see it: why a source failed (a file path,
/// an upstream's address, an ffmpeg command line) only with a token.
fn camera_info(app: &App, req: &Request<RequestBody>, mut info: CameraInfo) -> CameraInfo {
    if let CameraState::Offline { reason } = &mut info.state
        && !has_token(app, req)
    {
        *reason = "error".into();
    }
    info
}

/// `GET /api/v1/cameras`: each camera's source state, fps and channel counters.
pub fn cameras(app: &App, req: &Request<RequestBody>) -> HttpResponse {
    let cameras: Vec<_> = app
        .cameras
        .list()
        .into_iter()
        .filter(|c| may_see(app, req, &format!("camera/{}", c.name())))
        .map(|c| camera_info(app, req, c.info()))
        .collect();
    response::json(StatusCode::OK, &json!({ "cameras": cameras }))
}

pub fn camera(app: &App, name: &str, req: &Request<RequestBody>) -> HttpResponse {
    match app.cameras.get(name).filter(|_| may_see(app, req, &format!("camera/{name}"))) {
        Some(camera) => response::json(StatusCode::OK, &camera_info(app, req, camera.info())),
        None => response::json_error(StatusCode::NOT_FOUND, "no such camera"),
    }
}

/// Whether `name` could name a channel (a kind and a valid name, within
/// the length any channel has): only those are asked of the cluster.
fn plausible_channel(name: &str) -> bool {
    let Some((kind, rest)) = name.split_once('/') else { return false };
    let first = rest.split(['/', '@', '~']).next().unwrap_or("");
    name.len() <= crate::push::remote::MAX_NAME
        && matches!(kind, "badge" | "board" | "camera" | "online")
        && crate::names::valid_name(first)
}

pub async fn one(app: &App, name: &str, req: &Request<RequestBody>) -> HttpResponse {
    let room = name.strip_prefix("online/").filter(|r| valid_room(r));
    let visible = may_see_channel(app, req, name);
    if !visible && room.is_none() {
        return response::json_error(StatusCode::NOT_FOUND, NO_SUCH_CHANNEL);
    }
    // In a cluster: the cluster's count and figures, watched here or not.
    // A private room a caller may not see takes the same path (and time),
    // so neither tells that it exists.
    if room.is_some() || plausible_channel(name) {
        let rooms: Vec<String> = room.map(str::to_string).into_iter().collect();
        if let Some(room) = room {
            app.online.stats.ask_history(room);
        }
        app.online.settle_all(&[name.to_string()], &rooms).await;
        if !visible && app.registry.remote.enabled() {
            // Live here or not, a hidden room waits for Redis like any
            // room nobody watches here, so the time tells nothing.
            app.registry.remote.settle(&[name.to_string()], crate::push::registry::SETTLE_DEADLINE).await;
        }
    }
    let elsewhere = |hidden: bool| {
        let count = app.registry.count(name);
        let viewers = if hidden { 0 } else { count.viewers };
        json!({ "name": name, "viewers": viewers, "local_viewers": 0, "exact": count.exact, "live": false })
    };
    let mut info = match (app.registry.get(name).filter(|_| visible), room) {
        (Some(channel), _) => serde_json::to_value(channel.info()).unwrap_or_default(),
        // A valid room nobody watches here is simply empty (or watched on
        // other instances), not missing: dashboards polling it read 0. A
        // private room, to a caller who may not see it, reads as any room
        // nobody has watched: a 404 would confirm that it exists.
        (None, Some(_)) => elsewhere(!visible),
        // Any other channel live only on other instances of a cluster.
        (None, None) if plausible_channel(name) && app.registry.count(name).viewers > 0 => elsewhere(false),
        (None, None) => return response::json_error(StatusCode::NOT_FOUND, NO_SUCH_CHANNEL),
    };
    if let (Some(room), Some(map)) = (room, info.as_object_mut()) {
        // The room's figures and per-minute history, watched now or not.
        let stats = &app.online.stats;
        let (figures, history, shown) = if visible {
            (stats.figures(room), stats.history(room), app.online.shown_counts()(room))
        } else {
            (stats.figures_unseen(), vec![0; stats.history("").len()], 0)
        };
        map.insert("stats".into(), serde_json::to_value(figures).unwrap_or_default());
        map.insert("history".into(), json!(history));
        map.insert("shown".into(), json!(shown));
        // Members and guests (`count: "people"`); who the members are only
        // with an API token, hidden ones never.
        let token = super::private::has_token(app, req);
        if visible && token {
            // In a cluster the names are read from Redis when asked for.
            stats.settle_people_names(room, crate::push::registry::SETTLE_DEADLINE).await;
        }
        let people = if visible { stats.people(room, token) } else { Default::default() };
        if visible && !stats.people_exact(room) {
            map.insert("exact".into(), json!(false));
        }
        map.insert("members".into(), json!(people.members));
        map.insert("guests".into(), json!(people.guests));
        map.insert("hidden".into(), json!(people.hidden));
        if token {
            map.insert("member_names".into(), json!(people.names));
        }
    }
    response::json(StatusCode::OK, &info)
}
