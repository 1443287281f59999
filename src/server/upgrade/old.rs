//! The running process's side of an upgrade: starts the new binary, holds
//! accepting, hands every plain stream over at a part boundary, and keeps
//! each socket until the new process took them all (or takes them back).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use tokio::sync::oneshot;

use super::relay::Pieces;
use super::wire::{Message, Outbox, Outgoing, Report, receive, send_counts, sender};
use super::{ENV_LISTENERS, ENV_SOCKET, START_LIMIT, report_counts, viewers_here};
use crate::app::App;
use crate::push::handover::{self, Handover, Paused};
use crate::push::record::ViewerRecord;

/// How long the old process waits for its streams to reach a part boundary
/// and move; the ones that did not by then stay with it.
const MOVE_LIMIT: Duration = Duration::from_secs(5);
/// How long the old process waits for `Taken` after `Done`: the new process
/// answers at once, so this is a hang. Short, as every moving stream is
/// paused meanwhile (a proxy in front gives up on a silent stream at 60 s).
const TAKEN_LIMIT: Duration = Duration::from_secs(10);

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
    let answered = tokio::time::timeout(TAKEN_LIMIT, answer.wait_for(Option::is_some)).await.is_ok();
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
    // Reaped here should it exit while this process drains (no zombie);
    // after this process exits, by whoever adopts it.
    let reaper = std::thread::Builder::new().name("framecast-reaper".into()).spawn(move || child.wait());
    if let Err(error) = reaper {
        tracing::debug!(%error, "upgrade: the new process is not waited for here");
    }
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
        let mut shut = false;
        loop {
            let message = match receive(&incoming) {
                Ok(Some((message, _))) => message,
                Ok(None) => break,
                // Nothing after a bad message is trusted, but what came
                // before it is still read: a `Taken` among it settles.
                Err(error) if !shut => {
                    tracing::warn!(%error, "upgrade: a message from the new process could not be read");
                    let _ = incoming.shutdown(std::net::Shutdown::Both);
                    shut = true;
                    continue;
                }
                Err(_) => break,
            };
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
        // No more frames come from there: every channel draws its own again.
        for channel in app.registry.list() {
            channel.stop_relay();
        }
        app.registry.nudge_all();
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
