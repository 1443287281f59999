//! Fuzz target: see `fuzz/checks/badge_update.rs`.
#![no_main]

#[path = "../checks/badge_update.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
