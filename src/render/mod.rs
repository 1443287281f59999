//! Drawing frames: text, badges, camera overlays and placeholders, PNG and
//! JPEG encoding. Knows nothing of HTTP.

pub mod badge;
pub mod cache;
pub mod clock;
pub mod color;
pub mod format;
pub mod jpeg;
pub mod layout;
pub mod online;
pub mod overlay;
pub mod pattern;
pub mod placeholder;
pub mod png;
pub mod pool;
pub mod shapes;
pub mod size;
pub mod template;
pub mod text;
pub mod tile;
