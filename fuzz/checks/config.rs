//! The config parser on arbitrary text: a config or an error, never a panic.
//!
//! Shared by the fuzz target (`cargo fuzz run config`) and by
//! `tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.

pub fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = framecast::config::Config::parse(text);
    }
}
