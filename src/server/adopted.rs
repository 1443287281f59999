//! A stream adopted from an upgrade's old process: its TCP connection, in
//! the middle of a chunked HTTP/1.1 response, written on from its next
//! part. hyper is not involved: the response head went out long ago, and
//! the connection serves no other request after this stream (it closes
//! when the stream ends). The same body as any stream (limits, records,
//! skipping to the latest frame), the same stall guard on writes, and a
//! read side that notices the client leave.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::gate::{Gate, Place};
use super::stall::StallGuard;
use crate::app::App;
use crate::metrics::{Reason, metrics};
use crate::push::handover::Handover;
use crate::push::handover::Paused;

/// How long a finished stream waits for its client to close first.
const LINGER: Duration = Duration::from_secs(2);

/// A stream joined to its channel here, its socket ready to write on.
pub struct Adopted {
    app: Arc<App>,
    stream: TcpStream,
    /// `None`: its channel could not be joined; the stream ends cleanly.
    body: Option<crate::push::body::PushBody>,
    /// Its place under the connection caps. `None` only when this process's
    /// config lowered them below what the old process served: a live stream
    /// is not ended for it, as a reload's lower cap ends none.
    _place: Option<Place>,
}

/// Joins the stream on `fd` to its channel (counted from now on).
pub async fn adopt(app: &Arc<App>, gate: &Gate, fd: OwnedFd, state: Paused) -> Option<Adopted> {
    let stream = std::net::TcpStream::from(fd);
    let stream = stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream));
    let Ok(stream) = stream else {
        // Lost on the way: counted neither there nor here.
        app.registry.moved_here(&state.channel);
        return None;
    };
    let peer = stream.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let addr = state.record.as_ref().map_or(peer, |r| r.addr);
    let _place = gate.admit(peer).ok();
    let body = crate::http::adopt::stream(app, &state, addr).await;
    Some(Adopted { app: app.clone(), stream, body, _place })
}

impl Adopted {
    /// Writes the stream's parts until it ends or its client leaves.
    pub async fn run(self) {
        let Adopted { app, stream, body, _place } = self;
        metrics().connections_open.inc();
        let fd = stream.as_raw_fd();
        let io = StallGuard::new(stream, app.config().write_stall_timeout());
        let (mut reader, mut writer) = tokio::io::split(io);
        // A later upgrade moves this stream on, as any plain stream.
        let handover = Arc::new(Handover::default());
        let _listed = crate::push::handover::list(&handover);
        // Declared before the body, so dropped after it (and its viewer).
        let mut leaving = None;
        let ended = match body {
            Some(body) => {
                let mut body = std::pin::pin!(body.with_handover(handover.clone()));
                let mut sink = [0u8; 512];
                loop {
                    tokio::select! {
                        frame = body.frame() => {
                            let Some(Ok(frame)) = frame else { break "closed" };
                            let Ok(data) = frame.into_data() else { continue };
                            if write_chunk(&mut writer, data).await.is_err() {
                                break "reset";
                            }
                        }
                        read = reader.read(&mut sink) => match read {
                            // More from the client on a streaming response: ignored.
                            Ok(n) if n > 0 => {}
                            _ => break "client_left",
                        },
                        () = handover.changed.notified() => {
                            // Between two writes: every byte is out.
                            handover.flushed();
                            let Some(state) = handover.ready() else { continue };
                            let channel = state.channel.clone();
                            match Box::pin(super::upgrade::hand_over(fd, state, &handover)).await {
                                Ok(moved) => {
                                    leaving.replace(moved);
                                    break "handed_over";
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
                }
            }
            None => "closed",
        };
        if ended == "closed" {
            // HTTP's last chunk: the stream ended cleanly, as any stream's end.
            let _ = writer.write_all(b"0\r\n\r\n").await;
            let _ = writer.shutdown().await;
            let mut sink = [0u8; 512];
            let drain = async { while reader.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
        }
        metrics().connections_open.dec();
        metrics().closed.get_or_create(&Reason { reason: ended }).inc();
    }
}

/// One part as one HTTP/1.1 chunk.
async fn write_chunk<W: tokio::io::AsyncWrite + Unpin>(writer: &mut W, data: Bytes) -> std::io::Result<()> {
    let head = Bytes::from(format!("{:X}\r\n", data.len()));
    let mut chunk = head.chain(data).chain(&b"\r\n"[..]);
    writer.write_all_buf(&mut chunk).await?;
    writer.flush().await
}
