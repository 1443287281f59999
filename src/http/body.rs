//! Reading request bodies, bounded: larger than `max` is a 413 before a
//! byte beyond the limit is buffered.

use super::RequestBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::header::CONTENT_LENGTH;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body over {0} bytes")]
    TooLarge(usize),
    #[error("could not read the request body")]
    Unreadable,
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
