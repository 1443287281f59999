//! Polled badge sources: framecast fetches a value itself (JSON, YAML,
//! text, a Prometheus query) and pushes it like a `PUT` when it changes.
//! `fetch` is the bounded GET, `extract` takes the value out, `interest`
//! says whether anyone is watching, `poller` runs the loop.

pub mod extract;
pub mod fetch;
pub mod interest;
pub mod poller;

pub use poller::{Pollers, SourceStatus};
