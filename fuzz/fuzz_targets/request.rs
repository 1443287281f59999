//! Fuzz target: see `fuzz/checks/request.rs`.
#![no_main]

#[path = "../checks/request.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
