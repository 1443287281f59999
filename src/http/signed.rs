//! Signed, expiring URLs: a private camera (or badge, board, room) in an
//! `<img>` without a password in the page. A URL carries `exp` (unix
//! seconds) and `sig`, the HMAC-SHA256 under a `url_signing_keys` key of
//! the resource the path names (`camera/door` for `/camera/door.mjpg`,
//! `.jpg`, `.html` and, for the default camera, `/stream`), `exp` and
//! every other query parameter except the ones that only narrow what a
//! viewer gets (`NARROWING`), which a page may add without breaking the
//! signature. The first key signs, every key verifies, so keys rotate;
//! comparison is constant time (ring); keys are never logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::hmac;

/// Parameters anyone may add to or change in a signed URL: each can only
/// narrow what the viewer gets (server limits are tightened, never loosened).
pub const NARROWING: &[&str] = &["width", "max_fps", "max_duration", "max_bytes", "max_delay", "framing", "once"];

/// Latest `exp` accepted: a signature lives at most this long.
const MAX_TTL_S: u64 = 10 * 365 * 24 * 3600;

/// How long the signed URL of a request stays valid.
#[derive(Debug, Clone, Copy)]
pub struct ValidFor(pub Duration);

/// Why a request was refused (a `403`, this sentence its body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this URL must be signed: add exp and sig (framecast sign PATH --ttl SECONDS)")]
    Missing,
    #[error("the signed URL expired")]
    Expired,
    #[error("exp is not a unix time in seconds")]
    BadExpiry,
    #[error("the signature does not match this URL")]
    BadSignature,
    #[error("signed URLs are required here, but no url_signing_keys are configured")]
    NoKeys,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The signed text: resource, `exp`, then the scope parameters sorted.
fn canonical(resource: &str, exp: u64, query: Option<&str>) -> String {
    let mut scope: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "exp" && k != "sig" && !NARROWING.contains(&&**k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    scope.sort();
    let mut text = format!("{resource}\n{exp}");
    for (k, v) in scope {
        text.push('\n');
        text.push_str(&k);
        text.push('=');
        text.push_str(&v);
    }
    text
}

fn tag(key: &str, text: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()), text.as_bytes())
}

/// What a request is for, in the sense of signatures: `camera/NAME`,
/// `badge/NAME`, `board/NAME` or `online/ROOM`; `None` for anything that
/// cannot be signed (static badges, the API, the demo page).
pub fn resource(path: &str, query: Option<&str>, default_camera: impl Fn() -> Option<String>) -> Option<String> {
    let action = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(k, v)| k == "action" && (v == "stream" || v == "snapshot"));
    match path {
        "/stream" | "/snapshot" => return default_camera().map(|c| format!("camera/{c}")),
        "/" if action => return default_camera().map(|c| format!("camera/{c}")),
        "/online.png" | "/online.svg" => return Some("online/default".into()),
        _ => {}
    }
    let stem = |prefix: &str, exts: &[&str]| {
        let rest = path.strip_prefix(prefix)?;
        let (stem, ext) = rest.rsplit_once('.')?;
        exts.contains(&ext).then(|| stem.split('@').next().unwrap_or(stem).to_string())
    };
    if path.starts_with("/badge/static/") {
        return None;
    }
    if let Some(name) = stem("/camera/", &["mjpg", "jpg", "html"]) {
        return Some(format!("camera/{name}"));
    }
    if let Some(name) = stem("/badge/", &["png", "svg"]) {
        return Some(format!("badge/{name}"));
    }
    if let Some(name) = stem("/board/", &["png"]) {
        return Some(format!("board/{name}"));
    }
    stem("/online/", &["png", "svg"]).map(|room| format!("online/{room}"))
}

/// `path_and_query` with `exp` and `sig` for `resource` appended, valid for `ttl`.
pub fn sign(key: &str, resource: &str, path_and_query: &str, ttl: Duration) -> String {
    let query = path_and_query.split_once('?').map(|(_, q)| q);
    let exp = now() + ttl.as_secs();
    let text = canonical(resource, exp, query);
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag(key, &text).as_ref());
    let sep = if query.is_some_and(|q| !q.is_empty()) {
        "&"
    } else if query.is_some() {
        ""
    } else {
        "?"
    };
    format!("{path_and_query}{sep}exp={exp}&sig={sig}")
}

/// Checks a request's signature; `Ok` is how long the URL stays valid
/// (a stream ends then).
pub fn verify(keys: &[String], resource: &str, query: Option<&str>) -> Result<Duration, Refused> {
    if keys.is_empty() {
        return Err(Refused::NoKeys);
    }
    let (mut exp, mut sig) = (None, None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "exp" => exp = Some(v.into_owned()),
            "sig" => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(exp), Some(sig)) = (exp, sig) else { return Err(Refused::Missing) };
    let exp: u64 = exp.parse().map_err(|_| Refused::BadExpiry)?;
    let now = now();
    if exp > now + MAX_TTL_S {
        return Err(Refused::BadExpiry);
    }
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).map_err(|_| Refused::BadSignature)?;
    let text = canonical(resource, exp, query);
    // ring's verify compares in constant time.
    let valid = keys
        .iter()
        .any(|key| hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()), text.as_bytes(), &sig).is_ok());
    if !valid {
        return Err(Refused::BadSignature);
    }
    if exp <= now {
        return Err(Refused::Expired);
    }
    Ok(Duration::from_secs(exp - now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> Option<&str> {
        url.split_once('?').map(|(_, q)| q)
    }

    #[test]
    fn sign_verify_tamper_rotate() {
        let keys = vec!["new-key-0123456789abcdef".to_string(), "old-key-0123456789abcdef".to_string()];
        let r = "camera/door";
        let url = sign(&keys[0], r, "/camera/door.mjpg?style=x", Duration::from_secs(60));
        let q = query(&url).unwrap();
        assert!(verify(&keys, r, Some(q)).unwrap() <= Duration::from_secs(60));
        // Narrowing parameters may be added; scope ones may not.
        assert!(verify(&keys, r, Some(&format!("{q}&width=320&max_fps=2"))).is_ok());
        assert_eq!(verify(&keys, r, Some(&format!("{q}&style=y"))), Err(Refused::BadSignature));
        assert_eq!(verify(&keys, "camera/other", Some(q)), Err(Refused::BadSignature));
        // Signed by the old key: still valid while it is listed.
        let old = sign(&keys[1], r, "/camera/door.mjpg", Duration::from_secs(60));
        assert!(verify(&keys, r, query(&old)).is_ok());
        assert_eq!(verify(&keys[..1], r, query(&old)), Err(Refused::BadSignature));
        assert_eq!(verify(&keys, r, None), Err(Refused::Missing));
        assert_eq!(verify(&[], r, query(&old)), Err(Refused::NoKeys));
        let expired = sign(&keys[0], r, "/camera/door.mjpg", Duration::ZERO);
        assert_eq!(verify(&keys, r, query(&expired)), Err(Refused::Expired));
        assert_eq!(verify(&keys, r, Some("exp=abc&sig=x")), Err(Refused::BadExpiry));
        assert_eq!(verify(&keys, r, Some("exp=99999999999999&sig=x")), Err(Refused::BadExpiry));
    }

    #[test]
    fn resources() {
        let door = || Some("door".to_string());
        assert_eq!(resource("/camera/door.jpg", None, door).as_deref(), Some("camera/door"));
        assert_eq!(resource("/stream", None, door).as_deref(), Some("camera/door"));
        assert_eq!(resource("/", Some("action=snapshot"), door).as_deref(), Some("camera/door"));
        assert_eq!(resource("/", None, door), None);
        assert_eq!(resource("/badge/build@2x.png", None, door).as_deref(), Some("badge/build"));
        assert_eq!(resource("/badge/static/a-b-c.png", None, door), None);
        assert_eq!(resource("/online.png", None, door).as_deref(), Some("online/default"));
        assert_eq!(resource("/board/status.png", None, door).as_deref(), Some("board/status"));
    }
}
