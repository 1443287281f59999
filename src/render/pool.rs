//! One-off renders (static badges, `?once` images) run here: off the async
//! worker threads, at most `max_concurrent_renders` at once. A request that
//! finds every slot taken waits up to `render_queue_ms`, then is told to come
//! back (`Busy`: a 503 with Retry-After), so a crowd of anonymous renders
//! cannot starve streaming or pile up memory. Live producers draw here too,
//! waiting for a slot as long as it takes (`run_waiting`): no picture is
//! ever drawn on an async worker thread. A render that started runs to its
//! end even if its client leaves, and shutdown waits for it.
//!
//! A channel's first picture is drawn once however many viewers arrive
//! together (`run_shared`): a burst of 1,000 connects to a room not live yet
//! costs one render, not a queue of 1,000 that ends in 503s.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

pub struct RenderPool {
    slots: Arc<Semaphore>,
    queue_wait: Duration,
    tracker: TaskTracker,
    /// Renders in flight by key, for `run_shared`.
    shared: Mutex<HashMap<String, Arc<OnceCell<SharedOut>>>>,
}

/// A shared render's outcome: every caller waiting gets the same, a
/// refusal too (so a crowd waits one queue wait, not one each in turn).
type SharedOut = Result<Arc<dyn Any + Send + Sync>, Busy>;

/// Keys in flight at most before idle ones are dropped (a key whose every
/// caller left before its render began).
const MAX_SHARED: usize = 1024;

/// Every slot stayed taken for the whole queue wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many images being drawn; try again in a second")]
pub struct Busy;

impl RenderPool {
    pub fn new(concurrency: usize, queue_wait: Duration, tracker: TaskTracker) -> RenderPool {
        RenderPool { slots: Arc::new(Semaphore::new(concurrency)), queue_wait, tracker, shared: Mutex::default() }
    }

    /// Runs `render` like `run`, except that callers asking with the same
    /// `key` while it is in flight get a copy of its picture instead of
    /// drawing their own.
    pub async fn run_shared<T: Clone + Send + Sync + 'static>(
        &self,
        key: &str,
        render: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let cell = {
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            if shared.len() >= MAX_SHARED {
                shared.retain(|_, cell| Arc::strong_count(cell) > 1);
            }
            shared.entry(key.to_string()).or_default().clone()
        };
        let out = cell
            .get_or_init(|| async { self.run(render).await.map(|out| Arc::new(out) as Arc<dyn Any + Send + Sync>) })
            .await
            .clone();
        {
            // Done (or refused): the next caller draws afresh.
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            if shared.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                shared.remove(key);
            }
        }
        let out = out?;
        // One key is always asked for with one type.
        Ok(out.downcast_ref::<T>().cloned().expect("one type per key"))
    }

    /// Runs `render` on a blocking thread once a slot is free. A panic in
    /// `render` resumes in the caller, so the request's own panic guard
    /// answers it.
    pub async fn run<T: Send + 'static>(&self, render: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let slot = match tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                crate::metrics::metrics().render_pool_busy.inc();
                return Err(Busy);
            }
        };
        self.run_in(slot, render).await
    }

    /// Runs `render` like `run`, but waits for a slot as long as it takes:
    /// for live producers, whose number the channel caps bound and which
    /// must draw sooner or later. `None` only when the runtime shuts down.
    pub async fn run_waiting<T: Send + 'static>(&self, render: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let slot = self.slots.clone().acquire_owned().await.ok()?;
        self.run_in(slot, render).await.ok()
    }

    async fn run_in<T: Send + 'static>(
        &self,
        slot: tokio::sync::OwnedSemaphorePermit,
        render: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let task = self.tracker.spawn_blocking(move || {
            let _slot = slot;
            let _in_use = InUse::new();
            render()
        });
        match task.await {
            Ok(out) => Ok(out),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Blocking tasks are only cancelled when the runtime shuts down.
            Err(_) => Err(Busy),
        }
    }
}

/// `framecast_render_pool_in_use` for as long as a render runs, a panic
/// included (the gauge goes down as the guard drops).
struct InUse;

impl InUse {
    fn new() -> InUse {
        crate::metrics::metrics().render_pool_in_use.inc();
        InUse
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        crate::metrics::metrics().render_pool_in_use.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_arriving_together_share_one_render() {
        let pool = Arc::new(RenderPool::new(1, Duration::from_millis(50), TaskTracker::new()));
        let renders = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let (pool, renders, release_rx) = (pool.clone(), renders.clone(), release_rx.clone());
                tokio::spawn(async move {
                    pool.run_shared("online/a", move || {
                        renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        release_rx.lock().unwrap().recv().unwrap();
                        7u32
                    })
                    .await
                })
            })
            .collect();
        // Every caller holds the one render in flight before it finishes.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.shared.lock().unwrap().get("online/a").map_or(0, Arc::strong_count) < 101 {
            assert!(std::time::Instant::now() < deadline, "the callers never all arrived");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        release.send(()).unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Ok(7), "every caller gets the shared picture");
        }
        assert_eq!(renders.load(std::sync::atomic::Ordering::SeqCst), 1, "drawn once");
        assert!(pool.shared.lock().unwrap().is_empty(), "nothing kept after");
    }

    #[tokio::test]
    async fn a_full_pool_says_busy_after_the_queue_wait() {
        let pool = Arc::new(RenderPool::new(1, Duration::from_millis(50), TaskTracker::new()));
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let long = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    1
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap()).await.unwrap();
        assert_eq!(pool.run(|| 2).await, Err(Busy));
        release.send(()).unwrap();
        assert_eq!(long.await.unwrap(), Ok(1));
        assert_eq!(pool.run(|| 3).await, Ok(3));
    }
}
