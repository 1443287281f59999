//! HTTP: routing requests to handlers and shaping responses. Handlers join
//! channels; the push path itself lives in `push`.

pub mod api;
pub mod auth;
pub mod badge_api;
pub mod badges;
pub mod body;
pub mod camera;
pub mod client;
pub mod demo;
pub mod online;
pub mod referer;
pub mod response;
pub mod routes;
pub mod static_badge;
