//! The two-part "label | message" badge in the flat style people know from
//! shields.io, laid out from a JSON template in `templates/badges/`.

use std::sync::Mutex;

use serde::Deserialize;
use tiny_skia::{
    Color, FillRule, GradientStop, LinearGradient, Paint, PathBuilder, Pixmap, Point, SpreadMode,
    Transform,
};

use super::color::{parse_color, text_color_on};
use super::text::{TextRenderer, default_text};

/// A badge template: colours and metrics, read from JSON.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BadgeLayout {
    pub label: String,
    pub label_color: String,
    /// Message background.
    pub color: String,
    /// Message background when the value is zero (nobody else here).
    pub idle_color: String,
    pub height: u32,
    pub font_size: f32,
    pub padding: f32,
    pub radius: f32,
    pub gradient: bool,
    pub shadow: bool,
}

static ONLINE_TEMPLATE: &str = include_str!("../../templates/badges/online.json");

impl BadgeLayout {
    /// The users-online badge template compiled into the binary.
    pub fn online() -> BadgeLayout {
        Self::parse(ONLINE_TEMPLATE).expect("templates/badges/online.json is valid")
    }

    pub fn parse(json: &str) -> Result<BadgeLayout, String> {
        let layout: BadgeLayout = serde_json::from_str(json).map_err(|e| e.to_string())?;
        for (field, value) in [
            ("label_color", &layout.label_color),
            ("color", &layout.color),
            ("idle_color", &layout.idle_color),
        ] {
            parse_color(value).map_err(|e| format!("{field}: {e}"))?;
        }
        if !(8..=256).contains(&layout.height) {
            return Err(format!(
                "height: {} is invalid: expected 8 to 256",
                layout.height
            ));
        }
        if !(4.0..=200.0).contains(&layout.font_size) {
            return Err(format!(
                "font_size: {} is invalid: expected 4 to 200",
                layout.font_size
            ));
        }
        Ok(layout)
    }
}

/// Draws `label | message` with the message on `message_color`.
pub fn draw_badge(layout: &BadgeLayout, message: &str, message_color: &str) -> Pixmap {
    draw_with(default_text(), layout, message, message_color)
}

fn draw_with(
    text: &TextRenderer,
    layout: &BadgeLayout,
    message: &str,
    message_color: &str,
) -> Pixmap {
    let px = layout.font_size;
    let label_w = section_width(text, &layout.label, layout);
    let message_w = section_width(text, message, layout);
    let label_bg = parse_color(&layout.label_color).unwrap_or(Color::BLACK);
    let message_bg = parse_color(message_color).unwrap_or(label_bg);
    let mut pixmap = background(text, layout, label_w, message_w, message_bg);
    let baseline = text.centered_baseline(layout.height as f32, px);
    draw_centered(
        text,
        &mut pixmap,
        layout,
        message,
        label_w,
        message_w,
        baseline,
        message_bg,
    );
    pixmap
}

/// Everything but the message text. It depends only on the widths and the
/// colours, and digits share one advance width, so a changing count reuses
/// it: path fills cost ~10 µs each, a copy of the cached pixels ~0.1 µs.
fn background(
    text: &TextRenderer,
    layout: &BadgeLayout,
    label_w: f32,
    message_w: f32,
    message_bg: Color,
) -> Pixmap {
    type Key = (String, u32, [u8; 4]);
    static CACHE: Mutex<Vec<(Key, Pixmap)>> = Mutex::new(Vec::new());
    const KEEP: usize = 32;
    let layout_key = serde_json::to_string(&layout).unwrap_or_default();
    let rgba = message_bg.to_color_u8();
    let key: Key = (
        layout_key,
        message_w.to_bits(),
        [rgba.red(), rgba.green(), rgba.blue(), rgba.alpha()],
    );
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, pixmap)) = cache.iter().find(|(k, _)| *k == key) {
        return pixmap.clone();
    }
    let pixmap = draw_background(text, layout, label_w, message_w, message_bg);
    if cache.len() >= KEEP {
        cache.remove(0);
    }
    cache.push((key, pixmap.clone()));
    pixmap
}

fn draw_background(
    text: &TextRenderer,
    layout: &BadgeLayout,
    label_w: f32,
    message_w: f32,
    message_bg: Color,
) -> Pixmap {
    let (w, h) = (label_w + message_w, layout.height as f32);
    let mut pixmap = Pixmap::new(w as u32, layout.height).expect("badge size is positive");
    let label_bg = parse_color(&layout.label_color).unwrap_or(Color::BLACK);
    let r = layout.radius;
    fill(
        &mut pixmap,
        section(0.0, label_w, h, r, (true, false)),
        solid(label_bg),
    );
    fill(
        &mut pixmap,
        section(label_w, w, h, r, (false, true)),
        solid(message_bg),
    );
    if layout.gradient {
        // shields' flat style: a faint light-to-dark sheen over both halves.
        let stops = vec![
            GradientStop::new(0.0, Color::from_rgba8(187, 187, 187, 26)),
            GradientStop::new(1.0, Color::from_rgba8(0, 0, 0, 26)),
        ];
        let shader = LinearGradient::new(
            Point::from_xy(0.0, 0.0),
            Point::from_xy(0.0, h),
            stops,
            SpreadMode::Pad,
            Transform::identity(),
        );
        if let Some(shader) = shader {
            let paint = Paint {
                shader,
                anti_alias: true,
                ..Paint::default()
            };
            fill(&mut pixmap, section(0.0, w, h, r, (true, true)), paint);
        }
    }
    let baseline = text.centered_baseline(h, layout.font_size);
    draw_centered(
        text,
        &mut pixmap,
        layout,
        &layout.label,
        0.0,
        label_w,
        baseline,
        label_bg,
    );
    pixmap
}

/// `s` centred in the section from `left` spanning `width`, readable on `bg`.
#[allow(clippy::too_many_arguments)]
fn draw_centered(
    text: &TextRenderer,
    pixmap: &mut Pixmap,
    layout: &BadgeLayout,
    s: &str,
    left: f32,
    width: f32,
    baseline: f32,
    bg: Color,
) {
    let px = layout.font_size;
    let x = left + ((width - text.width(s, px)) / 2.0).round();
    let fg = text_color_on(bg);
    if layout.shadow && fg == Color::WHITE {
        text.draw(
            pixmap,
            s,
            x,
            baseline + 1.0,
            px,
            Color::from_rgba8(1, 1, 1, 77),
        );
    }
    text.draw(pixmap, s, x, baseline, px, fg);
}

fn section_width(text: &TextRenderer, s: &str, layout: &BadgeLayout) -> f32 {
    (text.width(s, layout.font_size) + 2.0 * layout.padding).ceil()
}

fn solid(color: Color) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(color);
    paint
}

fn fill(pixmap: &mut Pixmap, path: Option<tiny_skia::Path>, paint: Paint) {
    if let Some(path) = path {
        pixmap.fill_path(
            &path,
            &paint,
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
}

/// The rectangle from x0 to x1, full height, with its left and/or right
/// corners rounded to radius `r` (circular, via cubics).
fn section(
    x0: f32,
    x1: f32,
    h: f32,
    r: f32,
    (left, right): (bool, bool),
) -> Option<tiny_skia::Path> {
    let r = r.clamp(0.0, ((x1 - x0) / 2.0).min(h / 2.0));
    let (rl, rr) = (if left { r } else { 0.0 }, if right { r } else { 0.0 });
    let k = 0.447_715; // 1 - 0.552285: cubic control offset for a quarter circle
    let mut pb = PathBuilder::new();
    pb.move_to(x0 + rl, 0.0);
    pb.line_to(x1 - rr, 0.0);
    if rr > 0.0 {
        pb.cubic_to(x1 - rr * k, 0.0, x1, rr * k, x1, rr);
    }
    pb.line_to(x1, h - rr);
    if rr > 0.0 {
        pb.cubic_to(x1, h - rr * k, x1 - rr * k, h, x1 - rr, h);
    }
    pb.line_to(x0 + rl, h);
    if rl > 0.0 {
        pb.cubic_to(x0 + rl * k, h, x0, h - rl * k, x0, h - rl);
    }
    pb.line_to(x0, rl);
    if rl > 0.0 {
        pb.cubic_to(x0, rl * k, x0 + rl * k, 0.0, x0 + rl, 0.0);
    }
    pb.close();
    pb.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_template_parses() {
        let l = BadgeLayout::online();
        assert_eq!(l.label, "online");
        assert_eq!(l.height, 20);
    }

    #[test]
    fn width_grows_with_message_and_height_is_fixed() {
        let l = BadgeLayout::online();
        let small = draw_badge(&l, "7", &l.color);
        let big = draw_badge(&l, "1234567", &l.color);
        assert!(big.width() > small.width());
        assert_eq!(small.height(), 20);
        assert_eq!(big.height(), 20);
    }

    #[test]
    fn corners_are_transparent_and_middle_is_opaque() {
        let l = BadgeLayout::online();
        let p = draw_badge(&l, "42", &l.color);
        assert!(p.pixel(0, 0).unwrap().alpha() < 64, "rounded corner");
        assert!(
            p.pixel(p.width() - 1, 0).unwrap().alpha() < 64,
            "rounded corner"
        );
        assert_eq!(p.pixel(p.width() / 2, 10).unwrap().alpha(), 255);
    }

    #[test]
    fn bad_template_names_field() {
        let bad = ONLINE_TEMPLATE.replace("#44cc11", "#zz");
        let err = BadgeLayout::parse(&bad).unwrap_err();
        assert!(err.starts_with("color:"), "{err}");
    }
}
