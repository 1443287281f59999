//! Room figures in a cluster: every instance shows the cluster's, and they
//! survive the restart of any one instance.
//!
//! The cluster (`cluster::room_figures`) exchanges each room's figures with
//! Redis about once a heartbeat: this instance sends its own absolute
//! sessions and their time (one field per instance, so a retry cannot count
//! twice), its new visitor hashes (into the room's set for the day, with the
//! same cap), its peaks and its per-minute samples (the higher kept), and
//! reads the cluster's back. What is shown here is the cluster's figures
//! plus what changed here since they were read, so a local join shows at
//! once.
//!
//! Every instance hashes addresses with the same key for the day, which
//! lives in Redis only (and in the instances' memory). Until this instance
//! has it, a new viewer's address waits in memory (at most
//! `max_unique_per_room` of them) and is hashed when the key arrives.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ring::hmac;
use tokio::sync::{Notify, watch};

use super::{Hash, MINUTES_KEPT, Room, RoomFigures, RoomStats, State, date, unix_now};

/// Figures asked for within this long are kept fresh by the exchange.
const ASKED_WINDOW: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct SyncSignals {
    /// Figures were asked for, or changed here: exchange soon.
    wanted: Notify,
    /// Bumped after each exchange with Redis, answered or not.
    synced: watch::Sender<u64>,
}

/// The cluster's figures of one room for one day, as Redis answered.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SharedFigures {
    pub unique: u64,
    pub capped: bool,
    pub sessions: u64,
    pub ended: u64,
    pub session_ms: u64,
    pub peak_today: u64,
    pub peak_today_at: u64,
    pub peak_all: u64,
    pub peak_all_at: u64,
}

/// What this instance has of one room, to send.
#[derive(Debug, Clone)]
pub struct SyncRoom {
    pub room: String,
    /// The day's number and `YYYY-MM-DD`.
    pub day: i64,
    pub date: String,
    /// This instance's own absolute figures for the day.
    pub own: SharedFigures,
    /// Visitor hashes (under the day's shared key) not sent yet.
    pub hashes: Vec<Hash>,
    /// `(minute, viewers)` samples not sent yet.
    pub history: Vec<(i64, u64)>,
    /// Whether to read the cluster's history back too.
    pub want_history: bool,
    /// The oldest minute the history keeps.
    pub oldest_minute: i64,
}

/// A room sent, the cluster's figures answered, and its history if asked.
pub type Exchanged = (SyncRoom, SharedFigures, Option<Vec<(i64, u64)>>);

/// One room's place in the cluster's figures.
#[derive(Default)]
pub(super) struct RoomShare {
    /// The cluster's figures as last read, for `read_day`.
    read: Option<(i64, SharedFigures, Instant)>,
    /// This instance's figures included in `read`.
    sent: SharedFigures,
    /// Changed here since the last exchange.
    pending: bool,
    asked: Option<Instant>,
    /// The cluster's per-minute history (read only when asked for: it is
    /// up to 1,440 values), as last read.
    history: Vec<(i64, u64)>,
    history_asked: Option<Instant>,
    history_read: Option<Instant>,
}

impl RoomShare {
    pub(super) fn changed(&mut self) {
        self.pending = true;
    }

    /// A new day: the day's figures start again; the history stays.
    pub(super) fn next_day(&mut self) -> RoomShare {
        RoomShare {
            pending: true,
            history: std::mem::take(&mut self.history),
            history_read: self.history_read,
            ..RoomShare::default()
        }
    }

    pub(super) fn history(&self) -> &[(i64, u64)] {
        &self.history
    }
}

/// The cluster's side of the day: its keys, and addresses waiting for one.
#[derive(Default)]
pub(super) struct ClusterDay {
    keys: BTreeMap<i64, [u8; 32]>,
    /// `State::key` is the shared key of `State::day`.
    keyed: bool,
    waiting: Vec<(i64, String, IpAddr)>,
}

impl ClusterDay {
    /// The shared key of `day`, if Redis gave it (else a local key is
    /// used, and addresses wait).
    pub(super) fn key_for(&mut self, day: i64) -> Option<[u8; 32]> {
        let key = self.keys.get(&day).copied();
        self.keyed = key.is_some();
        key
    }

    /// Whether the viewer can be hashed now; if not, the address waits
    /// (unless `cap` addresses wait already).
    pub(super) fn keyed_or_wait(&mut self, day: i64, room: &str, addr: IpAddr, cap: usize) -> bool {
        if !self.keyed && self.waiting.len() < cap {
            self.waiting.push((day, room.to_string(), addr));
        }
        self.keyed
    }
}

impl RoomStats {
    /// Cluster mode: figures come from Redis (see the module's comment).
    pub fn enable_cluster(&self) {
        self.state().cluster = Some(ClusterDay::default());
    }

    /// Today's day number (for the day's key).
    pub fn today_number(&self) -> i64 {
        self.today()
    }

    pub fn max_unique(&self) -> usize {
        self.max_unique
    }

    /// Woken when figures are asked for or change here.
    pub async fn wanted(&self) {
        self.sync.wanted.notified().await;
    }

    /// Takes the days' shared keys from Redis; the first for today hashes
    /// every address that waited for it.
    pub fn set_day_keys(&self, keys: Vec<(i64, [u8; 32])>) {
        let mut state = self.state();
        self.roll_day(&mut state);
        let today = state.day;
        let current = state.raw_key;
        let Some(cluster) = state.cluster.as_mut() else { return };
        cluster.keys.retain(|day, _| *day >= today);
        cluster.keys.extend(keys);
        let Some(key) = cluster.key_for(today) else { return };
        // Already hashing with it (a Redis that lost its data gives a new one).
        if key == current {
            return;
        }
        let waiting = std::mem::take(&mut cluster.waiting);
        state.raw_key = key;
        state.key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        for (_, room, addr) in waiting.into_iter().filter(|(day, ..)| *day == today) {
            let hash = Self::hash(&state.key, &room, addr);
            let max_unique = self.max_unique;
            if let Some(r) = state.rooms.get_mut(&room)
                && !r.visitors.contains(&hash)
            {
                if r.visitors.len() < max_unique {
                    r.visitors.insert(hash);
                    r.unsaved_visitors.push(hash);
                    r.cluster.changed();
                } else {
                    r.capped = true;
                }
            }
        }
        self.recount(&mut state);
    }

    /// The cluster's figures of `room` shown here (and the room asked
    /// for, so the exchange keeps them fresh; it gets figures if a slot is
    /// free, as a viewer's join would).
    pub(super) fn cluster_figures(&self, state: &mut State, room: &str, day: String) -> RoomFigures {
        let today = state.day;
        let Some(r) = self.room(state, room) else { return RoomFigures { day, ..RoomFigures::default() } };
        let now = Instant::now();
        r.cluster.asked = Some(now);
        let stale = r.cluster.read.is_none_or(|(d, _, at)| d != today || now.duration_since(at) > ASKED_WINDOW / 10);
        if stale {
            self.sync.wanted.notify_one();
        }
        Self::shown_figures(r, today, day)
    }

    /// A room's figures: the cluster's as last read plus what changed
    /// here since, or this instance's alone before anything was read.
    pub(super) fn shown_figures(r: &Room, today: i64, day: String) -> RoomFigures {
        let local = Self::figures_of(r, day);
        let Some((_, s, _)) = r.cluster.read.filter(|(d, ..)| *d == today) else { return local };
        let sent = r.cluster.sent;
        let since = |now: u64, then: u64| now.saturating_sub(then);
        let ended = s.ended + since(r.ended, sent.ended);
        let session_ms = s.session_ms + since(r.session_ms, sent.session_ms);
        let (peak_today, peak_today_at) =
            if r.peak_today > s.peak_today { (r.peak_today, r.peak_today_at) } else { (s.peak_today, s.peak_today_at) };
        let (peak_all, peak_all_at) =
            if r.peak_all > s.peak_all { (r.peak_all, r.peak_all_at) } else { (s.peak_all, s.peak_all_at) };
        let at = |t: u64| (t > 0).then_some(t);
        RoomFigures {
            peak_today,
            peak_today_at: at(peak_today_at),
            peak_all_time: peak_all,
            peak_all_time_at: at(peak_all_at),
            unique_today: s.unique.max(local.unique_today),
            unique_today_capped: s.capped || local.unique_today_capped,
            sessions_today: s.sessions + since(r.sessions, sent.sessions),
            mean_session_s: if ended == 0 { 0.0 } else { session_ms as f64 / ended as f64 / 1000.0 },
            day: local.day,
        }
    }

    /// Rooms to exchange now: changed here, or asked for and not read
    /// within `fresh`. Their unsent hashes and samples are taken.
    pub fn take_sync(&self, fresh: Duration) -> Vec<SyncRoom> {
        let mut state = self.state();
        self.roll_day(&mut state);
        let (day, date) = (state.day, date(state.day));
        let now = Instant::now();
        let mut out = Vec::new();
        for (name, r) in state.rooms.iter_mut() {
            let share = &mut r.cluster;
            let asked = share.asked.is_some_and(|t| now.duration_since(t) < ASKED_WINDOW);
            let stale = share.read.is_none_or(|(d, _, at)| d != day || now.duration_since(at) > fresh);
            let history_asked = share.history_asked.is_some_and(|t| now.duration_since(t) < ASKED_WINDOW);
            let want_history = history_asked && share.history_read.is_none_or(|t| now.duration_since(t) > fresh);
            if !(share.pending || want_history || asked && stale) {
                continue;
            }
            share.pending = false;
            out.push(SyncRoom {
                room: name.clone(),
                day,
                date: date.clone(),
                own: SharedFigures {
                    unique: 0,
                    capped: r.capped,
                    sessions: r.sessions,
                    ended: r.ended,
                    session_ms: r.session_ms,
                    peak_today: r.peak_today,
                    peak_today_at: r.peak_today_at,
                    peak_all: r.peak_all,
                    peak_all_at: r.peak_all_at,
                },
                hashes: std::mem::take(&mut r.unsaved_visitors),
                history: std::mem::take(&mut r.unsaved_history),
                want_history,
                oldest_minute: unix_now() as i64 / 60 - MINUTES_KEPT + 1,
            });
        }
        out
    }

    /// Redis did not take `rooms`: what they carried is sent next time.
    pub fn sync_failed(&self, rooms: Vec<SyncRoom>) {
        let mut state = self.state();
        let today = state.day;
        for sent in rooms {
            if let Some(r) = state.rooms.get_mut(&sent.room)
                && today == sent.day
            {
                r.unsaved_visitors.extend(sent.hashes);
                r.unsaved_history.extend(sent.history);
                r.cluster.pending = true;
            }
        }
        drop(state);
        self.sync.synced.send_modify(|n| *n += 1);
    }

    /// Redis took `rooms` and answered with the cluster's figures (and
    /// history, when asked). Returns the rooms whose shown figures changed.
    pub fn synced(&self, answers: Vec<Exchanged>) -> Vec<String> {
        let now = Instant::now();
        let mut changed = Vec::new();
        let mut state = self.state();
        let today = state.day;
        let day = date(today);
        for (sent, figures, history) in answers {
            let Some(r) = state.rooms.get_mut(&sent.room) else { continue };
            if sent.day != today {
                continue;
            }
            let before = Self::shown_figures(r, today, day.clone());
            r.cluster.read = Some((today, figures, now));
            r.cluster.sent = sent.own;
            if let Some(history) = history {
                r.cluster.history = history;
                r.cluster.history_read = Some(now);
            }
            if Self::shown_figures(r, today, day.clone()) != before {
                changed.push(sent.room);
            }
        }
        drop(state);
        self.sync.synced.send_modify(|n| *n += 1);
        changed
    }

    /// The room's per-minute history is wanted (the JSON API, the
    /// sparkline): the exchange reads it too while it is asked for.
    pub fn ask_history(&self, room: &str) {
        let mut state = self.state();
        if state.cluster.is_none() {
            return;
        }
        if let Some(r) = self.room(&mut state, room) {
            r.cluster.history_asked = Some(Instant::now());
        }
    }

    /// Waits (at most `deadline`) until `room`'s figures were read from
    /// the cluster since this call. Without a cluster it returns at once.
    /// Returns whether they were.
    pub async fn settle(&self, room: &str, deadline: Duration) -> bool {
        let asked = Instant::now();
        let mut synced = self.sync.synced.subscribe();
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            {
                let mut state = self.state();
                if state.cluster.is_none() {
                    return true;
                }
                self.roll_day(&mut state);
                let today = state.day;
                let Some(r) = self.room(&mut state, room) else { return true };
                if r.cluster.read.is_some_and(|(d, _, at)| d == today && at >= asked) {
                    return true;
                }
                r.cluster.asked = Some(Instant::now());
            }
            synced.borrow_and_update();
            self.sync.wanted.notify_one();
            if tokio::time::timeout_at(give_up, synced.changed()).await.is_err() {
                return false;
            }
        }
    }
}
