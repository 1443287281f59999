//! A people room's members and guests across a cluster: a member with tabs
//! on two instances is one member, an address watching through two is one
//! guest. Each instance tells Redis (`cluster::people`) which members and
//! guests it has in the room, one entry at a time as they come and go (or
//! all at once after Redis lost them), and shows the cluster's counts it
//! hears back.
//!
//! Only entries that changed since the last report are kept to send: at
//! most `MAX_CHANGED` per room, past which the room sends everything it
//! has instead, so a Redis that is away for long costs no more memory than
//! the streams themselves. Guests leave this process as keyed hashes only
//! (`RoomStats::keyed_hash` under the day's shared key), never as addresses.
//!
//! Names are shown only as read at the room's current names version, and
//! never one this instance has hidden: a stale list could name a member who
//! has since hidden. Until they are read the picture shows none.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::people::Member;
use super::{Room, RoomStats};
use crate::sources::room_stats::PeopleNow;

/// Changed entries kept per room before it sends all instead.
const MAX_CHANGED: usize = 4096;
/// Names asked for within this long are kept fresh from the cluster.
const NAMES_WINDOW: Duration = Duration::from_secs(10);

/// A visible member across the cluster: its id and name.
pub type Named = (Arc<str>, Arc<str>);

/// The cluster's count of a room, as Redis answered or published it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeopleCounts {
    /// Bumped by every change to the room's people in Redis.
    pub version: u64,
    pub members: u64,
    pub guests: u64,
    pub hidden: u64,
    /// Bumped only when the visible names may have changed.
    pub names_version: u64,
}

/// A member as this instance has it in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHere {
    pub hidden: bool,
    pub name: Arc<str>,
}

/// What this instance tells the cluster about one room.
#[derive(Debug, Clone, Default)]
pub struct PeopleReport {
    pub room: String,
    /// Everything this instance has in the room: the cluster drops what
    /// it held for this instance and is not listed.
    pub full: bool,
    /// Each member that changed, and how it is here now (`None`: gone).
    pub members: Vec<(Arc<str>, Option<MemberHere>)>,
    /// Each guest address that changed, and whether it is here now.
    pub guests: Vec<(IpAddr, bool)>,
}

/// One room's place in the cluster's people.
#[derive(Default)]
pub(super) struct PeopleShare {
    /// The room counts people across the cluster.
    on: bool,
    /// It stopped doing so: what this instance held is to be dropped.
    clear: bool,
    /// Send everything (after a loss, or too many changes to list).
    full: bool,
    members: HashSet<Arc<str>>,
    guests: HashSet<IpAddr>,
    seen: Option<Seen>,
    names_asked: Option<Instant>,
}

struct Seen {
    counts: PeopleCounts,
    /// The visible members `(id, name)` in join order, as last read, and
    /// at which names version.
    names: Option<(u64, Vec<Named>)>,
    /// Local counts when `counts` arrived: while Redis is away, what
    /// changed here since is added to them.
    base: (u64, u64, u64),
    degraded: bool,
}

fn local_counts(now: &PeopleNow) -> (u64, u64, u64) {
    (now.members, now.guests, now.hidden)
}

impl PeopleShare {
    /// A stream joined or left: its entry is to be sent.
    pub(super) fn touched(&mut self, addr: IpAddr, member: Option<&Member>) {
        if !self.on || self.full {
            return;
        }
        match member {
            Some(m) => self.members.insert(m.id.clone()),
            None => self.guests.insert(addr),
        };
        if self.members.len() + self.guests.len() > MAX_CHANGED {
            self.send_all();
        }
    }

    fn send_all(&mut self) {
        self.full = true;
        self.members = HashSet::new();
        self.guests = HashSet::new();
    }

    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    /// The counts shown: the cluster's once heard (with this instance's
    /// changes since, while Redis is away), else this instance's own.
    /// Returns whether names were newly asked for (the cluster then reads
    /// them). `hidden_here`: a member this instance has hidden.
    pub(super) fn shown(
        &mut self,
        local: PeopleNow,
        names: bool,
        hidden_here: impl Fn(&str) -> bool,
    ) -> (PeopleNow, bool) {
        if !self.on {
            return (local, false);
        }
        let newly_asked = names && self.names_asked.is_none_or(|t| t.elapsed() > NAMES_WINDOW);
        if names {
            self.names_asked = Some(Instant::now());
        }
        let Some(seen) = self.seen.as_ref() else {
            // Not heard yet: this instance's counts, and no names until the
            // cluster's are read (these could name someone hidden elsewhere).
            return (PeopleNow { names: Vec::new(), ..local }, newly_asked);
        };
        let c = seen.counts;
        let (members, guests, hidden) = if seen.degraded {
            let (m, g, h) = local_counts(&local);
            let (bm, bg, bh) = seen.base;
            let add = |shared: u64, now: u64, base: u64| (shared + now).saturating_sub(base);
            (add(c.members, m, bm), add(c.guests, g, bg), add(c.hidden, h, bh))
        } else {
            (c.members, c.guests, c.hidden)
        };
        let names = match (&seen.names, names) {
            (Some((version, shared)), true) if *version == c.names_version => {
                shared.iter().filter(|(id, _)| !hidden_here(id)).map(|(_, name)| name.clone()).collect()
            }
            _ => Vec::new(),
        };
        (PeopleNow { members, guests, hidden, names }, newly_asked)
    }
}

impl Room {
    fn people_report(&mut self, name: &str) -> Option<PeopleReport> {
        let share = &mut self.people_share;
        if share.clear {
            share.clear = false;
            return Some(PeopleReport { room: name.to_string(), full: true, ..PeopleReport::default() });
        }
        if !share.on {
            return None;
        }
        if share.full {
            share.full = false;
            share.members.clear();
            share.guests.clear();
            let (members, guests) = self.people.everyone();
            let members = members.into_iter().map(|(id, here)| (id, Some(here))).collect();
            let guests = guests.into_iter().map(|addr| (addr, true)).collect();
            return Some(PeopleReport { room: name.to_string(), full: true, members, guests });
        }
        if share.members.is_empty() && share.guests.is_empty() {
            return None;
        }
        let members = share.members.drain().map(|id| (id.clone(), self.people.member(&id))).collect();
        let guests = share.guests.drain().map(|addr| (addr, self.people.has_guest(addr))).collect();
        Some(PeopleReport { room: name.to_string(), full: false, members, guests })
    }
}

impl RoomStats {
    /// The rooms that count people (`count: "people"`): in cluster mode
    /// they are counted across instances. A room newly among them sends
    /// all it has; a room no longer among them drops its part.
    pub fn set_people_rooms(&self, rooms: BTreeSet<String>) {
        self.people_rooms.store(Arc::new(rooms));
        self.people_resync(false);
    }

    /// Cluster mode: every people room sends all it has, and Redis drops
    /// what it holds for this instance beyond it: after (re)registering
    /// (Redis may have lost it, or reaped it), when the key for guests'
    /// hashes changed, and now and then, to heal what a lost write left.
    pub fn people_send_all_again(&self) {
        self.people_resync(true);
    }

    fn people_resync(&self, everything: bool) {
        let rooms = self.people_rooms.load();
        let mut state = self.state();
        let cluster = state.cluster.is_some();
        for (name, r) in state.rooms.iter_mut() {
            let share = &mut r.people_share;
            let want = cluster && rooms.contains(name);
            if want && (everything || !share.on) {
                share.send_all();
            }
            if !want && share.on {
                share.clear = true;
                share.seen = None;
            }
            share.on = want;
        }
        drop(state);
        self.people_signal.notify_one();
    }

    /// Wakes the cluster's people task (names to read).
    pub fn wake_people(&self) {
        self.people_signal.notify_one();
    }

    /// Woken when a people room changed here, or names were asked for.
    pub async fn people_wanted(&self) {
        self.people_signal.notified().await;
    }

    /// What each people room has to tell the cluster now.
    pub fn take_people_reports(&self) -> Vec<PeopleReport> {
        let mut state = self.state();
        state.rooms.iter_mut().filter_map(|(name, r)| r.people_report(name)).collect()
    }

    /// Reports that did not reach Redis: sent again, whole, next time.
    pub fn people_not_reported(&self, reports: Vec<PeopleReport>) {
        let mut state = self.state();
        for report in reports {
            let Some(r) = state.rooms.get_mut(&report.room) else { continue };
            let share = &mut r.people_share;
            if share.on {
                share.send_all();
            } else if report.full && report.members.is_empty() && report.guests.is_empty() {
                share.clear = true;
            }
        }
    }

    /// The cluster's counts of `room`: `read` (an answer to this instance's
    /// call, or a read) is the state now and always taken, which heals
    /// versions that went back (Redis lost them); a published message is
    /// taken only if newer than what was taken. Returns whether what the
    /// room shows changed.
    pub fn people_heard(&self, room: &str, counts: PeopleCounts, read: bool) -> bool {
        let mut state = self.state();
        let Some(r) = state.rooms.get_mut(room) else { return false };
        if !r.people_share.on {
            return false;
        }
        let base = local_counts(&r.people.now(false));
        let seen = &mut r.people_share.seen;
        match seen {
            Some(s) if !read && counts.version <= s.counts.version => false,
            Some(s) => {
                let changed = s.counts != counts || s.degraded;
                (s.counts, s.base, s.degraded) = (counts, base, false);
                changed
            }
            None => {
                *seen = Some(Seen { counts, names: None, base, degraded: false });
                true
            }
        }
    }

    /// Redis is out of reach: people rooms show the cluster's last counts
    /// with this instance's changes since.
    pub fn people_unreachable(&self) {
        let mut state = self.state();
        for r in state.rooms.values_mut() {
            if let Some(seen) = r.people_share.seen.as_mut() {
                seen.degraded = true;
            }
        }
    }

    /// People rooms whose names were asked for lately and were not read at
    /// the current names version. Names nobody asked for lately are dropped.
    pub fn people_names_wanted(&self) -> Vec<String> {
        let mut state = self.state();
        let mut wanted = Vec::new();
        for (name, r) in state.rooms.iter_mut().filter(|(_, r)| r.people_share.on) {
            let share = &mut r.people_share;
            let Some(seen) = share.seen.as_mut() else { continue };
            if share.names_asked.is_none_or(|t| t.elapsed() > NAMES_WINDOW) {
                seen.names = None;
            } else if seen.names.as_ref().is_none_or(|n| n.0 != seen.counts.names_version) {
                wanted.push(name.clone());
            }
        }
        wanted
    }

    /// The visible members `(id, name)` of `room` across the cluster, read
    /// at names version `version`. Returns whether what the room shows changed.
    pub fn people_names_heard(&self, room: &str, version: u64, names: Vec<Named>) -> bool {
        let changed = {
            let mut state = self.state();
            let Some(seen) = state.rooms.get_mut(room).and_then(|r| r.people_share.seen.as_mut()) else {
                return false;
            };
            // The read is the state now: newer than any version held.
            seen.counts.names_version = seen.counts.names_version.max(version);
            let changed = seen.names.as_ref().is_none_or(|n| n.1 != names || n.0 != version);
            seen.names = Some((version, names));
            changed
        };
        self.people_names.send_modify(|n| *n += 1);
        changed
    }

    /// Waits (at most `deadline`) until `room`'s names are read at its
    /// current names version, for an API answer; at once outside a cluster.
    pub async fn settle_people_names(&self, room: &str, deadline: std::time::Duration) {
        let fresh = |stats: &RoomStats| {
            let state = stats.state();
            let Some(r) = state.rooms.get(room).filter(|r| r.people_share.on) else { return true };
            let Some(seen) = r.people_share.seen.as_ref() else { return false };
            seen.names.as_ref().is_some_and(|n| n.0 == seen.counts.names_version)
        };
        let mut synced = self.people_names.subscribe();
        let wait = async {
            while !fresh(self) {
                self.people(room, true);
                if synced.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(deadline, wait).await;
    }

    /// Whether `room`'s people are the cluster's as last heard (false while
    /// Redis is away and they are this instance's estimate).
    pub fn people_exact(&self, room: &str) -> bool {
        let state = self.state();
        let share = state.rooms.get(room).map(|r| &r.people_share);
        share.is_none_or(|s| !s.on || s.seen.as_ref().is_some_and(|seen| !seen.degraded))
    }

    /// The people rooms counted across the cluster, to read again.
    pub fn shared_people_rooms(&self) -> Vec<String> {
        let state = self.state();
        state.rooms.iter().filter(|(_, r)| r.people_share.on).map(|(n, _)| n.clone()).collect()
    }
}
