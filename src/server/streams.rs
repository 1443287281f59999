//! The executor hyper spawns each HTTP/2 stream on. It is where a stream
//! that its client stopped taking gets reset: hyper waits for flow-control
//! capacity without asking the body again, so neither the body nor the
//! socket guard (the connection still moves for the other streams) can see
//! it. Each stream's task runs inside a `Waiting` scope; once the body has
//! waited on its client for `write_stall_timeout_ms`, the task ends: its
//! stream is dropped, h2 sends RST_STREAM(CANCEL), and the viewer leaves.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Sleep, sleep};

use crate::metrics::metrics;
use crate::push::waiting::Waiting;

#[derive(Clone)]
pub struct StreamExecutor {
    pub stall_timeout: Duration,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, stream: F) {
        tokio::spawn(Watched {
            stream: Box::pin(stream),
            waiting: Arc::default(),
            stall_timeout: self.stall_timeout,
            timer: None,
        });
    }
}

struct Watched<F> {
    stream: Pin<Box<F>>,
    waiting: Arc<Waiting>,
    stall_timeout: Duration,
    /// Armed while the body waits on the client: (which wait, its deadline).
    timer: Option<(u64, Pin<Box<Sleep>>)>,
}

impl<F: Future> Future for Watched<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let stream = &mut this.stream;
        if this.waiting.scope(|| stream.as_mut().poll(cx)).is_ready() {
            return Poll::Ready(());
        }
        let Some(wait) = this.waiting.current() else {
            this.timer = None;
            return Poll::Pending;
        };
        if this.timer.as_ref().is_none_or(|(armed, _)| *armed != wait) {
            this.timer = Some((wait, Box::pin(sleep(this.stall_timeout))));
        }
        let (_, timer) = this.timer.as_mut().expect("armed above");
        if timer.as_mut().poll(cx).is_ready() {
            tracing::debug!("HTTP/2 stream took nothing within the stall timeout: reset");
            metrics().streams_stalled.inc();
            // Returning drops the stream: h2 resets it, the body and its
            // viewer go with it.
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
