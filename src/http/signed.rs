//! Signed, expiring URLs: a private camera (or badge, board, room) in an
//! `<img>` without a password in the page. Everything in the query before
//! `sig` is signed, with the resource the route serves (the route table's
//! `Resource`): `formats` (the forms it may be shown in), `exp` (unix
//! seconds) and every other parameter, narrowing ones included. After `sig`
//! a page may add only narrowing parameters, and only to narrow further.
//! The signed text is unambiguous (keys and values percent-encoded, one
//! pair a line); docs/signed-urls.md specifies it for other languages. The
//! first key signs, every key verifies, so keys rotate; comparison is
//! constant time (ring); keys are never logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ring::hmac;

use super::route_table::{Form, Kind, Resource};

/// Parameters that only narrow what a viewer gets: absent when signing,
/// a page may add them; signed, a page may only narrow them further.
pub const NARROWING: &[&str] = &["width", "max_fps", "max_duration", "max_bytes", "max_delay", "framing", "once"];

/// The first line of every signed text: a later change of the text's
/// shape gets a new one, so old and new signatures never collide.
const VERSION: &str = "framecast-signed-url-v2";

/// Everything but RFC 3986's unreserved characters is `%XX` (uppercase),
/// as PHP's `rawurlencode` and Python's `quote(s, safe="-._~")` write it.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Latest `exp` accepted: a signature lives at most this long.
const MAX_TTL_S: u64 = 10 * 365 * 24 * 3600;

/// How long the signed URL of a request stays valid.
#[derive(Debug, Clone, Copy)]
pub struct ValidFor(pub Duration);

/// Why a request was refused (a `403`, this sentence its body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this URL must be signed: add formats, exp and sig (framecast sign PATH --ttl SECONDS)")]
    Missing,
    #[error("the signed URL expired")]
    Expired,
    #[error("exp is not a unix time in seconds")]
    BadExpiry,
    #[error("the signature does not match this URL")]
    BadSignature,
    #[error("this URL is signed for .{signed} only, not .{asked}")]
    WrongForm { asked: &'static str, signed: String },
    #[error("{0} may not follow sig: only width, max_fps, max_duration, max_bytes, max_delay, framing and once may")]
    NotNarrowing(String),
    #[error("{key}={asked:?} widens the signed {key}={signed:?}: a signed URL may only be narrowed")]
    Widens { key: String, asked: String, signed: String },
    #[error("signed URLs are required here, but no url_signing_keys are configured")]
    NoKeys,
}

/// The forms a signature allows: `any`, or a list (`jpg`, `html,jpg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Formats {
    Any,
    Only(Vec<Form>),
}

impl Formats {
    /// What `framecast sign` binds without `--format`: the form signed; a
    /// pull page (`.html`) also its snapshots, which it fetches.
    pub fn default_for(form: Form) -> Formats {
        match form {
            Form::Html => Formats::Only(vec![Form::Jpg, Form::Html]),
            form => Formats::Only(vec![form]),
        }
    }

    /// `any` or comma-separated extensions, each one `kind` is served in.
    pub fn parse(text: &str, kind: Kind) -> Result<Formats, String> {
        if text == "any" {
            return Ok(Formats::Any);
        }
        let known: Vec<&str> = kind.forms().iter().map(|f| f.ext()).collect();
        let mut forms = Vec::new();
        for ext in text.split(',') {
            match Form::parse(ext.trim_start_matches('.')).filter(|f| kind.forms().contains(f)) {
                Some(form) if !forms.contains(&form) => forms.push(form),
                Some(_) => {}
                None => return Err(format!("format {ext:?}: use any, or one or more of {}", known.join(", "))),
            }
        }
        forms.sort();
        Ok(Formats::Only(forms))
    }

    pub fn allows(&self, form: Form) -> bool {
        match self {
            Formats::Any => true,
            Formats::Only(forms) => forms.contains(&form),
        }
    }
}

impl std::fmt::Display for Formats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Formats::Any => f.write_str("any"),
            Formats::Only(forms) => f.write_str(&forms.iter().map(|f| f.ext()).collect::<Vec<_>>().join(",")),
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

type Pairs = Vec<(String, String)>;

/// The query's pairs, decoded, split at the first `sig`: (signed, `sig`'s
/// value, the ones after it). `None` without a `sig`.
fn split_at_sig(query: Option<&str>) -> (Pairs, Option<String>, Pairs) {
    let (mut signed, mut sig, mut after) = (Vec::new(), None, Vec::new());
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let pair = (k.into_owned(), v.into_owned());
        match sig {
            None if pair.0 == "sig" => sig = Some(pair.1),
            None => signed.push(pair),
            Some(_) => after.push(pair),
        }
    }
    (signed, sig, after)
}

/// The pairs a signature covers (those before the first `sig`), decoded.
pub fn signed_pairs(query: Option<&str>) -> Vec<(String, String)> {
    split_at_sig(query).0
}

/// The signed text: the version line, the resource, then one line per
/// signed pair, `KEY=VALUE` each percent-encoded, the lines sorted.
fn canonical(resource: &Resource, signed: &[(String, String)]) -> String {
    let mut lines: Vec<String> = signed
        .iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, ENCODE), utf8_percent_encode(v, ENCODE)))
        .collect();
    lines.sort();
    let mut text = format!("{VERSION}\n{resource}");
    for line in lines {
        text.push('\n');
        text.push_str(&line);
    }
    text
}

fn tag(key: &str, text: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()), text.as_bytes())
}

/// `path_and_query` with `formats`, `exp` and `sig` appended, valid for
/// `ttl`; `Err` if it already has one of them or names a narrowing
/// parameter twice.
pub fn sign(
    key: &str,
    resource: &Resource,
    formats: &Formats,
    path_and_query: &str,
    ttl: Duration,
) -> Result<String, String> {
    let query = path_and_query.split_once('?').map(|(_, q)| q);
    let (mut signed, sig, _) = split_at_sig(query);
    if sig.is_some() {
        return Err("the path is signed already (it has sig)".into());
    }
    for (i, (k, _)) in signed.iter().enumerate() {
        if k == "exp" || k == "formats" {
            return Err(format!("the path has {k}: framecast sign adds it"));
        }
        if NARROWING.contains(&&**k) && signed[..i].iter().any(|(seen, _)| seen == k) {
            return Err(format!("{k} is given twice: give it once"));
        }
    }
    let exp = now() + ttl.as_secs();
    let added = format!("formats={formats}&exp={exp}");
    signed.extend(form_urlencoded::parse(added.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())));
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag(key, &canonical(resource, &signed)).as_ref());
    let sep = match query {
        Some(q) if !q.is_empty() && !q.ends_with('&') => "&",
        Some(_) => "",
        None => "?",
    };
    Ok(format!("{path_and_query}{sep}{added}&sig={sig}"))
}

/// Checks a request for `resource` in `form`; `Ok` is how long the URL
/// stays valid (a stream ends then).
pub fn verify(keys: &[String], resource: &Resource, form: Form, query: Option<&str>) -> Result<Duration, Refused> {
    if keys.is_empty() {
        return Err(Refused::NoKeys);
    }
    let (signed, sig, after) = split_at_sig(query);
    let value = |key: &str| signed.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let (Some(exp), Some(formats), Some(sig)) = (value("exp"), value("formats"), sig) else {
        return Err(Refused::Missing);
    };
    let exp: u64 = exp.parse().map_err(|_| Refused::BadExpiry)?;
    let now = now();
    if exp > now + MAX_TTL_S {
        return Err(Refused::BadExpiry);
    }
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).map_err(|_| Refused::BadSignature)?;
    let text = canonical(resource, &signed);
    // ring's verify compares in constant time.
    let valid = keys
        .iter()
        .any(|key| hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()), text.as_bytes(), &sig).is_ok());
    if !valid {
        return Err(Refused::BadSignature);
    }
    // Signed, so the signer wrote these: checked only after the signature.
    let allowed = Formats::parse(formats, resource.kind).map_err(|_| Refused::BadSignature)?;
    if !allowed.allows(form) {
        return Err(Refused::WrongForm { asked: form.ext(), signed: allowed.to_string() });
    }
    for (key, asked) in &after {
        if !NARROWING.contains(&key.as_str()) {
            return Err(Refused::NotNarrowing(key.clone()));
        }
        for (_, bound) in signed.iter().filter(|(k, _)| k == key) {
            if !narrows(key, asked, bound) {
                return Err(Refused::Widens { key: key.clone(), asked: asked.clone(), signed: bound.clone() });
            }
        }
    }
    if exp <= now {
        return Err(Refused::Expired);
    }
    Ok(Duration::from_secs(exp - now))
}

/// Whether `asked`, added after `sig`, keeps within the signed `bound`:
/// numbers no larger, `framing` the same, `once` only ever added.
fn narrows(key: &str, asked: &str, bound: &str) -> bool {
    match key {
        "once" => true,
        "framing" => asked == bound,
        _ => match (asked.parse::<f64>(), bound.parse::<f64>()) {
            (Ok(asked), Ok(bound)) => asked <= bound,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 2] = ["new-key-0123456789abcdef", "old-key-0123456789abcdef"];

    fn keys() -> Vec<String> {
        KEYS.iter().map(|k| k.to_string()).collect()
    }

    fn door() -> Resource {
        Resource { kind: Kind::Camera, name: "door".into() }
    }

    fn query(url: &str) -> Option<&str> {
        url.split_once('?').map(|(_, q)| q)
    }

    fn signed(path: &str, form: Form) -> String {
        sign(KEYS[0], &door(), &Formats::default_for(form), path, Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn sign_verify_tamper_rotate() {
        let keys = keys();
        let r = door();
        let url = signed("/camera/door.mjpg?style=x", Form::Mjpg);
        assert!(url.starts_with("/camera/door.mjpg?style=x&formats=mjpg&exp="), "{url}");
        let q = query(&url).unwrap();
        assert!(verify(&keys, &r, Form::Mjpg, Some(q)).unwrap() <= Duration::from_secs(60));
        // Narrowing parameters may follow sig; others may not, nor go before it.
        assert!(verify(&keys, &r, Form::Mjpg, Some(&format!("{q}&width=320&max_fps=2&once"))).is_ok());
        let style = Err(Refused::NotNarrowing("style".into()));
        assert_eq!(verify(&keys, &r, Form::Mjpg, Some(&format!("{q}&style=y"))), style);
        assert_eq!(verify(&keys, &r, Form::Mjpg, Some(&format!("width=3&{q}"))), Err(Refused::BadSignature));
        let other = Resource { kind: Kind::Camera, name: "other".into() };
        assert_eq!(verify(&keys, &other, Form::Mjpg, Some(q)), Err(Refused::BadSignature));
        let badge = Resource { kind: Kind::Badge, name: "door".into() };
        assert_eq!(verify(&keys, &badge, Form::Mjpg, Some(q)), Err(Refused::BadSignature));
        // Signed by the old key: still valid while it is listed.
        let old = sign(KEYS[1], &r, &Formats::Any, "/camera/door.mjpg", Duration::from_secs(60)).unwrap();
        assert!(verify(&keys, &r, Form::Jpg, query(&old)).is_ok());
        assert_eq!(verify(&keys[..1], &r, Form::Jpg, query(&old)), Err(Refused::BadSignature));
        assert_eq!(verify(&keys, &r, Form::Mjpg, None), Err(Refused::Missing));
        assert_eq!(verify(&[], &r, Form::Mjpg, query(&old)), Err(Refused::NoKeys));
        let expired = sign(KEYS[0], &r, &Formats::Any, "/camera/door.mjpg", Duration::ZERO).unwrap();
        assert_eq!(verify(&keys, &r, Form::Mjpg, query(&expired)), Err(Refused::Expired));
        assert_eq!(verify(&keys, &r, Form::Mjpg, Some("formats=any&exp=abc&sig=x")), Err(Refused::BadExpiry));
        let far = Some("formats=any&exp=99999999999999&sig=x");
        assert_eq!(verify(&keys, &r, Form::Mjpg, far), Err(Refused::BadExpiry));
        // A URL of the earlier release (no formats) is not accepted.
        assert_eq!(verify(&keys, &r, Form::Mjpg, Some("exp=99&sig=x")), Err(Refused::Missing));
    }

    #[test]
    fn the_format_is_bound() {
        let keys = keys();
        let url = signed("/camera/door.jpg?width=320", Form::Jpg);
        let wrong = Err(Refused::WrongForm { asked: "mjpg", signed: "jpg".into() });
        assert_eq!(verify(&keys, &door(), Form::Mjpg, query(&url)), wrong);
        assert!(verify(&keys, &door(), Form::Jpg, query(&url)).is_ok());
        // A pull page's signature also serves the snapshots it pulls.
        let page = signed("/camera/door.html", Form::Html);
        assert!(page.contains("formats=jpg,html&"), "{page}");
        assert!(verify(&keys, &door(), Form::Jpg, query(&page)).is_ok());
        assert!(verify(&keys, &door(), Form::Mjpg, query(&page)).is_err());
        // Changing `formats` breaks the signature.
        let widened = url.replace("formats=jpg", "formats=any");
        assert_eq!(verify(&keys, &door(), Form::Mjpg, query(&widened)), Err(Refused::BadSignature));
        assert_eq!(Formats::parse("mjpg,.jpg", Kind::Camera), Ok(Formats::Only(vec![Form::Mjpg, Form::Jpg])));
        assert!(Formats::parse("png", Kind::Camera).unwrap_err().contains("mjpg, jpg, html"));
        assert!(Formats::parse("svg", Kind::Board).is_err());
    }

    #[test]
    fn signed_narrowing_parameters_may_only_narrow() {
        let keys = keys();
        let url = signed("/camera/door.mjpg?width=320&max_duration=60&max_fps=5&framing=reader&once", Form::Mjpg);
        let check = |extra: &str| verify(&keys, &door(), Form::Mjpg, Some(&format!("{}{extra}", query(&url).unwrap())));
        assert!(check("").is_ok());
        assert!(check("&width=200&max_duration=30&max_fps=0.5&framing=reader&once&max_bytes=99").is_ok());
        for widened in ["&width=321", "&max_duration=61", "&max_fps=6", "&framing=browser", "&width=NaN", "&width=x"] {
            assert!(matches!(check(widened), Err(Refused::Widens { .. })), "{widened}: {:?}", check(widened));
        }
        // Dropping a signed parameter (here `once`) breaks the signature.
        let dropped = url.replace("&once", "");
        assert_eq!(verify(&keys, &door(), Form::Mjpg, query(&dropped)), Err(Refused::BadSignature));
        let raised = url.replace("width=320", "width=640");
        assert_eq!(verify(&keys, &door(), Form::Mjpg, query(&raised)), Err(Refused::BadSignature));
        // Parameters the signer did not give stay free to add.
        let bare = signed("/camera/door.mjpg", Form::Mjpg);
        assert!(verify(&keys, &door(), Form::Mjpg, Some(&format!("{}&width=4000", query(&bare).unwrap()))).is_ok());
        // `exp` or another `sig` after `sig` is not narrowing.
        assert!(matches!(check("&exp=1"), Err(Refused::NotNarrowing(_))));
        assert!(sign(KEYS[0], &door(), &Formats::Any, "/x?width=1&width=2", Duration::ZERO).is_err());
        assert!(sign(KEYS[0], &door(), &Formats::Any, "/x?exp=1", Duration::ZERO).is_err());
    }

    #[test]
    fn the_signed_text_is_unambiguous() {
        let pairs = |q: &str| split_at_sig(Some(q)).0;
        let (a, b) = (canonical(&door(), &pairs("a=b&c=d")), canonical(&door(), &pairs("a=b%0Ac%3Dd")));
        assert_ne!(a, b);
        assert_eq!(a, "framecast-signed-url-v2\ncamera/door\na=b\nc=d");
        assert_eq!(b, "framecast-signed-url-v2\ncamera/door\na=b%0Ac%3Dd");
        // Decoded first, so one value written two ways signs the same.
        assert_eq!(canonical(&door(), &pairs("t=a+b")), canonical(&door(), &pairs("t=a%20b")));
        assert_eq!(canonical(&door(), &pairs("t=%C3%A9~")), "framecast-signed-url-v2\ncamera/door\nt=%C3%A9~");
        // The folded variant of a signed URL is refused.
        let keys = keys();
        let url = signed("/camera/door.mjpg?a=b&c=d", Form::Mjpg);
        let folded = url.replace("a=b&c=d", "a=b%0Ac%3Dd");
        assert_eq!(verify(&keys, &door(), Form::Mjpg, query(&folded)), Err(Refused::BadSignature));
        assert!(verify(&keys, &door(), Form::Mjpg, query(&url)).is_ok());
    }
}
