//! The badge-write JSON on arbitrary bytes: accepted writes apply cleanly
//! and keep history bounded.
#![no_main]

use framecast::sources::badge_state::BadgeUpdate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(update) = BadgeUpdate::parse(data, |s| s == "flat") {
        let state = update.apply(None, 5, 0);
        assert!(state.history.len() <= 5);
    }
});
