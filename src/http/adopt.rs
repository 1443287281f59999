//! A stream handed over by an upgrade's old process, joined to its channel
//! here by the channel's name (`online/ROOM`, `badge/NAME/TEMPLATE@2x~LOGO`,
//! `board/NAME@2x`, `camera/NAME@wN`), as a request for it would have
//! joined, and checked again under this process's config: a private
//! resource needs the signature the stream came with.

use std::net::IpAddr;
use std::sync::Arc;

use crate::app::App;
use crate::push::body::PushBody;
use crate::push::handover::Paused;
use crate::push::record::ViewerRecord;
use crate::push::viewer::ViewerGuard;
use crate::sources::online::Joining;

/// The stream's body here, or `None` when its channel cannot be joined
/// (gone from the config, a cap reached, no longer allowed): the stream
/// then ends cleanly.
pub async fn stream(app: &Arc<App>, state: &Paused, addr: IpAddr) -> Option<PushBody> {
    let registry = &app.registry;
    let mut moved = Moved(Some(Box::new(|| registry.moved_here(&state.channel))));
    // Who the viewer is, from the URL it came with (checked again below).
    let signed = state.record.as_ref().and_then(|r| r.signed.as_deref());
    let query = signed.and_then(|s| s.split_once('?')).map(|(_, q)| q);
    let member = super::member::signed_member(query).ok().flatten();
    // The viewer's room session began in the old process and goes on.
    let since = state.record.as_ref().map_or(0, |r| r.since);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let started = std::time::Instant::now().checked_sub(std::time::Duration::from_secs(now.saturating_sub(since)));
    let who = match started {
        Some(started) if since > 0 => Joining::Moved(addr, started, member),
        _ => Joining::Viewer(addr, member),
    };
    let viewer = join(app, &state.channel, who, &mut moved).await;
    // Not joined: no longer counted there either.
    moved.now();
    let viewer = viewer?;
    let framing = state.framing();
    let name = if state.reader { "reader" } else { "browser" };
    let viewer = match &state.record {
        Some(record) => {
            let record = ViewerRecord::adopted(record, name, &app.shutdown);
            if !super::private::still_allowed(&app.config(), &state.channel, &record) {
                return None;
            }
            viewer.with_record(record)
        }
        // Every listed stream has a record; without one, only a public
        // resource is shown.
        None if app.config().requires_signature(super::private::channel_resource(&state.channel)) => return None,
        None => viewer,
    };
    let body = PushBody::new(viewer, framing, &app.shutdown).with_limits(state.limits());
    Some(if state.started { body.continued() } else { body })
}

/// Joins the channel named `channel` as an upgrade's relay (after an
/// upgrade, the new process draws the frames of the streams that stayed
/// with the old one). It is counted here and stands in for one viewer
/// counted in the old process: `joined` is called right before the join
/// (no wait between) to stop counting that one. A room counts it as no
/// session.
pub async fn relay(app: &Arc<App>, channel: &str, joined: &(impl Fn() + Sync)) -> Option<ViewerGuard> {
    join(app, channel, Joining::Relay, &mut Moved(Some(Box::new(joined)))).await
}

/// Stops counting the stream as the old process's: called right before
/// the join (no wait between), so no picture counts it twice or not at all.
struct Moved<'a>(Option<Box<dyn FnOnce() + Send + 'a>>);

impl Moved<'_> {
    fn now(&mut self) {
        if let Some(moved) = self.0.take() {
            moved();
        }
    }
}

async fn join(app: &Arc<App>, channel: &str, who: Joining, moved: &mut Moved<'_>) -> Option<ViewerGuard> {
    let (kind, rest) = channel.split_once('/')?;
    match kind {
        "online" => {
            let first = app.online.first_frame(rest, &app.renders).await.ok()?;
            moved.now();
            app.online.join_as(rest, who, first).ok()
        }
        "badge" => {
            let (stem, logo) = rest.split_once('~').map_or((rest, None), |(s, l)| (s, Some(l)));
            let (stem, scale) = stem.split_once('@').map_or((stem, "1"), |(s, x)| (s, x.trim_end_matches('x')));
            let (name, template) = stem.split_once('/').map_or((stem, None), |(n, t)| (n, Some(t)));
            let query = {
                let mut query = form_urlencoded::Serializer::new(String::new());
                if let Some(template) = template {
                    query.append_pair("style", template);
                }
                query.append_pair("scale", scale);
                if let Some(logo) = logo {
                    let mut parts = logo.split(':');
                    // A custom SVG logo is named by its hash only: it cannot be
                    // drawn again from the name, so such a stream ends here.
                    let slug = parts.next().filter(|slug| !slug.starts_with("svg-"))?;
                    query.append_pair("logo", slug);
                    for part in parts {
                        let key = if part.parse::<f64>().is_ok() { "logoWidth" } else { "logoColor" };
                        query.append_pair(key, part);
                    }
                }
                query.finish()
            };
            let look = super::badges::look(app, Some(&query), 1.0).await.ok()?;
            let first = app.badges.first_frame(name, &look).await.ok()?;
            moved.now();
            app.badges.join(name, look, first).ok()
        }
        "board" => {
            let (name, scale) = super::badges::split_scale(rest);
            let scale = scale.ok()?;
            app.boards.exists(name).then_some(())?;
            let first = app.boards.first_frame(name, scale).await.ok()?;
            moved.now();
            app.boards.join(name, scale, first).ok()
        }
        "camera" => {
            let (name, width) = rest.split_once("@w").map_or((rest, None), |(n, w)| (n, w.parse::<u32>().ok()));
            let camera = app.cameras.get(name)?;
            match width {
                None => {
                    moved.now();
                    Some(camera.watch(&app.registry))
                }
                Some(width) => {
                    // Before: the size channel is joined inside; a failure
                    // after counts the viewer nowhere, as a failed join.
                    moved.now();
                    camera.watch_width(&app.registry, &app.tasks, &app.renders, width).await.ok()
                }
            }
        }
        _ => None,
    }
}
