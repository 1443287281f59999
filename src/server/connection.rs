//! One client connection: HTTP/1.1 through hyper over a stall-guarded socket.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::stall::{StallGuard, Stalled};
use crate::app::App;
use crate::http::routes;
use crate::metrics::{Reason, metrics};

/// Requests larger than this (line plus headers) get a 431.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

pub async fn serve(stream: TcpStream, app: Arc<App>) {
    let io = TokioIo::new(StallGuard::new(stream, app.config.write_stall_timeout()));
    let header_timeout = Duration::from_millis(app.config.header_read_timeout_ms);
    let shutdown = app.shutdown.clone();
    let service = service_fn(move |req| routes::handle(app.clone(), req));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        // Queue shared frame bytes instead of copying them into a write buffer.
        .writev(true)
        // Also bounds queued output: a slow viewer holds few frames, then skips.
        .max_buf_size(MAX_REQUEST_HEAD);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.cancelled() => {
            // Streams end on the same signal; let the response finish, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    let reason = match &result {
        Ok(()) => "closed",
        Err(error) => {
            tracing::debug!(%error, "connection ended");
            end_reason(error)
        }
    };
    metrics().closed.get_or_create(&Reason { reason }).inc();
}

/// How a connection ended, for `framecast_connections_closed_total`.
fn end_reason(error: &hyper::Error) -> &'static str {
    if error.is_timeout() {
        return "header_timeout";
    }
    if error.is_parse() || error.is_parse_too_large() {
        return "bad_request";
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<Stalled>()) {
                return "stalled";
            }
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => "reset",
                std::io::ErrorKind::TimedOut => "timeout",
                _ => "io_error",
            };
        }
        source = e.source();
    }
    if error.is_incomplete_message() || error.is_closed() { "closed" } else { "error" }
}
