//! Storage: where values live across restarts. Today one atomically
//! replaced JSON file (`state_file`); an embedded database goes here too.
//! Stores know files and records, not badges or HTTP.
//!
//! May import: nothing.

pub mod state_file;

pub use state_file::Store;
