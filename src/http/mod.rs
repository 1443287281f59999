//! HTTP: routing requests to handlers, reading query values into bounded
//! types, mapping every error to its status (`errors`), shaping responses.
//! Handlers join channels; the push path itself lives in `push`.
//!
//! May import: app, config, metrics, names, panics, push, render, sources, store.

pub mod admin;
pub mod adopt;
pub mod api;
pub mod auth;
pub mod badge_api;
pub mod badges;
pub mod boards;
pub mod body;
pub mod camera;
pub mod client;
pub mod client_addr;
pub mod cors;
pub mod demo;
pub mod errors;
pub mod member;
pub mod online;
pub mod private;
pub mod query;
pub mod referer;
pub mod response;
pub mod route_table;
pub mod routes;
pub mod signed;
pub mod static_badge;
pub mod ustreamer_state;
pub mod viewers;

/// A request's body as handlers see it: hyper's `Incoming` from a
/// connection, or any other body (the request-surface fuzz target builds
/// requests with no network).
pub type RequestBody = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;
