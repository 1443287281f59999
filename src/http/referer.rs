//! Referer policy: which pages may embed our images. Browsers often send
//! only the origin, or no Referer at all, so policy compares origins.

use hyper::HeaderMap;
use hyper::header::REFERER;

use super::errors::Forbidden;
use crate::config::Config;
use crate::config::url::Origin;

/// `Err(reason)` when the policy refuses a request with these headers.
pub fn check(config: &Config, headers: &HeaderMap) -> Result<(), Forbidden> {
    refusal(config, headers).map_err(Forbidden)
}

fn refusal(config: &Config, headers: &HeaderMap) -> Result<(), &'static str> {
    if config.allowed_referers.is_empty() {
        return Ok(());
    }
    let Some(referer) = headers.get(REFERER) else {
        return if config.require_referer { Err("a Referer is required") } else { Ok(()) };
    };
    let origin = referer.to_str().ok().and_then(Origin::of).ok_or("unreadable Referer")?;
    // The allowed origins were parsed once, at config load.
    let allowed = config.allowed_referers.contains(&origin);
    if allowed { Ok(()) } else { Err("this site may not embed these images") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

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
        c.allowed_referers = vec![Origin::of("https://forum.example.org").unwrap()];
        assert!(check(&c, &with_referer(Some("https://forum.example.org/t/1"))).is_ok());
        assert!(check(&c, &with_referer(Some("https://evil.example/"))).is_err());
        assert!(check(&c, &with_referer(Some("garbage"))).is_err());
        assert!(check(&c, &with_referer(None)).is_ok());
        c.require_referer = true;
        assert!(check(&c, &with_referer(None)).is_err());
    }
}
