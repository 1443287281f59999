//! Reading request bodies, bounded: larger than `max` is a 413 before a
//! byte beyond the limit is buffered.

use super::RequestBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::CONTENT_LENGTH;
use hyper::{Request, StatusCode};

use super::response::{self, HttpResponse};

#[derive(Debug)]
pub enum BodyError {
    TooLarge(usize),
    Unreadable,
}

impl BodyError {
    pub fn response(self) -> HttpResponse {
        match self {
            BodyError::TooLarge(max) => {
                response::json_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("request body over {max} bytes"))
            }
            BodyError::Unreadable => response::json_error(StatusCode::BAD_REQUEST, "could not read the request body"),
        }
    }
}

pub async fn read_limited(req: Request<RequestBody>, max: usize) -> Result<Bytes, BodyError> {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Err(_) => Err(BodyError::Unreadable),
    }
}
