//! Drawing frames: text, badges, tiles, camera overlays and placeholders,
//! PNG and JPEG encoding; the bounds on what one picture may cost, and the
//! pool one-off renders run in. Knows nothing of HTTP or channels.
//!
//! May import: config, metrics, names.

pub mod badge;
pub mod board;
pub mod cache;
pub mod clock;
pub mod color;
pub mod fonts;
pub mod format;
pub mod jpeg;
pub mod layout;
pub mod logo;
pub mod logo_check;
pub mod online;
pub mod overlay;
pub mod overlay_image;
pub mod pattern;
pub mod placeholder;
pub mod png;
pub mod pool;
pub mod scale;
pub mod shape;
pub mod shapes;
pub mod size;
pub mod social;
pub mod svg;
pub mod template;
pub mod text;
pub mod tile;
