//! What a client can take, from its query and User-Agent: a stream in which
//! framing, or one plain image; and the per-client limits it asks for.

use hyper::header::USER_AGENT;
use hyper::{HeaderMap, Request};

use std::time::Duration;

use super::RequestBody;
use super::errors::BadRequest;
use super::query;
use super::signed::ValidFor;
use crate::config::Config;
use crate::config::bounds;
use crate::config::limits::LimitsConfig;
use crate::push::limits::Limits;
use crate::push::part::Framing;

#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Stream(Framing),
    /// One image: asked for with `?once`, or a fetcher that cannot stream.
    Once,
}

/// Decides from `?once`, `?framing=browser|reader` and the User-Agent.
pub fn delivery(config: &Config, headers: &HeaderMap, query: Option<&str>) -> Result<Delivery, BadRequest> {
    let mut framing = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "once" => return Ok(Delivery::Once),
            "framing" => {
                framing = Some(match &*value {
                    "browser" => Framing::Browser,
                    "reader" => Framing::Reader,
                    other => {
                        return Err(BadRequest(format!("framing={other:?} is invalid: use browser or reader")));
                    }
                })
            }
            _ => {} // cache-busters and the like are common in embeds
        }
    }
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let matches = |list: &[String]| list.iter().any(|s| contains_ignore_case(agent, s));
    // Crawlers are never counted: a viewer is a person.
    if matches(&config.single_image_user_agents) || matches(&config.bot_user_agents) {
        return Ok(Delivery::Once);
    }
    Ok(Delivery::Stream(framing.unwrap_or({
        // Unknown clients get the framing that is correct for everyone;
        // browsers get theirs, which shows each frame without delay.
        if !matches(&config.reader_user_agents) && agent.contains("Mozilla/") {
            Framing::Browser
        } else {
            Framing::Reader
        }
    })))
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(&needle.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn ua(agent: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_str(agent).unwrap());
        h
    }

    #[test]
    fn choices() {
        let c = Config::embedded();
        let chrome = ua("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0");
        assert_eq!(delivery(&c, &chrome, None), Ok(Delivery::Stream(Framing::Browser)));
        assert_eq!(delivery(&c, &ua("Lavf/59.27.100"), None), Ok(Delivery::Stream(Framing::Reader)));
        assert_eq!(delivery(&c, &HeaderMap::new(), None), Ok(Delivery::Stream(Framing::Reader)));
        assert_eq!(delivery(&c, &chrome, Some("framing=reader")), Ok(Delivery::Stream(Framing::Reader)));
        assert_eq!(delivery(&c, &ua("curl/8"), Some("framing=browser")), Ok(Delivery::Stream(Framing::Browser)));
        assert_eq!(delivery(&c, &chrome, Some("once")), Ok(Delivery::Once));
        assert_eq!(delivery(&c, &ua("github-camo (876de43e)"), None), Ok(Delivery::Once));
        assert!(delivery(&c, &chrome, Some("framing=fast")).is_err());
        assert_eq!(delivery(&c, &chrome, Some("v=3")), Ok(Delivery::Stream(Framing::Browser)));
    }
}

/// What one request for a live image wants, all of it read from the
/// request: one plain image, or a stream in some framing under some limits.
pub enum Wanted {
    Once,
    Stream(Framing, Limits),
}

/// `delivery`, then for a stream its limits tightened onto `base`; `Err`
/// is a 400 message. (A single image has no limits, so they are not read.)
pub fn wanted(config: &Config, req: &Request<RequestBody>, base: &LimitsConfig) -> Result<Wanted, BadRequest> {
    let (headers, query) = (req.headers(), req.uri().query());
    match delivery(config, headers, query)? {
        Delivery::Once => Ok(Wanted::Once),
        Delivery::Stream(framing) => {
            let mut limits = limits(Limits::from_config(base), query)?;
            // A signed URL's stream ends, cleanly, when the URL expires.
            if let Some(ValidFor(left)) = req.extensions().get::<ValidFor>() {
                limits = limits.tighten(Limits { max_duration: Some(*left), ..Limits::default() });
            }
            let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
            if config.departure_resend_interval_ms < config.resend_interval_ms
                && config.departure_resend_user_agents.iter().any(|s| contains_ignore_case(agent, s))
            {
                limits.resend_every = Some(Duration::from_millis(config.departure_resend_interval_ms));
            }
            Ok(Wanted::Stream(framing, limits))
        }
    }
}

/// Limits a URL asks for (`?max_duration=SECONDS&max_bytes=N&max_fps=F`),
/// tightened onto the server's `base`: a URL can never loosen them.
pub fn limits(base: Limits, query: Option<&str>) -> Result<Limits, BadRequest> {
    let mut asked = Limits::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "max_duration" => {
                let seconds = query::whole(&key, &value, bounds::DURATION_S)?;
                asked.max_duration = Some(Duration::from_secs(seconds));
            }
            "max_bytes" => asked.max_bytes = Some(query::whole(&key, &value, bounds::BYTES)?),
            "max_fps" => asked.min_interval = Some(query::fps(&key, &value)?.interval()),
            _ => {}
        }
    }
    Ok(base.tighten(asked))
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn query_limits_tighten_and_bad_ones_are_named() {
        let base = Limits { max_bytes: Some(1000), ..Limits::default() };
        let l = limits(base, Some("max_bytes=5000&max_fps=2&max_duration=30")).unwrap();
        assert_eq!(l.max_bytes, Some(1000));
        assert_eq!(l.min_interval, Some(Duration::from_millis(500)));
        assert_eq!(l.max_duration, Some(Duration::from_secs(30)));
        assert!(limits(base, Some("max_fps=-1")).unwrap_err().0.contains("max_fps"));
        assert!(limits(base, Some("max_bytes=0")).unwrap_err().0.contains("max_bytes"));
        assert!(limits(base, Some("max_duration=1e99")).unwrap_err().0.contains("max_duration"));
        assert!(limits(base, Some("max_fps=1e-20")).unwrap_err().0.contains("max_fps"));
        assert!(limits(base, Some("max_duration=18446744073709551615")).unwrap_err().0.contains("max_duration"));
    }
}
