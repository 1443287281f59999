//! Badge values on disk: one JSON file, replaced atomically on every write
//! (temp file, fsync, rename, fsync of the directory). A write is
//! acknowledged only after that, so a crash loses nothing acknowledged, and a
//! torn write can only leave a stray temp file, never a half-written state.
//! Generic over the value type: the store knows files, not badges.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StateFile<T> {
    version: u32,
    badges: BTreeMap<String, T>,
}

pub struct Store {
    path: Option<PathBuf>,
}

impl Store {
    /// `None`: keep values in memory only.
    pub fn new(path: Option<PathBuf>) -> Store {
        Store { path }
    }

    /// What the file holds; nothing if it does not exist yet. A file that
    /// exists but cannot be read is an error: never start over silently.
    pub fn load<T: DeserializeOwned>(&self) -> Result<BTreeMap<String, T>, String> {
        let Some(path) = &self.path else { return Ok(BTreeMap::new()) };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(format!("state_file {}: {e}", path.display())),
        };
        let file: StateFile<T> = serde_json::from_slice(&bytes).map_err(|e| {
            format!("state_file {}: {e} (fix or move the file; framecast will not overwrite it)", path.display())
        })?;
        Ok(file.badges)
    }

    /// Replaces the file with `badges`; returns once it is durable.
    pub async fn save<T: Serialize>(&self, badges: BTreeMap<String, T>) -> io::Result<()> {
        let Some(path) = self.path.clone() else { return Ok(()) };
        let bytes = serde_json::to_vec(&StateFile { version: 1, badges })?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await.map_err(io::Error::other)?
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable only once the directory is synced.
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct BadgeState {
        label: Option<String>,
        value: Option<f64>,
        history: Vec<f64>,
    }

    #[tokio::test]
    async fn saves_and_loads_and_refuses_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::new(Some(path.clone()));
        assert!(store.load::<BadgeState>().unwrap().is_empty());
        let state = BadgeState { label: Some("build".into()), value: Some(3.0), history: vec![1.0, 3.0] };
        store.save(BTreeMap::from([("ci".to_string(), state.clone())])).await.unwrap();
        assert_eq!(store.load::<BadgeState>().unwrap()["ci"], state);
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        std::fs::write(&path, b"{not json").unwrap();
        let err = store.load::<BadgeState>().unwrap_err();
        assert!(err.contains("state.json") && err.contains("will not overwrite"), "{err}");
    }
}
