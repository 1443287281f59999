//! Taking a live stream out of its HTTP/1.1 connection at a part boundary,
//! so that another process can go on writing it on the same TCP connection
//! (a binary upgrade, `server::upgrade`).
//!
//! A plain HTTP/1.1 connection carries one `Handover`. When the upgrade asks
//! (`request`), the stream's body stops before its next part and records
//! what the stream is (`Paused`): its channel, framing, what is left of its
//! limits, and its viewer record. hyper then flushes what it holds; the
//! connection's socket guard counts every completed flush (`flushed`). The
//! first flush after the pause means every byte hyper had is on the socket,
//! so the stream stands between two parts: its next bytes are a new chunk.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::limits::Limits;
use super::part::Framing;

/// Set while this process hands its streams over: every stream with a
/// `Handover` stops before its next part (unless told to stay).
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Streams that may still move: live bodies with a `Handover` not told
/// to stay. An upgrade waits for this to reach 0 (all moved or ended).
static MOVABLE: AtomicUsize = AtomicUsize::new(0);

/// Every plain HTTP/1.1 connection's handover, to wake them all when an
/// upgrade starts (each then closes if idle). Touched once per connection,
/// never per part.
static CONNECTIONS: Mutex<Option<HashMap<u64, Weak<Handover>>>> = Mutex::new(None);

/// Keeps a connection's handover listed until dropped.
pub struct Listed(u64);

impl Drop for Listed {
    fn drop(&mut self) {
        if let Some(all) = CONNECTIONS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            all.remove(&self.0);
        }
    }
}

/// Lists `handover` for `wake_all` while the returned guard lives.
pub fn list(handover: &Arc<Handover>) -> Listed {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, SeqCst);
    let mut all = CONNECTIONS.lock().unwrap_or_else(|e| e.into_inner());
    all.get_or_insert_with(HashMap::new).insert(id, Arc::downgrade(handover));
    Listed(id)
}

/// Wakes every listed connection (an upgrade started, or gave up).
pub fn wake_all() {
    let all = CONNECTIONS.lock().unwrap_or_else(|e| e.into_inner());
    for handover in all.iter().flat_map(|m| m.values()).filter_map(Weak::upgrade) {
        handover.changed.notify_one();
    }
}

/// Whether this process is handing its streams over now.
pub fn upgrading() -> bool {
    REQUESTED.load(SeqCst)
}

/// Asks every plain HTTP/1.1 stream to stop before its next part (their
/// channels must then be woken, so that each body sees it).
pub fn request_all() {
    REQUESTED.store(true, SeqCst);
}

/// Streams not yet moved: the upgrade gave up on them, and they go on here
/// (their channels must be woken).
pub fn cancel_all() {
    REQUESTED.store(false, SeqCst);
}

/// How many streams may still move.
pub fn movable() -> usize {
    MOVABLE.load(SeqCst)
}

/// One HTTP/1.1 connection's handover state.
#[derive(Default)]
pub struct Handover {
    /// This stream stays here after all (the handover failed or timed out).
    stays: AtomicBool,
    /// Its body is counted in `MOVABLE`.
    counted: AtomicBool,
    /// `paused` holds a state (read without its lock on every part).
    is_paused: AtomicBool,
    paused: Mutex<Option<Box<Paused>>>,
    /// Completed flushes of the connection's socket (counted by its guard).
    flushes: AtomicU64,
    /// `flushes` when the body paused; a later flush means it is all out.
    flushes_at_pause: AtomicU64,
    /// Woken when the body pauses and on every flush after, for the
    /// connection's task.
    pub changed: Notify,
}

/// What a stream is, to go on writing it elsewhere. Sent to the new
/// process as JSON beside the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Paused {
    pub channel: String,
    pub reader: bool,
    /// Whether the stream has sent a part (its next part then goes out
    /// without the header the previous one already carried).
    pub started: bool,
    pub max_duration_ms: Option<u64>,
    pub max_bytes: Option<u64>,
    pub min_interval_ms: Option<u64>,
    pub resend_every_ms: Option<u64>,
    pub record: Option<RecordState>,
}

/// A listed viewer's record, carried over so the viewers API and a reload's
/// checks see the same viewer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordState {
    pub id: u64,
    pub since: u64,
    pub agent: String,
    pub addr: IpAddr,
    pub parts: u64,
    pub bytes: u64,
    pub signed: Option<String>,
}

impl Paused {
    pub fn framing(&self) -> Framing {
        if self.reader { Framing::Reader } else { Framing::Browser }
    }

    /// The limits left to enforce.
    pub fn limits(&self) -> Limits {
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        Limits {
            max_duration: ms(self.max_duration_ms),
            max_bytes: self.max_bytes,
            min_interval: ms(self.min_interval_ms),
            resend_every: ms(self.resend_every_ms),
        }
    }
}

impl Handover {
    /// The stream goes on here after all (its channel must be woken for the
    /// body to go on). Told during an upgrade, it is not asked again in it;
    /// after one gave up, a later upgrade may move it.
    pub fn stay(&self) {
        if upgrading() {
            self.stays.store(true, SeqCst);
        }
        self.is_paused.store(false, SeqCst);
        if self.counted.swap(false, SeqCst) {
            MOVABLE.fetch_sub(1, SeqCst);
        }
        self.paused.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Its socket reached the new process: the upgrade no longer waits for
    /// it. It stays paused until the new process took over (the connection
    /// then closes here) or is gone (it goes on here).
    pub fn sent(&self) {
        if self.counted.swap(false, SeqCst) {
            MOVABLE.fetch_sub(1, SeqCst);
        }
    }

    /// A body took this handover (`PushBody::with_handover`).
    pub(super) fn taken(&self) {
        if !self.stays.load(SeqCst) && !self.counted.swap(true, SeqCst) {
            MOVABLE.fetch_add(1, SeqCst);
        }
    }

    /// Its body is gone (moved, or ended here).
    pub(super) fn released(&self) {
        self.resumed();
        if self.counted.swap(false, SeqCst) {
            MOVABLE.fetch_sub(1, SeqCst);
        }
    }

    pub fn requested(&self) -> bool {
        REQUESTED.load(SeqCst) && !self.stays.load(SeqCst)
    }

    /// Called by the body: it sent nothing since its last part. Asked again
    /// while it waits, it changes nothing.
    pub(super) fn pause(&self, state: impl FnOnce() -> Paused) {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none() {
            self.flushes_at_pause.store(self.flushes.load(SeqCst), SeqCst);
            *paused = Some(Box::new(state()));
            self.is_paused.store(true, SeqCst);
            self.changed.notify_one();
        }
    }

    /// Called by the connection's socket guard after each completed flush.
    pub fn flushed(&self) {
        self.flushes.fetch_add(1, SeqCst);
        if self.requested() {
            self.changed.notify_one();
        }
    }

    /// The body goes on here (the upgrade gave up before it moved).
    pub(super) fn resumed(&self) {
        if self.is_paused.swap(false, SeqCst) {
            self.paused.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    }

    /// The paused stream, once every byte before the pause is on the socket
    /// (and while it is still asked to move).
    pub fn ready(&self) -> Option<Paused> {
        if !self.requested() {
            return None;
        }
        let paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        let state = paused.as_ref()?;
        (self.flushes.load(SeqCst) > self.flushes_at_pause.load(SeqCst)).then(|| (**state).clone())
    }
}
