//! Each camera frame is scaled to a given width at most once, however many
//! ask at the same time: a size channel's producer, sized snapshots and a
//! new size's first frame share a few (frame, width) results per camera.
//! The first asker scales; askers meanwhile wait for its result. A failed
//! attempt (the render pool busy) answers those waiting the same and is
//! forgotten, so the next request tries again rather than inheriting it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::render::pool::Busy;

type Cell = Arc<OnceCell<Result<Bytes, Busy>>>;

pub struct ScaledFrames {
    /// Newest last; old frames are of no use once a newer one exists.
    slots: Mutex<VecDeque<(u64, u32, Cell)>>,
    keep: usize,
}

impl ScaledFrames {
    /// Keeps the `keep` most recent (frame, width) results.
    pub fn new(keep: usize) -> ScaledFrames {
        ScaledFrames { slots: Mutex::default(), keep: keep.max(1) }
    }

    /// Frame `seq` at `width`: from an earlier or running attempt, else
    /// `scale` runs (once for everyone asking meanwhile).
    pub async fn get(
        &self,
        seq: u64,
        width: u32,
        scale: impl Future<Output = Result<Bytes, Busy>>,
    ) -> Result<Bytes, Busy> {
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.iter().find(|(s, w, _)| (*s, *w) == (seq, width)) {
                Some((_, _, cell)) => cell.clone(),
                None => {
                    let cell = Cell::default();
                    slots.push_back((seq, width, cell.clone()));
                    while slots.len() > self.keep {
                        slots.pop_front();
                    }
                    cell
                }
            }
        };
        let out = match cell.get_or_init(|| scale).await {
            Ok(scaled) => Ok(scaled.clone()),
            Err(Busy) => Err(Busy),
        };
        if out.is_err() {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.retain(|(_, _, c)| !Arc::ptr_eq(c, &cell));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_askers_at_once_scale_once() {
        let frames = Arc::new(ScaledFrames::new(4));
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let askers: Vec<_> = (0..50)
            .map(|_| {
                let (frames, runs, mut released) = (frames.clone(), runs.clone(), released.clone());
                tokio::spawn(async move {
                    let scale = async {
                        runs.fetch_add(1, Relaxed);
                        released.wait_for(|r| *r).await.unwrap();
                        Ok(Bytes::from_static(b"small"))
                    };
                    frames.get(7, 320, scale).await
                })
            })
            .collect();
        release.send(true).unwrap();
        for asker in askers {
            assert_eq!(asker.await.unwrap(), Ok(Bytes::from_static(b"small")));
        }
        assert_eq!(runs.load(Relaxed), 1);
        // Another width or frame is another result.
        assert_eq!(frames.get(7, 640, async { Ok(Bytes::from_static(b"mid")) }).await.unwrap(), "mid");
        assert_eq!(frames.get(8, 320, async { Ok(Bytes::from_static(b"new")) }).await.unwrap(), "new");
        assert_eq!(frames.get(7, 320, async { Ok(Bytes::from_static(b"again")) }).await.unwrap(), "small");
    }

    #[tokio::test]
    async fn a_busy_attempt_is_not_kept_and_old_frames_go() {
        let frames = ScaledFrames::new(2);
        assert_eq!(frames.get(1, 320, async { Err(Busy) }).await, Err(Busy));
        assert_eq!(frames.get(1, 320, async { Ok(Bytes::from_static(b"a")) }).await.unwrap(), "a");
        frames.get(2, 320, async { Ok(Bytes::from_static(b"b")) }).await.unwrap();
        frames.get(3, 320, async { Ok(Bytes::from_static(b"c")) }).await.unwrap();
        // Frame 1 was dropped for newer ones: asked again, it scales again.
        assert_eq!(frames.get(1, 320, async { Ok(Bytes::from_static(b"a2")) }).await.unwrap(), "a2");
    }
}
