//! Room statistics in the embedded database, beside the badges: per room
//! and day the peak, sessions and their total length (`room_days`), the
//! all-time peak (`room_peaks`), today's keyed visitor hashes
//! (`room_visitors`, never an address) with today's key (`day_keys`), and
//! per-minute viewer samples of the last 24 h (`room_history`). A day's
//! key and hashes are deleted when the day ends; its counts stay. A room
//! that is forgotten (not configured, idle for a day) loses every row.
//!
//! Statistics are written in batches about once a minute and at shutdown
//! (a crash loses at most the last minute of them); they are figures about
//! viewers, not values anyone was promised were stored.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

/// One room's saved figures for a day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedRoom {
    pub room: String,
    pub peak_today: u64,
    pub peak_today_at: u64,
    pub sessions: u64,
    pub ended_sessions: u64,
    pub session_ms: u64,
    pub unique: u64,
    pub peak_all: u64,
    pub peak_all_at: u64,
    /// Today's visitor hashes (loaded), or the ones not yet saved (saving).
    pub visitors: Vec<[u8; 16]>,
    /// `(minute since the epoch, viewers)`, non-zero samples only.
    pub history: Vec<(i64, u64)>,
}

pub struct StatsDb {
    conn: Connection,
}

fn err(e: rusqlite::Error) -> String {
    format!("room statistics: {e}")
}

impl StatsDb {
    /// A second connection to the database `store::open` created and
    /// migrated (WAL lets both write; each waits for the other's commit).
    pub fn open(path: &Path) -> Result<StatsDb, String> {
        let conn = Connection::open(path).map_err(|e| format!("database {}: {e}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        Ok(StatsDb { conn })
    }

    /// Today's key, if one was saved for `day`.
    pub fn day_key(&self, day: &str) -> Result<Option<Vec<u8>>, String> {
        self.conn
            .query_row("SELECT key FROM day_keys WHERE day = ?1", params![day], |r| r.get(0))
            .optional()
            .map_err(err)
    }

    /// Makes `key` the key of `day` and deletes every other day's key and
    /// visitor hashes: once a day is over nobody can test an address
    /// against its hashes.
    pub fn start_day(&mut self, day: &str, key: &[u8]) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM day_keys WHERE day <> ?1", params![day]).map_err(err)?;
        tx.execute("DELETE FROM room_visitors WHERE day <> ?1", params![day]).map_err(err)?;
        tx.execute("INSERT OR REPLACE INTO day_keys VALUES (?1, ?2)", params![day, key]).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Every room's figures for `day`, all-time peaks, and samples from
    /// `since_minute` on.
    pub fn load(&self, day: &str, since_minute: i64) -> Result<Vec<SavedRoom>, String> {
        let mut rooms: std::collections::BTreeMap<String, SavedRoom> = Default::default();
        let mut q = self.conn.prepare("SELECT room, peak, peak_at FROM room_peaks").map_err(err)?;
        for row in
            q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))).map_err(err)?
        {
            let (room, peak, at) = row.map_err(err)?;
            let r = rooms.entry(room.clone()).or_insert_with(|| SavedRoom { room, ..SavedRoom::default() });
            (r.peak_all, r.peak_all_at) = (peak.max(0) as u64, at.max(0) as u64);
        }
        let mut q = self
            .conn
            .prepare(
                "SELECT room, peak, COALESCE(peak_at, 0), sessions, ended_sessions, session_ms, unique_viewers
                 FROM room_days WHERE day = ?1",
            )
            .map_err(err)?;
        let rows = q
            .query_map(params![day], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok((r.get::<_, String>(0)?, [n(1)?, n(2)?, n(3)?, n(4)?, n(5)?, n(6)?]))
            })
            .map_err(err)?;
        for row in rows {
            let (room, [peak, at, sessions, ended, ms, unique]) = row.map_err(err)?;
            let r = rooms.entry(room.clone()).or_insert_with(|| SavedRoom { room, ..SavedRoom::default() });
            (r.peak_today, r.peak_today_at, r.sessions, r.ended_sessions, r.session_ms, r.unique) =
                (peak, at, sessions, ended, ms, unique);
        }
        let mut q = self.conn.prepare("SELECT room, hash FROM room_visitors WHERE day = ?1").map_err(err)?;
        for row in q.query_map(params![day], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(err)? {
            let (room, hash) = row.map_err(err)?;
            if let (Some(r), Ok(hash)) = (rooms.get_mut(&room), <[u8; 16]>::try_from(hash.as_slice())) {
                r.visitors.push(hash);
            }
        }
        let mut q = self
            .conn
            .prepare("SELECT room, minute, viewers FROM room_history WHERE minute >= ?1 ORDER BY room, minute")
            .map_err(err)?;
        let rows = q
            .query_map(params![since_minute], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .map_err(err)?;
        for row in rows {
            let (room, minute, viewers) = row.map_err(err)?;
            let r = rooms.entry(room.clone()).or_insert_with(|| SavedRoom { room, ..SavedRoom::default() });
            r.history.push((minute, viewers.max(0) as u64));
        }
        Ok(rooms.into_values().collect())
    }

    /// Deletes every row of the `forgotten` rooms, then saves changed rooms
    /// for `day`, in one transaction, and drops samples older than
    /// `since_minute`. A room in both was forgotten and seen again since:
    /// only its new figures stay.
    pub fn save(
        &mut self,
        day: &str,
        forgotten: &[String],
        rooms: &[SavedRoom],
        since_minute: i64,
    ) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(err)?;
        for table in ["room_days", "room_peaks", "room_visitors", "room_history"] {
            let mut delete = tx.prepare_cached(&format!("DELETE FROM {table} WHERE room = ?1")).map_err(err)?;
            for room in forgotten {
                delete.execute(params![room]).map_err(err)?;
            }
        }
        {
            let mut day_row = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO room_days
                     (room, day, peak, peak_at, unique_viewers, sessions, ended_sessions, session_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            let mut peak = tx.prepare_cached("INSERT OR REPLACE INTO room_peaks VALUES (?1, ?2, ?3)").map_err(err)?;
            let mut visitor =
                tx.prepare_cached("INSERT OR IGNORE INTO room_visitors VALUES (?1, ?2, ?3)").map_err(err)?;
            let mut sample =
                tx.prepare_cached("INSERT OR REPLACE INTO room_history VALUES (?1, ?2, ?3)").map_err(err)?;
            let i = |v: u64| v.min(i64::MAX as u64) as i64;
            for r in rooms {
                day_row
                    .execute(params![
                        r.room,
                        day,
                        i(r.peak_today),
                        i(r.peak_today_at),
                        i(r.unique),
                        i(r.sessions),
                        i(r.ended_sessions),
                        i(r.session_ms)
                    ])
                    .map_err(err)?;
                if r.peak_all > 0 {
                    peak.execute(params![r.room, i(r.peak_all), i(r.peak_all_at)]).map_err(err)?;
                }
                for hash in &r.visitors {
                    visitor.execute(params![r.room, day, &hash[..]]).map_err(err)?;
                }
                for (minute, viewers) in &r.history {
                    sample.execute(params![r.room, minute, i(*viewers)]).map_err(err)?;
                }
            }
        }
        tx.execute("DELETE FROM room_history WHERE minute < ?1", params![since_minute]).map_err(err)?;
        tx.commit().map_err(err)
    }
}
