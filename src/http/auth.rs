//! Who may write: `Authorization: Bearer <token>` with a token from the
//! config's `api_tokens`, compared in constant time. With no token
//! configured writes are off, never open by default.

use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use subtle::ConstantTimeEq;

use super::response::{self, HttpResponse};
use crate::config::Config;

#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `api_tokens` configured: writes are off.
    WritesDisabled,
    Unauthorized(&'static str),
}

impl Denied {
    pub fn response(self) -> HttpResponse {
        match self {
            Denied::WritesDisabled => response::json_error(
                StatusCode::FORBIDDEN,
                "writes are disabled: add a token (16+ characters) to \"api_tokens\" in the config file, \
                 then send it as Authorization: Bearer <token>",
            ),
            Denied::Unauthorized(message) => {
                let mut r = response::json_error(StatusCode::UNAUTHORIZED, message);
                r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"framecast\""));
                r
            }
        }
    }
}

pub fn authorize_write(config: &Config, headers: &HeaderMap) -> Result<(), Denied> {
    if config.api_tokens.is_empty() {
        return Err(Denied::WritesDisabled);
    }
    let presented =
        headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(presented) = presented else {
        return Err(Denied::Unauthorized("missing Authorization: Bearer <token>"));
    };
    // Compare with every token, without stopping early.
    let mut ok = subtle::Choice::from(0);
    for token in &config.api_tokens {
        ok |= token.as_bytes().ct_eq(presented.as_bytes());
    }
    if bool::from(ok) { Ok(()) } else { Err(Denied::Unauthorized("invalid token")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn tokens() {
        let mut c = Config::embedded();
        assert_eq!(authorize_write(&c, &headers(Some("Bearer x"))), Err(Denied::WritesDisabled));
        assert_eq!(Denied::WritesDisabled.response().status(), 403);
        c.api_tokens = vec!["0123456789abcdef".into(), "fedcba9876543210".into()];
        assert!(authorize_write(&c, &headers(Some("Bearer fedcba9876543210"))).is_ok());
        assert_eq!(
            authorize_write(&c, &headers(Some("Bearer 0123456789abcdeX"))).unwrap_err().response().status(),
            401
        );
        assert_eq!(authorize_write(&c, &headers(Some("Bearer 0123"))).unwrap_err().response().status(), 401);
        assert_eq!(authorize_write(&c, &headers(Some("Basic 0123456789abcdef"))).unwrap_err().response().status(), 401);
        assert_eq!(authorize_write(&c, &headers(None)).unwrap_err().response().status(), 401);
    }
}
