//! The TLS stream a connection is served over once its handshake is done:
//! tokio-rustls's, reading from the socket only when the socket has bytes.
//!
//! Why: hyper polls a streaming connection for reads at every write (to see
//! the client leave). Through tokio-rustls each such poll asks rustls to
//! read, and rustls readies a 4 KiB receive buffer before every read. With
//! the vendored rustls patch (tools/rustls-patched) that buffer is given
//! back whenever it is empty, so a held viewer keeps none; this gate keeps
//! the buffer from being made and freed again at every frame. A viewer that
//! sends nothing costs no receive buffer at all.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::stall::StallGuard;

pub struct TlsReads {
    inner: Box<TlsStream<StallGuard<TcpStream>>>,
}

impl TlsReads {
    pub fn new(inner: Box<TlsStream<StallGuard<TcpStream>>>) -> TlsReads {
        TlsReads { inner }
    }
}

impl AsyncRead for TlsReads {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (io, conn) = this.inner.get_mut();
        // Wait on the socket only when rustls has nothing for the caller:
        // no plaintext, no complete record, no close. Whatever is missing
        // (the rest of a partial record too) must come from the socket.
        // Errors and every other case go straight to tokio-rustls, which
        // reports them (and sends the alert) as it always does.
        if conn.wants_read()
            && let Ok(state) = conn.process_new_packets()
            && state.plaintext_bytes_to_read() == 0
            && !state.peer_has_closed()
        {
            ready!(io.get_ref().poll_read_ready(cx))?;
        }
        Pin::new(&mut *this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsReads {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}
