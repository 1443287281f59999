//! The embedded database: SQLite (rusqlite, bundled) in WAL mode with
//! `synchronous = FULL`, so a committed transaction is on disk before the
//! writes in it are acknowledged. The badge writer hands over batches, and
//! each batch is one transaction and one fsync (group commit). Operators can
//! read the file with the `sqlite3` tool while framecast runs.
//!
//! Schema (`PRAGMA user_version` is its version; migrations run at open):
//! - `badges`: one row per badge, every field of its state;
//! - `badge_history`: its recent numeric values, `history_len` per badge;
//! - `room_days`, `room_peaks`: per-room statistics (peaks, unique viewers
//!   per day), for the counts that read them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::{Connection, ErrorCode, params};

use super::{BadgeState, Change, Store, StoreError};

/// The schema this build writes; a newer file is refused, never touched.
pub const SCHEMA_VERSION: i64 = 2;

/// Each step takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE badges (
        name TEXT PRIMARY KEY NOT NULL,
        label TEXT,
        message TEXT,
        value REAL,
        color TEXT,
        label_color TEXT,
        is_error INTEGER NOT NULL DEFAULT 0,
        style TEXT,
        updated INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE badge_history (
        badge TEXT NOT NULL,
        seq INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (badge, seq)
    ) WITHOUT ROWID;
    CREATE TABLE room_days (
        room TEXT NOT NULL,
        day TEXT NOT NULL,
        peak INTEGER NOT NULL DEFAULT 0,
        peak_at INTEGER,
        unique_viewers INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (room, day)
    ) WITHOUT ROWID;
    CREATE TABLE room_peaks (
        room TEXT PRIMARY KEY NOT NULL,
        peak INTEGER NOT NULL,
        peak_at INTEGER NOT NULL
    ) WITHOUT ROWID;
",
    "
    ALTER TABLE badges ADD COLUMN named_logo TEXT;
    ALTER TABLE badges ADD COLUMN logo_svg TEXT;
    ALTER TABLE badges ADD COLUMN logo_color TEXT;
    ALTER TABLE badges ADD COLUMN logo_width REAL;
    ALTER TABLE room_days ADD COLUMN sessions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE room_days ADD COLUMN ended_sessions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE room_days ADD COLUMN session_ms INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE room_visitors (
        room TEXT NOT NULL,
        day TEXT NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (room, day, hash)
    ) WITHOUT ROWID;
    CREATE TABLE day_keys (
        day TEXT PRIMARY KEY NOT NULL,
        key BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE room_history (
        room TEXT NOT NULL,
        minute INTEGER NOT NULL,
        viewers INTEGER NOT NULL,
        PRIMARY KEY (room, minute)
    ) WITHOUT ROWID;
",
];

pub struct Sqlite {
    conn: Connection,
    history_len: usize,
    /// The next history sequence number per badge.
    next_seq: HashMap<String, i64>,
}

impl Sqlite {
    /// Opens (or creates) the database at `path` and brings its schema up
    /// to date. Refuses, without writing, a file that is not a database or
    /// whose schema is newer than this build's.
    pub fn open(path: &Path, history_len: usize) -> Result<Sqlite, String> {
        let name = path.display();
        let conn = Connection::open(path).map_err(|e| format!("database {name}: cannot open: {e}"))?;
        // A file that is not a database fails here, before anything is written.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| format!("database {name}: {e} (framecast will not overwrite it)"))?;
        if version < 0 {
            return Err(negative(&name, version));
        }
        if version > SCHEMA_VERSION {
            return Err(format!(
                "database {name}: its schema version {version} is newer than this framecast's ({SCHEMA_VERSION}): \
                 run a newer framecast; the file was left as it is"
            ));
        }
        let setup = || -> rusqlite::Result<()> {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            for (from, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                let to = from as i64 + 1;
                conn.execute_batch(&format!("BEGIN; {step} PRAGMA user_version = {to}; COMMIT;"))?;
            }
            Ok(())
        };
        setup().map_err(|e| format!("database {name}: {e}"))?;
        Ok(Sqlite { conn, history_len, next_seq: HashMap::new() })
    }

    /// Imports badges from a state file in one transaction, each with its
    /// whole history.
    pub fn import(&mut self, badges: BTreeMap<String, BadgeState>) -> Result<(), StoreError> {
        let Sqlite { conn, next_seq, .. } = self;
        let mut run = || -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for (name, state) in &badges {
                put_row(&tx, name, state)?;
                tx.execute("DELETE FROM badge_history WHERE badge = ?1", params![name])?;
                for (seq, value) in state.history.iter().enumerate() {
                    tx.execute("INSERT INTO badge_history VALUES (?1, ?2, ?3)", params![name, seq as i64, value])?;
                }
            }
            tx.commit()
        };
        run().map_err(store_error)?;
        for (name, state) in &badges {
            next_seq.insert(name.clone(), state.history.len() as i64);
        }
        Ok(())
    }
}

/// How many badges the database at `path` holds, opened read-only; the
/// same refusals as `open` (not a database, a newer schema).
pub fn inspect(path: &Path) -> Result<usize, String> {
    let name = path.display();
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("database {name}: cannot open: {e}"))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| format!("database {name}: {e} (framecast will not overwrite it)"))?;
    if version < 0 {
        return Err(negative(&name, version));
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "database {name}: its schema version {version} is newer than this framecast's ({SCHEMA_VERSION})"
        ));
    }
    if version == 0 {
        return Ok(0);
    }
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM badges", [], |row| row.get(0))
        .map_err(|e| format!("database {name}: {e}"))?;
    Ok(count as usize)
}

/// No framecast writes a negative version (`PRAGMA user_version` is a
/// signed 32-bit number): the file was made or damaged by something else.
fn negative(name: &std::path::Display<'_>, version: i64) -> String {
    format!(
        "database {name}: its schema version {version} is negative, which no framecast writes: \
         not a framecast database, or a damaged one; the file was left as it is"
    )
}

fn put_row(conn: &Connection, name: &str, s: &BadgeState) -> rusqlite::Result<usize> {
    let mut put = conn.prepare_cached(
        "INSERT OR REPLACE INTO badges (name, label, message, value, color, label_color, is_error, style, updated,
             named_logo, logo_svg, logo_color, logo_width)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    put.execute(params![
        name,
        s.label,
        s.message,
        s.value,
        s.color,
        s.label_color,
        s.is_error,
        s.style,
        s.updated as i64,
        s.named_logo,
        s.logo_svg,
        s.logo_color,
        s.logo_width
    ])
}

fn store_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full,
        _ => StoreError::Failed(e.to_string()),
    }
}

impl Store for Sqlite {
    fn load(&mut self) -> Result<BTreeMap<String, BadgeState>, StoreError> {
        let mut badges = BTreeMap::new();
        let mut rows = self
            .conn
            .prepare(
                "SELECT name, label, message, value, color, label_color, is_error, style, updated,
                 named_logo, logo_svg, logo_color, logo_width FROM badges",
            )
            .map_err(store_error)?;
        let states = rows
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    BadgeState {
                        label: r.get(1)?,
                        message: r.get(2)?,
                        value: r.get(3)?,
                        color: r.get(4)?,
                        label_color: r.get(5)?,
                        is_error: r.get(6)?,
                        style: r.get(7)?,
                        history: Vec::new(),
                        updated: r.get::<_, i64>(8)?.max(0) as u64,
                        named_logo: r.get(9)?,
                        logo_svg: r.get(10)?,
                        logo_color: r.get(11)?,
                        logo_width: r.get(12)?,
                        version: 0,
                    },
                ))
            })
            .map_err(store_error)?;
        for state in states {
            let (name, state) = state.map_err(store_error)?;
            badges.insert(name, state);
        }
        let mut rows = self
            .conn
            .prepare("SELECT badge, seq, value FROM badge_history ORDER BY badge, seq")
            .map_err(store_error)?;
        let history = rows
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?)))
            .map_err(store_error)?;
        for row in history {
            let (name, seq, value) = row.map_err(store_error)?;
            self.next_seq.insert(name.clone(), seq + 1);
            if let Some(state) = badges.get_mut(&name) {
                state.history.push(value);
            }
        }
        for state in badges.values_mut() {
            let excess = state.history.len().saturating_sub(self.history_len);
            state.history.drain(..excess);
        }
        Ok(badges)
    }

    fn apply(&mut self, batch: &[Change]) -> Result<Vec<u64>, StoreError> {
        let Sqlite { conn, next_seq, history_len } = self;
        // Sequence numbers move only if the transaction commits.
        let mut seq = next_seq.clone();
        let keep = *history_len as i64;
        let mut run = || -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for change in batch {
                match change {
                    Change::Put { name, state, appended } => {
                        put_row(&tx, name, state)?;
                        if let Some(value) = appended {
                            let next = seq.entry(name.clone()).or_insert(0);
                            let mut add = tx.prepare_cached("INSERT INTO badge_history VALUES (?1, ?2, ?3)")?;
                            add.execute(params![name, *next, value])?;
                            *next += 1;
                            let mut trim =
                                tx.prepare_cached("DELETE FROM badge_history WHERE badge = ?1 AND seq < ?2")?;
                            trim.execute(params![name, *next - keep])?;
                        }
                    }
                    Change::Delete { name, .. } => {
                        tx.prepare_cached("DELETE FROM badges WHERE name = ?1")?.execute(params![name])?;
                        tx.prepare_cached("DELETE FROM badge_history WHERE badge = ?1")?.execute(params![name])?;
                        seq.remove(name);
                    }
                }
            }
            tx.commit()
        };
        run().map_err(store_error)?;
        *next_seq = seq;
        Ok(vec![0; batch.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: f64, history: Vec<f64>) -> BadgeState {
        BadgeState { label: Some("l".into()), value: Some(value), history, updated: 7, ..Default::default() }
    }

    #[test]
    fn batches_persist_with_bounded_history_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let mut db = Sqlite::open(&path, 3).unwrap();
        let mut history = Vec::new();
        for v in 1..=5 {
            history.push(v as f64);
            let excess = history.len().saturating_sub(3);
            history.drain(..excess);
            let put =
                Change::Put { name: "a".into(), state: state(v as f64, history.clone()), appended: Some(v as f64) };
            db.apply(&[put, Change::Put { name: "b".into(), state: state(0.0, vec![]), appended: None }]).unwrap();
        }
        db.apply(&[Change::Delete { name: "b".into(), version: 0 }]).unwrap();
        drop(db);
        let mut db = Sqlite::open(&path, 3).unwrap();
        let loaded = db.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["a"], state(5.0, vec![3.0, 4.0, 5.0]));
        let rows: i64 = db.conn.query_row("SELECT COUNT(*) FROM badge_history", [], |r| r.get(0)).unwrap();
        // Durable commits: WAL, and an fsync at every commit (FULL = 2).
        let mode: String = db.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = db.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
        assert_eq!(rows, 3, "history is trimmed on disk too");
        // The next value continues the sequence after a reopen.
        db.apply(&[Change::Put { name: "a".into(), state: state(6.0, vec![4.0, 5.0, 6.0]), appended: Some(6.0) }])
            .unwrap();
        assert_eq!(Sqlite::open(&path, 3).unwrap().load().unwrap()["a"].history, vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn refuses_a_foreign_or_newer_file_without_touching_it() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x42u8; 4096]).unwrap();
        let err = Sqlite::open(&junk, 3).err().unwrap();
        assert!(err.contains("junk.db") && err.contains("will not overwrite"), "{err}");
        assert_eq!(std::fs::read(&junk).unwrap(), vec![0x42u8; 4096]);

        let newer = dir.path().join("newer.db");
        Connection::open(&newer).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
        let before = std::fs::read(&newer).unwrap();
        let err = Sqlite::open(&newer, 3).err().unwrap();
        assert!(err.contains("schema version 99 is newer"), "{err}");
        assert_eq!(std::fs::read(&newer).unwrap(), before);

        let negative = dir.path().join("negative.db");
        Connection::open(&negative).unwrap().execute_batch("PRAGMA user_version = -1;").unwrap();
        let before = std::fs::read(&negative).unwrap();
        let err = Sqlite::open(&negative, 3).err().unwrap();
        assert!(err.contains("negative.db") && err.contains("schema version -1 is negative"), "{err}");
        assert_eq!(inspect(&negative).err().unwrap(), err);
        assert_eq!(std::fs::read(&negative).unwrap(), before);
    }
}
