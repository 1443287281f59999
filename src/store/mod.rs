//! Storage: where badge values live across restarts. The `Store` seam has
//! two calls, load everything at start and apply a batch of changes as one
//! durable unit, so the embedded database (`sqlite`) and memory-only mode
//! (`memory`) are interchangeable, and a Redis store for cluster mode can
//! follow without touching HTTP or rendering. `state_file` reads the JSON
//! file of earlier releases, once, for migration. Stores know records and
//! files, not HTTP or channels.
//!
//! May import: nothing.

pub mod memory;
pub mod record;
pub mod sqlite;
pub mod state_file;
pub mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use record::BadgeState;

/// One change to the stored badges.
#[derive(Debug, Clone)]
// Short-lived, a batch at a time: boxing the state would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Change {
    /// The badge's new state; `appended` is the value this write added to
    /// its history (the store keeps `history_len` of them). A shared store
    /// stores it only if the badge is still at `state.version`.
    Put { name: String, state: BadgeState, appended: Option<f64> },
    /// `version`: the version of the state being deleted (as for `Put`).
    Delete { name: String, version: u64 },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No room left on the disk: nothing of the batch was stored.
    #[error("the disk is full; nothing was stored")]
    Full,
    /// Any other failure to store: nothing of the batch was stored.
    #[error("storage failed: {0}")]
    Failed(String),
    /// The store cannot be reached now (a shared store's server is down):
    /// nothing was stored; try again shortly.
    #[error("the value store cannot be reached; nothing was stored")]
    Unavailable,
    /// Another writer changed these badges first (a shared store): nothing
    /// was stored; here is what they hold now, to merge again on top of.
    #[error("another instance wrote these badges first")]
    Conflict(Vec<(String, Option<BadgeState>)>),
}

/// Where badge values are kept. Blocking: the badge writer calls it off the
/// async threads, one batch at a time.
pub trait Store: Send {
    /// Every stored badge, at startup.
    fn load(&mut self) -> Result<BTreeMap<String, BadgeState>, StoreError>;

    /// Applies `batch` in order, all or nothing; when it returns `Ok` the
    /// changes are durable (they survive a crash or power loss). Returns
    /// each change's new version (0 from stores that keep none).
    fn apply(&mut self, batch: &[Change]) -> Result<Vec<u64>, StoreError>;
}

/// Opens the configured store: the database at `database` (created if
/// missing, migrated to the current schema), or memory only for `None`. A
/// `state_file` from an earlier release is imported into the database once,
/// then renamed with a `.migrated` suffix. Errors name the file and why;
/// a file that is not ours, or is newer, is never written to.
pub fn open(database: Option<&Path>, state_file: Option<&Path>, history_len: usize) -> Result<Box<dyn Store>, String> {
    let Some(path) = database else {
        return Ok(Box::new(memory::Memory));
    };
    let mut db = sqlite::Sqlite::open(path, history_len)?;
    if let Some(legacy) = state_file.filter(|p| p.exists()) {
        let badges = state_file::load(legacy)?;
        let count = badges.len();
        db.import(badges).map_err(|e| format!("database {}: importing {}: {e}", path.display(), legacy.display()))?;
        let renamed = migrated_name(legacy);
        std::fs::rename(legacy, &renamed)
            .map_err(|e| format!("state_file {}: imported, but cannot rename it: {e}", legacy.display()))?;
        tracing::info!(
            "imported {count} badge values from {} into {}; the old file is now {}",
            legacy.display(),
            path.display(),
            renamed.display()
        );
    }
    Ok(Box::new(db))
}

/// What `open` would find, without creating, migrating or writing anything
/// (for `check-config`): a sentence, or why startup would fail.
pub fn inspect(database: Option<&Path>, state_file: Option<&Path>) -> Result<String, String> {
    let Some(path) = database else { return Ok("values in memory only".into()) };
    let stored = if path.exists() {
        format!("{} stored badge values in {}", sqlite::inspect(path)?, path.display())
    } else {
        format!("database {} will be created", path.display())
    };
    Ok(match state_file.filter(|p| p.exists()) {
        Some(legacy) => {
            let count = state_file::load(legacy)?.len();
            format!("{stored}; {count} values from {} will be imported", legacy.display())
        }
        None => stored,
    })
}

fn migrated_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".migrated");
    PathBuf::from(name)
}
