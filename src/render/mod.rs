//! Drawing frames: text, badges and PNG encoding. Knows nothing of HTTP.

pub mod badge;
pub mod color;
pub mod online;
pub mod png;
pub mod text;
