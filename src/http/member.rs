//! `?member=ID` (and `&name=NAME`, `&hidden=1`) on a users-online URL: who
//! the viewer is, signed into the URL by the forum that rendered the page
//! (`docs/forums.md`). Only a signed member counts as one: the route layer
//! verifies the signature of any room URL that names a member, public rooms
//! too (`routes::check_signature`), and this reads the member from the
//! signed part of the query alone. No `member`: a guest.

use std::sync::Arc;

use super::errors::BadRequest;
use crate::sources::room_stats::Member;

/// The parameters that say who the viewer is.
const KEYS: [&str; 3] = ["member", "name", "hidden"];

/// A member id's longest form, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// A display name is cut to this many characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Whether `query` names a member anywhere (signed or not): then the URL
/// must carry a valid signature.
pub fn named(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| KEYS.contains(&&*k))
}

/// The member the signed part of `query` names, once its signature was
/// verified; `None` for a guest.
pub fn signed_member(query: Option<&str>) -> Result<Option<Member>, BadRequest> {
    let (mut id, mut name, mut hidden) = (None, None, None);
    for (key, value) in super::signed::signed_pairs(query) {
        let slot = match key.as_str() {
            "member" => &mut id,
            "name" => &mut name,
            "hidden" => &mut hidden,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(BadRequest(format!("{key}: given twice; a URL names one member")));
        }
    }
    let Some(id) = id else {
        return match (name, hidden) {
            (None, None) => Ok(None),
            _ => Err(BadRequest("name and hidden describe a member: add member=ID (signed)".into())),
        };
    };
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(BadRequest(format!(
            "member: an id of 1 to {MAX_ID_BYTES} bytes without control characters (the forum's user id)"
        )));
    }
    let hidden = match hidden.as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => return Err(BadRequest(format!("hidden={other:?}: use hidden=1 (or leave it out)"))),
    };
    let name = name.map(|n| shown_name(&n)).filter(|n| !n.is_empty());
    Ok(Some(Member { id: id.into(), name: name.map(Arc::from), hidden }))
}

/// A display name as it may be drawn: without control characters or the
/// bidi controls that could reorder the text around it, at most
/// `MAX_NAME_CHARS` characters.
fn shown_name(name: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
    name.chars().filter(|&c| !c.is_control() && !bidi(c)).take(MAX_NAME_CHARS).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(query: &str) -> Result<Option<Member>, BadRequest> {
        signed_member(Some(query))
    }

    #[test]
    fn a_member_is_read_from_the_signed_part_only() {
        let m = member("member=42&name=Alice%20B&exp=1&sig=x").unwrap().unwrap();
        assert_eq!((&*m.id, m.name.as_deref(), m.hidden), ("42", Some("Alice B"), false));
        // After `sig` nothing names a member (the signature check refuses it too).
        assert_eq!(member("exp=1&sig=x&member=eve").unwrap(), None);
        assert!(member("member=a&hidden=1&sig=x").unwrap().unwrap().hidden);
        assert!(named(Some("exp=1&sig=x&member=eve")));
        assert!(!named(Some("style=flat")));
    }

    #[test]
    fn bad_members_are_refused_with_a_reason() {
        assert!(member("member=a&member=b&sig=x").is_err());
        assert!(member("name=alice&sig=x").is_err());
        assert!(member("member=a&hidden=yes&sig=x").is_err());
        assert!(member(&format!("member={}&sig=x", "x".repeat(MAX_ID_BYTES + 1))).is_err());
        assert!(member("member=&sig=x").is_err());
    }

    #[test]
    fn names_are_bounded_and_lose_controls() {
        let long = "é".repeat(MAX_NAME_CHARS + 50);
        let m = member(&format!("member=a&name={long}&sig=x")).unwrap().unwrap();
        assert_eq!(m.name.unwrap().chars().count(), MAX_NAME_CHARS);
        let m = member("member=a&name=%E2%80%AEevil%0A&sig=x").unwrap().unwrap();
        assert_eq!(m.name.as_deref(), Some("evil"));
    }
}
