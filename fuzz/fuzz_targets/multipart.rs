//! Fuzz target: see `fuzz/checks/multipart.rs`.
#![no_main]

#[path = "../checks/multipart.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
