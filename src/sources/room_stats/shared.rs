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
//! lives in Redis only (and in the instances' memory) and expires with the
//! day. Until this instance has it, a new viewer's address waits in memory
//! (at most `max_unique_per_room` of them) and is hashed when the key
//! arrives. Rooms asked about that have no figures slot here are only read
//! (at most `MAX_PEEKED`), so asking takes no slot and writes nothing.

use std::collections::HashMap;
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
    /// The last pass could not reach Redis (`settle` then gives up).
    failed: std::sync::atomic::AtomicBool,
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
    /// Store this instance's part (`false`: a room without a figures slot
    /// here, only read).
    pub write: bool,
    /// Listed under `rooms` (its all-time peak is kept; others' expire).
    pub configured: bool,
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
    /// Someone waits for a fresh read (`settle`): exchange next time.
    forced: bool,
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

    fn read_within(&self, today: i64, fresh: Duration, now: Instant) -> bool {
        self.read.is_some_and(|(d, _, at)| d == today && now.duration_since(at) <= fresh)
    }
}

/// The cluster's side of the day: its key, addresses waiting for it, and
/// rooms asked about that this instance keeps no figures for.
#[derive(Default)]
pub(super) struct ClusterDay {
    /// The day's shared key, as Redis gave it, and its day.
    key: Option<(i64, [u8; 32])>,
    /// `State::key` is the shared key of `State::day`.
    keyed: bool,
    waiting: Vec<(i64, String, IpAddr)>,
    /// Rooms asked about (the JSON API, one-off pictures) that have no
    /// figures slot here: read from Redis, never written, bounded.
    peeked: HashMap<String, Room>,
    /// How long figures read from Redis count as fresh (a heartbeat).
    fresh: Duration,
}

/// Rooms asked about without a figures slot, kept at most.
const MAX_PEEKED: usize = 256;
/// A room without a figures slot is read again on its own at most this
/// many heartbeats apart (sooner when an answer waits for it).
const PEEK_EVERY: u32 = 5;
/// Visitor hashes sent in one call at most: a call stays short (Redis
/// runs it alone), the rest goes in the next passes.
const HASHES_PER_CALL: usize = 2_000;

impl ClusterDay {
    /// The shared key of `day`, if Redis gave it (else a local key is
    /// used, and addresses wait).
    pub(super) fn key_for(&mut self, day: i64) -> Option<[u8; 32]> {
        let key = self.key.filter(|(d, _)| *d == day).map(|(_, k)| k);
        self.keyed = key.is_some();
        key
    }

    pub(super) fn peeked(&self, room: &str) -> Option<&Room> {
        self.peeked.get(room)
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
    /// Cluster mode: figures come from Redis (see the module's comment);
    /// what was read within `fresh` (a heartbeat) is not read again.
    pub fn enable_cluster(&self, fresh: Duration) {
        self.state().cluster = Some(ClusterDay { fresh, ..ClusterDay::default() });
    }

    /// Today's day number and when it ends (unix seconds, this instance's
    /// clock), for the day's key and what expires with the day.
    pub fn today_and_end(&self) -> (i64, u64) {
        let day = self.today();
        (day, ((day + 1) * 86_400 + self.day_offset_s).max(0) as u64)
    }

    pub fn max_unique(&self) -> usize {
        self.max_unique
    }

    /// The key this instance hashes today's addresses with, if it is the
    /// shared one: offered to a Redis that lost its own, so the day keeps
    /// one key.
    pub fn shared_key(&self) -> Option<[u8; 32]> {
        let state = self.state();
        state.cluster.as_ref().and_then(|c| c.key.filter(|(d, _)| *d == state.day && c.keyed).map(|(_, k)| k))
    }

    /// Woken when figures are asked for or change here.
    pub async fn wanted(&self) {
        self.sync.wanted.notified().await;
    }

    /// Takes today's shared key from Redis. A key new to this instance
    /// (the first, or another after Redis lost its data) hashes again every
    /// address that waited for it and every one still watching; hashes made
    /// under another key are dropped, so nobody counts twice.
    pub fn set_day_key(&self, day: i64, key: [u8; 32]) {
        let mut state = self.state();
        self.roll_day(&mut state);
        if state.day != day {
            return;
        }
        let current = state.raw_key;
        let Some(cluster) = state.cluster.as_mut() else { return };
        cluster.key = Some((day, key));
        let was_keyed = cluster.keyed;
        cluster.key_for(day);
        if was_keyed && key == current {
            return;
        }
        let waiting = std::mem::take(&mut cluster.waiting);
        state.raw_key = key;
        state.key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        for r in state.rooms.values_mut() {
            r.visitors.clear();
            r.unsaved_visitors.clear();
            r.capped = false;
        }
        state.unconfigured_visitors = 0;
        for (_, room, addr) in waiting.into_iter().filter(|(d, ..)| *d == day) {
            self.count_visitor(&mut state, &room, addr);
        }
        self.count_live_again(&mut state);
    }

    /// Redis lost its data (the day's key was gone while this instance
    /// held it): every room sends all it has again (its visitor hashes
    /// too, a part at a time), so the cluster's figures come back from the
    /// instances that have them.
    pub fn send_all_again(&self) {
        let mut state = self.state();
        for r in state.rooms.values_mut() {
            r.unsaved_visitors = r.visitors.iter().copied().collect();
            r.unsaved_history = r.history.iter().copied().collect();
            r.cluster.pending = true;
        }
    }

    /// The room's figures entry: its slot if it has one, else (cluster
    /// mode) a read-only entry that takes no slot.
    fn share_of<'a>(state: &'a mut State, room: &str) -> Option<&'a mut Room> {
        if state.rooms.contains_key(room) {
            return state.rooms.get_mut(room);
        }
        let cluster = state.cluster.as_mut()?;
        if !cluster.peeked.contains_key(room) && cluster.peeked.len() >= MAX_PEEKED {
            let oldest = cluster.peeked.iter().min_by_key(|(_, r)| r.cluster.asked).map(|(n, _)| n.clone());
            if let Some(oldest) = oldest {
                cluster.peeked.remove(&oldest);
            }
        }
        Some(cluster.peeked.entry(room.to_string()).or_default())
    }

    /// The cluster's figures of `room` shown here (and the room asked
    /// for, so the exchange keeps them fresh).
    pub(super) fn cluster_figures(&self, state: &mut State, room: &str, day: String) -> RoomFigures {
        let today = state.day;
        let fresh = state.cluster.as_ref().map_or(Duration::ZERO, |c| c.fresh);
        let Some(r) = Self::share_of(state, room) else { return RoomFigures { day, ..RoomFigures::default() } };
        let now = Instant::now();
        r.cluster.asked = Some(now);
        if !r.cluster.read_within(today, fresh, now) {
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

    /// Rooms to exchange now: changed here, asked for and not read within
    /// a heartbeat, or waited for. Their unsent hashes and samples are taken.
    pub fn take_sync(&self) -> Vec<SyncRoom> {
        let mut state = self.state();
        self.roll_day(&mut state);
        let (day, date) = (state.day, date(state.day));
        let Some(fresh) = state.cluster.as_ref().map(|c| c.fresh) else { return Vec::new() };
        let now = Instant::now();
        let oldest_minute = unix_now() as i64 / 60 - MINUTES_KEPT + 1;
        let State { rooms, cluster, .. } = &mut *state;
        let peeked = cluster.as_mut().map(|c| c.peeked.iter_mut()).into_iter().flatten();
        let held = rooms.iter_mut().map(|(n, r)| (n, r, true));
        let mut out = Vec::new();
        for (name, r, write) in held.chain(peeked.map(|(n, r)| (n, r, false))) {
            let share = &mut r.cluster;
            let asked = share.asked.is_some_and(|t| now.duration_since(t) < ASKED_WINDOW);
            // A room only read here is read again on its own less often.
            let every = if write { fresh } else { fresh * PEEK_EVERY };
            let stale = !share.read_within(day, every, now);
            let history_asked = share.history_asked.is_some_and(|t| now.duration_since(t) < ASKED_WINDOW);
            let history_stale = share.history_read.is_none_or(|t| now.duration_since(t) > fresh);
            let want_history = history_asked && history_stale && (write || share.forced);
            let pending = write && share.pending;
            if !(pending || share.forced || want_history || asked && stale) {
                continue;
            }
            (share.pending, share.forced) = (false, false);
            // Long lists go a part at a time; the rest stays for the next pass.
            let hashes = if write {
                let rest = r.unsaved_visitors.split_off(r.unsaved_visitors.len().min(HASHES_PER_CALL));
                let now_sent = std::mem::replace(&mut r.unsaved_visitors, rest);
                share.pending |= !r.unsaved_visitors.is_empty();
                now_sent
            } else {
                Vec::new()
            };
            out.push(SyncRoom {
                room: name.clone(),
                day,
                date: date.clone(),
                write,
                configured: self.configured(name),
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
                hashes,
                history: if write { std::mem::take(&mut r.unsaved_history) } else { Vec::new() },
                want_history,
                oldest_minute,
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
        self.sync.failed.store(true, std::sync::atomic::Ordering::Relaxed);
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
            if sent.day != today {
                continue;
            }
            let r = if sent.write {
                state.rooms.get_mut(&sent.room)
            } else {
                state.cluster.as_mut().and_then(|c| c.peeked.get_mut(&sent.room))
            };
            let Some(r) = r else { continue };
            let before = Self::shown_figures(r, today, day.clone());
            r.cluster.read = Some((today, figures, now));
            if sent.write {
                r.cluster.sent = sent.own;
            }
            if let Some(history) = history {
                r.cluster.history = history;
                r.cluster.history_read = Some(now);
            }
            if Self::shown_figures(r, today, day.clone()) != before {
                changed.push(sent.room);
            }
        }
        drop(state);
        self.sync.failed.store(false, std::sync::atomic::Ordering::Relaxed);
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
        if let Some(r) = Self::share_of(&mut state, room) {
            r.cluster.history_asked = Some(Instant::now());
        }
    }

    /// Waits (at most `deadline`) until each of `rooms` has figures read
    /// from the cluster within a heartbeat (and its history, if asked).
    /// Without a cluster it returns at once. Returns whether all have.
    pub async fn settle(&self, rooms: &[String], deadline: Duration) -> bool {
        let mut synced = self.sync.synced.subscribe();
        let give_up = tokio::time::Instant::now() + deadline;
        let mut asked_once = false;
        loop {
            let mut waiting = false;
            {
                let mut state = self.state();
                let Some(fresh) = state.cluster.as_ref().map(|c| c.fresh) else { return true };
                self.roll_day(&mut state);
                let (today, now) = (state.day, Instant::now());
                for room in rooms {
                    let Some(r) = Self::share_of(&mut state, room) else { continue };
                    let share = &mut r.cluster;
                    let history_due = share.history_asked.is_some_and(|t| now.duration_since(t) < ASKED_WINDOW)
                        && share.history_read.is_none_or(|t| now.duration_since(t) > fresh);
                    if !share.read_within(today, fresh, now) || history_due {
                        (share.asked, share.forced) = (Some(now), true);
                        waiting = true;
                    }
                }
            }
            if !waiting {
                return true;
            }
            if asked_once && self.sync.failed.load(std::sync::atomic::Ordering::Relaxed) {
                // A pass since we asked could not reach Redis.
                return false;
            }
            synced.borrow_and_update();
            self.sync.wanted.notify_one();
            if tokio::time::timeout_at(give_up, synced.changed()).await.is_err() {
                return false;
            }
            asked_once = true;
        }
    }
}
