//! The accept loop: socket options, caps on open connections (in all and per
//! address), and a quick 503 beyond them instead of an unbounded pile of
//! sockets.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::connection::Protocol;
use super::gate::Gate;
use super::stall::StallGuard;
use super::tls::Tls;
use super::tls_reads::TlsReads;
use super::{connection, redirect, socket};
use crate::app::App;
use crate::metrics::{Reason, metrics};
use crate::panics;
use crate::push::handover::Handover;

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

/// What a listener serves.
#[derive(Clone)]
pub enum Kind {
    /// HTTP/1.1 and h2c (prior knowledge).
    Plain,
    /// HTTPS: HTTP/2 and HTTP/1.1 by ALPN.
    Tls(Arc<Tls>),
    /// Only redirects to HTTPS on this port.
    Redirect { https_port: u16 },
}

/// Accepts until `stop`, and not while `held`.
pub async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    gate: Gate,
    kind: Kind,
    stop: CancellationToken,
    mut held: super::Held,
) {
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    loop {
        if *held.borrow_and_update() {
            tokio::select! {
                Ok(_) = held.wait_for(|held| !*held) => continue,
                _ = stop.cancelled() => break,
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // A dropped sender never holds again: the branch is disabled.
            Ok(()) = held.changed() => continue,
            _ = stop.cancelled() => break,
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
        if let Err(error) = socket::configure(&stream, &app.config()) {
            // Serve anyway: dead-peer detection degrades, the viewer still counts.
            tracing::warn!(%error, "could not set socket options");
        }
        let place = match gate.admit(peer.ip()) {
            Ok(place) => place,
            Err(full) => {
                metrics().refused.get_or_create(&Reason { reason: full.reason() }).inc();
                // A TLS client cannot read a plain-text 503: just close.
                if matches!(kind, Kind::Tls(_)) {
                    drop(stream);
                } else {
                    refuse(stream, &refusing);
                }
                continue;
            }
        };
        let (app, gate) = (app.clone(), gate.clone());
        // Moved into the task: a panic drops them all the same.
        let held = (OpenGauge::open(), place);
        let io = StallGuard::new(stream, app.config().write_stall_timeout());
        // A task per kind of listener: a task's future is as large as its
        // largest state and moving it in touches every byte, so a plain
        // viewer must not pay for TLS state, nor a TLS viewer for a plain
        // branch it never takes.
        match &kind {
            Kind::Plain => spawn_connection(peer, held, serve_plain(io, peer, app, gate)),
            Kind::Tls(tls) => spawn_connection(peer, held, serve_tls(io, tls.clone(), peer, app, gate)),
            Kind::Redirect { https_port } => spawn_connection(peer, held, redirect::serve(io, app, *https_port)),
        }
    }
}

/// Runs one connection in its own task; `held` (its place and gauge) is
/// released when it ends, panics included.
fn spawn_connection<F>(peer: SocketAddr, held: impl Send + 'static, served: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    // Boxed here, written once: captured inline, the task would hold a
    // second copy of the connection's future beside `catch`'s (~1.4 KiB
    // more per held viewer, tests/memory.rs).
    let served = Box::pin(served);
    tokio::spawn(async move {
        let _ = panics::catch("connection", peer, served).await;
        drop(held);
    });
}

async fn serve_plain(io: StallGuard<TcpStream>, peer: SocketAddr, app: Arc<App>, gate: Gate) {
    let header_timeout = Duration::from_millis(app.config().header_read_timeout_ms);
    // The first-byte deadline: nothing within it, and the connection closes.
    let Some(protocol) = connection::sniff(io.get_ref(), header_timeout).await else { return };
    // A plain HTTP/1.1 stream can be handed to a new process.
    if protocol == Protocol::Http1 {
        let handover = Arc::new(Handover::default());
        let fd = std::os::fd::AsRawFd::as_raw_fd(io.get_ref());
        let io = io.with_handover(handover.clone());
        connection::serve_plain(io, fd, handover, peer.ip(), app, gate).await
    } else {
        connection::serve(io, protocol, peer.ip(), app, gate).await
    }
}

async fn serve_tls(io: StallGuard<TcpStream>, tls: Arc<Tls>, peer: SocketAddr, app: Arc<App>, gate: Gate) {
    let header_timeout = Duration::from_millis(app.config().header_read_timeout_ms);
    // The handshake in a box of its own, freed when it ends: rustls'
    // acceptor state (~2.7 KiB) is not kept for the connection's life.
    let Some(tls_stream) = Box::pin(tls.accept(io)).await else { return };
    drop(tls);
    let protocol = match tls_stream.get_ref().1.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        Some(_) => Protocol::Http1,
        None => Protocol::Detect,
    };
    // rustls' own send limit (64 KiB of records) stays: at 16 KiB, a part
    // of a camera took a write per record, and a GiB 20 % more CPU (the TLS
    // bench); a slow viewer still skips frames once the socket is full.
    // The header timeout also covers silence after the handshake.
    let io = StallGuard::new(TlsReads::new(tls_stream), app.config().write_stall_timeout())
        .first_byte_within(header_timeout);
    connection::serve(io, protocol, peer.ip(), app, gate).await
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
