//! The response body of a live image: yields the channel's latest part
//! whenever it changes. It owns the viewer's presence, so the viewer leaves
//! the count exactly when hyper drops the body (the connection ended).
//! Per-client limits end the stream cleanly (HTTP's last chunk) or pace it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame as BodyFrame, SizeHint};
use tokio::time::{Instant, Sleep, sleep};
use tokio_stream::Stream;
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::handover::{Handover, Paused};
use super::limits::Limits;
use super::part::{Frame, Framing};
use super::viewer::ViewerGuard;
use super::waiting;
use crate::metrics::{Reason, metrics};

pub struct PushBody {
    frames: WatchStream<Arc<Frame>>,
    /// Resolves at shutdown: the stream then ends cleanly.
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    framing: Framing,
    last_seq: u64,
    viewer: ViewerGuard,
    /// Set by `with_limits`; `None` costs nothing per part.
    limits: Option<Box<Enforced>>,
    /// When the previous part went out (for the viewer's fps).
    last_part: Option<Instant>,
    /// A plain HTTP/1.1 stream an upgrade can take over (`None` otherwise).
    handover: Option<Arc<Handover>>,
    /// Adopted from another process mid-stream: its first part here is
    /// not its first (the header went out with the previous one there).
    continued: bool,
}

/// The running state of a stream's limits.
struct Enforced {
    deadline: Option<Pin<Box<Sleep>>>,
    max_bytes: Option<u64>,
    sent: u64,
    min_interval: Option<std::time::Duration>,
    /// Armed after each part when an fps cap applies.
    pace: Pin<Box<Sleep>>,
    pacing: bool,
    /// This viewer's own resend: (how often, when next).
    resend: Option<(std::time::Duration, Pin<Box<Sleep>>)>,
}

impl PushBody {
    /// The first poll yields the current frame at once, then every change,
    /// until `shutdown` is cancelled.
    /// A listed viewer's stream also ends when it is kicked.
    pub fn new(viewer: ViewerGuard, framing: Framing, shutdown: &CancellationToken) -> PushBody {
        let frames = WatchStream::new(viewer.channel().subscribe());
        let token = viewer.record().map_or_else(|| shutdown.clone(), |r| r.kick.clone());
        let ended = Box::pin(token.cancelled_owned());
        PushBody {
            frames,
            ended,
            framing,
            last_seq: 0,
            viewer,
            limits: None,
            last_part: None,
            handover: None,
            continued: false,
        }
    }

    /// Lets an upgrade take this stream over at a part boundary.
    pub fn with_handover(mut self, handover: Arc<Handover>) -> PushBody {
        handover.taken();
        self.handover = Some(handover);
        self
    }

    /// A stream adopted from another process that has sent parts already.
    pub fn continued(mut self) -> PushBody {
        self.continued = true;
        self
    }

    /// What this stream is, for another process to go on writing it.
    fn paused(&self) -> Paused {
        let now = Instant::now();
        let limits = self.limits.as_deref();
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let record = self.viewer.record().map(|r| r.state());
        Paused {
            channel: self.viewer.channel().name().to_string(),
            reader: self.framing == Framing::Reader,
            started: self.last_seq != 0 || self.continued,
            max_duration_ms: limits
                .and_then(|l| l.deadline.as_ref())
                .map(|d| ms(d.deadline().saturating_duration_since(now))),
            max_bytes: limits.and_then(|l| l.max_bytes.map(|max| max.saturating_sub(l.sent))),
            min_interval_ms: limits.and_then(|l| l.min_interval).map(ms),
            resend_every_ms: limits.and_then(|l| l.resend.as_ref()).map(|(every, _)| ms(*every)),
            record,
        }
    }

    /// Applies per-client limits from the moment the stream starts.
    pub fn with_limits(mut self, limits: Limits) -> PushBody {
        if limits != Limits::default() {
            self.limits = Some(Box::new(Enforced {
                deadline: limits.max_duration.map(|d| Box::pin(sleep(d))),
                max_bytes: limits.max_bytes,
                sent: 0,
                min_interval: limits.min_interval,
                pace: Box::pin(sleep(std::time::Duration::ZERO)),
                pacing: false,
                resend: limits.resend_every.map(|every| (every, Box::pin(sleep(every)))),
            }));
        }
        self
    }
}

fn limit_reached(which: &'static str) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
    metrics().limits_reached.get_or_create(&Reason { reason: which }).inc();
    Poll::Ready(None)
}

impl Drop for PushBody {
    fn drop(&mut self) {
        if let Some(handover) = &self.handover {
            handover.released();
        }
    }
}

impl Body for PushBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        let this = &mut *self;
        waiting::asked();
        if this.ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        // A closed channel's last frame has gone out: the stream ends.
        if this.viewer.channel().final_seq().is_some_and(|last| this.last_seq >= last) {
            return Poll::Ready(None);
        }
        // An upgrade takes this stream over: nothing more from here. The
        // connection hands the socket on once hyper has flushed.
        if let Some(handover) = &this.handover {
            if handover.requested() {
                handover.pause(|| this.paused());
                return Poll::Pending;
            }
            // Asked before, and the upgrade gave up: the stream goes on here.
            handover.resumed();
        }
        if let Some(limits) = &mut this.limits {
            if limits.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
                return limit_reached("max_duration");
            }
            if limits.pacing {
                // Frames published meanwhile replace each other in the watch
                // slot: after the pause, the viewer gets the newest.
                ready!(limits.pace.as_mut().poll(cx));
                limits.pacing = false;
            }
        }
        let frame = match Pin::new(&mut this.frames).poll_next(cx) {
            Poll::Ready(Some(frame)) => frame,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                // Nothing new: this viewer's own resend may be due.
                let due = this.limits.as_mut().and_then(|l| l.resend.as_mut()).map(|(_, at)| at.as_mut().poll(cx));
                if this.last_seq == 0 || !matches!(due, Some(Poll::Ready(()))) {
                    return Poll::Pending;
                }
                this.viewer.channel().latest()
            }
        };
        let stats = &this.viewer.channel().stats;
        if this.last_seq != 0 && frame.seq > this.last_seq + 1 {
            let skipped = frame.seq - this.last_seq - 1;
            stats.frames_skipped.fetch_add(skipped, Relaxed);
            metrics().frames_skipped.inc_by(skipped);
            if let Some(record) = this.viewer.record() {
                record.skipped.fetch_add(skipped, Relaxed);
            }
        }
        let first = this.last_seq == 0 && !this.continued;
        let paced = this.limits.as_ref().is_some_and(|l| l.min_interval.is_some());
        if this.last_seq != 0 && frame.seq > this.last_seq && !paced && sampled() {
            // A new picture reaching a viewer who had the one before.
            metrics().fanout_delay_seconds.observe(frame.published.elapsed().as_secs_f64());
        }
        let part = frame.part(this.framing, first);
        if let Some(limits) = &mut this.limits {
            // The first frame always goes out: a viewer sees a picture.
            if limits.max_bytes.is_some_and(|max| !first && limits.sent + part.len() as u64 > max) {
                return limit_reached("max_bytes");
            }
            limits.sent += part.len() as u64;
            if let Some(interval) = limits.min_interval {
                limits.pace.as_mut().reset(Instant::now() + interval);
                limits.pacing = true;
            }
        }
        if let Some((every, at)) = this.limits.as_mut().and_then(|l| l.resend.as_mut()) {
            at.as_mut().reset(Instant::now() + *every);
        }
        this.last_seq = frame.seq;
        stats.parts_sent.fetch_add(1, Relaxed);
        stats.bytes_sent.fetch_add(part.len() as u64, Relaxed);
        metrics().parts_sent.inc();
        metrics().bytes_sent.inc_by(part.len() as u64);
        if let Some(record) = this.viewer.record() {
            record.parts.fetch_add(1, Relaxed);
            record.bytes.fetch_add(part.len() as u64, Relaxed);
            let now = Instant::now();
            if let Some(last) = this.last_part.replace(now) {
                // Smoothed over about the last 8 parts.
                let rate = 1.0 / (now - last).as_secs_f64().max(1e-3);
                let old = f64::from_bits(record.fps.load(Relaxed));
                let fps = if old == 0.0 { rate } else { old + (rate - old) / 8.0 };
                record.fps.store(fps.to_bits(), Relaxed);
            }
        }
        waiting::handed_out();
        Poll::Ready(Some(Ok(BodyFrame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
/// One hand-off in 16 on each worker thread is timed: the histogram is one
/// lock for the process, and every viewer of every frame would contend on it.
fn sampled() -> bool {
    thread_local! {
        static HANDOFFS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    HANDOFFS.with(|n| {
        n.set(n.get().wrapping_add(1));
        n.get() % 16 == 0
    })
}
