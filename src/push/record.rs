//! Who is watching: one record per stream that asked to be listed (every
//! live image does), kept in its channel while the stream lasts. It carries
//! what the viewers API shows (since when, framing, User-Agent, address,
//! parts, bytes, skipped frames, current fps) and the token that ends this
//! one stream cleanly when an operator kicks it. Counters are the viewer's
//! own (uncontended atomics), updated as its parts go out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Viewer ids, unique in the process (and across an upgrade).
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Longest User-Agent kept (they come from anyone).
const MAX_AGENT: usize = 200;

pub struct ViewerRecord {
    pub id: u64,
    since: u64,
    framing: &'static str,
    /// Over HTTP/2 (else HTTP/1.1): a byte, not a string, per held viewer.
    http2: bool,
    agent: String,
    addr: IpAddr,
    pub(super) parts: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) skipped: AtomicU64,
    /// Parts per second, smoothed, as f64 bits.
    pub(super) fps: AtomicU64,
    /// Cancelled to end this stream (or by shutdown, its parent).
    pub kick: CancellationToken,
    /// The path and query of a stream a signature let in: a reload checks
    /// it again against the new keys (`None`: a public stream).
    pub signed: Option<Box<str>>,
}

/// What the viewers API shows of one viewer.
#[derive(Debug, Serialize)]
pub struct ViewerInfo {
    pub id: u64,
    pub connected_since: u64,
    pub framing: &'static str,
    /// `HTTP/1.1` or `HTTP/2`: what the client negotiated for this stream.
    pub protocol: &'static str,
    pub user_agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub parts: u64,
    pub bytes: u64,
    pub frames_skipped: u64,
    pub fps: f64,
}

impl ViewerRecord {
    pub fn new(
        framing: &'static str,
        http2: bool,
        agent: &str,
        addr: IpAddr,
        shutdown: &CancellationToken,
        signed: Option<Box<str>>,
    ) -> Arc<ViewerRecord> {
        Arc::new(ViewerRecord {
            id: NEXT.fetch_add(1, Relaxed),
            since: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            framing,
            http2,
            agent: agent.chars().take(MAX_AGENT).collect(),
            addr,
            parts: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            fps: AtomicU64::new(0),
            kick: shutdown.child_token(),
            signed,
        })
    }

    /// What another process needs to list this viewer as it was.
    pub fn state(&self) -> super::handover::RecordState {
        super::handover::RecordState {
            id: self.id,
            since: self.since,
            agent: self.agent.clone(),
            addr: self.addr,
            parts: self.parts.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            signed: self.signed.as_deref().map(str::to_string),
        }
    }

    /// A viewer adopted from another process, as it was listed there.
    pub fn adopted(
        state: &super::handover::RecordState,
        framing: &'static str,
        shutdown: &CancellationToken,
    ) -> Arc<ViewerRecord> {
        NEXT.fetch_max(state.id + 1, Relaxed);
        Arc::new(ViewerRecord {
            id: state.id,
            since: state.since,
            framing,
            http2: false,
            agent: state.agent.chars().take(MAX_AGENT).collect(),
            addr: state.addr,
            parts: AtomicU64::new(state.parts),
            bytes: AtomicU64::new(state.bytes),
            skipped: AtomicU64::new(0),
            fps: AtomicU64::new(0),
            kick: shutdown.child_token(),
            signed: state.signed.as_deref().map(Into::into),
        })
    }

    /// The next id this process gives (an upgrade's new process starts here).
    pub fn next_id() -> u64 {
        NEXT.load(Relaxed)
    }

    /// Continues numbering after the ids another process gave.
    pub fn continue_ids_from(next: u64) {
        NEXT.fetch_max(next, Relaxed);
    }

    /// `with_address`: only for callers holding an API token.
    pub fn info(&self, with_address: bool) -> ViewerInfo {
        ViewerInfo {
            id: self.id,
            connected_since: self.since,
            framing: self.framing,
            protocol: if self.http2 { "HTTP/2" } else { "HTTP/1.1" },
            user_agent: self.agent.clone(),
            address: with_address.then(|| self.addr.to_string()),
            parts: self.parts.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            frames_skipped: self.skipped.load(Relaxed),
            fps: (f64::from_bits(self.fps.load(Relaxed)) * 10.0).round() / 10.0,
        }
    }
}

/// A channel's listed viewers.
#[derive(Default)]
pub struct Records(Mutex<HashMap<u64, Arc<ViewerRecord>>>);

impl Records {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ViewerRecord>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn add(&self, record: Arc<ViewerRecord>) {
        self.lock().insert(record.id, record);
    }

    pub(super) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub fn list(&self) -> Vec<Arc<ViewerRecord>> {
        let mut all: Vec<_> = self.lock().values().cloned().collect();
        all.sort_by_key(|r| r.id);
        all
    }

    pub fn get(&self, id: u64) -> Option<Arc<ViewerRecord>> {
        self.lock().get(&id).cloned()
    }
}
