//! The two-part "label | message" badge in the flat style people know from
//! shields.io, laid out from a JSON template in `templates/badges/`.

use serde::Deserialize;
use tiny_skia::{
    Color, FillRule, GradientStop, LinearGradient, Mask, Paint, PathBuilder, Pixmap, Point, Rect,
    SpreadMode, Transform,
};

use super::color::{parse_color, text_color_on};
use super::text::{TextRenderer, default_text};

/// A badge template: colours and metrics, read from JSON.
#[derive(Debug, Clone, Deserialize)]
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
    let (w, h) = (label_w + message_w, layout.height as f32);
    let mut pixmap = Pixmap::new(w as u32, layout.height).expect("badge size is positive");

    let label_bg = parse_color(&layout.label_color).unwrap_or(Color::BLACK);
    let message_bg = parse_color(message_color).unwrap_or(label_bg);

    let mut mask = Mask::new(w as u32, layout.height).expect("badge size is positive");
    if let Some(path) = rounded_rect(w, h, layout.radius) {
        mask.fill_path(&path, FillRule::Winding, true, Transform::identity());
    }
    fill(&mut pixmap, 0.0, label_w, h, solid(label_bg), &mask);
    fill(&mut pixmap, label_w, message_w, h, solid(message_bg), &mask);
    if layout.gradient {
        // shields' flat style: a faint light-to-dark sheen over both halves.
        let stops = vec![
            GradientStop::new(0.0, Color::from_rgba8(187, 187, 187, 26)),
            GradientStop::new(1.0, Color::from_rgba8(0, 0, 0, 26)),
        ];
        if let Some(shader) = LinearGradient::new(
            Point::from_xy(0.0, 0.0),
            Point::from_xy(0.0, h),
            stops,
            SpreadMode::Pad,
            Transform::identity(),
        ) {
            let paint = Paint {
                shader,
                anti_alias: true,
                ..Paint::default()
            };
            fill(&mut pixmap, 0.0, w, h, paint, &mask);
        }
    }

    let baseline = text.centered_baseline(h, px);
    for (s, left, width, bg) in [
        (&layout.label[..], 0.0, label_w, label_bg),
        (message, label_w, message_w, message_bg),
    ] {
        let x = left + ((width - text.width(s, px)) / 2.0).round();
        let fg = text_color_on(bg);
        if layout.shadow && fg == Color::WHITE {
            text.draw(
                &mut pixmap,
                s,
                x,
                baseline + 1.0,
                px,
                Color::from_rgba8(1, 1, 1, 77),
            );
        }
        text.draw(&mut pixmap, s, x, baseline, px, fg);
    }
    pixmap
}

fn section_width(text: &TextRenderer, s: &str, layout: &BadgeLayout) -> f32 {
    (text.width(s, layout.font_size) + 2.0 * layout.padding).ceil()
}

fn solid(color: Color) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(color);
    paint
}

fn fill(pixmap: &mut Pixmap, x: f32, w: f32, h: f32, paint: Paint, mask: &Mask) {
    if let Some(rect) = Rect::from_xywh(x, 0.0, w, h) {
        pixmap.fill_rect(rect, &paint, Transform::identity(), Some(mask));
    }
}

/// Rounded rectangle from (0,0) to (w,h); circular corners via cubics.
fn rounded_rect(w: f32, h: f32, r: f32) -> Option<tiny_skia::Path> {
    let r = r.clamp(0.0, w.min(h) / 2.0);
    if r == 0.0 {
        return Rect::from_xywh(0.0, 0.0, w, h).map(PathBuilder::from_rect);
    }
    let k = r * 0.447_715; // 1 - 0.552285: cubic control offset for a quarter circle
    let mut pb = PathBuilder::new();
    pb.move_to(r, 0.0);
    pb.line_to(w - r, 0.0);
    pb.cubic_to(w - k, 0.0, w, k, w, r);
    pb.line_to(w, h - r);
    pb.cubic_to(w, h - k, w - k, h, w - r, h);
    pb.line_to(r, h);
    pb.cubic_to(k, h, 0.0, h - k, 0.0, h - r);
    pb.line_to(0.0, r);
    pb.cubic_to(0.0, k, k, 0.0, r, 0.0);
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
