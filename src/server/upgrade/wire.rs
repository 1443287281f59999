//! The messages between an upgrade's two processes, on a Unix
//! `SOCK_SEQPACKET` pair (one message per datagram, sockets beside
//! streams), and the thread that writes them in order.

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::relay::Piece;
use crate::push::handover::Paused;

/// A message's largest size (a stream's state is a few hundred bytes).
const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Message {
    /// New → old: serving, with this process id.
    Hello { pid: u32 },
    /// Old → new: go on numbering viewers from here. `Counts` follow: the
    /// old process's viewers per channel, each counted there until it
    /// joins here.
    Start { next_viewer_id: u64 },
    /// Old → new: a stream, its socket beside this message.
    Stream(Box<Paused>),
    /// Old → new: every stream that could move has; take them.
    Done,
    /// New → old: taken; the new process writes on them from now on.
    Taken,
    /// Either way: this process's viewers per channel, whenever they
    /// change, in messages of at most `COUNTS_PER_MESSAGE` bytes of names;
    /// `last` ends one report.
    Counts { counts: Vec<(String, u64)>, last: bool },
    /// New → old, after `Taken`: a piece of a frame of a channel the old
    /// process still serves (`relay`), at most `FRAME_PIECE` bytes.
    Frame(Piece),
}

/// A frame's bytes in one message, at most (well inside `MAX_MESSAGE`).
const FRAME_PIECE: usize = 48 * 1024;

/// Names' bytes in one `Counts` message: well inside a message.
const COUNTS_PER_MESSAGE: usize = 16 * 1024;

/// Sends one report of `counts`, in as many messages as it takes.
pub(super) fn send_counts(outbox: &Outbox, counts: &HashMap<String, u64>) -> bool {
    let mut part = Vec::new();
    let mut bytes = 0;
    for (name, n) in counts {
        if bytes + name.len() > COUNTS_PER_MESSAGE && !part.is_empty() {
            let counts = std::mem::take(&mut part);
            if outbox.send(Outgoing::Message(Message::Counts { counts, last: false })).is_err() {
                return false;
            }
            bytes = 0;
        }
        bytes += name.len() + 24;
        part.push((name.clone(), *n));
    }
    outbox.send(Outgoing::Message(Message::Counts { counts: part, last: true })).is_ok()
}

/// Puts a report together from its messages.
#[derive(Default)]
pub(super) struct Report(HashMap<String, u64>);

impl Report {
    /// The whole report, once its last message came.
    pub(super) fn add(&mut self, counts: Vec<(String, u64)>, last: bool) -> Option<HashMap<String, u64>> {
        self.0.extend(counts);
        last.then(|| std::mem::take(&mut self.0))
    }
}

/// One message: its JSON's length (4 bytes, big-endian), its JSON, and a
/// frame's piece after it as it is.
pub(super) fn send(socket: &UnixDatagram, message: &Message, fd: Option<RawFd>) -> io::Result<()> {
    let json = serde_json::to_vec(message).map_err(io::Error::other)?;
    let head = u32::try_from(json.len()).map_err(io::Error::other)?.to_be_bytes();
    let piece: &[u8] = match message {
        Message::Frame(frame) => &frame.piece,
        _ => &[],
    };
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let iov = [IoSlice::new(&head), IoSlice::new(&json), IoSlice::new(piece)];
    sendmsg::<()>(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
    Ok(())
}

/// The next message and the socket beside it, if any; `None` at the end.
pub(super) fn receive(socket: &UnixDatagram) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fd = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: the kernel just gave this process the descriptor.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(io::Error::other("a message over the size limit"));
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        // The kernel dropped a socket on the way (out of descriptors here).
        return Err(io::Error::other("a socket beside a message was lost"));
    }
    let n = msg.bytes;
    if n == 0 {
        return Ok(None);
    }
    let bad = || io::Error::other("a message cut short");
    let head: [u8; 4] = buf.get(..4).and_then(|h| h.try_into().ok()).ok_or_else(bad)?;
    let end = 4 + u32::from_be_bytes(head) as usize;
    let json = buf.get(4..end).filter(|_| end <= n).ok_or_else(bad)?;
    let mut message = serde_json::from_slice(json).map_err(io::Error::other)?;
    if let Message::Frame(frame) = &mut message {
        frame.piece = bytes::Bytes::copy_from_slice(&buf[end..n]);
    }
    Ok(Some((message, fd)))
}

/// What the sending thread writes, in order.
pub(super) enum Outgoing {
    Stream(OwnedFd, Paused, oneshot::Sender<io::Result<()>>),
    Message(Message),
    /// Answered once everything queued before it was sent: one count
    /// report in flight at a time, however slow the other side reads.
    Flushed(oneshot::Sender<()>),
    /// A frame for the old process (`relay`), sent in pieces; `done` once
    /// all are.
    Frame {
        channel: String,
        content_type: &'static str,
        image: bytes::Bytes,
        closes: bool,
        done: oneshot::Sender<io::Result<()>>,
    },
}

pub(super) type Outbox = std::sync::mpsc::Sender<Outgoing>;

/// Writes `Outgoing` to `socket` from a thread of its own, in order.
pub(super) fn sender(socket: UnixDatagram) -> io::Result<Outbox> {
    let (outbox, inbox) = std::sync::mpsc::channel::<Outgoing>();
    std::thread::Builder::new().name("framecast-handover".into()).spawn(move || {
        for outgoing in inbox {
            match outgoing {
                Outgoing::Stream(fd, state, done) => {
                    let sent = send(&socket, &Message::Stream(Box::new(state)), Some(fd.as_raw_fd()));
                    let _ = done.send(sent);
                }
                Outgoing::Message(message) => {
                    if send(&socket, &message, None).is_err() {
                        // The other side sees the pair close, and stops
                        // counting on (and relaying to) this one.
                        let _ = socket.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
                Outgoing::Flushed(done) => {
                    let _ = done.send(());
                }
                Outgoing::Frame { channel, content_type, image, closes, done } => {
                    let total = image.len();
                    let mut sent = Ok(());
                    // An empty image is still one piece.
                    for offset in (0..total.max(1)).step_by(FRAME_PIECE) {
                        let piece = image.slice(offset.min(total)..(offset + FRAME_PIECE).min(total));
                        let head = Piece {
                            channel: channel.clone(),
                            content_type: content_type.into(),
                            total,
                            offset,
                            closes,
                            piece,
                        };
                        sent = send(&socket, &Message::Frame(head), None);
                        if sent.is_err() {
                            break;
                        }
                    }
                    let failed = sent.is_err();
                    let _ = done.send(sent);
                    if failed {
                        // Half a frame went: nothing after it would be read
                        // right. The old process draws its own again.
                        let _ = socket.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            }
        }
    })?;
    Ok(outbox)
}
