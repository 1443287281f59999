//! framecast: live images over HTTP server push (`multipart/x-mixed-replace`).
//!
//! The data's path: `server` (accept, socket, connection) → `http` (route,
//! handler) → `push` (channel: latest frame + viewers → part bytes → body).
//! Beside it: `sources` produce frames, `render` draws them.

pub mod app;
pub mod config;
pub mod http;
pub mod metrics;
pub mod multipart;
pub mod names;
pub mod panics;
pub mod push;
pub mod render;
pub mod server;
pub mod sources;
pub mod store;
