//! Referer policy: which pages may embed our images. Browsers often send
//! only the origin, or no Referer at all, so policy compares origins.

use hyper::HeaderMap;
use hyper::Uri;
use hyper::header::REFERER;

use crate::config::Config;

/// `scheme://host[:port]` of an absolute URL, lower-cased, default port
/// dropped; `None` if `url` has no scheme or host.
pub fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some(match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `Err(reason)` when the policy refuses a request with these headers.
pub fn check(config: &Config, headers: &HeaderMap) -> Result<(), &'static str> {
    if config.allowed_referers.is_empty() {
        return Ok(());
    }
    let Some(referer) = headers.get(REFERER) else {
        return if config.require_referer { Err("a Referer is required") } else { Ok(()) };
    };
    let origin = referer.to_str().ok().and_then(origin_of).ok_or("unreadable Referer")?;
    let allowed = config.allowed_referers.iter().any(|a| origin_of(a).as_deref() == Some(origin.as_str()));
    if allowed { Ok(()) } else { Err("this site may not embed these images") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn origins_normalize() {
        assert_eq!(origin_of("https://Forum.Example.org/t/42?x=1").as_deref(), Some("https://forum.example.org"));
        assert_eq!(origin_of("https://a.org:443/").as_deref(), Some("https://a.org"));
        assert_eq!(origin_of("http://a.org:8080").as_deref(), Some("http://a.org:8080"));
        assert_eq!(origin_of("forum.example.org"), None);
        assert_eq!(origin_of("ftp://a.org"), None);
    }

    fn with_referer(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(REFERER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn policy() {
        let open = Config::embedded();
        assert!(check(&open, &with_referer(Some("https://evil.example"))).is_ok());

        let mut c = Config::embedded();
        c.allowed_referers = vec!["https://forum.example.org".into()];
        assert!(check(&c, &with_referer(Some("https://forum.example.org/t/1"))).is_ok());
        assert!(check(&c, &with_referer(Some("https://evil.example/"))).is_err());
        assert!(check(&c, &with_referer(Some("garbage"))).is_err());
        assert!(check(&c, &with_referer(None)).is_ok());
        c.require_referer = true;
        assert!(check(&c, &with_referer(None)).is_err());
    }
}
