//! framecast: live images over HTTP server push (`multipart/x-mixed-replace`).
//!
//! The source is shaped like the data's path, one room (folder) each:
//!
//! `server` (accept, socket options, caps, one connection; a TLS listener
//! goes here) → `http` (route a request, run its handler, map errors to
//! statuses) → `push` (a channel: the latest frame and its viewers → part
//! bytes serialized once → the streaming body) → the socket.
//!
//! Beside the path, feeding it: `sources` (what each channel shows and
//! when: rooms, badges, cameras; their producers and the badge writer),
//! `render` (drawing and encoding frames), `store` (values across restarts;
//! the embedded database) and `cluster` (several instances as one, on
//! Redis). `app` wires them for one process.
//! Leaves that import no other room: `config` (typed, validated settings;
//! it may use `names`), `names`, `metrics`, `multipart`, `panics` (uses
//! `metrics`).
//!
//! Imports go one way, never in a cycle (`tests/layout.rs` checks it, and
//! each room's `May import:` line): server → http → app → sources →
//! {push, render, store} → {config, metrics, names}.

pub mod app;
pub mod cluster;
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
