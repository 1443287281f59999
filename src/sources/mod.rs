//! Frame producers: what each kind of channel shows and when it changes
//! (rooms, badges, cameras), the badge writer, and the supervised tasks
//! they run in. They publish into channels and know nothing of HTTP.
//!
//! May import: config, metrics, multipart, names, panics, push, render, store.

pub mod badge_state;
pub mod badge_writer;
pub mod badges;
pub mod boards;
pub mod camera;
pub mod online;
pub mod polled;
pub mod room_gauges;
pub mod room_stats;
pub mod tasks;
pub mod timing;
