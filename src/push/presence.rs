//! Where viewer counts meet cluster mode. Each channel keeps its own exact
//! local count; with a cluster, it also holds the last global total the
//! cluster reported and this instance's share in it, so it can show
//! "global − share at report time + local now": a local join or leave shows
//! at once, and other instances' changes arrive through the cluster. Which
//! channels changed is logged here for the cluster's reporter to coalesce.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use tokio::sync::Notify;

/// The names of channels whose local count changed since the reporter last
/// looked. Off (nothing logged) without a cluster.
#[derive(Default)]
pub struct PresenceLog {
    enabled: AtomicBool,
    dirty: Mutex<HashSet<String>>,
    pub changed: Notify,
}

impl PresenceLog {
    pub fn enable(&self) {
        self.enabled.store(true, Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    pub(crate) fn mark(&self, name: &str) {
        if self.enabled() {
            self.dirty.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string());
            self.changed.notify_one();
        }
    }

    /// Every channel changed since the last call.
    pub fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A channel's place in the cluster-wide count.
#[derive(Default)]
pub struct GlobalCount {
    /// The cluster's total, as last heard, and its version.
    total: AtomicU64,
    version: AtomicU64,
    /// This instance's count as last reported (included in `total`).
    reported: AtomicU64,
    /// A total has been heard at least once.
    known: AtomicBool,
    /// Whether the cluster is reachable (`false`: the total is an estimate).
    pub exact: AtomicBool,
}

impl GlobalCount {
    /// Takes a total heard from the cluster if it is newer than the last.
    /// Returns whether it changed what the channel shows.
    pub fn heard(&self, version: u64, total: u64) -> bool {
        if self.known.load(Relaxed) && version <= self.version.load(Relaxed) {
            return false;
        }
        self.version.store(version, Relaxed);
        // Both swaps always run (no short-circuit): `known` must be set by
        // the first total heard, whatever it is.
        let total_changed = self.total.swap(total, Relaxed) != total;
        let first = !self.known.swap(true, Relaxed);
        let changed = total_changed || first;
        self.exact.store(true, Relaxed);
        changed
    }

    /// Forgets the version heard: after Redis lost its data (a restart
    /// without persistence) versions start again from 1. The last total
    /// stays shown until a new one is heard.
    pub fn restart_versions(&self) {
        self.version.store(0, Relaxed);
    }

    /// This instance reported `local` and the cluster answered with the
    /// total (and version) that includes it. Returns whether what the
    /// channel shows changed: also when only `local` did, as when a newer
    /// total (including this report) was heard by pub/sub before this answer
    /// arrived; the picture drawn in between counted the old share.
    pub fn reported(&self, local: u64, version: u64, total: u64) -> bool {
        let before = self.reported.swap(local, Relaxed);
        let heard = self.heard(version, total);
        heard || (before != local && self.known.load(Relaxed))
    }

    /// What to show with `local` viewers here now; `None` before the
    /// cluster was first heard (show the local count).
    pub fn shown(&self, local: u64) -> Option<u64> {
        self.known.load(Relaxed).then(|| (self.total.load(Relaxed) + local).saturating_sub(self.reported.load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::GlobalCount;

    #[test]
    fn a_report_answered_after_a_newer_total_still_changes_what_is_shown() {
        let global = GlobalCount::default();
        assert_eq!(global.shown(2), None, "nothing heard yet: show the local count");
        assert!(global.reported(2, 5, 5), "first total");
        assert_eq!(global.shown(2), Some(5));
        // Here 3 now; pub/sub brings the total with our 3 in it (version 7)
        // before our own report's answer (version 6) arrives.
        assert!(global.heard(7, 6));
        assert_eq!(global.shown(3), Some(7), "our old share of 2 still counted");
        assert!(global.reported(3, 6, 3), "what is shown changed: 7 -> 6");
        assert_eq!(global.shown(3), Some(6));
        assert!(!global.reported(3, 6, 3), "nothing changed");
    }
}
