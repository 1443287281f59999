//! Drops a connection whose writes make no progress for a set time (a client
//! that stopped reading, or a dead one). Partial progress resets the clock,
//! so a slow but live client is never cut. The timer exists only while a
//! write is blocked: idle streams cost no wakeups.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Sleep, sleep};

use crate::push::handover::Handover;

/// The error a stalled write ends with, told apart from the kernel's own
/// timeouts when connections are counted by how they ended.
#[derive(Debug)]
pub struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("write made no progress")
    }
}

impl std::error::Error for Stalled {}

/// The error a connection ends with when its client sent nothing at all
/// within the header read timeout (before HTTP knows which version it is,
/// so neither HTTP/1.1's header timeout nor HTTP/2's pings apply yet).
#[derive(Debug)]
pub struct Silent;

impl std::fmt::Display for Silent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no request within the header read timeout")
    }
}

impl std::error::Error for Silent {}

pub struct StallGuard<T> {
    inner: T,
    timeout: Duration,
    blocked: Option<Pin<Box<Sleep>>>,
    /// Until the first byte arrives: the deadline for it.
    first_read: Option<Pin<Box<Sleep>>>,
    /// Told of every completed flush: an upgrade hands the socket on after
    /// one (plain HTTP/1.1 only).
    handover: Option<Arc<Handover>>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, timeout: Duration) -> StallGuard<T> {
        StallGuard { inner, timeout, blocked: None, first_read: None, handover: None }
    }

    /// Reports completed flushes to `handover`.
    pub fn with_handover(mut self, handover: Arc<Handover>) -> StallGuard<T> {
        self.handover = Some(handover);
        self
    }

    /// Also ends the connection if its first byte does not arrive within `limit`.
    pub fn first_byte_within(mut self, limit: Duration) -> StallGuard<T> {
        self.first_read = Some(Box::pin(sleep(limit)));
        self
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn track(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match result {
            Poll::Pending => {
                let timeout = self.timeout;
                let timer = self.blocked.get_or_insert_with(|| Box::pin(sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, Stalled)));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(n)) if n > 0 => {
                self.blocked = None;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Some(deadline) = &mut self.first_read {
            match &result {
                Poll::Ready(Ok(())) if buf.filled().len() > before => self.first_read = None,
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, Silent)));
                }
                _ => {}
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        // hyper flushes its socket only once its own buffer is empty.
        if let (Poll::Ready(Ok(())), Some(handover)) = (&result, &self.handover) {
            handover.flushed();
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_blocked_past_the_timeout_fails() {
        // A tiny duplex pipe whose reader never reads: writes block once full.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(5));
        let err = guarded.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_making_progress_is_kept() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(5));
        let drain = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            // 16 bytes every 3 s: always inside the 5 s stall timeout.
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                if tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await.unwrap() == 0 {
                    break;
                }
            }
        });
        guarded.write_all(&[0u8; 256]).await.expect("progressing writes are not cut");
        drop(guarded);
        drain.await.unwrap();
    }
}
