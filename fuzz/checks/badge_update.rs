//! The badge-write JSON on arbitrary bytes: accepted writes apply cleanly
//! and keep history bounded.
//!
//! Shared by the fuzz target (`cargo fuzz run badge_update`) and by
//! `tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.

use framecast::sources::badge_state::BadgeUpdate;

pub fn check(data: &[u8]) {
    if let Ok(update) = BadgeUpdate::parse(data, |s| s == "flat") {
        let state = update.apply(None, 5, 0);
        assert!(state.history.len() <= 5);
    }
}
