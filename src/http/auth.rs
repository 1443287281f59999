//! Who may write: `Authorization: Bearer <token>` with a token from the
//! config's `api_tokens`, compared in constant time. With no token
//! configured writes are off, never open by default.

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::config::Config;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No `api_tokens` configured: writes are off.
    #[error(
        "writes are disabled: add a token (16+ characters) to \"api_tokens\" in the config file, \
         then send it as Authorization: Bearer <token>"
    )]
    WritesDisabled,
    #[error("{0}")]
    Unauthorized(&'static str),
}

pub fn authorize_write(config: &Config, headers: &HeaderMap) -> Result<(), Denied> {
    if config.api_tokens.is_empty() {
        return Err(Denied::WritesDisabled);
    }
    let presented = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
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

/// The token of `Bearer <token>`: the scheme is case-insensitive (RFC 9110,
/// section 11.1), so `bearer` and `BEARER` are the same scheme.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::errors::HttpError;
    use hyper::header::HeaderValue;

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
        assert_eq!(Denied::WritesDisabled.status(), 403);
        c.api_tokens = vec!["0123456789abcdef".into(), "fedcba9876543210".into()];
        assert!(authorize_write(&c, &headers(Some("Bearer fedcba9876543210"))).is_ok());
        assert_eq!(authorize_write(&c, &headers(Some("Bearer 0123456789abcdeX"))).unwrap_err().status(), 401);
        assert_eq!(authorize_write(&c, &headers(Some("Bearer 0123"))).unwrap_err().status(), 401);
        assert_eq!(authorize_write(&c, &headers(Some("Basic 0123456789abcdef"))).unwrap_err().status(), 401);
        assert_eq!(authorize_write(&c, &headers(None)).unwrap_err().status(), 401);
        assert_eq!(authorize_write(&c, &headers(Some("Bearer"))).unwrap_err().status(), 401);
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let mut c = Config::embedded();
        c.api_tokens = vec!["0123456789abcdef".into()];
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let header = format!("{scheme} 0123456789abcdef");
            assert!(authorize_write(&c, &headers(Some(&header))).is_ok(), "{header}");
        }
        assert!(authorize_write(&c, &headers(Some("Bearerx 0123456789abcdef"))).is_err());
    }
}
