//! The figures people ask of a users-online room beside its live count:
//! today's and the all-time peak, distinct viewers today, sessions today
//! and their mean length, and the count sampled every minute for 24 h.
//!
//! Distinct viewers are kept only as keyed hashes (HMAC-SHA256 of room and
//! address under a key made fresh each day, cut to 16 bytes); the address
//! itself is never stored. When the day ends the key and the hashes are
//! deleted and only the count remains. Figures are saved to the database
//! about once a minute and at shutdown, and loaded at startup.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ring::hmac;
use serde::Serialize;

use crate::store::stats::{SavedRoom, StatsDb};

const MINUTES_KEPT: i64 = 24 * 60;

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
    /// Open streams per address hash (for `count: "addresses"`).
    live: HashMap<Hash, u32>,
    /// `(minute, viewers)`: the last 24 h of non-zero samples.
    history: VecDeque<(i64, u64)>,
    unsaved_history: Vec<(i64, u64)>,
    dirty: bool,
}

struct State {
    day: i64,
    key: hmac::Key,
    raw_key: [u8; 32],
    rooms: HashMap<String, Room>,
}

pub struct RoomStats {
    state: Mutex<State>,
    db: Option<Mutex<StatsDb>>,
    day_offset_s: i64,
    max_unique: usize,
    max_rooms: usize,
}

/// A viewer's session in a room; `RoomStats::left` ends it.
pub struct Session {
    room: String,
    hash: Hash,
    started: Instant,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
        max_rooms: usize,
    ) -> Result<RoomStats, String> {
        let day = (unix_now() as i64 - day_offset_s).div_euclid(86_400);
        let raw_key = fresh_key();
        let state = State { day, key: hmac::Key::new(hmac::HMAC_SHA256, &raw_key), raw_key, rooms: HashMap::new() };
        let db = database.map(StatsDb::open).transpose()?;
        let stats = RoomStats { state: Mutex::new(state), db: db.map(Mutex::new), day_offset_s, max_unique, max_rooms };
        stats.load()?;
        Ok(stats)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn today(&self) -> i64 {
        (unix_now() as i64 - self.day_offset_s).div_euclid(86_400)
    }

    fn load(&self) -> Result<(), String> {
        let Some(db) = &self.db else { return Ok(()) };
        let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.state();
        let day = date(state.day);
        match db.day_key(&day)? {
            Some(saved) if saved.len() == 32 => state.raw_key.copy_from_slice(&saved),
            _ => {}
        }
        state.key = hmac::Key::new(hmac::HMAC_SHA256, &state.raw_key);
        db.start_day(&day, &state.raw_key)?;
        let since = unix_now() as i64 / 60 - MINUTES_KEPT;
        for saved in db.load(&day, since)? {
            let capped = saved.unique as usize >= self.max_unique;
            let room = Room {
                peak_today: saved.peak_today,
                peak_today_at: saved.peak_today_at,
                peak_all: saved.peak_all,
                peak_all_at: saved.peak_all_at,
                visitors: saved.visitors.into_iter().collect(),
                capped,
                sessions: saved.sessions,
                ended: saved.ended_sessions,
                session_ms: saved.session_ms,
                history: saved.history.into_iter().collect(),
                ..Room::default()
            };
            state.rooms.insert(saved.room, room);
        }
        Ok(())
    }

    /// The keyed hash of a client address in `room`.
    fn hash(key: &hmac::Key, room: &str, addr: IpAddr) -> Hash {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
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
        state.raw_key = fresh_key();
        state.key = hmac::Key::new(hmac::HMAC_SHA256, &state.raw_key);
        for room in state.rooms.values_mut() {
            let live = std::mem::take(&mut room.live);
            *room = Room {
                peak_all: room.peak_all,
                peak_all_at: room.peak_all_at,
                history: std::mem::take(&mut room.history),
                unsaved_history: std::mem::take(&mut room.unsaved_history),
                dirty: true,
                ..Room::default()
            };
            // Viewers still watching are today's too.
            let hashes: Vec<Hash> = live.keys().copied().collect();
            room.live = live;
            room.visitors.extend(hashes.iter().copied());
            room.unsaved_visitors = hashes;
        }
    }

    fn room<'a>(&self, state: &'a mut State, room: &str) -> Option<&'a mut Room> {
        if !state.rooms.contains_key(room) && state.rooms.len() >= self.max_rooms {
            return None;
        }
        Some(state.rooms.entry(room.to_string()).or_default())
    }

    /// A stream from `addr` started in `room` (`observe` then takes the
    /// count the room shows).
    pub fn joined(&self, room: &str, addr: IpAddr) -> Session {
        let mut state = self.state();
        self.roll_day(&mut state);
        let hash = Self::hash(&state.key, room, addr);
        let max_unique = self.max_unique;
        if let Some(r) = self.room(&mut state, room) {
            r.sessions += 1;
            *r.live.entry(hash).or_default() += 1;
            if !r.visitors.contains(&hash) {
                if r.visitors.len() < max_unique {
                    r.visitors.insert(hash);
                    r.unsaved_visitors.push(hash);
                } else {
                    r.capped = true;
                }
            }
            r.dirty = true;
        }
        Session { room: room.to_string(), hash, started: Instant::now() }
    }

    /// The session ended (the stream closed, however).
    pub fn left(&self, session: &Session) {
        let mut state = self.state();
        let Some(r) = state.rooms.get_mut(&session.room) else { return };
        if let Some(n) = r.live.get_mut(&session.hash) {
            *n -= 1;
            if *n == 0 {
                r.live.remove(&session.hash);
            }
        }
        r.ended += 1;
        r.session_ms += session.started.elapsed().as_millis() as u64;
        r.dirty = true;
    }

    /// The room shows `count` viewers now: peaks follow.
    pub fn observe(&self, room: &str, count: u64) {
        let mut state = self.state();
        self.roll_day(&mut state);
        let now = unix_now();
        if let Some(r) = self.room(&mut state, room) {
            if count > r.peak_today {
                (r.peak_today, r.peak_today_at, r.dirty) = (count, now, true);
            }
            if count > r.peak_all {
                (r.peak_all, r.peak_all_at, r.dirty) = (count, now, true);
            }
        }
    }

    /// Distinct addresses with a stream open in `room`.
    pub fn live_addresses(&self, room: &str) -> u64 {
        self.state().rooms.get(room).map_or(0, |r| r.live.len() as u64)
    }

    /// The room's figures (zeros for a room never seen).
    pub fn figures(&self, room: &str) -> RoomFigures {
        let mut state = self.state();
        self.roll_day(&mut state);
        let day = date(state.day);
        let Some(r) = state.rooms.get(room) else { return RoomFigures { day, ..RoomFigures::default() } };
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

    /// The room's count per minute over the last 24 h, oldest first
    /// (1,440 values; minutes nobody watched are 0).
    pub fn history(&self, room: &str) -> Vec<u64> {
        let now = unix_now() as i64 / 60;
        let mut out = vec![0; MINUTES_KEPT as usize];
        if let Some(r) = self.state().rooms.get(room) {
            for &(minute, viewers) in &r.history {
                let age = now - minute;
                if (0..MINUTES_KEPT).contains(&age) {
                    out[(MINUTES_KEPT - 1 - age) as usize] = viewers;
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

    /// Records this minute's count of every room (`count_of`), then saves
    /// what changed.
    pub fn sample(&self, count_of: impl Fn(&str) -> u64) -> Result<(), String> {
        let minute = unix_now() as i64 / 60;
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
                while r.history.front().is_some_and(|&(m, _)| m <= minute - MINUTES_KEPT) {
                    r.history.pop_front();
                }
                r.dirty = true;
            }
        }
        self.flush()
    }

    /// Saves every changed room (blocking: call off the async threads).
    pub fn flush(&self) -> Result<(), String> {
        let Some(db) = &self.db else { return Ok(()) };
        let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
        let (day, key, batch) = {
            let mut state = self.state();
            let batch: Vec<SavedRoom> = state
                .rooms
                .iter_mut()
                .filter(|(_, r)| r.dirty)
                .map(|(name, r)| {
                    r.dirty = false;
                    SavedRoom {
                        room: name.clone(),
                        peak_today: r.peak_today,
                        peak_today_at: r.peak_today_at,
                        sessions: r.sessions,
                        ended_sessions: r.ended,
                        session_ms: r.session_ms,
                        unique: r.visitors.len() as u64,
                        peak_all: r.peak_all,
                        peak_all_at: r.peak_all_at,
                        visitors: std::mem::take(&mut r.unsaved_visitors),
                        history: std::mem::take(&mut r.unsaved_history),
                    }
                })
                .collect();
            (date(state.day), state.raw_key, batch)
        };
        // A new day's key replaces (and deletes) the old day's.
        if db.day_key(&day)?.as_deref() != Some(&key[..]) {
            db.start_day(&day, &key)?;
        }
        let since = unix_now() as i64 / 60 - MINUTES_KEPT;
        let saved = db.save(&day, &batch, since);
        if saved.is_err() {
            // Kept for the next flush: put the unsaved parts back.
            let mut state = self.state();
            for b in batch {
                if let Some(r) = state.rooms.get_mut(&b.room) {
                    r.dirty = true;
                    r.unsaved_visitors.extend(b.visitors);
                    r.unsaved_history.extend(b.history);
                }
            }
        }
        saved
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
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_000), "2024-10-04");
        assert_eq!(date(-1), "1969-12-31");
    }

    #[test]
    fn counts_peaks_uniques_and_sessions() {
        let stats = RoomStats::open(None, 0, 2, 10).unwrap();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let c: IpAddr = "127.0.0.4".parse().unwrap();
        let s1 = stats.joined("lobby", a);
        let s2 = stats.joined("lobby", a);
        assert_eq!(stats.live_addresses("lobby"), 1);
        let s3 = stats.joined("lobby", b);
        let _s4 = stats.joined("lobby", c);
        stats.observe("lobby", 4);
        stats.observe("lobby", 3);
        let f = stats.figures("lobby");
        assert_eq!((f.peak_today, f.unique_today, f.unique_today_capped, f.sessions_today), (4, 2, true, 4));
        stats.left(&s1);
        assert_eq!(stats.live_addresses("lobby"), 3);
        stats.left(&s2);
        stats.left(&s3);
        assert_eq!(stats.live_addresses("lobby"), 1);
        assert_eq!(stats.figures("other").sessions_today, 0);
        let key = stats.state().key.clone();
        assert_ne!(RoomStats::hash(&key, "lobby", a), RoomStats::hash(&key, "other", a), "rooms do not share hashes");
    }
}
