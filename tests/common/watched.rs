//! Many streams read at once, each by a task of its own, keeping only the
//! count of parts, the newest part and how the stream ended: enough to
//! check 1,000 viewers through a reload or an upgrade.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Viewer;

/// One stream, read in a task of its own until it ends.
#[derive(Default)]
pub struct Watched {
    parts: AtomicUsize,
    closed: AtomicBool,
    pub clean: AtomicBool,
    last: Mutex<Vec<u8>>,
}

impl Watched {
    pub fn parts(&self) -> usize {
        self.parts.load(SeqCst)
    }

    pub fn closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    pub fn last(&self) -> Vec<u8> {
        self.last.lock().unwrap().clone()
    }
}

/// `n` viewers of `path`, each read by its own task (aborted with `set`).
pub async fn watch(set: &mut tokio::task::JoinSet<()>, addr: SocketAddr, path: &str, n: usize) -> Vec<Arc<Watched>> {
    let mut all = Vec::new();
    for _ in 0..n {
        let mut viewer = Viewer::connect(addr, path, "Mozilla/5.0 (reload test)").await;
        let watched = Arc::new(Watched::default());
        let state = watched.clone();
        set.spawn(async move {
            loop {
                let read = viewer.read_some(Duration::from_secs(60)).await;
                // Kept small: only the newest part is looked at.
                if let Some(part) = viewer.received.last() {
                    *state.last.lock().unwrap() = part.body.to_vec();
                }
                state.parts.fetch_add(viewer.received.len(), SeqCst);
                viewer.received.clear();
                viewer.raw.clear();
                if read == Some(false) {
                    state.clean.store(viewer.ended_cleanly(), SeqCst);
                    state.closed.store(true, SeqCst);
                    return;
                }
            }
        });
        all.push(watched);
    }
    all
}

/// Asks `check` until it answers `Ok`, at most for `limit`; then panics
/// naming `what` and its last `Err` (what it saw). For conditions that
/// need an await to look (a request).
pub async fn poll_until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(seen) => assert!(Instant::now() < deadline, "{what}: not within {limit:?}; last {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `ok()` holds, or panics naming `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
