//! The accept loop: socket options, caps on open connections (in all and per
//! address), and a quick 503 beyond them instead of an unbounded pile of
//! sockets.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::per_ip::PerIp;
use super::{connection, socket};
use crate::app::App;
use crate::metrics::{Reason, metrics};
use crate::panics;

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: 23\r\nConnection: close\r\n\r\nserver full, try later\n";

/// Refusals being answered at once at most. Past it a refused connection is
/// closed without an answer, so a flood of refusals costs bounded tasks,
/// sockets and memory.
const MAX_REFUSING: usize = 256;

/// One open connection in `framecast_connections_open`, released on drop:
/// also when the connection's task panics.
struct OpenGauge;

impl OpenGauge {
    fn open() -> OpenGauge {
        metrics().connections_open.inc();
        OpenGauge
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics().connections_open.dec();
    }
}

/// Accepts until shutdown, then waits (up to `shutdown_timeout_ms`) for open
/// connections to finish.
pub async fn accept_loop(listener: TcpListener, app: Arc<App>) {
    let slots = Arc::new(Semaphore::new(app.config.max_connections));
    let per_ip = PerIp::new(app.config.max_connections_per_ip);
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = app.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(error) = socket::configure(&stream, &app.config) {
            // Serve anyway: dead-peer detection degrades, the viewer still counts.
            tracing::warn!(%error, "could not set socket options");
        }
        let Some(per_ip) = per_ip.admit(peer.ip()) else {
            metrics().refused.get_or_create(&Reason { reason: "per_ip_cap" }).inc();
            refuse(stream, &refusing);
            continue;
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let app = app.clone();
                // Moved into the task: a panic drops them all the same.
                let held = (OpenGauge::open(), slot, per_ip);
                tokio::spawn(async move {
                    let _ = panics::catch("connection", peer, connection::serve(stream, app)).await;
                    drop(held);
                });
            }
            Err(_) => {
                metrics().refused.get_or_create(&Reason { reason: "connection_cap" }).inc();
                refuse(stream, &refusing);
            }
        }
    }
    drop(listener);
    let all = u32::try_from(app.config.max_connections).unwrap_or(u32::MAX);
    let limit = Duration::from_millis(app.config.shutdown_timeout_ms);
    if tokio::time::timeout(limit, slots.acquire_many(all)).await.is_err() {
        tracing::warn!(
            open = app.config.max_connections - slots.available_permits(),
            "shutdown timeout: closing anyway"
        );
    }
}

/// Answers 503 in a task of its own, or, with `MAX_REFUSING` answers under
/// way already, just closes the connection.
fn refuse(stream: TcpStream, refusing: &Arc<Semaphore>) {
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        metrics().refused.get_or_create(&Reason { reason: "refusals_full" }).inc();
        return;
    };
    tokio::spawn(async move {
        answer_busy(stream).await;
        drop(permit);
    });
}

/// Answers 503 and closes gracefully: closing with the request unread would
/// send RST, and the client could lose the answer.
async fn answer_busy(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        // Read (and drop) what the client sent until it closes too.
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
