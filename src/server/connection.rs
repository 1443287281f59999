//! One client connection: HTTP/1.1 through hyper over a stall-guarded socket.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::stall::StallGuard;
use crate::app::App;
use crate::http::routes;

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
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended");
    }
}
