//! The cluster's counts of channels that are not live on this instance.
//!
//! A channel watched only on other instances has no `Channel` here, yet
//! one-off answers about it (`?once`, proxy images, `.svg`, board tiles,
//! placeholders, the JSON API, `/metrics`) must give the cluster's count,
//! never this instance's zero. Reading a count here notes the name; one
//! that is missing or older than a heartbeat is fetched by the cluster (one
//! pipelined round trip for every name wanted at once) and kept for at
//! most a heartbeat, refreshed meanwhile by the totals pub/sub already
//! brings. A caller that must not answer with a guess waits (`settle`) for
//! the fetch; a failed fetch leaves the entry marked inexact.
//!
//! Bounded: at most `MAX_ENTRIES` names; an entry unread for
//! `FORGET_AFTER` goes, and when full the least recently read goes first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::metrics::{ClusterPart, metrics};

/// Names kept at most (each a name and a few integers).
pub const MAX_ENTRIES: usize = 4096;
/// An entry nobody read for this long is dropped.
const FORGET_AFTER: Duration = Duration::from_secs(60);

struct Entry {
    total: u64,
    version: u64,
    /// When Redis last told us the total (fetch or pub/sub); `None`: never.
    fetched: Option<Instant>,
    /// When the last fetch failed (Redis out of reach): the total is a
    /// guess until one answers.
    failed: Option<Instant>,
    read: Instant,
}

/// The parts of cluster mode that talk to Redis on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Leases and this instance's counts.
    Presence = 0,
    /// Totals of channels live elsewhere (this map's fetches).
    Totals = 1,
    /// Room figures.
    Figures = 2,
}

/// Longer names are not kept or fetched (no channel name is this long).
pub const MAX_NAME: usize = 512;

/// A channel's count as the cluster has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteCount {
    pub total: u64,
    /// Redis answered the last time it was asked (the total is at most a
    /// heartbeat older than the last read that asked for it).
    pub exact: bool,
}

pub struct RemoteTotals {
    enabled: AtomicBool,
    /// Per part of the cluster's work: Redis did not answer its last call
    /// (cleared by its next that does). Each part speaks for itself, so one
    /// part's success cannot hide another's failure.
    unreachable: [AtomicBool; 3],
    ttl_ms: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
    /// Woken when a read found a name missing or stale (the cluster fetches).
    pub wanted: Notify,
    /// Bumped after every fetch, answered or failed (`settle` waits on it).
    fetches: watch::Sender<u64>,
}

impl Default for RemoteTotals {
    fn default() -> Self {
        RemoteTotals {
            enabled: AtomicBool::new(false),
            unreachable: Default::default(),
            ttl_ms: AtomicU64::new(1000),
            entries: Mutex::default(),
            wanted: Notify::new(),
            fetches: watch::channel(0).0,
        }
    }
}

impl RemoteTotals {
    /// Cluster mode: counts of channels not live here come from Redis, and
    /// are kept for at most `ttl` (a heartbeat).
    pub fn enable(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Relaxed);
        self.enabled.store(true, Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// Whether counts from here may be guesses now: cluster mode, and
    /// Redis out of reach. Every answer then says so.
    pub fn degraded(&self) -> bool {
        self.enabled() && self.unreachable.iter().any(|u| u.load(Relaxed))
    }

    /// Redis answered `part`'s last call (`true`) or did not (`false`).
    pub fn set_reachable(&self, part: Part, reachable: bool) {
        self.unreachable[part as usize].store(!reachable, Relaxed);
        let label = ClusterPart { part: ["presence", "totals", "figures"][part as usize] };
        metrics().cluster_redis_up.get_or_create(&label).set(i64::from(reachable));
        if !reachable && part == Part::Totals {
            self.all_failed();
        }
    }

    /// Whether `part`'s last call to Redis failed.
    pub fn unreachable(&self, part: Part) -> bool {
        self.unreachable[part as usize].load(Relaxed)
    }

    /// How long a fetched total is kept (a heartbeat).
    pub fn heartbeat(&self) -> Duration {
        self.ttl()
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, entry: &Entry, now: Instant) -> bool {
        entry.failed.is_none() && entry.fetched.is_some_and(|t| now.duration_since(t) <= self.ttl())
    }

    /// The cluster's count of `name` as known now (`None`: never fetched).
    /// A missing or stale entry asks the cluster for it.
    pub fn read(&self, name: &str) -> Option<RemoteCount> {
        if name.len() > MAX_NAME {
            return None;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        if !entries.contains_key(name) {
            make_room(&mut entries, now);
            let entry = Entry { total: 0, version: 0, fetched: None, failed: None, read: now };
            entries.insert(name.to_string(), entry);
        }
        let entry = entries.get_mut(name).expect("inserted above");
        entry.read = now;
        let fresh = self.fresh(entry, now);
        // Exact: Redis answered the last fetch, and not long ago (a name
        // nobody read for a while is a guess until fetched again).
        let recent = entry.fetched.is_some_and(|t| now.duration_since(t) <= 3 * self.ttl());
        let known = entry.fetched.map(|_| RemoteCount { total: entry.total, exact: entry.failed.is_none() && recent });
        drop(entries);
        if !fresh {
            self.wanted.notify_one();
        }
        known
    }

    /// Names read lately whose count is missing or older than a heartbeat.
    pub fn stale(&self) -> Vec<String> {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, e| now.duration_since(e.read) < FORGET_AFTER);
        entries.iter().filter(|(_, e)| !self.fresh(e, now)).map(|(n, _)| n.clone()).collect()
    }

    /// How many names are kept (the bound's test).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The cluster answered: `(name, version, total)` for each name asked
    /// (version 0, total 0: nobody watches it anywhere).
    pub fn fetched(&self, answers: Vec<(String, u64, u64)>) {
        let now = Instant::now();
        let mut entries = self.lock();
        for (name, version, total) in answers {
            // A newer total heard by pub/sub meanwhile stays, unless what
            // is kept is stale (after a Redis restart versions start again
            // from 1, and a direct read is then the truth).
            if let Some(e) = entries.get_mut(&name) {
                if version >= e.version || !self.fresh(e, now) {
                    (e.total, e.version) = (total, version);
                }
                (e.fetched, e.failed) = (Some(now), None);
            }
        }
        drop(entries);
        self.fetches.send_modify(|n| *n += 1);
    }

    /// A fetch of `names` failed: their counts are guesses until one works.
    pub fn failed(&self, names: &[String]) {
        let now = Instant::now();
        let mut entries = self.lock();
        for name in names {
            if let Some(e) = entries.get_mut(name) {
                e.failed = Some(now);
            }
        }
        drop(entries);
        self.fetches.send_modify(|n| *n += 1);
    }

    /// Redis is out of reach: every kept count is a guess.
    fn all_failed(&self) {
        let now = Instant::now();
        for e in self.lock().values_mut() {
            e.failed = Some(now);
        }
    }

    /// A total heard by pub/sub for a channel not live here: kept if the
    /// name is (nobody asked otherwise) and newer than what is kept.
    pub fn heard(&self, name: &str, version: u64, total: u64) {
        if let Some(e) = self.lock().get_mut(name)
            && (version > e.version || e.fetched.is_none())
        {
            (e.total, e.version, e.fetched, e.failed) = (total, version, Some(Instant::now()), None);
        }
    }

    /// `(version, total)` of `name` if fetched within a heartbeat: what a
    /// channel going live here starts from.
    pub fn fresh_total(&self, name: &str) -> Option<(u64, u64)> {
        let now = Instant::now();
        let entries = self.lock();
        entries.get(name).filter(|e| self.fresh(e, now) && e.version > 0).map(|e| (e.version, e.total))
    }

    /// Waits (at most `deadline`) until every name in `names` has been
    /// fetched or failed since this call, unless it is fresh already.
    /// Returns whether all are fresh.
    pub async fn settle(&self, names: &[String], deadline: Duration) -> bool {
        let mut fetches = self.fetches.subscribe();
        let give_up = tokio::time::Instant::now() + deadline;
        let asked = Instant::now();
        loop {
            let now = Instant::now();
            let (mut pending, mut failed) = (Vec::new(), false);
            {
                let entries = self.lock();
                for name in names {
                    match entries.get(name.as_str()) {
                        Some(e) if self.fresh(e, now) => {}
                        // Tried since we asked, and Redis did not answer.
                        Some(e) if e.failed.is_some_and(|t| t >= asked) => failed = true,
                        _ => pending.push(name),
                    }
                }
            }
            if pending.is_empty() {
                return !failed;
            }
            fetches.borrow_and_update();
            for name in pending {
                self.read(name);
            }
            if tokio::time::timeout_at(give_up, fetches.changed()).await.is_err() {
                return false;
            }
        }
    }
}

/// Drops entries unread for `FORGET_AFTER`, then the least recently read
/// while the map is full.
fn make_room(entries: &mut HashMap<String, Entry>, now: Instant) {
    if entries.len() < MAX_ENTRIES {
        return;
    }
    entries.retain(|_, e| now.duration_since(e.read) < FORGET_AFTER);
    while entries.len() >= MAX_ENTRIES {
        let oldest = entries.iter().min_by_key(|(_, e)| e.read).map(|(n, _)| n.clone());
        match oldest {
            Some(name) => entries.remove(&name),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_asks_and_a_fetch_answers_within_a_heartbeat() {
        let remote = RemoteTotals::default();
        remote.enable(Duration::from_secs(60));
        assert_eq!(remote.read("online/a"), None, "never fetched");
        assert_eq!(remote.stale(), vec!["online/a".to_string()]);
        remote.fetched(vec![("online/a".into(), 3, 7)]);
        assert_eq!(remote.read("online/a"), Some(RemoteCount { total: 7, exact: true }));
        assert!(remote.stale().is_empty());
        remote.heard("online/a", 2, 1);
        assert_eq!(remote.read("online/a").unwrap().total, 7, "an older total is ignored");
        remote.heard("online/a", 4, 8);
        assert_eq!(remote.read("online/a").unwrap().total, 8);
        remote.failed(&["online/a".to_string()]);
        assert_eq!(remote.read("online/a"), Some(RemoteCount { total: 8, exact: false }), "a guess, marked");
        assert_eq!(remote.read(&"x".repeat(MAX_NAME + 1)), None, "no name that long is kept");
    }

    #[test]
    fn it_keeps_at_most_max_entries() {
        let remote = RemoteTotals::default();
        for i in 0..MAX_ENTRIES + 10 {
            remote.read(&format!("online/{i}"));
        }
        assert_eq!(remote.len(), MAX_ENTRIES);
    }

    #[tokio::test]
    async fn settle_gives_up_marked_when_nobody_answers() {
        let remote = RemoteTotals::default();
        remote.enable(Duration::from_secs(60));
        assert!(!remote.settle(&["online/a".to_string()], Duration::from_millis(20)).await);
    }
}
