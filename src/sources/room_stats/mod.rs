//! The figures people ask of a users-online room beside its live count:
//! today's and the all-time peak, distinct viewers today, sessions today
//! and their mean length, and the count sampled every minute for 24 h.
//!
//! Distinct viewers are kept only as keyed hashes (HMAC-SHA256 of room and
//! address under a key made fresh each day, cut to 16 bytes); the address
//! itself is never stored. When the day ends the key and the hashes are
//! deleted and only the count remains. Figures are saved to the database
//! about once a minute and at shutdown, and loaded at startup.
//!
//! Rooms listed under `rooms` have figures from startup, always. Any other
//! name a URL invents shares `max_unconfigured_rooms` slots; such a room
//! idle (no viewer) for a day is forgotten, its rows too, so invented names
//! cannot use up the figures for good. A new room finding every slot taken
//! still streams and counts, without figures.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ring::hmac;
use serde::Serialize;

use crate::config::rooms::client_key;
use crate::store::stats::StatsDb;

mod people;
mod people_shared;
mod saved;
pub mod shared;

pub use people::{Member, PeopleNow};
pub use people_shared::{MemberHere, PeopleCounts, PeopleReport};

const MINUTES_KEPT: i64 = 24 * 60;

/// A room not configured and without a viewer this long is forgotten.
pub const FORGET_IDLE_S: u64 = 86_400;

pub type Hash = [u8; 16];

/// One room's figures, as the JSON API and placeholders show them.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RoomFigures {
    pub peak_today: u64,
    /// Unix seconds of today's peak (null before the first viewer).
    pub peak_today_at: Option<u64>,
    pub peak_all_time: u64,
    pub peak_all_time_at: Option<u64>,
    pub unique_today: u64,
    /// `unique_today` reached `max_unique_per_room` and stopped there.
    pub unique_today_capped: bool,
    pub sessions_today: u64,
    /// Mean length of today's ended sessions, in seconds.
    pub mean_session_s: f64,
    /// The day these figures are for (`YYYY-MM-DD`, starting at `day_starts_at`).
    pub day: String,
}

#[derive(Default)]
struct Room {
    peak_today: u64,
    peak_today_at: u64,
    peak_all: u64,
    peak_all_at: u64,
    visitors: HashSet<Hash>,
    unsaved_visitors: Vec<Hash>,
    /// Set when the cap was reached (or loaded at the cap).
    capped: bool,
    sessions: u64,
    ended: u64,
    session_ms: u64,
    /// Open streams per address (as `client_key` takes it), held in
    /// memory only while a stream from it is open, as the connection itself
    /// holds it: `count: "addresses"` counts them, and a new day's key
    /// hashes them again so viewers still watching count once in the new day.
    live: HashMap<IpAddr, u32>,
    /// Members and guests with a stream open (`count: "people"`).
    people: people::People,
    /// Cluster mode: its place in the cluster's people.
    people_share: people_shared::PeopleShare,
    /// `(minute, viewers)`: the last 24 h of non-zero samples.
    history: VecDeque<(i64, u64)>,
    unsaved_history: Vec<(i64, u64)>,
    dirty: bool,
    /// Unix seconds it last had a viewer (for forgetting idle rooms).
    last_seen: u64,
    /// Cluster mode: the cluster's figures and what this instance sent.
    cluster: shared::RoomShare,
}

struct State {
    day: i64,
    key: hmac::Key,
    raw_key: [u8; 32],
    rooms: HashMap<String, Room>,
    /// Rooms forgotten since the last flush: their rows go at the next.
    forgotten: BTreeSet<String>,
    /// Visitor hashes held by unconfigured rooms together: they share one
    /// `max_unique_per_room`, so invented rooms cannot hold it each.
    unconfigured_visitors: usize,
    /// Cluster mode (`None`: one instance alone).
    cluster: Option<shared::ClusterDay>,
}

/// Which rooms keep figures.
#[derive(Debug, Clone, Default)]
pub struct RoomSlots {
    /// The rooms listed under `rooms`, each with whether `/metrics` may
    /// name it (false: it requires a signature).
    pub configured: BTreeMap<String, bool>,
    /// Other rooms with figures at most.
    pub max_unconfigured: usize,
}

/// The rooms `/metrics` may not name, summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnlistedTotals {
    /// Rooms not configured that have figures now.
    pub unconfigured_rooms: u64,
    pub unique_today: u64,
    pub sessions_today: u64,
}

pub struct RoomStats {
    state: Mutex<State>,
    /// Cluster mode: woken when figures are asked for or changed here;
    /// bumped after each exchange with Redis.
    sync: shared::SyncSignals,
    db: Option<Mutex<StatsDb>>,
    day_offset_s: i64,
    max_unique: usize,
    /// The configured rooms and whether `/metrics` may name each: a reload
    /// swaps them (a room made private leaves the listed figures at once).
    configured: arc_swap::ArcSwap<BTreeMap<String, bool>>,
    max_unconfigured: usize,
    /// Set once an upgrade's new process owns the figures: this one saves
    /// nothing more (its copy would overwrite the newer one).
    handed_off: std::sync::atomic::AtomicBool,
    /// The rooms that count people (`count: "people"`).
    people_rooms: arc_swap::ArcSwap<BTreeSet<String>>,
    /// Cluster mode: woken when a people room changed here.
    people_signal: tokio::sync::Notify,
    /// Cluster mode: bumped when a people room's names were read.
    people_names: tokio::sync::watch::Sender<u64>,
}

/// A viewer's session in a room; `RoomStats::left` ends it.
pub struct Session {
    room: String,
    addr: IpAddr,
    started: Instant,
    member: Option<Member>,
    /// The room counted it (it had a slot).
    recorded: bool,
}

/// Seconds the room-figures clock runs ahead of the system's: 0, unless a
/// test moved it (`/debug/clock`, only with `debug_endpoints`) to cross a
/// day boundary without waiting for one.
static CLOCK_AHEAD_S: AtomicU64 = AtomicU64::new(0);

/// Test hook: the room-figures clock jumps `seconds` ahead (bounded by the caller).
pub fn advance_clock(seconds: u64) {
    CLOCK_AHEAD_S.fetch_add(seconds, Ordering::Relaxed);
}

fn unix_now() -> u64 {
    let system = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    system + CLOCK_AHEAD_S.load(Ordering::Relaxed)
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn fresh_key() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut key = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut key).expect("the system random source works");
    key
}

impl RoomStats {
    /// Figures kept at `database` (loaded now), or in memory only.
    pub fn open(
        database: Option<&std::path::Path>,
        day_offset_s: i64,
        max_unique: usize,
        slots: RoomSlots,
    ) -> Result<RoomStats, String> {
        let day = (unix_now() as i64 - day_offset_s).div_euclid(86_400);
        let raw_key = fresh_key();
        // Configured rooms have figures from the start, whatever came first.
        let now = unix_now();
        let rooms = slots.configured.keys().map(|n| (n.clone(), Room { last_seen: now, ..Room::default() })).collect();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &raw_key);
        let state =
            State { day, key, raw_key, rooms, forgotten: BTreeSet::new(), unconfigured_visitors: 0, cluster: None };
        let db = database.map(StatsDb::open).transpose()?;
        let sync = shared::SyncSignals::default();
        let stats = RoomStats {
            state: Mutex::new(state),
            sync,
            db: db.map(Mutex::new),
            day_offset_s,
            max_unique,
            configured: arc_swap::ArcSwap::from_pointee(slots.configured),
            max_unconfigured: slots.max_unconfigured,
            handed_off: std::sync::atomic::AtomicBool::new(false),
            people_rooms: Default::default(),
            people_signal: Default::default(),
            people_names: tokio::sync::watch::Sender::new(0),
        };
        stats.load()?;
        Ok(stats)
    }

    /// A reload's rooms: newly configured ones keep figures from now on,
    /// and whether `/metrics` may name each follows its `require_signature`.
    pub fn set_configured(&self, configured: BTreeMap<String, bool>) {
        let now = unix_now();
        let mut state = self.state();
        for name in configured.keys() {
            state.rooms.entry(name.clone()).or_insert_with(|| Room { last_seen: now, ..Room::default() });
        }
        self.configured.store(std::sync::Arc::new(configured));
    }

    fn configured(&self, room: &str) -> bool {
        self.configured.load().contains_key(room)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn today(&self) -> i64 {
        (unix_now() as i64 - self.day_offset_s).div_euclid(86_400)
    }

    /// The keyed hash of a client address in `room`, the address taken as
    /// the connection caps count it (an IPv6 /64 is one).
    pub fn keyed_hash(key: &hmac::Key, room: &str, addr: IpAddr) -> Hash {
        let addr = client_key(addr);
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(room.as_bytes());
        ctx.update(&[0]);
        match addr {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        let tag = ctx.sign();
        tag.as_ref()[..16].try_into().expect("a SHA-256 tag has 32 bytes")
    }

    /// Starts a new day if it is one: fresh key, counts from zero (peaks
    /// all time stay). The old day's counts were saved by the last flush.
    fn roll_day(&self, state: &mut State) {
        let today = self.today();
        if today == state.day {
            return;
        }
        state.day = today;
        // In a cluster every instance hashes with the day's key from Redis
        // (until it arrives, addresses wait for it).
        state.raw_key = state.cluster.as_mut().and_then(|c| c.key_for(today)).unwrap_or_else(fresh_key);
        state.key = hmac::Key::new(hmac::HMAC_SHA256, &state.raw_key);
        for room in state.rooms.values_mut() {
            *room = Room {
                peak_all: room.peak_all,
                peak_all_at: room.peak_all_at,
                history: std::mem::take(&mut room.history),
                unsaved_history: std::mem::take(&mut room.unsaved_history),
                dirty: true,
                last_seen: room.last_seen,
                cluster: room.cluster.next_day(),
                live: std::mem::take(&mut room.live),
                // Who is watching does not change at midnight.
                people: std::mem::take(&mut room.people),
                people_share: std::mem::take(&mut room.people_share),
                ..Room::default()
            };
        }
        state.unconfigured_visitors = 0;
        // Viewers still watching are today's too, hashed with today's key.
        self.count_live_again(state);
    }

    /// Counts every address with a stream open as a visitor of its room
    /// under the current key (a new day, or a new shared key).
    fn count_live_again(&self, state: &mut State) {
        let live: Vec<(String, IpAddr)> =
            state.rooms.iter().flat_map(|(name, r)| r.live.keys().map(|a| (name.clone(), *a))).collect();
        for (room, addr) in live {
            self.count_visitor(state, &room, addr);
        }
    }

    /// Counts `addr` as a distinct visitor of `room` today, unless it is
    /// one already, the caps are reached, or (in a cluster) the day's
    /// shared key is not here yet: then it waits for it.
    fn count_visitor(&self, state: &mut State, room: &str, addr: IpAddr) {
        let day = state.day;
        if let Some(cluster) = state.cluster.as_mut()
            && !cluster.keyed_or_wait(day, room, addr, self.max_unique)
        {
            return;
        }
        let hash = Self::keyed_hash(&state.key, room, addr);
        let configured = self.configured(room);
        // Unconfigured rooms share one budget of hashes.
        let shared_left = configured || state.unconfigured_visitors < self.max_unique;
        let max_unique = self.max_unique;
        let Some(r) = state.rooms.get_mut(room) else { return };
        if r.visitors.contains(&hash) {
            return;
        }
        if r.visitors.len() < max_unique && shared_left {
            r.visitors.insert(hash);
            r.unsaved_visitors.push(hash);
            r.cluster.changed();
            r.dirty = true;
            if !configured {
                state.unconfigured_visitors += 1;
            }
        } else {
            r.capped = true;
        }
    }

    /// Sums the hashes the unconfigured rooms hold (after they changed
    /// other than one by one).
    fn recount(&self, state: &mut State) {
        let held = state.rooms.iter().filter(|(name, _)| !self.configured(name)).map(|(_, r)| r.visitors.len());
        state.unconfigured_visitors = held.sum();
    }

    /// The room's figures, made if it has none and a slot is free.
    fn room<'a>(&self, state: &'a mut State, room: &str) -> Option<&'a mut Room> {
        // Configured rooms are all in `rooms` from the start: the rest is
        // the unconfigured ones.
        let unconfigured = state.rooms.len().saturating_sub(self.configured.load().len());
        if !state.rooms.contains_key(room) && unconfigured >= self.max_unconfigured {
            return None;
        }
        Some(state.rooms.entry(room.to_string()).or_default())
    }

    /// A stream from `addr` started in `room` (`observe` then takes the
    /// count the room shows).
    pub fn joined(&self, room: &str, addr: IpAddr) -> Session {
        self.joined_as(room, addr, None, None)
    }

    /// As `joined`, as `member` if the URL signed one; with `since`, the
    /// session began then, in an upgrade's old process, and goes on here
    /// (it is not a new session).
    pub fn joined_as(&self, room: &str, addr: IpAddr, since: Option<Instant>, member: Option<Member>) -> Session {
        // The address as the connection caps count it (an IPv6 /64 is one).
        let addr = client_key(addr);
        let mut state = self.state();
        self.roll_day(&mut state);
        let now = unix_now();
        let mut recorded = false;
        if let Some(r) = self.room(&mut state, room) {
            recorded = true;
            r.last_seen = now;
            r.sessions += u64::from(since.is_none());
            r.cluster.changed();
            *r.live.entry(addr).or_default() += 1;
            r.people.joined(addr, member.as_ref());
            r.people_share.touched(addr, member.as_ref());
            if r.people_share.is_on() {
                self.people_signal.notify_one();
            }
            r.dirty = true;
            self.count_visitor(&mut state, room, addr);
        }
        Session { room: room.to_string(), addr, started: since.unwrap_or_else(Instant::now), member, recorded }
    }

    /// The session ended (the stream closed, however).
    pub fn left(&self, session: &Session) {
        // A stream the room had no slot for when it joined is in none of
        // its counts: it must not take another stream's place in them.
        if !session.recorded {
            return;
        }
        let mut state = self.state();
        let Some(r) = state.rooms.get_mut(&session.room) else { return };
        if let Some(n) = r.live.get_mut(&session.addr) {
            *n -= 1;
            if *n == 0 {
                r.live.remove(&session.addr);
            }
            r.people.left(session.addr, session.member.as_ref());
            r.people_share.touched(session.addr, session.member.as_ref());
            if r.people_share.is_on() {
                self.people_signal.notify_one();
            }
        }
        // After an upgrade's hand-off the session goes on in the new
        // process, which records its end (a stream that stayed here is not
        // recorded: this process's figures are no longer kept).
        if !self.handed_off.load(Ordering::SeqCst) {
            r.ended += 1;
            r.session_ms += session.started.elapsed().as_millis() as u64;
        }
        r.last_seen = unix_now();
        r.dirty = true;
        r.cluster.changed();
    }

    /// The room shows `count` viewers now: peaks follow.
    pub fn observe(&self, room: &str, count: u64) {
        let mut state = self.state();
        self.roll_day(&mut state);
        let now = unix_now();
        if let Some(r) = self.room(&mut state, room) {
            if count > r.peak_today {
                (r.peak_today, r.peak_today_at, r.dirty) = (count, now, true);
                r.cluster.changed();
            }
            if count > r.peak_all {
                (r.peak_all, r.peak_all_at, r.dirty) = (count, now, true);
                r.cluster.changed();
            }
        }
    }

    /// Distinct addresses with a stream open in `room`.
    pub fn live_addresses(&self, room: &str) -> u64 {
        self.state().rooms.get(room).map_or(0, |r| r.live.len() as u64)
    }

    /// The room's members and guests with a stream open now, with the
    /// visible members' names if `names` (across the cluster in cluster mode).
    pub fn people(&self, room: &str, names: bool) -> PeopleNow {
        let mut state = self.state();
        let Some(r) = state.rooms.get_mut(room) else { return PeopleNow::default() };
        let people = &r.people;
        let (now, ask) = r.people_share.shown(people.now(names), names, |id| people.is_hidden(id));
        if ask {
            self.people_signal.notify_one();
        }
        now
    }

    /// The room's figures (zeros for a room never seen).
    pub fn figures(&self, room: &str) -> RoomFigures {
        let mut state = self.state();
        self.roll_day(&mut state);
        let day = date(state.day);
        if state.cluster.is_some() {
            return self.cluster_figures(&mut state, room, day);
        }
        match state.rooms.get(room) {
            Some(r) => Self::figures_of(r, day),
            None => RoomFigures { day, ..RoomFigures::default() },
        }
    }

    /// The figures of a room never seen: what the JSON API shows an
    /// anonymous caller for a private room, so it cannot tell it exists.
    pub fn figures_unseen(&self) -> RoomFigures {
        let mut state = self.state();
        self.roll_day(&mut state);
        RoomFigures { day: date(state.day), ..RoomFigures::default() }
    }

    fn figures_of(r: &Room, day: String) -> RoomFigures {
        let at = |t: u64| (t > 0).then_some(t);
        RoomFigures {
            peak_today: r.peak_today,
            peak_today_at: at(r.peak_today_at),
            peak_all_time: r.peak_all,
            peak_all_time_at: at(r.peak_all_at),
            unique_today: r.visitors.len() as u64,
            unique_today_capped: r.capped,
            sessions_today: r.sessions,
            mean_session_s: if r.ended == 0 { 0.0 } else { r.session_ms as f64 / r.ended as f64 / 1000.0 },
            day,
        }
    }

    /// For `/metrics`: the figures of each configured room that needs no
    /// signature, by name, and the invented names' only summed, so junk
    /// names add no series. Private rooms are in neither: a sum with few
    /// terms would be their own figures.
    pub fn listed_figures(&self) -> (Vec<(String, RoomFigures)>, UnlistedTotals) {
        let mut state = self.state();
        self.roll_day(&mut state);
        let (today, day) = (state.day, date(state.day));
        let mut listed = Vec::new();
        let mut rest = UnlistedTotals::default();
        let configured = self.configured.load();
        for (name, r) in &state.rooms {
            match configured.get(name) {
                Some(true) => listed.push((name.clone(), Self::shown_figures(r, today, day.clone()))),
                Some(false) => {}
                None => {
                    rest.unconfigured_rooms += 1;
                    rest.unique_today += r.visitors.len() as u64;
                    rest.sessions_today += r.sessions;
                }
            }
        }
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        (listed, rest)
    }

    /// Forgets every room that is not configured and has had no viewer
    /// since `now - FORGET_IDLE_S`; its rows go at the next flush.
    pub fn forget_idle(&self, now: u64) {
        let mut state = self.state();
        let idle: Vec<String> = state
            .rooms
            .iter()
            .filter(|(name, r)| {
                !self.configured(name) && r.live.is_empty() && now.saturating_sub(r.last_seen) >= FORGET_IDLE_S
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            state.rooms.remove(&name);
            if self.db.is_some() {
                state.forgotten.insert(name);
            }
        }
        self.recount(&mut state);
    }

    /// The room's count per minute over the last 24 h, oldest first
    /// (1,440 values; minutes nobody watched are 0).
    pub fn history(&self, room: &str) -> Vec<u64> {
        let now = unix_now() as i64 / 60;
        let mut out = vec![0; MINUTES_KEPT as usize];
        let state = self.state();
        // A room without figures here may still be read from the cluster.
        let peeked = state.cluster.as_ref().and_then(|c| c.peeked(room));
        if let Some(r) = state.rooms.get(room).or(peeked) {
            // In a cluster: the cluster's minutes, and this instance's not
            // sent yet; the higher where both have one.
            for &(minute, viewers) in r.history.iter().chain(r.cluster.history()) {
                let age = now - minute;
                if (0..MINUTES_KEPT).contains(&age) {
                    let slot = &mut out[(MINUTES_KEPT - 1 - age) as usize];
                    *slot = (*slot).max(viewers);
                }
            }
        }
        out
    }

    /// Rooms with figures, for `/metrics`.
    pub fn rooms(&self) -> Vec<String> {
        let mut rooms: Vec<String> = self.state().rooms.keys().cloned().collect();
        rooms.sort();
        rooms
    }

    /// Records this minute's count of every room (`count_of`), forgets
    /// rooms idle for a day, then saves what changed.
    pub fn sample(&self, count_of: impl Fn(&str) -> u64) -> Result<(), String> {
        let now = unix_now();
        let minute = now as i64 / 60;
        {
            let mut state = self.state();
            self.roll_day(&mut state);
            for (name, r) in state.rooms.iter_mut() {
                let count = count_of(name);
                if count == 0 {
                    continue;
                }
                if r.history.back().is_some_and(|&(m, _)| m == minute) {
                    r.history.pop_back();
                }
                r.history.push_back((minute, count));
                r.unsaved_history.push((minute, count));
                r.cluster.changed();
                r.last_seen = now;
                while r.history.front().is_some_and(|&(m, _)| m <= minute - MINUTES_KEPT) {
                    r.history.pop_front();
                }
                r.dirty = true;
            }
        }
        self.forget_idle(now);
        self.flush()
    }
}

/// Ends a session when dropped (with the viewer's stream).
pub struct SessionGuard {
    pub stats: Arc<RoomStats>,
    pub session: Session,
    /// Run after the session ended (wakes the room's producer).
    pub after: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.stats.left(&self.session);
        if let Some(after) = &self.after {
            after();
        }
    }
}

#[cfg(test)]
mod tests;
