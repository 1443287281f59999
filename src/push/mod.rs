//! The push path's core, shared by every kind of live image: channels (latest
//! frame + viewers), part bytes serialized once, and the streaming body.

pub mod body;
pub mod channel;
pub mod gauges;
pub mod limits;
pub mod part;
pub mod registry;
pub mod viewer;
