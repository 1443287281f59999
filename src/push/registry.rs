//! All live channels by name, bounded in number per kind. Joining and
//! forgetting a channel happen under one lock, so "last viewer left, forget
//! the channel" cannot race with "a new viewer arrived".
//!
//! Each kind of channel made on demand has its own cap (rooms, badge looks
//! chosen by the URL, boards, camera sizes), and each badge a cap on its
//! distinct looks: anonymous looks filling theirs cannot keep a new room,
//! board or size from starting, nor one badge's looks the others'.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::channel::Channel;
use super::presence::PresenceLog;
use super::remote::RemoteTotals;
use super::viewer::ViewerGuard;

/// What a channel is, for its cap; the caller that names it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `online/ROOM`, for a room not listed in the config.
    Room,
    /// A room listed under `rooms`: bounded by the config itself, so
    /// invented room names filling `max_rooms` never lock it out.
    ConfiguredRoom,
    /// A badge's own look (`badge/NAME`): one per badge, and badges are
    /// bounded already (`max_badges`, or declared in the config).
    Badge,
    /// A look of badge `NAME` fixed by the URL (template, scale, logo,
    /// colour).
    Look(&'a str),
    /// A board at a scale.
    Board,
    /// A camera at one of its `sizes`.
    CameraSize,
}

/// The caps, from the config.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Caps {
    pub rooms: usize,
    pub badge_looks: usize,
    pub looks_per_badge: usize,
    pub boards: usize,
    pub camera_sizes: usize,
}

impl Caps {
    /// Every cap `n` (tests).
    pub fn all(n: usize) -> Caps {
        Caps { rooms: n, badge_looks: n, looks_per_badge: n, boards: n, camera_sizes: n }
    }
}

/// What a live channel counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counted {
    Permanent,
    Room,
    ConfiguredRoom,
    Badge,
    Look(String),
    Board,
    CameraSize,
}

#[derive(Default)]
struct Live {
    channels: HashMap<String, (Arc<Channel>, Counted)>,
    /// Live channels per `Counted` (per badge for looks).
    counts: HashMap<Counted, usize>,
    /// Live looks of all badges together.
    looks: usize,
    /// Under the same lock as the counts they bound: a reload changes them
    /// between two joins.
    caps: Caps,
}

impl Live {
    fn count(&self, counted: &Counted) -> usize {
        self.counts.get(counted).copied().unwrap_or(0)
    }

    fn add(&mut self, name: &str, channel: Arc<Channel>, counted: Counted) {
        self.looks += usize::from(matches!(counted, Counted::Look(_)));
        *self.counts.entry(counted.clone()).or_default() += 1;
        self.channels.insert(name.to_string(), (channel, counted));
    }

    fn remove(&mut self, name: &str) {
        let Some((_, counted)) = self.channels.remove(name) else { return };
        self.looks -= usize::from(matches!(counted, Counted::Look(_)));
        if let Some(n) = self.counts.get_mut(&counted) {
            *n -= 1;
            if *n == 0 {
                // Per-badge entries go with their last look.
                self.counts.remove(&counted);
            }
        }
    }
}

pub struct Registry {
    live: Mutex<Live>,
    /// Count changes, for cluster mode (off without one).
    pub presence: Arc<PresenceLog>,
    /// With cluster mode: counts of channels live only elsewhere.
    pub remote: RemoteTotals,
    /// After an upgrade: viewers per channel still in the old process.
    elsewhere: Mutex<HashMap<String, u64>>,
}

/// What a channel's viewers are, wherever they watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Cluster-wide in cluster mode, else this instance's.
    pub viewers: u64,
    /// This instance's.
    pub local: u64,
    /// `false`: the cluster could not be asked, `viewers` is a guess.
    pub exact: bool,
}

/// How long a one-off answer waits for the cluster's counts before it
/// answers marked as a guess: one Redis call's timeout, and a little.
pub const SETTLE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(2500);

/// A cap was reached: names the config key, so an operator knows which.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("too many live {what} ({key} = {cap}); try again later")]
    Full { what: &'static str, key: &'static str, cap: usize },
    #[error(
        "badge {badge:?} has too many live looks (max_looks_per_badge = {cap}); use one of them or try again later"
    )]
    TooManyLooks { badge: String, cap: usize },
}

impl Registry {
    pub fn new(caps: Caps) -> Registry {
        let live = Mutex::new(Live { caps, ..Live::default() });
        Registry { live, presence: Arc::default(), remote: RemoteTotals::default(), elsewhere: Mutex::default() }
    }

    /// The viewers per channel an upgrade's old process still serves (the
    /// streams it could not hand over): each channel counts them too, so
    /// every count and picture here is the whole audience's.
    pub fn set_elsewhere(&self, counts: HashMap<String, u64>) {
        let live = self.lock();
        for (name, (channel, _)) in &live.channels {
            channel.set_elsewhere(counts.get(name).copied().unwrap_or(0));
        }
        *self.elsewhere.lock().unwrap_or_else(|e| e.into_inner()) = counts;
    }

    /// One of `name`'s viewers moved from the old process to this one (or
    /// ended on the way): counted here now, not there.
    pub fn moved_here(&self, name: &str) {
        let live = self.lock();
        let mut elsewhere = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = elsewhere.get_mut(name) {
            *n = n.saturating_sub(1);
            if let Some((channel, _)) = live.channels.get(name) {
                channel.set_elsewhere(*n);
            }
        }
    }

    /// Undoes `moved_here`: one of `name`'s viewers is counted in the old
    /// process again (an upgrade's relay that stood in for it is gone).
    pub fn moved_back(&self, name: &str) {
        let live = self.lock();
        let mut elsewhere = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        let n = elsewhere.entry(name.to_string()).or_default();
        *n += 1;
        if let Some((channel, _)) = live.channels.get(name) {
            channel.set_elsewhere(*n);
        }
    }

    fn elsewhere(&self, name: &str) -> u64 {
        self.elsewhere.lock().unwrap_or_else(|e| e.into_inner()).get(name).copied().unwrap_or(0)
    }

    /// A reload's caps: channels already live stay (a lower cap refuses
    /// only new ones until enough have ended).
    pub fn set_caps(&self, caps: Caps) {
        self.lock().caps = caps;
    }

    /// Wakes every live channel's producer, as a viewer joining would: after
    /// a reload each draws with the new definitions, and pushes a frame only
    /// if its picture changed.
    pub fn nudge_all(&self) {
        for (channel, _) in self.lock().channels.values() {
            channel.presence_changed.notify_one();
        }
    }

    /// Forgets `channel` (a reload removed what it shows): new viewers of
    /// its name get a new channel, if the name still means anything. Its
    /// own viewers stay until the caller closes it.
    pub fn remove(&self, channel: &Arc<Channel>) {
        let mut live = self.lock();
        if live.channels.get(channel.name()).is_some_and(|(c, _)| Arc::ptr_eq(c, channel)) {
            live.remove(channel.name());
        }
    }

    /// `name`'s viewers: a live channel's count, else (cluster mode) the
    /// cluster's as last fetched, else none. Never waits: a count not
    /// fetched within a heartbeat is asked for, and `settle` waits for it.
    pub fn count(&self, name: &str) -> Count {
        if let Some(channel) = self.get(name) {
            return Count { viewers: channel.shown_viewers(), local: channel.viewers(), exact: channel.exact() };
        }
        if !self.remote.enabled() {
            return Count { viewers: self.elsewhere(name), local: 0, exact: true };
        }
        match self.remote.read(name) {
            Some(remote) => Count { viewers: remote.total, local: 0, exact: remote.exact },
            None => Count { viewers: 0, local: 0, exact: false },
        }
    }

    /// Waits until `count` of each of `names` not live here is the
    /// cluster's, fetched within a heartbeat (at most `SETTLE_DEADLINE`).
    /// Without a cluster it returns at once. Returns whether every count
    /// is exact.
    pub async fn settle(&self, names: &[String]) -> bool {
        if !self.remote.enabled() {
            return true;
        }
        let elsewhere: Vec<String> = names.iter().filter(|n| self.get(n).is_none()).cloned().collect();
        elsewhere.is_empty() || self.remote.settle(&elsewhere, SETTLE_DEADLINE).await
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        // A panic elsewhere cannot leave the map half-updated: every change
        // is made between two checks that cannot panic.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins `name` as a viewer. If the channel is not live, `create` makes
    /// it, outside the lock (it may render, and rendering may read other
    /// channels), unless `kind`'s cap is reached. Returns whether this
    /// call's channel was the one inserted: the caller then starts its
    /// producer. A channel that lost a race to another creator is dropped
    /// unstarted.
    pub fn join(
        &self,
        kind: Kind<'_>,
        name: &str,
        create: impl FnOnce() -> Arc<Channel>,
    ) -> Result<(ViewerGuard, bool), JoinError> {
        {
            let live = self.lock();
            if let Some((channel, _)) = live.channels.get(name) {
                return Ok((ViewerGuard::join(channel.clone()), false));
            }
            // Checked before drawing too, so a refused join costs no render.
            self.room_for(&live, kind)?;
        }
        let created = create();
        let mut live = self.lock();
        if let Some((channel, _)) = live.channels.get(name) {
            return Ok((ViewerGuard::join(channel.clone()), false));
        }
        let counted = self.room_for(&live, kind)?;
        created.attach(&self.presence);
        created.set_elsewhere(self.elsewhere(name));
        // Watched elsewhere already: start from the cluster's count, not
        // this instance's one viewer, until this instance's report answers.
        if let Some((version, total)) = self.remote.fresh_total(name) {
            created.global.heard(version, total);
        }
        live.add(name, created.clone(), counted);
        Ok((ViewerGuard::join(created), true))
    }

    /// Whether joining `name` would be admitted now: it is live, or `kind`'s
    /// cap has room. Asked before a first frame is drawn, so a join that
    /// will be refused costs no render (`join` checks again).
    pub fn admits(&self, kind: Kind<'_>, name: &str) -> Result<(), JoinError> {
        let live = self.lock();
        if live.channels.contains_key(name) {
            return Ok(());
        }
        self.room_for(&live, kind).map(|_| ())
    }

    /// What a new channel of `kind` counts against, or the cap it would pass.
    fn room_for(&self, live: &Live, kind: Kind<'_>) -> Result<Counted, JoinError> {
        let full = |what, key, cap| Err(JoinError::Full { what, key, cap });
        let caps = &live.caps;
        let counted = match kind {
            Kind::Room => Counted::Room,
            Kind::Badge => return Ok(Counted::Badge),
            Kind::ConfiguredRoom => return Ok(Counted::ConfiguredRoom),
            Kind::Look(badge) => {
                let counted = Counted::Look(badge.to_string());
                if live.count(&counted) >= caps.looks_per_badge {
                    return Err(JoinError::TooManyLooks { badge: badge.to_string(), cap: caps.looks_per_badge });
                }
                if live.looks >= caps.badge_looks {
                    return full("badge looks", "max_badge_looks", caps.badge_looks);
                }
                return Ok(counted);
            }
            Kind::Board => Counted::Board,
            Kind::CameraSize => Counted::CameraSize,
        };
        let (what, key, cap) = match counted {
            Counted::Room => ("rooms", "max_rooms", caps.rooms),
            Counted::Board => ("boards", "max_board_channels", caps.boards),
            _ => ("camera sizes", "max_camera_size_channels", caps.camera_sizes),
        };
        if live.count(&counted) >= cap { full(what, key, cap) } else { Ok(counted) }
    }

    /// Adds a channel that is never forgotten (a configured camera).
    pub fn insert_permanent(&self, channel: Arc<Channel>) {
        channel.attach(&self.presence);
        let name = channel.name().to_string();
        let mut live = self.lock();
        live.remove(&name);
        live.add(&name, channel, Counted::Permanent);
    }

    /// Joins a channel added with `insert_permanent`: it is never forgotten,
    /// so no lock is needed to keep the viewer from joining a dead channel.
    pub fn join_permanent(&self, channel: &Arc<Channel>) -> ViewerGuard {
        ViewerGuard::join(channel.clone())
    }

    /// Forgets `channel` if nobody watches it. Returns whether it is
    /// forgotten now (also when a reload removed it before): its producer
    /// should then stop.
    pub fn forget_if_idle(&self, channel: &Arc<Channel>) -> bool {
        let mut live = self.lock();
        if channel.viewers() > 0 {
            return false;
        }
        if live.channels.get(channel.name()).is_some_and(|(c, _)| Arc::ptr_eq(c, channel)) {
            live.remove(channel.name());
        }
        true
    }

    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.lock().channels.get(name).map(|(c, _)| c.clone())
    }

    /// Live channels sorted by name.
    pub fn list(&self) -> Vec<Arc<Channel>> {
        let mut all: Vec<_> = self.lock().channels.values().map(|(c, _)| c.clone()).collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(name: &str) -> impl FnOnce() -> Arc<Channel> + '_ {
        move || Channel::new(name.to_string(), b"x", "image/png")
    }

    #[test]
    fn join_counts_and_drop_uncounts_exactly_once() {
        let r = Registry::new(Caps::all(10));
        let (a, created) = r.join(Kind::Room, "online/a", make("online/a")).unwrap();
        assert!(created);
        let (b, created) = r.join(Kind::Room, "online/a", make("online/a")).unwrap();
        assert!(!created);
        let ch = r.get("online/a").unwrap();
        assert_eq!(ch.viewers(), 2);
        drop(a);
        assert_eq!(ch.viewers(), 1);
        assert!(!r.forget_if_idle(&ch), "still watched");
        drop(b);
        assert_eq!(ch.viewers(), 0);
        assert!(r.forget_if_idle(&ch));
        assert!(r.get("online/a").is_none());
        assert!(r.forget_if_idle(&ch), "forgotten already: its producer stops too");
    }

    #[test]
    fn channel_cap_refuses_new_names_but_serves_existing() {
        let r = Registry::new(Caps::all(1));
        let _a = r.join(Kind::Room, "online/a", make("online/a")).unwrap();
        let full = r.join(Kind::Room, "online/b", make("online/b")).err().unwrap();
        assert_eq!(full.to_string(), "too many live rooms (max_rooms = 1); try again later");
        assert!(r.join(Kind::Room, "online/a", make("online/a")).is_ok());
    }

    #[test]
    fn each_kind_has_its_own_cap_and_each_badge_its_looks() {
        let caps = Caps { rooms: 1, badge_looks: 3, looks_per_badge: 2, boards: 1, camera_sizes: 1 };
        let r = Registry::new(caps);
        let (x1, _) = r.join(Kind::Look("x"), "badge/x/a", make("badge/x/a")).unwrap();
        let _x2 = r.join(Kind::Look("x"), "badge/x/b", make("badge/x/b")).unwrap();
        let err = r.join(Kind::Look("x"), "badge/x/c", make("badge/x/c")).err().unwrap();
        assert_eq!(err, JoinError::TooManyLooks { badge: "x".into(), cap: 2 });
        assert!(err.to_string().contains("max_looks_per_badge = 2"), "{err}");
        let _y1 = r.join(Kind::Look("y"), "badge/y/a", make("badge/y/a")).unwrap();
        let err = r.join(Kind::Look("z"), "badge/z/a", make("badge/z/a")).err().unwrap();
        assert!(err.to_string().contains("max_badge_looks = 3"), "{err}");
        // Looks filling their caps stop no other kind, nor a badge's own look.
        let _own = r.join(Kind::Badge, "badge/z", make("badge/z")).unwrap();
        let _room = r.join(Kind::Room, "online/a", make("online/a")).unwrap();
        let _board = r.join(Kind::Board, "board/b", make("board/b")).unwrap();
        let _size = r.join(Kind::CameraSize, "camera/c@w320", make("camera/c@w320")).unwrap();
        let err = r.join(Kind::Board, "board/c", make("board/c")).err().unwrap();
        assert!(err.to_string().contains("max_board_channels = 1"), "{err}");
        let err = r.join(Kind::CameraSize, "camera/c@w640", make("camera/c@w640")).err().unwrap();
        assert!(err.to_string().contains("max_camera_size_channels = 1"), "{err}");
        // A forgotten look frees its place, for its badge and in all.
        let channel = x1.channel().clone();
        drop(x1);
        assert!(r.forget_if_idle(&channel));
        assert!(r.join(Kind::Look("x"), "badge/x/c", make("badge/x/c")).is_ok());
    }

    #[test]
    fn a_refused_join_draws_nothing() {
        let r = Registry::new(Caps::all(1));
        let _a = r.join(Kind::Room, "online/a", make("online/a")).unwrap();
        let refused = r.join(Kind::Room, "online/b", || panic!("drawn though the cap was reached"));
        assert!(refused.is_err());
    }

    #[test]
    fn permanent_channels_count_against_no_cap() {
        let r = Registry::new(Caps::all(1));
        r.insert_permanent(Channel::new("camera/door".into(), b"x", "image/jpeg"));
        assert!(r.join(Kind::CameraSize, "camera/door@w320", make("camera/door@w320")).is_ok());
        assert!(r.get("camera/door").is_some());
    }

    #[test]
    fn a_forgotten_channel_is_replaced_not_revived() {
        let r = Registry::new(Caps::all(10));
        let (g, _) = r.join(Kind::Room, "online/a", make("online/a")).unwrap();
        let old = g.channel().clone();
        drop(g);
        assert!(r.forget_if_idle(&old));
        let (g2, _) = r.join(Kind::Room, "online/a", make("online/a")).unwrap();
        assert!(!Arc::ptr_eq(&old, g2.channel()));
        assert_eq!(old.viewers(), 0);
        assert_eq!(g2.channel().viewers(), 1);
    }
}
