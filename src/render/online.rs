//! The users-online badge: `online | N`. `framecast render online` and the
//! server call the same function, so offline output equals what is pushed.

use super::badge::{BadgeLayout, draw_badge};
use super::png::encode_png;

/// PNG bytes of the users-online badge showing `count`.
pub fn render_online_png(layout: &BadgeLayout, count: u64) -> Vec<u8> {
    let color = if count == 0 {
        &layout.idle_color
    } else {
        &layout.color
    };
    encode_png(&draw_badge(layout, &count.to_string(), color))
}
