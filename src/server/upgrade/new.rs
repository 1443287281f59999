//! The new process's side of an upgrade: the sockets it inherited, and
//! taking the old process's streams over.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use super::relay::Relays;
use super::wire::{Message, Report, receive, send, sender};
use super::{ENV_LISTENERS, ENV_SOCKET, START_LIMIT, report_counts};
use crate::app::App;

use crate::push::handover::Paused;
use crate::push::record::ViewerRecord;
use crate::server::gate::Gate;

/// How long the new process waits, after `Taken`, for the streams still
/// joining before it accepts.
const JOINS_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    pub async fn take_over(self, app: Arc<App>, gate: Gate) -> Result<(), String> {
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
            let (app, mut go, gate) = (app.clone(), go.clone(), gate.clone());
            joining.spawn(async move {
                // Counted here from its join on, not there (`http::adopt`).
                let stream = crate::server::adopted::adopt(&app, &gate, fd, state).await;
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
                    // Its socket was lost on the way: not `Taken`, so the
                    // old process keeps every stream.
                    (Message::Stream(_), None) => return false,
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
        // Nobody accepts until this process does: it waits for the joins
        // (a first frame each may be drawn) a few seconds at most. A stream
        // still joining is counted there until it is counted here.
        match tokio::time::timeout(JOINS_LIMIT, adopted).await {
            Ok(adopted) => tracing::info!(adopted, "upgrade: the old process's streams are served here"),
            Err(_) => tracing::warn!("upgrade: some of the old process's streams are still joining; serving now"),
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
                        if let Some(stream) = crate::server::adopted::adopt(&app, &gate, fd, *state).await {
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
