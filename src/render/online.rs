//! The users-online badge: the `online` template showing a room's count.
//! `framecast render online` and the server call the same function, so
//! offline output equals what is pushed.

use std::sync::Arc;

use super::format::Values;
use super::template::{Template, Templates};

/// What the `online` template reads: `{viewers}`.
pub struct OnlineCount(pub u64);

impl Values for OnlineCount {
    fn number(&self, key: &str) -> Option<f64> {
        (key == "viewers" || key == "value").then_some(self.0 as f64)
    }
    fn text(&self, _key: &str) -> Option<String> {
        None
    }
}

/// A room's count and its figures (`{peak_today}`, ...), by figure name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomValues {
    pub count: u64,
    pub figures: Vec<(&'static str, f64)>,
}

impl Values for RoomValues {
    fn number(&self, key: &str) -> Option<f64> {
        if key == "viewers" || key == "value" {
            return Some(self.count as f64);
        }
        self.figures.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
    fn text(&self, _key: &str) -> Option<String> {
        None
    }
}

/// PNG bytes of the users-online badge showing `count`.
pub fn render_online_png(template: &Template, count: u64) -> Vec<u8> {
    render_room_png(template, &RoomValues { count, figures: Vec::new() })
}

/// PNG bytes of a room's badge.
pub fn render_room_png(template: &Template, values: &RoomValues) -> Vec<u8> {
    // A count is at most 20 digits: any valid template draws it well
    // inside the size limits, so this cannot fail for the built-in one; a
    // custom template that still does shows an empty 1x1 picture.
    template.render_png(values, 1.0).unwrap_or_else(|_| crate::render::png::encode_png(&empty()))
}

fn empty() -> tiny_skia::Pixmap {
    tiny_skia::Pixmap::new(1, 1).expect("1x1 is a valid size")
}

/// The built-in `online` template (a `template_dir` may replace it).
pub fn builtin_online() -> Arc<Template> {
    Templates::builtin().get("online").expect("the online template is built in")
}
