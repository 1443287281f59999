//! A binary upgrade that hands every plain stream over (SIGUSR2, nginx's
//! convention). The old process starts the binary at its own path with its
//! own arguments and gives it, over a Unix socket pair:
//!
//! 1. the listening sockets, inherited (no connection is refused: both
//!    processes accept from the same queue until the old one stops);
//! 2. once the new process says it serves (`Hello`), where viewer ids go on
//!    (`Start`), then every plain HTTP/1.1 stream at a part boundary: its
//!    socket (`SCM_RIGHTS`) and what it is (`push::handover::Paused`). The
//!    new process joins each to its channel;
//! 3. then `Done`. The new process answers `Taken`, and only then writes
//!    the next part on each same TCP connection (`adopted`), while the old
//!    one closes its copies. Until `Taken` the old process keeps every
//!    socket, paused: if the new process dies half-way (its end of the pair
//!    closes), every stream goes on here and this process accepts again.
//!
//! Streams that cannot move (TLS, HTTP/2) stay with the old process until
//! they end, or `upgrade_drain_max_ms`. A new binary that fails to start or
//! refuses its config changes nothing: the old process serves on, and says
//! why in its log.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::relay::{Piece, Pieces, Relays};
use crate::app::App;
use crate::push::handover::{self, Handover, Paused};
use crate::push::record::ViewerRecord;

/// The new process finds its end of the socket pair here.
const ENV_SOCKET: &str = "FRAMECAST_UPGRADE_FD";
/// And the listening sockets: `http=3,https=4,http-redirect=5`.
const ENV_LISTENERS: &str = "FRAMECAST_LISTENER_FDS";
/// A message's largest size (a stream's state is a few hundred bytes).
const MAX_MESSAGE: usize = 64 * 1024;
/// How long the new process may take to start and say so.
const START_LIMIT: Duration = Duration::from_secs(60);

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
fn send_counts(outbox: &Outbox, counts: &HashMap<String, u64>) -> bool {
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
struct Report(HashMap<String, u64>);

impl Report {
    /// The whole report, once its last message came.
    fn add(&mut self, counts: Vec<(String, u64)>, last: bool) -> Option<HashMap<String, u64>> {
        self.0.extend(counts);
        last.then(|| std::mem::take(&mut self.0))
    }
}

/// How long the old process waits for its streams to reach a part boundary
/// and move; the ones that did not by then stay with it.
const MOVE_LIMIT: Duration = Duration::from_secs(5);
/// How often the old process reports the viewers it still serves.
const COUNTS_EVERY: Duration = Duration::from_millis(50);

/// One message: its JSON's length (4 bytes, big-endian), its JSON, and a
/// frame's piece after it as it is.
fn send(socket: &UnixDatagram, message: &Message, fd: Option<RawFd>) -> io::Result<()> {
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
fn receive(socket: &UnixDatagram) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
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

// ---- the old process ----

/// What the sending thread writes, in order.
pub(super) enum Outgoing {
    Stream(OwnedFd, Paused, oneshot::Sender<io::Result<()>>),
    Message(Message),
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

/// How an upgrade ended for the streams it sent: `Some(true)` the new
/// process took them, `Some(false)` it is gone and they go on here.
type Settled = tokio::sync::watch::Receiver<Option<bool>>;

/// Where handed-over streams go while an upgrade is under way.
static MOVING: Mutex<Option<Moving>> = Mutex::new(None);

#[derive(Clone)]
struct Moving {
    outbox: Outbox,
    settled: Settled,
    /// Duplicated descriptors waiting to be sent: bounded, so that 19,000
    /// streams pausing at once need no second descriptor each.
    queued: Arc<tokio::sync::Semaphore>,
}

/// Descriptors waiting in the sending thread's queue, at most.
const QUEUED: usize = 256;

/// Streams the new process took whose connections are still open here
/// (their viewers still counted here): the first report of this process's
/// viewers waits for none to be left.
static LEAVING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A stream the new process took; kept by its connection until the
/// connection (and its viewer here) is gone.
pub struct Leaving(());

impl Drop for Leaving {
    fn drop(&mut self) {
        LEAVING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Gives the stream on socket `fd` to the new process (called by the
/// connection once its stream stands at a part boundary), and waits until
/// the upgrade settles. `Ok`: the new process took it and writes on; this
/// process's descriptor may close, and the connection drops `Leaving`
/// once it did. `Err`: it goes on here (`stay`).
pub async fn hand_over(fd: RawFd, state: Paused, handover: &Handover) -> io::Result<Leaving> {
    let moving = MOVING.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Moving { outbox, mut settled, queued } = moving.ok_or_else(|| io::Error::other("no upgrade under way"))?;
    let place = queued.acquire_owned().await.map_err(|_| io::Error::other("the upgrade ended"))?;
    // SAFETY: `fd` is the connection's open socket, borrowed to duplicate it.
    let dup = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
    let (done, sent) = oneshot::channel();
    let gone = || io::Error::other("the new process is gone");
    outbox.send(Outgoing::Stream(dup, state, done)).map_err(|_| gone())?;
    let sent = sent.await.map_err(|_| gone());
    drop(place);
    sent??;
    // The new process holds a copy and writes nothing on it before `Taken`.
    handover.sent();
    LEAVING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let leaving = Leaving(());
    match settled.wait_for(Option::is_some).await.map(|s| *s) {
        Ok(Some(true)) => Ok(leaving),
        _ => Err(io::Error::other("the new process did not take over")),
    }
}

/// What the old process keeps of an upgrade it started.
pub struct Started {
    pub pid: u32,
}

/// The old process: starts `exe` with this process's arguments, the
/// listening sockets `listeners` and one end of a socket pair, and waits
/// until it is ready. Then it holds accepting (`hold`): new connections
/// wait in the listen queue, not refused, while every plain stream moves at
/// its next part boundary. Once the new process took them, this one stops
/// accepting for good (`accepting`), `upgraded` is set, and the new process
/// accepts. `Err` says why the upgrade did not happen: this process serves
/// on, every stream here, and accepts again.
pub async fn start(
    app: &Arc<App>,
    exe: PathBuf,
    listeners: Vec<(&'static str, RawFd)>,
    hold: &tokio::sync::watch::Sender<bool>,
    accepting: tokio_util::sync::CancellationToken,
    upgraded: &std::sync::atomic::AtomicBool,
) -> Result<Started, String> {
    if MOVING.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
        return Err("an upgrade is already under way".into());
    }
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| format!("socket pair: {e}"))?;
    let ours = UnixDatagram::from(ours);
    let theirs_fd = theirs.as_raw_fd();
    let listed: Vec<String> = listeners.iter().map(|(scheme, fd)| format!("{scheme}={fd}")).collect();
    let inherit: Vec<RawFd> = listeners.iter().map(|(_, fd)| *fd).chain([theirs_fd]).collect();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut command = std::process::Command::new(&exe);
    command.args(&args).env(ENV_SOCKET, theirs_fd.to_string()).env(ENV_LISTENERS, listed.join(","));
    // SAFETY: only async-signal-safe calls (fcntl) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for fd in &inherit {
                if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    drop(theirs);
    ours.set_read_timeout(Some(START_LIMIT)).map_err(|e| e.to_string())?;
    let hello = {
        let ours = ours.try_clone().map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || receive(&ours)).await.map_err(|e| e.to_string())?
    };
    let pid = match hello {
        Ok(Some((Message::Hello { pid }, _))) => pid,
        other => {
            // It exited (its stderr says why), timed out, or spoke nonsense.
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            let why = match other {
                Ok(None) => format!("it exited ({status})"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => format!("it did not serve within {START_LIMIT:?}"),
                Err(e) => format!("{e} ({status})"),
                Ok(Some(_)) => "it did not say it serves".into(),
            };
            return Err(format!("the new binary {} did not take over: {why}", exe.display()));
        }
    };
    ours.set_read_timeout(None).map_err(|e| e.to_string())?;
    // A stuck peer fails a send instead of blocking it forever.
    ours.set_write_timeout(Some(START_LIMIT)).map_err(|e| e.to_string())?;
    let incoming = ours.try_clone().map_err(|e| e.to_string())?;
    let control = ours.try_clone().map_err(|e| e.to_string())?;
    let outbox = sender(ours).map_err(|e| e.to_string())?;
    let (settle, settled) = tokio::sync::watch::channel(None);
    let settle = Arc::new(settle);
    listen(app, incoming, settle.clone()).map_err(|e| e.to_string())?;

    // New connections wait in the listen queue until it is settled who
    // accepts them.
    hold.send_replace(true);
    let _ = outbox.send(Outgoing::Message(Message::Start { next_viewer_id: ViewerRecord::next_id() }));
    if !app.registry.remote.enabled() {
        send_counts(&outbox, &viewers_here(app));
    }
    // Streams go over in their connections' tasks; the socket is written
    // from one thread, in the order they come.
    let queued = Arc::new(tokio::sync::Semaphore::new(QUEUED));
    let moving = Moving { outbox: outbox.clone(), settled: settled.clone(), queued: queued.clone() };
    *MOVING.lock().unwrap_or_else(|e| e.into_inner()) = Some(moving);
    handover::request_all();
    // Idle connections close; each body sees the request when its channel
    // wakes it.
    handover::wake_all();
    for channel in app.registry.list() {
        channel.resend();
    }
    let moved = async {
        let mut settled = settled.clone();
        while handover::movable() > 0 && settled.borrow_and_update().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let stuck = tokio::time::timeout(MOVE_LIMIT, moved).await.is_err();
    // No stream moves after `Done`: one paused now goes on here.
    *MOVING.lock().unwrap_or_else(|e| e.into_inner()) = None;
    queued.close();
    handover::cancel_all();
    if stuck {
        // Behind a client that reads nothing: served here instead.
        tracing::warn!(left = handover::movable(), "upgrade: some streams did not reach a part boundary; they stay");
        for channel in app.registry.list() {
            channel.resend();
        }
    }
    let _ = outbox.send(Outgoing::Message(Message::Done));
    let mut answer = settled.clone();
    let answered = tokio::time::timeout(START_LIMIT, answer.wait_for(Option::is_some)).await.is_ok();
    if !answered {
        // Whatever it sent before this stands; nothing after it can.
        let _ = control.shutdown(std::net::Shutdown::Both);
        let _ = answer.wait_for(Option::is_some).await;
    }
    let taken = *settled.borrow() == Some(true);
    if !taken {
        // Every stream sent goes on here (its connection stays); so does
        // accepting. The new process exits, having written nothing.
        let _ = control.shutdown(std::net::Shutdown::Both);
        let _ = child.kill();
        let _ = child.wait();
        hold.send_replace(false);
        for channel in app.registry.list() {
            channel.resend();
        }
        return Err(format!(
            "the new process (pid {pid}) did not take the streams over: it exited or stopped answering"
        ));
    }
    // Reaped by whoever adopts it once this process exits; not waited for here.
    drop(child);
    // This process accepts no more and, now its streams moved, drains.
    upgraded.store(true, std::sync::atomic::Ordering::SeqCst);
    accepting.cancel();
    // The streams that stay are counted there, and the new process's
    // viewers here, so every picture counts both (in a cluster they are
    // counted through Redis already).
    if !app.registry.remote.enabled() {
        let app = app.clone();
        tokio::spawn(async move {
            // Not before the moved streams' viewers left here.
            let left = async {
                while LEAVING.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            let _ = tokio::time::timeout(MOVE_LIMIT, left).await;
            report_counts(app, outbox).await;
        });
    }
    Ok(Started { pid })
}

/// Reads the new process's messages from `Hello` on: `Taken` settles the
/// upgrade; its end closing before that settles it the other way (every
/// stream goes on here). Its counts, after, are counted here.
fn listen(
    app: &Arc<App>,
    incoming: UnixDatagram,
    settle: Arc<tokio::sync::watch::Sender<Option<bool>>>,
) -> io::Result<()> {
    let app = app.clone();
    std::thread::Builder::new().name("framecast-counts".into()).spawn(move || {
        let mut report = Report::default();
        let mut pieces = Pieces::default();
        while let Ok(Some((message, _))) = receive(&incoming) {
            match message {
                Message::Frame(piece) => pieces.add(&app, piece),
                Message::Taken => settle_once(&settle, true),
                Message::Counts { counts, last } => {
                    if let Some(all) = report.add(counts, last)
                        && !app.registry.remote.enabled()
                    {
                        app.registry.set_elsewhere(all);
                    }
                }
                _ => {}
            }
        }
        settle_once(&settle, false);
        let _ = incoming.shutdown(std::net::Shutdown::Both);
        app.registry.set_elsewhere(HashMap::new());
    })?;
    Ok(())
}

/// Settles the upgrade `taken` or not, unless it already is.
fn settle_once(settle: &tokio::sync::watch::Sender<Option<bool>>, taken: bool) {
    settle.send_if_modified(|settled| {
        let first = settled.is_none();
        if first {
            *settled = Some(taken);
        }
        first
    });
}

/// Writes `Outgoing` to `socket` from a thread of its own, in order.
fn sender(socket: UnixDatagram) -> io::Result<Outbox> {
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
                        return;
                    }
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
                    let _ = done.send(sent);
                }
            }
        }
    })?;
    Ok(outbox)
}

/// Sends this process's viewers per channel to the other process whenever
/// they change (looked at every `COUNTS_EVERY`), until it is gone.
async fn report_counts(app: Arc<App>, outbox: Outbox) {
    let mut reported = None;
    loop {
        let counts = viewers_here(&app);
        if reported.as_ref() != Some(&counts) {
            if !send_counts(&outbox, &counts) {
                return;
            }
            reported = Some(counts);
        }
        tokio::time::sleep(COUNTS_EVERY).await;
    }
}

/// This process's viewers per watched channel.
fn viewers_here(app: &App) -> HashMap<String, u64> {
    let channels = app.registry.list();
    channels.iter().filter(|c| c.viewers() > 0).map(|c| (c.name().to_string(), c.viewers())).collect()
}

// ---- the new process ----

/// What an upgrade's new process inherits.
pub struct Inherited {
    socket: UnixDatagram,
    /// `(scheme, listener)`: `http`, `https`, `http-redirect`.
    pub listeners: Vec<(String, std::net::TcpListener)>,
}

/// The sockets the old process handed down, when this process is an
/// upgrade's new one (the variables are then removed, so a later upgrade
/// starts clean).
pub fn inherited() -> Option<Inherited> {
    let socket = std::env::var(ENV_SOCKET).ok()?.parse::<RawFd>().ok()?;
    let listed = std::env::var(ENV_LISTENERS).unwrap_or_default();
    // SAFETY: the old process passed these descriptors to this one alone.
    unsafe {
        std::env::remove_var(ENV_SOCKET);
        std::env::remove_var(ENV_LISTENERS);
    }
    let socket = UnixDatagram::from(unsafe { OwnedFd::from_raw_fd(socket) });
    let mut listeners = Vec::new();
    for pair in listed.split(',').filter(|p| !p.is_empty()) {
        let Some((scheme, fd)) = pair.split_once('=') else { continue };
        let Ok(fd) = fd.parse::<RawFd>() else { continue };
        // SAFETY: as above; each is a listening TCP socket.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        let _ = listener.set_nonblocking(true);
        set_cloexec(fd);
        listeners.push((scheme.to_string(), listener));
    }
    set_cloexec(socket.as_raw_fd());
    Some(Inherited { socket, listeners })
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

impl Inherited {
    /// Takes the inherited listener for `scheme`, if the old process had one.
    pub fn take(&mut self, scheme: &str) -> Option<std::net::TcpListener> {
        let at = self.listeners.iter().position(|(s, _)| s == scheme)?;
        Some(self.listeners.remove(at).1)
    }

    /// Tells the old process this one serves, then adopts every stream it
    /// hands over, until it has none left to give.
    pub async fn take_over(self, app: Arc<App>) -> Result<(), String> {
        let socket = self.socket;
        send(&socket, &Message::Hello { pid: std::process::id() }, None).map_err(|e| e.to_string())?;
        // Viewer ids go on from the old process's before this one gives any.
        socket.set_read_timeout(Some(START_LIMIT)).map_err(|e| e.to_string())?;
        let start = {
            let socket = socket.try_clone().map_err(|e| e.to_string())?;
            tokio::task::spawn_blocking(move || receive(&socket)).await.map_err(|e| e.to_string())?
        };
        match start {
            Ok(Some((Message::Start { next_viewer_id }, _))) => ViewerRecord::continue_ids_from(next_viewer_id),
            Ok(Some(_)) => return Err("the old process did not hand over: an unexpected message".into()),
            Ok(None) => return Err("the old process did not hand over: it closed the channel".into()),
            Err(e) => return Err(format!("the old process did not hand over: {e}")),
        }
        socket.set_read_timeout(None).map_err(|e| e.to_string())?;
        socket.set_write_timeout(Some(START_LIMIT)).map_err(|e| e.to_string())?;
        let control = socket.try_clone().map_err(|e| e.to_string())?;
        let outbox = sender(socket.try_clone().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let (messages, mut inbox) = tokio::sync::mpsc::unbounded_channel();
        let reader = std::thread::Builder::new().name("framecast-adopt".into()).spawn(move || {
            loop {
                fail::fail_point!("upgrade-receive");
                match receive(&socket) {
                    Ok(Some(message)) => {
                        if messages.send(message).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "upgrade: reading from the old process failed");
                        break;
                    }
                }
            }
            // The other side's sends fail now, rather than block.
            let _ = socket.shutdown(std::net::Shutdown::Both);
        });
        reader.map_err(|e| e.to_string())?;
        // Every stream joins its channel before this process accepts, so
        // the first answer it gives counts them all. They join side by
        // side (a first frame may be drawn), within `START_LIMIT` in all,
        // and are written on only once the old process let go of them
        // (`go`): until `Taken` it may take them back.
        let (go_on, go) = tokio::sync::watch::channel(None::<bool>);
        let mut joining = tokio::task::JoinSet::new();
        let mut report = Report::default();
        let adopt = |joining: &mut tokio::task::JoinSet<bool>, fd: OwnedFd, state: Paused| {
            let (app, mut go) = (app.clone(), go.clone());
            joining.spawn(async move {
                // Counted here from its join on, not there (`http::adopt`).
                let stream = super::adopted::adopt(&app, fd, state).await;
                let taken = matches!(go.wait_for(Option::is_some).await.map(|g| *g), Ok(Some(true)));
                match stream {
                    Some(stream) if taken => {
                        tokio::spawn(stream.run());
                        true
                    }
                    // Closed here without a byte: the old process writes on.
                    _ => false,
                }
            });
        };
        let done = async {
            while let Some((message, fd)) = inbox.recv().await {
                match (message, fd) {
                    (Message::Stream(state), Some(fd)) => adopt(&mut joining, fd, *state),
                    (Message::Counts { counts, last }, _) => {
                        if let Some(all) = report.add(counts, last) {
                            app.registry.set_elsewhere(all);
                        }
                    }
                    (Message::Done, _) => return true,
                    _ => {}
                }
            }
            false
        };
        let done = tokio::time::timeout(START_LIMIT, done).await.unwrap_or(false);
        let taken = done && {
            let sent = tokio::task::spawn_blocking(move || send(&control, &Message::Taken, None)).await;
            matches!(sent, Ok(Ok(())))
        };
        if !taken {
            go_on.send_replace(Some(false));
            return Err("the old process kept its streams: the upgrade ended before they were handed over".into());
        }
        go_on.send_replace(Some(true));
        let adopted = async {
            let mut adopted = 0;
            while let Some(joined) = joining.join_next().await {
                adopted += usize::from(joined.unwrap_or(false));
            }
            adopted
        };
        match tokio::time::timeout(START_LIMIT, adopted).await {
            Ok(adopted) => tracing::info!(adopted, "upgrade: the old process's streams are served here"),
            Err(_) => tracing::warn!("upgrade: taking the old process's streams took too long; serving now"),
        }
        // Joins still under way go on by themselves.
        joining.detach_all();
        // The old process's pictures count this one's viewers too.
        if !app.registry.remote.enabled() {
            tokio::spawn(report_counts(app.clone(), outbox.clone()));
        }
        // The streams that stayed there show this process's frames.
        let mut relays = Relays::new(app.clone(), outbox);
        tokio::spawn(async move {
            while let Some((message, fd)) = inbox.recv().await {
                match (message, fd) {
                    // A stream the old process still gives: taken all the same.
                    (Message::Stream(state), Some(fd)) => {
                        if let Some(stream) = super::adopted::adopt(&app, fd, *state).await {
                            tokio::spawn(stream.run());
                        }
                    }
                    (Message::Counts { counts, last }, _) => {
                        if let Some(all) = report.add(counts, last) {
                            relays.report(all);
                        }
                    }
                    _ => {}
                }
            }
            // The old process exited: nobody is served there any more.
            relays.stop();
        });
        Ok(())
    }
}
