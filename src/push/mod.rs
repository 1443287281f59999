//! The push path's core, shared by every kind of live image: channels (latest
//! frame + viewers), part bytes serialized once, the streaming body with its
//! per-client limits, and the per-channel gauges.
//!
//! May import: config, metrics.

pub mod body;
pub mod channel;
pub mod gauges;
pub mod handover;
pub mod limits;
pub mod part;
pub mod presence;
pub mod record;
pub mod registry;
pub mod remote;
pub mod viewer;
pub mod waiting;
