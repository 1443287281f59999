//! Who is watching: every live image stream is listed in its channel
//! (`listed`), `GET /api/v1/channels/{channel}/viewers` shows them (the
//! address only to API token holders), and `DELETE /api/v1/viewers/{id}`
//! (with a token) ends one viewer's stream cleanly. A private channel's
//! viewers show only to a token or the resource's signature.

use hyper::header::USER_AGENT;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::RequestBody;
use super::auth::authorize_write;
use super::client_addr::{PeerAddr, client_ip};
use super::errors;
use super::private::may_see_channel;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::push::body::PushBody;
use crate::push::limits::Limits;
use crate::push::part::Framing;
use crate::push::record::ViewerRecord;
use crate::push::viewer::ViewerGuard;

/// The stream body of a new viewer, listed with what the request tells.
pub fn listed(
    app: &App,
    req: &Request<RequestBody>,
    viewer: ViewerGuard,
    framing: Framing,
    limits: Limits,
) -> PushBody {
    let agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let peer = req.extensions().get::<PeerAddr>().map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.0);
    let addr = client_ip(peer, req.headers(), &app.config().trusted_proxies, app.config().client_address_header);
    let name = match framing {
        Framing::Browser => "browser",
        Framing::Reader => "reader",
    };
    let http2 = req.version() == hyper::Version::HTTP_2;
    // A signed URL is kept, so a reload that makes the resource private or
    // drops a key can ask again: one checked to let the stream in, or, on
    // a public resource, one that verifies now (a made-up `sig` keeps
    // nothing: an anonymous client cannot park its request head here).
    let checked = req.extensions().get::<super::signed::ValidFor>().is_some();
    let signed_query = req.uri().query().is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sig=")));
    let resource = super::private::channel_resource(viewer.channel().name());
    let signed = (checked || signed_query && super::private::signed_for(app, req, resource)).then(|| {
        let uri = req.uri();
        uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()).into()
    });
    let record = ViewerRecord::new(name, http2, agent, addr, &app.shutdown, signed);
    let viewer = viewer.with_record(record.clone());
    // Checked under a config a reload has replaced since: the reload's
    // sweep may have run before this stream was listed, so ask again now.
    let checked_under = req.extensions().get::<super::routes::Epoch>().copied();
    if checked_under.is_some_and(|epoch| epoch.0 != app.epoch()) {
        let channel = viewer.channel().name();
        if !super::private::still_allowed(&app.config(), channel, &record) || !app.still_shown(channel) {
            record.kick.cancel();
        }
    }
    let body = PushBody::new(viewer, framing, &app.shutdown).with_limits(limits);
    // A plain HTTP/1.1 stream (chunked) can be handed to a new process.
    match req.extensions().get::<std::sync::Arc<crate::push::handover::Handover>>() {
        Some(handover) if req.version() == hyper::Version::HTTP_11 => body.with_handover(handover.clone()),
        _ => body,
    }
}

/// `GET /api/v1/channels/{channel}/viewers`.
pub fn list(app: &App, channel: &str, req: &Request<RequestBody>) -> HttpResponse {
    // A private channel is as absent as a missing one to whoever may not see it.
    let found = app.registry.get(channel).filter(|_| may_see_channel(app, req, channel));
    let Some(channel) = found else {
        return response::json_error(StatusCode::NOT_FOUND, "no such live channel");
    };
    let with_address = authorize_write(&app.config(), req.headers()).is_ok();
    let viewers: Vec<_> = channel.records.list().iter().map(|r| r.info(with_address)).collect();
    response::json(StatusCode::OK, &json!({ "channel": channel.name(), "viewers": viewers }))
}

/// `DELETE /api/v1/viewers/{id}`: ends that viewer's stream (HTTP's last
/// chunk, or the end of its HTTP/2 stream); it leaves the count at once.
pub fn kick(app: &App, id: &str, req: &Request<RequestBody>) -> HttpResponse {
    if req.method() != Method::DELETE {
        return response::method_not_allowed("DELETE");
    }
    if let Err(denied) = authorize_write(&app.config(), req.headers()) {
        return errors::text(&denied);
    }
    let Ok(id) = id.parse::<u64>() else {
        return response::json_error(StatusCode::BAD_REQUEST, "viewer ids are whole numbers");
    };
    let found = app.registry.list().iter().find_map(|c| c.records.get(id));
    match found {
        Some(record) => {
            record.kick.cancel();
            response::json(StatusCode::OK, &json!({ "ended": id }))
        }
        None => response::json_error(StatusCode::NOT_FOUND, "no such viewer (it may have left)"),
    }
}
