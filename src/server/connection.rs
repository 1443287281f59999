//! One client connection: HTTP/1.1 through hyper's own `http1` connection,
//! HTTP/2 through hyper-util's automatic server (HTTP/2 by ALPN over TLS,
//! or by its preface in plain text: h2c with prior knowledge, as proxies
//! speak it to upstreams; detected only for TLS without ALPN).
//!
//! Per HTTP/2 stream, the guarantees of an HTTP/1.1 connection hold: each
//! stream holds its own place in the caps, a cancelled stream
//! (RST_STREAM) ends just that viewer, a stream whose client takes nothing
//! is reset after the stall timeout (`streams.rs`), a small per-stream send
//! buffer makes a slow stream skip frames instead of queueing them, and
//! keep-alive PINGs find vanished peers.

use std::convert::Infallible;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use super::gate::Gate;
use super::held::Held;
use super::stall::{Silent, Stalled};
use super::streams::StreamExecutor;
use crate::app::App;
use crate::http::client_addr::PeerAddr;
use crate::http::{response, routes};
use crate::metrics::{Reason, metrics};
use crate::push::handover::Handover;

/// Requests larger than this (line plus headers) get a 431.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// What HTTP/2 may queue per stream beyond the frame being written: the
/// twin of the HTTP/1.1 write buffer bound. A stream that cannot take it
/// skips to the latest frame.
const H2_STREAM_SEND_BUFFER: usize = 64 * 1024;

/// Which protocol a connection speaks, when the listener already knows:
/// ALPN over TLS, or the plain connection's first bytes (peeked). Serving a
/// known protocol skips hyper-util's version detection, whose read-ahead
/// costs ~10 KiB per held HTTP/1.1 connection (`cargo bench --bench
/// capacity`: 26.8 → 17.0 KiB per viewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
    /// Not known (TLS without ALPN): detected from the preface.
    Detect,
}

/// The HTTP/2 client preface: h2c with prior knowledge starts with it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A plain connection's protocol from its first bytes, without consuming
/// them; `None` if the client sent nothing within `limit` (close it).
pub async fn sniff(stream: &tokio::net::TcpStream, limit: Duration) -> Option<Protocol> {
    let decide = async {
        let mut buf = [0u8; 24];
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if !H2_PREFACE.starts_with(&buf[..n]) {
                return Some(Protocol::Http1);
            }
            if n == H2_PREFACE.len() {
                return Some(Protocol::Http2);
            }
            // A preface split across packets (rare): look again shortly.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(limit, decide).await.ok().flatten()
}

pub async fn serve<IO>(io: IO, protocol: Protocol, peer: IpAddr, app: Arc<App>, gate: Gate)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = app.shutdown.clone();
    let result = match protocol {
        // The common case (every plain viewer) through hyper's own HTTP/1.1
        // connection: the task then holds no HTTP/2 state (capacity bench).
        Protocol::Http1 => {
            let conn = http1_builder(&app.config()).serve_connection(TokioIo::new(io), service(peer, app, gate, None));
            tokio::pin!(conn);
            let woken = Arc::new(Handover::default());
            let _listed = crate::push::handover::list(&woken);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => break result.map_err(Into::into),
                    _ = shutdown.cancelled() => {
                        // Streams end on the same signal; let the responses finish, then close.
                        conn.as_mut().graceful_shutdown();
                        break conn.await.map_err(Into::into);
                    }
                    // An upgrade: this connection cannot move (TLS); it
                    // closes once its response ends, and the next goes to
                    // the new process.
                    () = woken.changed.notified(), if !closing => {
                        if crate::push::handover::upgrading() {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        }
        // Boxed, so that HTTP/2's larger state is not part of every task.
        Protocol::Http2 | Protocol::Detect => Box::pin(serve_auto(io, protocol, peer, app, gate)).await,
    };
    let reason = match &result {
        Ok(()) => "closed",
        Err(error) => {
            tracing::debug!(%error, "connection ended");
            end_reason(error.as_ref())
        }
    };
    metrics().closed.get_or_create(&Reason { reason }).inc();
}

/// A plain HTTP/1.1 connection (`fd` is its socket): as `serve`, and when
/// a binary upgrade asks, its stream stops at a part boundary, hyper
/// flushes, and the socket goes to the new process (`upgrade::hand_over`)
/// with what the stream is. hyper's connection is then dropped without a
/// byte more: the new process writes the next part.
pub async fn serve_plain<IO>(io: IO, fd: RawFd, handover: Arc<Handover>, peer: IpAddr, app: Arc<App>, gate: Gate)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = app.shutdown.clone();
    // Woken by an upgrade even while idle (then it closes).
    let _listed = crate::push::handover::list(&handover);
    let mut closing = false;
    // Declared before the connection, so dropped after it (and its viewer).
    let mut leaving = None;
    let service = service(peer, app.clone(), gate, Some(handover.clone()));
    let conn = http1_builder(&app.config()).serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            () = handover.changed.notified() => {
                // An upgrade: an idle connection closes, a response under
                // way finishes first, a stream moves once it is flushed.
                if crate::push::handover::upgrading() && !closing {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                let Some(state) = handover.ready() else { continue };
                let channel = state.channel.clone();
                // Boxed: kept out of every connection task's size.
                match Box::pin(super::upgrade::hand_over(fd, state, &handover)).await {
                    // Dropping the connection closes this process's
                    // descriptor only: the new process holds its own.
                    Ok(moved) => {
                        leaving.replace(moved);
                        metrics().closed.get_or_create(&Reason { reason: "handed_over" }).inc();
                        return;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "could not hand a stream over: it stays here");
                        handover.stay();
                        if let Some(channel) = app.registry.get(&channel) {
                            channel.resend();
                        }
                    }
                }
            }
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

type ConnResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// HTTP/2, or a protocol detected from the preface (TLS without ALPN).
async fn serve_auto<IO>(io: IO, protocol: Protocol, peer: IpAddr, app: Arc<App>, gate: Gate) -> ConnResult
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &app.config();
    let mut builder = auto::Builder::new(StreamExecutor { stall_timeout: config.write_stall_timeout() });
    // The same HTTP/1.1 settings as `http1_builder` (auto has its own type).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms))
        .writev(true)
        .max_buf_size(MAX_REQUEST_HEAD);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_streams_per_connection)
        .max_send_buf_size(H2_STREAM_SEND_BUFFER)
        .max_header_list_size(MAX_REQUEST_HEAD as u32)
        .keep_alive_interval(Duration::from_millis(config.http2_keepalive_interval_ms))
        .keep_alive_timeout(Duration::from_millis(config.http2_keepalive_timeout_ms));
    let builder = if protocol == Protocol::Http2 { builder.http2_only() } else { builder };
    let shutdown = app.shutdown.clone();
    let conn = builder.serve_connection(TokioIo::new(io), service(peer, app, gate, None));
    tokio::pin!(conn);
    let woken = Arc::new(Handover::default());
    let _listed = crate::push::handover::list(&woken);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            // An upgrade: HTTP/2 streams cannot move; GOAWAY sends new
            // ones to a new connection (the new process), these go on.
            () = woken.changed.notified(), if !closing => {
                if crate::push::handover::upgrading() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

fn http1_builder(config: &crate::config::Config) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms))
        // Queue shared frame bytes instead of copying them into a write buffer.
        .writev(true)
        // Also bounds queued output: a slow viewer holds few frames, then skips.
        .max_buf_size(MAX_REQUEST_HEAD);
    builder
}

/// The per-request service of one connection.
fn service(
    peer: IpAddr,
    app: Arc<App>,
    gate: Gate,
    handover: Option<Arc<Handover>>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Held<response::ResponseBody>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Held<response::ResponseBody>>, Infallible>> + Send,
> + Clone {
    service_fn(move |mut req: Request<Incoming>| {
        let (app, gate) = (app.clone(), gate.clone());
        req.extensions_mut().insert(PeerAddr(peer));
        if let Some(handover) = &handover {
            req.extensions_mut().insert(handover.clone());
        }
        async move {
            // An HTTP/2 stream is a viewer of its own: it takes a place.
            let place = match req.version() {
                Version::HTTP_2 => match gate.admit(peer) {
                    Ok(place) => Some(place),
                    Err(full) => {
                        metrics().refused.get_or_create(&Reason { reason: full.reason() }).inc();
                        let mut busy = response::text(StatusCode::SERVICE_UNAVAILABLE, "server full, try later");
                        busy.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("5"));
                        return Ok::<_, Infallible>(busy.map(|b| Held::new(b, None)));
                    }
                },
                _ => None,
            };
            // Boxed: hyper keeps the slot for this future for the whole
            // connection, and routing's state is large; boxed, it is freed
            // once the response is ready (~1.1 KiB per held viewer).
            let response: Response<_> = Box::pin(routes::handle(app, req)).await?;
            Ok(response.map(|body| Held::new(body, place)))
        }
    })
}

/// How a connection ended, for `framecast_connections_closed_total`.
fn end_reason(error: &(dyn std::error::Error + 'static)) -> &'static str {
    if let Some(error) = error.downcast_ref::<hyper::Error>() {
        if error.is_timeout() {
            return "header_timeout";
        }
        if error.is_parse() || error.is_parse_too_large() {
            return "bad_request";
        }
    }
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<Stalled>()) {
                return "stalled";
            }
            if io.get_ref().is_some_and(|inner| inner.is::<Silent>()) {
                return "header_timeout";
            }
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => "reset",
                std::io::ErrorKind::TimedOut => "timeout",
                _ => "io_error",
            };
        }
        source = e.source();
    }
    match error.downcast_ref::<hyper::Error>() {
        Some(e) if e.is_incomplete_message() || e.is_closed() => "closed",
        _ => "error",
    }
}

#[cfg(test)]
mod sniff_tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn sniffed(sends: &[&[u8]]) -> Option<Protocol> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let sends: Vec<Vec<u8>> = sends.iter().map(|s| s.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for chunk in sends {
                client.write_all(&chunk).await.unwrap();
                client.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            client
        });
        let got = sniff(&server, Duration::from_millis(500)).await;
        drop(writer.await);
        got
    }

    #[tokio::test]
    async fn prefaces_and_requests_are_told_apart() {
        assert_eq!(sniffed(&[b"GET / HTTP/1.1\r\n\r\n"]).await, Some(Protocol::Http1));
        assert_eq!(sniffed(&[H2_PREFACE]).await, Some(Protocol::Http2));
        assert_eq!(sniffed(&[b"PRI * HT", &H2_PREFACE[8..]]).await, Some(Protocol::Http2), "split preface");
        assert_eq!(sniffed(&[b"PRI * HTTP/1.1\r\n"]).await, Some(Protocol::Http1));
        assert_eq!(sniffed(&[]).await, None, "silence past the limit");
    }
}
