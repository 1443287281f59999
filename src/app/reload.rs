//! Live reload (SIGHUP, `POST /api/v1/admin/reload`): the config file is
//! read and checked whole, as `check-config` does, then applied to the
//! running process without ending a stream that did not need ending.
//!
//! What stays: every live channel and its viewers, badge values, room
//! figures, connections. What changes: definitions (templates, badges,
//! rooms, boards, cameras, polled sources), caps, pacing, tokens, keys and
//! everything read per request. Producers draw with the new definitions at
//! their next frame (the reload wakes them) and push only a picture that
//! changed, so an unchanged channel sees no extra part. A removed camera,
//! board or badge sends a last frame that says so, then its streams end;
//! a stream let in only by a signing key that is gone ends.
//!
//! Keys bound to sockets, files opened once or the cluster (listeners, TLS,
//! storage, cluster, connection and render caps) keep their running value
//! until a restart or upgrade; the log names each one that changed.

use std::sync::Arc;

use serde::Serialize;

use super::App;
use crate::config::Config;
use crate::metrics::{Outcome, metrics};
use crate::push::channel::Channel;
use crate::push::record::ViewerRecord;
use crate::render::format::MapValues;
use crate::render::placeholder::{Placeholder, placeholder_jpeg};
use crate::sources::online::RoomDefs;
use crate::sources::timing::Timing;

/// Whether a running stream may go on under the new config (the HTTP
/// layer's rule: `http::private::still_allowed`).
pub type StillAllowed = fn(&Config, &str, &ViewerRecord) -> bool;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("framecast was started without --config: there is no file to reload")]
    NoFile,
    /// The file failed a check: `check-config`'s message.
    #[error("{0}")]
    Invalid(String),
    #[error("the reload did not finish (it panicked); the running config stays")]
    Failed,
}

/// What a reload did.
#[derive(Debug, Default, Serialize)]
pub struct Reloaded {
    /// Whether any template (`template_dir`) changed.
    pub templates_changed: bool,
    pub badges: Changes,
    pub rooms: Changes,
    pub boards: Changes,
    pub cameras: Changes,
    pub pollers_restarted: usize,
    /// Channels ended after a last frame (what they showed is gone).
    pub channels_closed: Vec<String>,
    /// Streams ended because they may no longer watch: the signing key that
    /// let them in is gone, or their resource became private.
    pub streams_no_longer_allowed: usize,
    /// Keys that changed but apply only at a restart (or upgrade).
    pub restart_needed: Vec<&'static str>,
}

/// Names added, changed and removed, of one kind of definition.
#[derive(Debug, Default, Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    fn between<V: PartialEq>(
        old: &std::collections::BTreeMap<String, V>,
        new: &std::collections::BTreeMap<String, V>,
    ) -> Changes {
        let mut changes = Changes::default();
        for (name, value) in new {
            match old.get(name) {
                None => changes.added.push(name.clone()),
                Some(was) if was != value => changes.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        changes.removed = old.keys().filter(|name| !new.contains_key(*name)).cloned().collect();
        changes
    }
}

/// Keys a running process cannot change: each is bound to a socket, a file
/// opened once, a background task or a fixed-size pool. A reload keeps
/// their running value and names them.
fn keep_running_values(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($key:ident),*) => {$(
            if format!("{:?}", old.$key) != format!("{:?}", new.$key) {
                new.$key = old.$key.clone();
                kept.push(stringify!($key));
            }
        )*};
    }
    keep!(
        listen,
        tls,
        fonts,
        system_fonts,
        database,
        state_file,
        cluster,
        max_connections,
        max_connections_per_ip,
        max_concurrent_renders,
        render_queue_ms,
        day_starts_at,
        max_unique_per_room,
        max_unconfigured_rooms,
        room_sample_ms,
        send_buffer_bytes,
        tcp_keepalive_idle_ms,
        tcp_keepalive_interval_ms,
        tcp_keepalive_retries,
        tcp_user_timeout_ms
    );
    kept
}

impl App {
    /// Reads the config file again and applies it (see the module). One
    /// reload at a time; it runs in a task of its own, so a caller that
    /// goes away cannot stop it half-way. Counted in
    /// `framecast_config_reloads_total{result}` and logged either way.
    pub async fn reload(self: &Arc<Self>, still_allowed: StillAllowed) -> Result<Reloaded, Refused> {
        let app = self.clone();
        // Counted and logged in the task too: a caller gone does not lose it.
        let task = tokio::spawn(async move {
            let _one = app.reloading.lock().await;
            let result = app.reload_now(still_allowed).await;
            let outcome = if result.is_ok() { "ok" } else { "refused" };
            metrics().config_reloads.get_or_create(&Outcome { result: outcome }).inc();
            match &result {
                Ok(done) => {
                    tracing::info!(changes = %serde_json::to_string(done).unwrap_or_default(), "config reloaded");
                    for key in &done.restart_needed {
                        tracing::warn!(key, "changed in the config file: applies at the next restart");
                    }
                }
                Err(refused) => tracing::error!(error = %refused, "config not reloaded: the running config stays"),
            }
            result
        });
        task.await.unwrap_or(Err(Refused::Failed))
    }

    /// Whether what `channel` shows is still configured (or written): a
    /// camera and its size, a board, a badge. Other channels always are.
    pub fn still_shown(&self, channel: &str) -> bool {
        match channel.split_once('/') {
            Some(("board", rest)) => self.boards.exists(base_name(rest)),
            Some(("badge", rest)) => self.badges.exists(base_name(rest)),
            Some(("camera", rest)) => match self.cameras.get(base_name(rest)) {
                None => false,
                // A size the camera no longer offers goes too.
                Some(camera) => rest
                    .split_once("@w")
                    .is_none_or(|(_, width)| width.parse().is_ok_and(|w: u32| camera.config().sizes.contains(&w))),
            },
            _ => true,
        }
    }

    async fn reload_now(&self, still_allowed: StillAllowed) -> Result<Reloaded, Refused> {
        let path = self.source.path.clone().ok_or(Refused::NoFile)?;
        // Files are read off the async threads.
        let checked = tokio::task::spawn_blocking(move || super::check::check_file(&path))
            .await
            .map_err(|_| Refused::Failed)?
            .map_err(Refused::Invalid)?;
        let old = self.config();
        let mut new = checked.config;
        if let Some(listen) = self.source.listen {
            new.listen = listen;
        }
        let mut done = Reloaded {
            restart_needed: keep_running_values(&old, &mut new),
            badges: Changes::between(&old.badges, &new.badges),
            rooms: Changes::between(&old.rooms, &new.rooms),
            boards: Changes::between(&old.boards, &new.boards),
            cameras: Changes::between(&old.cameras, &new.cameras),
            templates_changed: !self.badges.defs().templates.same_as(&checked.badges.templates),
            ..Reloaded::default()
        };

        // Everything below is checked already and cannot fail but for a
        // file changed in between (an overlay picture): then the cameras
        // before it are applied and the rest stays as it was.
        let cameras = self.cameras.apply(&new).map_err(Refused::Invalid)?;
        self.registry.set_caps(super::caps(&new));
        self.timings.set(Timing::from_config(&new));
        let online = checked.badges.templates.get("online").expect("the online template is built in");
        let people = checked.badges.templates.get("people").expect("the people template is built in");
        let named = super::check::room_templates(&checked.badges.templates, &new).map_err(Refused::Invalid)?;
        self.online.apply(RoomDefs::new(online, people, named, new.rooms.clone()));
        self.online.stats.set_configured(super::configured_rooms(&new));
        self.online.stats.set_people_rooms(super::people_rooms(&new));
        let templates = checked.badges.templates.clone();
        self.badges.apply(checked.badges);
        self.boards.apply(&new);
        done.pollers_restarted = self.pollers.apply(&new).map_err(Refused::Invalid)?;
        let new = Arc::new(new);
        self.config.store(new.clone());
        // After the swap, before the sweeps: a request that read the epoch
        // before this is asked again when it joins (`epoch`).
        self.reloads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);

        // What a removed camera, board or badge showed is gone: its
        // streams get a last frame saying so, then end. (A removed
        // camera's own channel left the registry in `apply`.)
        let mut closing: Vec<Arc<Channel>> = cameras.removed;
        for channel in self.registry.list() {
            if !self.still_shown(channel.name()) {
                self.registry.remove(&channel);
                closing.push(channel);
            }
        }
        for channel in closing {
            let (kind, rest) = channel.name().split_once('/').unwrap_or(("", channel.name()));
            let name = base_name(rest);
            if kind == "camera" {
                let (width, height) = old.cameras.get(name).map_or((640, 360), |c| c.source.size_hint());
                channel.close_with(&placeholder_jpeg(Placeholder::Removed, name, "", width, height), "image/jpeg");
            } else {
                let flat = templates.get("flat").expect("flat is built in");
                let mut values = MapValues::default();
                values.text.insert("label".into(), name.to_string());
                values.text.insert("message".into(), "removed".into());
                values.text.insert("color".into(), "lightgrey".into());
                channel.close_with(&flat.render_png(&values, 1.0).unwrap_or_default(), "image/png");
            }
            done.channels_closed.push(channel.name().to_string());
        }
        // Streams whose right to watch went with the old config.
        for channel in self.registry.list() {
            for record in channel.records.list() {
                if !still_allowed(&new, channel.name(), &record) {
                    record.kick.cancel();
                    done.streams_no_longer_allowed += 1;
                }
            }
        }
        // Every producer draws once with the new definitions; a picture
        // that did not change pushes nothing.
        self.registry.nudge_all();
        Ok(done)
    }
}

/// A channel's name without its look: `build/flat@2x~logo` → `build`.
fn base_name(rest: &str) -> &str {
    &rest[..rest.find(['/', '@', '~']).unwrap_or(rest.len())]
}
