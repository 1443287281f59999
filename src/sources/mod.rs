//! Frame producers: what each kind of channel shows and when it changes.
//! They publish into channels and know nothing of HTTP.

pub mod badge_state;
pub mod badge_writer;
pub mod badges;
pub mod camera;
pub mod online;
pub mod tasks;
pub mod timing;
