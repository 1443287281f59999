//! Who may see what: a resource under `require_signature` (`camera/NAME`,
//! `badge/NAME`, `board/NAME`, `online/ROOM`) shows in the JSON API, the
//! channel lists and `/metrics` only to a request with an API token or a
//! valid signature for that very resource; diagnostics (source URLs, error
//! texts, file paths) only to a token. One decision, called by every view,
//! so no view can disagree with the signed images.

use std::collections::HashSet;

use hyper::Request;

use super::RequestBody;
use super::auth::authorize_write;
use super::route_table::{self, Resource, Route};
use super::signed;
use crate::app::App;
use crate::config::Config;
use crate::push::gauges::Shown;
use crate::push::record::ViewerRecord;

/// Whether the request carries a valid API token.
pub fn has_token(app: &App, req: &Request<RequestBody>) -> bool {
    authorize_write(&app.config(), req.headers()).is_ok()
}

/// Whether `req` may see `resource`: always if the resource is public;
/// for a private one, with a token or the resource's own valid signature.
/// A signature for any form of the resource (its stream, its snapshot, its
/// SVG) opens its data: whoever may see the picture may read its figures.
pub fn may_see(app: &App, req: &Request<RequestBody>, resource: &str) -> bool {
    !app.config().requires_signature(resource) || has_token(app, req) || signed_for(app, req, resource)
}

/// Whether `req` carries a valid signature for `resource` (any form).
pub fn signed_for(app: &App, req: &Request<RequestBody>, resource: &str) -> bool {
    let Some(resource) = Resource::parse(resource) else { return false };
    let keys = &app.config().url_signing_keys;
    resource.kind.forms().iter().any(|form| signed::verify(keys, &resource, *form, req.uri().query()).is_ok())
}

/// The resource a live channel shows: `badge/build/flat@2x~logo` →
/// `badge/build`, `camera/door@w320` → `camera/door`, `board/b@2x` →
/// `board/b`. Names are `[A-Za-z0-9_-]`, so the first of `/ @ ~` after the
/// kind ends the name.
pub fn channel_resource(channel: &str) -> &str {
    let Some((kind, rest)) = channel.split_once('/') else { return channel };
    let name_len = rest.find(['/', '@', '~']).unwrap_or(rest.len());
    &channel[..kind.len() + 1 + name_len]
}

/// Whether `req` may see the live channel named `channel`.
pub fn may_see_channel(app: &App, req: &Request<RequestBody>, channel: &str) -> bool {
    may_see(app, req, channel_resource(channel))
}

/// Whether a stream already running on `channel` may go on under
/// `config` (after a reload): its resource is public, or the signature
/// that let it in still verifies with the keys there are now. A stream
/// let in only by a removed key, or on a resource that became private,
/// ends; one that did not need what changed runs on.
pub fn still_allowed(config: &Config, channel: &str, record: &ViewerRecord) -> bool {
    let resource = channel_resource(channel);
    let signed = record.signed.as_deref();
    let query = signed.and_then(|s| s.split_once('?')).map(|(_, q)| q);
    // A member is one only as long as its signature verifies.
    let names_member = channel.starts_with("online/") && super::member::named(query);
    if !names_member && !config.requires_signature(resource) {
        return true;
    }
    let Some(signed) = signed else { return false };
    let (path, query) = signed.split_once('?').map_or((signed, None), |(p, q)| (p, Some(q)));
    let Some(route) = Route::parse(path, query) else { return false };
    let Some((resource, form)) = route.serves(route_table::default_camera(config)) else { return false };
    signed::verify(&config.url_signing_keys, &resource, form, query).is_ok()
}

/// For `/metrics`: which channels' series a scrape lists. With a token,
/// all; without, only public ones (a scrape carries no resource to sign).
pub fn metrics_channels(app: &App, req: &Request<RequestBody>) -> Shown {
    if has_token(app, req) {
        return Box::new(|_| true);
    }
    // Only configured resources can require a signature: the same rule as
    // `may_see`, applied to each of them once per scrape.
    let c = &app.config();
    let configured = (c.cameras.keys().map(|n| format!("camera/{n}")))
        .chain(c.badges.keys().map(|n| format!("badge/{n}")))
        .chain(c.boards.keys().map(|n| format!("board/{n}")))
        .chain(c.rooms.keys().map(|n| format!("online/{n}")));
    let private: HashSet<String> = configured.filter(|r| c.requires_signature(r)).collect();
    Box::new(move |channel| !private.contains(channel_resource(channel)))
}

#[cfg(test)]
mod tests {
    use super::channel_resource;

    #[test]
    fn channels_name_their_resource() {
        assert_eq!(channel_resource("badge/build"), "badge/build");
        assert_eq!(channel_resource("badge/build/flat@2x~logo=abc"), "badge/build");
        assert_eq!(channel_resource("badge/build~a/b"), "badge/build");
        assert_eq!(channel_resource("camera/door@w320"), "camera/door");
        assert_eq!(channel_resource("board/status@2x"), "board/status");
        assert_eq!(channel_resource("online/staff"), "online/staff");
        assert_eq!(channel_resource("odd"), "odd");
    }
}
