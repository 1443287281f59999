//! `GET /state`: µStreamer's state document for the default camera, so
//! dashboards and scripts written for µStreamer keep working: `ok`,
//! `result.source` (`resolution`, `online`, `desired_fps`,
//! `captured_fps`) and `result.stream` (`queued_fps`, `clients`,
//! `clients_stat` by viewer id, the first 256). A private camera reads as
//! no camera to whoever may not see it, as in every list.

use hyper::{Request, StatusCode};
use serde_json::{Map, Value, json};

use super::RequestBody;
use super::private::may_see;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::sources::camera::CameraState;

/// Viewers listed in `clients_stat` at most.
const MAX_CLIENTS: usize = 256;

pub fn state(app: &App, req: &Request<RequestBody>) -> HttpResponse {
    let visible = super::camera::default_name(app).filter(|name| may_see(app, req, &format!("camera/{name}")));
    let Some(camera) = visible.and_then(|name| app.cameras.get(&name)) else {
        return response::json(StatusCode::NOT_FOUND, &json!({ "ok": false, "error": "no camera" }));
    };
    let info = camera.info();
    let latest = camera.channel().latest();
    let (width, height) = crate::render::jpeg::dimensions(&latest.image()).unwrap_or((0, 0));
    let mut clients = Map::new();
    // At most MAX_CLIENTS listed: an anonymous request cannot make a
    // document as large as the audience (`clients` has the whole count).
    for viewer in camera.channel().records.list().iter().take(MAX_CLIENTS).map(|r| r.info(false)) {
        clients.insert(viewer.id.to_string(), json!({ "fps": viewer.fps.round() as u64 }));
    }
    let fps = info.fps.round() as u64;
    // `max_fps` caps it where set; otherwise the source's own rate.
    let max = camera.config().max_fps;
    let desired = if max > 0.0 { max.round() as u64 } else { fps };
    let body = json!({
        "ok": true,
        "result": {
            "instance_id": "",
            "encoder": { "type": "CPU", "quality": camera.config().quality },
            "source": {
                "resolution": { "width": width, "height": height },
                "online": info.state == CameraState::Live,
                "desired_fps": desired,
                "captured_fps": fps,
            },
            "stream": {
                "queued_fps": fps,
                "clients": info.channel.viewers,
                "clients_stat": Value::Object(clients),
            },
        },
    });
    response::json(StatusCode::OK, &body)
}
