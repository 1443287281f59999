//! Where producers and other long-lived work run. Every such task is
//! tracked, so shutdown can wait for it (bounded), and supervised: a panic
//! is caught at the task's boundary, logged and counted
//! (`framecast_panics_total{where}`), and the task is started again with
//! backoff. Its channel, and so its viewers' streams, stay in place.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::panics;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A run this long resets the backoff: its panic was not a crash loop.
const STABLE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Tasks {
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

impl Tasks {
    pub fn new(shutdown: CancellationToken) -> Tasks {
        Tasks { tracker: TaskTracker::new(), shutdown }
    }

    /// Runs `start()` until it returns or shutdown begins, starting it again
    /// after each panic. `place` names the kind of task in metrics and logs,
    /// `name` the instance (a channel) in logs.
    pub fn supervise<F, Fut>(&self, place: &'static str, name: String, start: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let started = Instant::now();
                let run = panics::catch(place, &name, start());
                tokio::select! {
                    result = run => if result.is_ok() { return },
                    _ = shutdown.cancelled() => return,
                };
                if started.elapsed() >= STABLE {
                    backoff = FIRST_BACKOFF;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::metrics;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_counted() {
        let tasks = Tasks::new(CancellationToken::new());
        let runs = Arc::new(AtomicU32::new(0));
        let before = metrics().panics_in("test");
        let r = runs.clone();
        tasks.supervise("test", "t".into(), move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, SeqCst) < 2 {
                    panic!("boom");
                }
            }
        });
        tasks.tracker.close();
        tasks.tracker.wait().await;
        assert_eq!(runs.load(SeqCst), 3);
        assert_eq!(metrics().panics_in("test") - before, 2);
    }
}
