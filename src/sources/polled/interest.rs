//! Who wants a polled badge now: live channels showing it (a badge's own
//! looks, boards with it as a tile) hold a guard while they run; a snapshot
//! marks it wanted for one interval. A poller polls only while its badge is
//! wanted (or `always_on`), so an unwatched dashboard costs its upstream
//! nothing; it is woken as soon as someone starts watching.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
pub struct Interest {
    watching: Mutex<HashMap<String, usize>>,
    asked: Mutex<HashMap<String, Instant>>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

/// A running channel's interest in one badge; dropped when it stops.
pub struct Watching {
    interest: Arc<Interest>,
    name: String,
}

impl Interest {
    /// The notifier a poller waits on (made on first use).
    pub fn waker(&self, name: &str) -> Arc<Notify> {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        wakers.entry(name.to_string()).or_default().clone()
    }

    fn wake(&self, name: &str) {
        if let Some(waker) = self.wakers.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            waker.notify_one();
        }
    }

    /// A live channel showing `name` starts.
    pub fn watch(self: &Arc<Self>, name: &str) -> Watching {
        *self.watching.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_insert(0) += 1;
        self.wake(name);
        Watching { interest: self.clone(), name: name.to_string() }
    }

    /// A snapshot of `name` was asked for.
    pub fn asked(&self, name: &str) {
        // Only badges with a poller are remembered: the map stays bounded.
        if self.wakers.lock().unwrap_or_else(|e| e.into_inner()).contains_key(name) {
            self.asked.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), Instant::now());
            self.wake(name);
        }
    }

    /// Whether `name` is shown live now, or was asked for within `window`.
    pub fn wanted(&self, name: &str, window: Duration) -> bool {
        if self.watching.lock().unwrap_or_else(|e| e.into_inner()).get(name).is_some_and(|n| *n > 0) {
            return true;
        }
        self.asked.lock().unwrap_or_else(|e| e.into_inner()).get(name).is_some_and(|at| at.elapsed() <= window)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut watching = self.interest.watching.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = watching.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                watching.remove(&self.name);
            }
        }
    }
}
