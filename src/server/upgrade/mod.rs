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
//! they end, or `upgrade_drain_max_ms`, and show the new process's frames
//! (`relay`). A new binary that fails to start or refuses its config
//! changes nothing: the old process serves on, and says why in its log.
//!
//! `old` is the running process's side, `new` the new process's, `wire`
//! the messages between them, and `relay` the frames the new process draws
//! for the streams that stayed.

mod new;
mod old;
mod relay;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use new::{Inherited, inherited};
pub use old::{Leaving, Started, hand_over, start};

use crate::app::App;
use wire::{Outbox, send_counts};

/// The new process finds its end of the socket pair here.
const ENV_SOCKET: &str = "FRAMECAST_UPGRADE_FD";
/// And the listening sockets: `http=3,https=4,http-redirect=5`.
const ENV_LISTENERS: &str = "FRAMECAST_LISTENER_FDS";
/// How long the new process may take to start and say so.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How often the old process reports the viewers it still serves.
const COUNTS_EVERY: Duration = Duration::from_millis(50);

/// Sends this process's viewers per channel to the other process whenever
/// they change (looked at every `COUNTS_EVERY`), one report in flight at a
/// time, until it is gone.
async fn report_counts(app: Arc<App>, outbox: Outbox) {
    let mut reported = None;
    loop {
        let counts = viewers_here(&app);
        if reported.as_ref() != Some(&counts) {
            if !send_counts(&outbox, &counts) {
                return;
            }
            let (done, sent) = tokio::sync::oneshot::channel();
            if outbox.send(wire::Outgoing::Flushed(done)).is_err() || sent.await.is_err() {
                return;
            }
            reported = Some(counts);
        }
        tokio::time::sleep(COUNTS_EVERY).await;
    }
}

/// This process's viewers per watched channel, not counting relays (each
/// stands in for a viewer the other process counts).
fn viewers_here(app: &App) -> HashMap<String, u64> {
    let channels = app.registry.list();
    let viewers =
        channels.iter().map(|c| (c.name().to_string(), c.viewers().saturating_sub(relay::standing_in(c.name()))));
    viewers.filter(|(_, n)| *n > 0).collect()
}
