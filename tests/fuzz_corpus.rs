//! Every fuzz target's corpus (`fuzz/corpus/TARGET/`), replayed as an
//! ordinary test through the same check the fuzzer runs
//! (`fuzz/checks/TARGET.rs`): what fuzzing once found stays fixed without
//! building cargo-fuzz. Longer fuzzing runs on its own: `fuzz/run.sh`.

use std::path::PathBuf;

#[path = "../fuzz/checks/badge_update.rs"]
mod badge_update;
#[path = "../fuzz/checks/config.rs"]
mod config;
#[path = "../fuzz/checks/multipart.rs"]
mod multipart;
#[path = "../fuzz/checks/request.rs"]
mod request;
#[path = "../fuzz/checks/template.rs"]
mod template;

/// Runs `check` on every file of `fuzz/corpus/{target}`; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        eprintln!("{target}: {}", file.display());
        check(&data);
    }
    files.len()
}

#[test]
fn badge_update_corpus() {
    assert!(replay("badge_update", badge_update::check) > 0);
}

#[test]
fn config_corpus() {
    assert!(replay("config", config::check) > 0);
}

#[test]
fn multipart_corpus() {
    assert!(replay("multipart", multipart::check) > 0);
}

#[test]
fn request_corpus() {
    assert!(replay("request", request::check) > 0);
}

#[test]
fn template_corpus() {
    assert!(replay("template", template::check) > 0);
}
