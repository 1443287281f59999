//! The latest frame of a source that reads on its own (an upstream relay,
//! an ffmpeg process): its reader task writes each frame into a watch slot,
//! and the producer takes the newest one, counting those it never took.

use bytes::Bytes;
use tokio::sync::watch;

use super::source::{FrameSource, NextFrame};

/// What the reader task last saw: a frame (numbered) or why there is none.
#[derive(Clone)]
pub enum Latest {
    Starting,
    Frame(u64, Bytes),
    Down(String),
}

/// The producer's side of the slot.
pub struct Slot {
    latest: watch::Receiver<Latest>,
    taken: u64,
    dropped: u64,
}

impl Slot {
    pub fn new() -> (watch::Sender<Latest>, Slot) {
        let (tx, latest) = watch::channel(Latest::Starting);
        (tx, Slot { latest, taken: 0, dropped: 0 })
    }
}

impl FrameSource for Slot {
    fn next_frame(&mut self) -> NextFrame<'_> {
        Box::pin(async move {
            loop {
                // `changed` is cancel-safe; the slot is only marked seen below.
                self.latest.changed().await.map_err(|_| "the reader task ended".to_string())?;
                match self.latest.borrow_and_update().clone() {
                    Latest::Starting => continue,
                    Latest::Down(reason) => return Err(reason),
                    Latest::Frame(n, jpeg) => {
                        if self.taken != 0 && n > self.taken + 1 {
                            self.dropped += n - self.taken - 1;
                        }
                        self.taken = n;
                        return Ok(jpeg);
                    }
                }
            }
        })
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
