//! Drawing frames: text, badges and PNG encoding. Knows nothing of HTTP.

pub mod badge;
pub mod cache;
pub mod color;
pub mod format;
pub mod online;
pub mod png;
pub mod template;
pub mod text;
pub mod tile;
