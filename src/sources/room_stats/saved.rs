//! Room figures to and from the database: loaded at startup (configured
//! rooms always, other rooms into the free slots, latest seen first) and
//! saved in batches, with the rows of forgotten rooms deleted in the same
//! transaction.

use ring::hmac;

use super::{MINUTES_KEPT, Room, RoomStats, date, unix_now};
use crate::store::stats::SavedRoom;

impl RoomStats {
    pub(super) fn load(&self) -> Result<(), String> {
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
        let day_start = (state.day * 86_400 + self.day_offset_s).max(0) as u64;
        let mut others = Vec::new();
        for saved in db.load(&day, since)? {
            let capped = saved.unique as usize >= self.max_unique;
            // When it last had a viewer, as near as the saved figures tell.
            let last_seen = [
                saved.peak_today_at,
                saved.peak_all_at,
                saved.history.last().map_or(0, |&(m, _)| m.max(0) as u64 * 60),
                if saved.sessions > 0 { day_start } else { 0 },
            ]
            .into_iter()
            .max()
            .unwrap_or(0);
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
                last_seen,
                ..Room::default()
            };
            if self.configured(&saved.room) {
                state.rooms.insert(saved.room, room);
            } else {
                others.push((saved.room, room));
            }
        }
        // Other rooms take the free slots, latest seen first; the rest are
        // forgotten (rows deleted at the first flush).
        others.sort_by_key(|(_, r)| std::cmp::Reverse(r.last_seen));
        for (i, (name, room)) in others.into_iter().enumerate() {
            if i < self.max_unconfigured {
                state.rooms.insert(name, room);
            } else {
                state.forgotten.insert(name);
            }
        }
        self.recount(&mut state);
        Ok(())
    }

    /// An upgrade that did not happen: this process saves again.
    pub fn take_back(&self) {
        self.handed_off.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Saves everything now and nothing after: an upgrade's new process
    /// loads the figures and owns them from here (blocking).
    pub fn hand_off(&self) -> Result<(), String> {
        let saved = self.flush();
        self.handed_off.store(true, std::sync::atomic::Ordering::SeqCst);
        saved
    }

    /// Saves every changed room (blocking: call off the async threads).
    pub fn flush(&self) -> Result<(), String> {
        if self.handed_off.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let Some(db) = &self.db else {
            // Nothing to save them to: drop what waits for saving, unless
            // a cluster sends it to Redis (`shared`).
            let mut state = self.state();
            if state.cluster.is_none() {
                for r in state.rooms.values_mut() {
                    (r.unsaved_visitors, r.unsaved_history) = (Vec::new(), Vec::new());
                }
            }
            return Ok(());
        };
        let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
        let (day, key, batch, forgotten) = {
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
            let forgotten: Vec<String> = std::mem::take(&mut state.forgotten).into_iter().collect();
            (date(state.day), state.raw_key, batch, forgotten)
        };
        // A new day's key replaces (and deletes) the old day's.
        if db.day_key(&day)?.as_deref() != Some(&key[..]) {
            db.start_day(&day, &key)?;
        }
        let since = unix_now() as i64 / 60 - MINUTES_KEPT;
        let saved = db.save(&day, &forgotten, &batch, since);
        if saved.is_err() {
            // Kept for the next flush: put the unsaved parts back.
            let mut state = self.state();
            state.forgotten.extend(forgotten);
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
