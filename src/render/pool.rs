//! One-off renders (static badges, `?once` images) run here: off the async
//! worker threads, at most `max_concurrent_renders` at once. A request that
//! finds every slot taken waits up to `render_queue_ms`, then is told to come
//! back (`Busy`: a 503 with Retry-After), so a crowd of anonymous renders
//! cannot starve streaming or pile up memory. Live producers draw here too,
//! waiting for a slot as long as it takes (`run_waiting`): no picture is
//! ever drawn on an async worker thread. A render that started runs to its
//! end even if its client leaves, and shutdown waits for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

pub struct RenderPool {
    slots: Arc<Semaphore>,
    queue_wait: Duration,
    tracker: TaskTracker,
}

/// Every slot stayed taken for the whole queue wait.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many images being drawn; try again in a second")]
pub struct Busy;

impl RenderPool {
    pub fn new(concurrency: usize, queue_wait: Duration, tracker: TaskTracker) -> RenderPool {
        RenderPool { slots: Arc::new(Semaphore::new(concurrency)), queue_wait, tracker }
    }

    /// Runs `render` on a blocking thread once a slot is free. A panic in
    /// `render` resumes in the caller, so the request's own panic guard
    /// answers it.
    pub async fn run<T: Send + 'static>(&self, render: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let slot = match tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(Busy),
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

#[cfg(test)]
mod tests {
    use super::*;

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
