//! The JSON state file of earlier releases (`{"version": 1, "badges": {…}}`),
//! read once so its values can be imported into the database. Never
//! written: a file that cannot be read stops startup and is left as it is.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::BadgeState;

#[derive(Deserialize)]
struct StateFile {
    #[allow(dead_code)] // read to accept the file's shape; only version 1 exists
    version: u32,
    badges: BTreeMap<String, BadgeState>,
}

/// What the file at `path` holds.
pub fn load(path: &Path) -> Result<BTreeMap<String, BadgeState>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("state_file {}: {e}", path.display()))?;
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| {
        format!("state_file {}: {e} (fix or move the file; framecast will not overwrite it)", path.display())
    })?;
    Ok(file.badges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_old_file_and_refuses_a_corrupt_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"version":1,"badges":{"ci":{"label":"build","value":3.0,"history":[1.0,3.0],"updated":5}}}"#,
        )
        .unwrap();
        let badges = load(&path).unwrap();
        assert_eq!(badges["ci"].history, vec![1.0, 3.0]);
        assert_eq!(badges["ci"].label.as_deref(), Some("build"));
        std::fs::write(&path, b"{not json").unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.contains("state.json") && err.contains("will not overwrite"), "{err}");
    }
}
