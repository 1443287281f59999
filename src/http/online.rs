//! `GET /online.png`, `GET /online/{room}.png`: the users-online badge, live
//! or as one image.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::client::{Delivery, delivery};
use super::referer;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::push::body::PushBody;
use crate::push::registry::JoinError;

pub const MAX_ROOM_LEN: usize = 64;

/// Room names: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_room(room: &str) -> bool {
    (1..=MAX_ROOM_LEN).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn serve(app: &App, room: &str, req: &Request<Incoming>) -> HttpResponse {
    if !valid_room(room) {
        return response::text(
            StatusCode::BAD_REQUEST,
            format!("invalid room name: use 1 to {MAX_ROOM_LEN} characters from A-Z a-z 0-9 _ -"),
        );
    }
    if let Err(reason) = referer::check(&app.config, req.headers()) {
        return response::text(StatusCode::FORBIDDEN, reason);
    }
    let head = req.method() == Method::HEAD;
    let framing = match delivery(&app.config, req.headers(), req.uri().query()) {
        Ok(Delivery::Once) => {
            return response::single_image(app.online.snapshot(room), "image/png", head);
        }
        Ok(Delivery::Stream(framing)) => framing,
        Err(message) => return response::text(StatusCode::BAD_REQUEST, message),
    };
    if head {
        return response::stream(None);
    }
    match app.online.join(room) {
        Ok(viewer) => response::stream(Some(PushBody::new(viewer, framing))),
        Err(JoinError::TooManyChannels) => {
            let mut r = response::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live rooms; try again later",
            );
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("30"),
            );
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_room;

    #[test]
    fn room_names() {
        assert!(valid_room("default"));
        assert!(valid_room("thread-42_b"));
        assert!(!valid_room(""));
        assert!(!valid_room("a/b"));
        assert!(!valid_room(".."));
        assert!(!valid_room("ümlaut"));
        assert!(!valid_room(&"x".repeat(65)));
    }
}
