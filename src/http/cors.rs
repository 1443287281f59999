//! CORS for the JSON API: which web pages may read its answers through a
//! visitor's browser. Only origins in `cors_allow_origins` (or any, with
//! `"*"`); by default none, so a page elsewhere cannot read what the
//! visitor's browser may reach. Live images keep `*` (`response`).

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::response::HttpResponse;
use crate::config::Config;
use crate::config::url::Origin;

/// Whether `path` is the JSON API's.
pub fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The `Access-Control-Allow-Origin` value for a request from `origin`, if
/// it is allowed.
fn allowed(config: &Config, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    if config.cors_allow_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let sent = origin?;
    let normal = Origin::of(sent.to_str().ok()?)?;
    config.cors_allow_origins.iter().any(|o| o == normal.as_str()).then(|| sent.clone())
}

/// Adds the CORS headers an API answer to a request from `origin` gets.
/// The answer depends on `Origin` unless any origin is allowed (or none
/// is), so caches are told (`Vary`).
pub fn apply(config: &Config, origin: Option<&HeaderValue>, response: &mut HttpResponse) {
    let headers = response.headers_mut();
    if let Some(value) = allowed(config, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    if !config.cors_allow_origins.is_empty() && !config.cors_allow_origins.iter().any(|o| o == "*") {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`)
/// on the API: `204` naming what an allowed origin may send (the token in
/// `Authorization`, a JSON body); `None` when it is not a preflight. The
/// origin headers are added by `apply`, as on every API answer.
pub fn preflight(config: &Config, method: &Method, request_headers: &HeaderMap) -> Option<HttpResponse> {
    if method != Method::OPTIONS || !request_headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::CACHE_CONTROL, "no-store")
        .body(http_body_util::Either::Left(http_body_util::Full::new(bytes::Bytes::new())))
        .expect("static headers are valid");
    if allowed(config, request_headers.get(header::ORIGIN)).is_some() {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, PUT, POST, DELETE"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_listed_origins() {
        let mut c = Config::embedded();
        assert_eq!(allowed(&c, origin("https://a.example").get(header::ORIGIN)), None);
        c.cors_allow_origins = vec!["https://a.example".into()];
        assert_eq!(allowed(&c, origin("https://a.example").get(header::ORIGIN)).unwrap(), "https://a.example");
        assert_eq!(allowed(&c, origin("https://a.example:443").get(header::ORIGIN)).unwrap(), "https://a.example:443");
        assert_eq!(allowed(&c, origin("https://b.example").get(header::ORIGIN)), None);
        assert_eq!(allowed(&c, origin("null").get(header::ORIGIN)), None);
        assert_eq!(allowed(&c, None), None);
        c.cors_allow_origins = vec!["*".into()];
        assert_eq!(allowed(&c, None).unwrap(), "*");
        assert!(
            Config::parse(r#"{"cors_allow_origins": ["https://A.example/"]}"#)
                .unwrap_err()
                .contains("cors_allow_origins")
        );
    }
}
