//! Every error a request can meet, and its HTTP answer, in one place. The
//! rooms below HTTP return typed errors (`TooLarge`, `Busy`, `JoinError`,
//! `WriteError`, `InvalidUpdate`); http's own checks return `BadRequest`,
//! `Forbidden` or `Denied`. Each maps here to a status, a `Retry-After`
//! where waiting helps, and a one-line message, as text for image URLs or
//! as JSON for the API.

use std::fmt::Display;

use hyper::StatusCode;
use hyper::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};

use super::auth::Denied;
use super::body::BodyError;
use super::response::{self, HttpResponse};
use crate::push::registry::JoinError;
use crate::render::pool::Busy;
use crate::render::size::TooLarge;
use crate::sources::badge_state::InvalidUpdate;
use crate::sources::badges::WriteError;
use crate::sources::camera::sizes::SizeRefused;
use crate::store::StoreError;

/// A request http itself refuses: a bad name, query value, path form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// The referer policy refuses the embedding page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub &'static str);

/// What an error answers with.
pub trait HttpError: Display {
    fn status(&self) -> StatusCode;
    /// Seconds to wait before trying again, for errors that pass.
    fn retry_after(&self) -> Option<&'static str> {
        None
    }
}

impl HttpError for BadRequest {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl HttpError for Forbidden {
    fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

impl HttpError for TooLarge {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl HttpError for InvalidUpdate {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl HttpError for Busy {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn retry_after(&self) -> Option<&'static str> {
        Some("1")
    }
}

impl HttpError for JoinError {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn retry_after(&self) -> Option<&'static str> {
        Some("30")
    }
}

impl HttpError for SizeRefused {
    fn status(&self) -> StatusCode {
        match self {
            SizeRefused::Full(full) => full.status(),
            SizeRefused::Busy(busy) => busy.status(),
        }
    }
    fn retry_after(&self) -> Option<&'static str> {
        match self {
            SizeRefused::Full(full) => full.retry_after(),
            SizeRefused::Busy(busy) => busy.retry_after(),
        }
    }
}

impl HttpError for BodyError {
    fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Unreadable => StatusCode::BAD_REQUEST,
        }
    }
}

impl HttpError for Denied {
    fn status(&self) -> StatusCode {
        match self {
            Denied::WritesDisabled => StatusCode::FORBIDDEN,
            Denied::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        }
    }
}

impl HttpError for WriteError {
    fn status(&self) -> StatusCode {
        match self {
            WriteError::TooManyBadges | WriteError::Storage(StoreError::Full) => StatusCode::INSUFFICIENT_STORAGE,
            WriteError::Storage(StoreError::Failed(_)) | WriteError::Panicked => StatusCode::INTERNAL_SERVER_ERROR,
            WriteError::Unavailable | WriteError::Storage(StoreError::Unavailable | StoreError::Conflict(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
    fn retry_after(&self) -> Option<&'static str> {
        (self.status() == StatusCode::SERVICE_UNAVAILABLE).then_some("1")
    }
}

fn with_headers(mut response: HttpResponse, error: &dyn HttpError) -> HttpResponse {
    if let Some(seconds) = error.retry_after() {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    if error.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"framecast\""));
    }
    response
}

/// The answer to an image URL: a one-line text body.
pub fn text(error: &dyn HttpError) -> HttpResponse {
    with_headers(response::text(error.status(), error.to_string()), error)
}

/// The answer to an API call: `{"error": "..."}`.
pub fn json(error: &dyn HttpError) -> HttpResponse {
    with_headers(response::json_error(error.status(), &error.to_string()), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_retry_hints() {
        let busy = text(&Busy);
        assert_eq!(
            (busy.status(), busy.headers()[RETRY_AFTER].to_str().unwrap()),
            (StatusCode::SERVICE_UNAVAILABLE, "1")
        );
        let full = JoinError::Full { what: "rooms", key: "max_rooms", cap: 1 };
        assert_eq!(text(&full).headers()[RETRY_AFTER], "30");
        assert_eq!(json(&Denied::WritesDisabled).status(), StatusCode::FORBIDDEN);
        let unauthorized = json(&Denied::Unauthorized("missing token"));
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert!(unauthorized.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(json(&WriteError::TooManyBadges).status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(json(&BodyError::TooLarge(10)).status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(text(&TooLarge { width: 9000, height: 20 }).status(), StatusCode::BAD_REQUEST);
    }
}
