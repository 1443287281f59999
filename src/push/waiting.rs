//! Whether a stream's body is waiting on its client. Over HTTP/2 a frozen
//! stream stops being polled (hyper waits for flow-control capacity before
//! it asks the body again), so nothing inside the body can notice it. The
//! body reports here instead: "handed out a part" / "asked for the next".
//! The server's HTTP/2 stream executor scopes a `Waiting` around each
//! stream's task, and resets the stream once it has waited on the client
//! past the stall timeout. Outside such a scope (HTTP/1.1, where the socket
//! guard watches writes) reporting costs one failed task-local lookup.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

tokio::task_local! {
    static WAITING: Arc<Waiting>;
}

/// One stream's state: an odd value means a part was handed out and the
/// body was not asked again since; each hand-out moves it on, so a watcher
/// can tell a new wait from an old one.
#[derive(Default)]
pub struct Waiting(AtomicU64);

impl Waiting {
    /// The wait under way, if the stream is waiting on its client.
    pub fn current(&self) -> Option<u64> {
        let state = self.0.load(Relaxed);
        (state % 2 == 1).then_some(state)
    }

    /// Runs `poll` with this state in scope for the bodies it polls.
    pub fn scope<R>(self: &Arc<Self>, poll: impl FnOnce() -> R) -> R {
        WAITING.sync_scope(self.clone(), poll)
    }
}

/// The body handed a part to the connection.
pub(crate) fn handed_out() {
    let _ = WAITING.try_with(|w| {
        let state = w.0.load(Relaxed);
        if state % 2 == 0 {
            w.0.store(state + 1, Relaxed);
        }
    });
}

/// The connection asked the body for more: the client took what it had.
pub(crate) fn asked() {
    let _ = WAITING.try_with(|w| {
        let state = w.0.load(Relaxed);
        if state % 2 == 1 {
            w.0.store(state + 1, Relaxed);
        }
    });
}
