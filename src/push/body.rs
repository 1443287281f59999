//! The response body of a live image: yields the channel's latest part
//! whenever it changes. It owns the viewer's presence, so the viewer leaves
//! the count exactly when hyper drops the body (the connection ended).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame as BodyFrame, SizeHint};
use tokio_stream::Stream;
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::part::{Frame, Framing};
use super::viewer::ViewerGuard;
use crate::metrics::metrics;

pub struct PushBody {
    frames: WatchStream<Arc<Frame>>,
    /// Resolves at shutdown: the stream then ends cleanly.
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    framing: Framing,
    last_seq: u64,
    viewer: ViewerGuard,
}

impl PushBody {
    /// The first poll yields the current frame at once, then every change,
    /// until `shutdown` is cancelled.
    pub fn new(viewer: ViewerGuard, framing: Framing, shutdown: &CancellationToken) -> PushBody {
        let frames = WatchStream::new(viewer.channel().subscribe());
        let ended = Box::pin(shutdown.clone().cancelled_owned());
        PushBody { frames, ended, framing, last_seq: 0, viewer }
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
        if this.ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let Some(frame) = ready!(Pin::new(&mut this.frames).poll_next(cx)) else {
            return Poll::Ready(None);
        };
        let stats = &this.viewer.channel().stats;
        if this.last_seq != 0 && frame.seq > this.last_seq + 1 {
            let skipped = frame.seq - this.last_seq - 1;
            stats.frames_skipped.fetch_add(skipped, Relaxed);
            metrics().frames_skipped.inc_by(skipped);
        }
        let part = frame.part(this.framing, this.last_seq == 0);
        this.last_seq = frame.seq;
        stats.parts_sent.fetch_add(1, Relaxed);
        stats.bytes_sent.fetch_add(part.len() as u64, Relaxed);
        metrics().parts_sent.inc();
        metrics().bytes_sent.inc_by(part.len() as u64);
        Poll::Ready(Some(Ok(BodyFrame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
