//! After an upgrade, the streams that stayed with the old process (TLS,
//! HTTP/2) show what the new process draws: a badge value written to the
//! new process, or a template changed with the upgrade, reaches them too.
//!
//! The new process joins each channel the old one still reports viewers
//! for (`Relays`): one relay viewer per channel, counted here in place of
//! one of the old process's, so every count stays exact. Each new frame
//! goes over the upgrade's socket pair, one frame in flight per channel (a
//! slow old process skips to the latest, as a slow viewer does). The old
//! process puts the pieces together (`Pieces`) and publishes each frame on
//! its own channel, in place of its own producer's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::wire::{Outbox, Outgoing};
use crate::app::App;
use crate::push::viewer::ViewerGuard;

/// A frame over this size is not relayed (the old process would have to
/// hold it whole).
const MAX_FRAME: usize = 64 << 20;

/// The new process's relays, one per channel the old process serves.
pub(super) struct Relays {
    app: Arc<App>,
    outbox: Outbox,
    running: HashMap<String, Relay>,
    /// Channels that cannot be joined here: not tried at every report.
    failed: Arc<Mutex<HashSet<String>>>,
    /// Held while a report is counted and while a relay joins, so a count
    /// never takes the old process's viewer and its stand-in both.
    counting: Arc<Mutex<()>>,
}

struct Relay {
    /// Joined: counted here, so one fewer is counted there.
    joined: Arc<AtomicBool>,
    task: AbortHandle,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relays {
    pub(super) fn new(app: Arc<App>, outbox: Outbox) -> Relays {
        Relays { app, outbox, running: HashMap::new(), failed: Arc::default(), counting: Arc::default() }
    }

    /// The old process's viewers per channel: relays start for the channels
    /// it serves and stop for the rest, and each channel here counts the
    /// old process's viewers less its relay.
    pub(super) fn report(&mut self, counts: HashMap<String, u64>) {
        let counting = self.counting.clone();
        let _counting = counting.lock().unwrap_or_else(|e| e.into_inner());
        self.running.retain(|name, _| counts.get(name).is_some_and(|n| *n > 0));
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (name, _) in counts.iter().filter(|(_, n)| **n > 0) {
            if !self.running.contains_key(name) && !failed.contains(name) {
                let relay = self.start(name.clone());
                self.running.insert(name.clone(), relay);
            }
        }
        let mut counts = counts;
        for (name, n) in &mut counts {
            if self.running.get(name).is_some_and(|r| r.joined.load(SeqCst)) {
                *n = n.saturating_sub(1);
            }
        }
        self.app.registry.set_elsewhere(counts);
    }

    /// The old process is gone: so are its viewers.
    pub(super) fn stop(&mut self) {
        let counting = self.counting.clone();
        let _counting = counting.lock().unwrap_or_else(|e| e.into_inner());
        self.running.clear();
        self.app.registry.set_elsewhere(HashMap::new());
    }

    fn start(&self, name: String) -> Relay {
        let joined = Arc::new(AtomicBool::new(false));
        let (app, outbox, failed, counting) =
            (self.app.clone(), self.outbox.clone(), self.failed.clone(), self.counting.clone());
        let flag = joined.clone();
        let task = tokio::spawn(async move {
            let registry = app.registry.clone();
            // Dropped with the task (a report stopped it): no longer a stand-in.
            let _stand_in = StandIn { name: name.clone(), joined: flag.clone() };
            let on_join = || {
                let _counting = counting.lock().unwrap_or_else(|e| e.into_inner());
                registry.moved_here(&name);
                flag.store(true, SeqCst);
                standing_in_set().insert(name.clone());
            };
            // Not joined after all (a cap, a failed first frame), or ended by
            // itself: the viewer it stood in for is counted there again.
            let gone = |viewer: Option<ViewerGuard>| {
                let _counting = counting.lock().unwrap_or_else(|e| e.into_inner());
                drop(viewer);
                if flag.swap(false, SeqCst) {
                    standing_in_set().remove(&name);
                    registry.moved_back(&name);
                }
            };
            let Some(viewer) = crate::http::adopt::relay(&app, &name, &on_join).await else {
                gone(None);
                failed.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone());
                return;
            };
            let channel = viewer.channel().clone();
            let mut frames = channel.subscribe();
            let mut sent = 0;
            loop {
                let frame = frames.borrow_and_update().clone();
                if frame.seq != sent {
                    let closes = channel.final_seq() == Some(frame.seq);
                    let (done, delivered) = oneshot::channel();
                    let image = frame.image();
                    if image.len() <= MAX_FRAME {
                        let content_type = frame.content_type;
                        let outgoing = Outgoing::Frame { channel: name.clone(), content_type, image, closes, done };
                        if outbox.send(outgoing).is_err() || !matches!(delivered.await, Ok(Ok(()))) {
                            break;
                        }
                    }
                    sent = frame.seq;
                    if closes {
                        break;
                    }
                }
                if frames.changed().await.is_err() {
                    break;
                }
            }
            gone(Some(viewer));
        });
        Relay { joined, task: task.abort_handle() }
    }
}

/// Channels whose relay is joined: their viewers here include one that
/// stands in for a viewer of the old process (left out of this process's
/// report to it).
static STANDING_IN: std::sync::LazyLock<Mutex<HashSet<String>>> = std::sync::LazyLock::new(Mutex::default);

fn standing_in_set() -> std::sync::MutexGuard<'static, HashSet<String>> {
    STANDING_IN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Viewers of `channel` here that stand in for the old process's (0 or 1).
pub(super) fn standing_in(channel: &str) -> u64 {
    u64::from(standing_in_set().contains(channel))
}

/// A joined relay's mark in `STANDING_IN`, removed when its task ends.
struct StandIn {
    name: String,
    joined: Arc<AtomicBool>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if self.joined.load(SeqCst) {
            standing_in_set().remove(&self.name);
        }
    }
}

/// A piece of a frame, as it goes over the socket pair: the frame of
/// `channel` is `total` bytes, and `piece` (sent after the message's JSON,
/// as it is) starts at `offset`. `closes`: the channel's last frame.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Piece {
    pub channel: String,
    pub content_type: String,
    pub total: usize,
    pub offset: usize,
    pub closes: bool,
    #[serde(skip)]
    pub piece: Bytes,
}

/// The old process's side: frames put together from their pieces, each
/// published on its channel once whole.
#[derive(Default)]
pub(super) struct Pieces(HashMap<String, Vec<u8>>);

impl Pieces {
    pub(super) fn add(&mut self, app: &App, piece: Piece) {
        let Piece { channel, content_type, total, offset, closes, piece } = piece;
        if total > MAX_FRAME {
            return;
        }
        if offset == 0 {
            self.0.insert(channel.clone(), Vec::with_capacity(total));
        }
        let Some(buf) = self.0.get_mut(&channel) else { return };
        if offset != buf.len() || buf.len() + piece.len() > total {
            // Not the piece that comes next (cannot happen on a sequenced
            // socket): the frame is dropped.
            self.0.remove(&channel);
            return;
        }
        buf.extend_from_slice(&piece);
        if buf.len() < total {
            return;
        }
        let image = self.0.remove(&channel).unwrap_or_default();
        // The channel's pictures are PNG or JPEG: nothing else is shown.
        let content_type = match content_type.as_str() {
            "image/png" => "image/png",
            "image/jpeg" => "image/jpeg",
            _ => return,
        };
        let Some(live) = app.registry.get(&channel) else { return };
        if closes {
            live.close_with(&image, content_type);
        } else {
            live.publish_relayed(&image, content_type);
        }
    }
}
