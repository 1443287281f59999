//! The two-part "label | message" badge, in the styles people know from
//! shields.io (flat, flat-square, plastic, for-the-badge), laid out by a
//! template of kind `badge` (`templates/badges/*.json`).

use serde::{Deserialize, Serialize};
use tiny_skia::{Color, GradientStop, LinearGradient, Paint, Pixmap, Point, SpreadMode, Transform};

use super::cache::{cached, next_layout_id};
use super::color::text_color_on;
use super::format::{NumberFormat, Values, expand};
use super::layout::{check_color, check_range, check_text, resolve_color};
use super::shapes::{fill, section, solid};
use super::size::{TooLarge, checked};
use super::text::{FontName, TextRenderer, TextStyle, font};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BadgeLayout {
    /// Left text; an empty label draws the message alone.
    pub label: String,
    pub message: String,
    pub label_color: String,
    /// Message background.
    pub color: String,
    /// Message background when the message reads `0`.
    #[serde(default)]
    pub idle_color: Option<String>,
    pub height: f32,
    #[serde(default)]
    pub font: FontName,
    pub font_size: f32,
    /// Space left and right of each text.
    pub padding: f32,
    #[serde(default)]
    pub letter_spacing: f32,
    #[serde(default)]
    pub uppercase: bool,
    pub radius: f32,
    #[serde(default)]
    pub gradient: Gradient,
    /// A faint dark copy under light text, as shields draws it.
    #[serde(default)]
    pub shadow: bool,
    #[serde(default)]
    pub format: NumberFormat,
    #[serde(skip, default = "next_layout_id")]
    pub(crate) id: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gradient {
    #[default]
    None,
    /// shields' flat: a faint light-to-dark sheen.
    Flat,
    /// shields' plastic: a glossy top and darker bottom.
    Plastic,
}

impl BadgeLayout {
    pub fn validate(&self) -> Result<(), String> {
        check_text("label", &self.label)?;
        check_text("message", &self.message)?;
        check_color("label_color", &self.label_color)?;
        check_color("color", &self.color)?;
        if let Some(idle) = &self.idle_color {
            check_color("idle_color", idle)?;
        }
        check_range("height", self.height, 8.0, 256.0)?;
        check_range("font_size", self.font_size, 4.0, 200.0)?;
        check_range("padding", self.padding, 0.0, 100.0)?;
        check_range("letter_spacing", self.letter_spacing, -5.0, 20.0)?;
        check_range("radius", self.radius, 0.0, 100.0)
    }

    /// Every length multiplied by `scale` (HiDPI: `@2x`).
    fn scaled(&self, scale: f32) -> BadgeLayout {
        BadgeLayout {
            height: (self.height * scale).round(),
            font_size: self.font_size * scale,
            padding: self.padding * scale,
            letter_spacing: self.letter_spacing * scale,
            radius: self.radius * scale,
            ..self.clone()
        }
    }
}

/// Draws the badge with placeholders filled from `values`.
pub fn draw_badge(layout: &BadgeLayout, values: &dyn Values, scale: f32) -> Result<Pixmap, TooLarge> {
    let l = layout.scaled(scale);
    let text = font(l.font);
    let mut label = expand(&l.label, values, l.format);
    let mut message = expand(&l.message, values, l.format);
    if l.uppercase {
        label = label.to_uppercase();
        message = message.to_uppercase();
    }
    let label_bg = resolve_color(&l.label_color, values);
    let message_bg = match &l.idle_color {
        Some(idle) if message == "0" => resolve_color(idle, values),
        _ => resolve_color(&l.color, values),
    };
    let label_w = if label.is_empty() { 0.0 } else { section_width(text, &label, &l) };
    let message_w = section_width(text, &message, &l);
    checked(label_w + message_w, l.height)?;
    let bg = Background { label: &label, label_w, message_w, label_bg, message_bg };
    let mut pixmap = cached_background(text, &l, &bg);
    let baseline = text.centered_baseline(l.height, l.font_size);
    draw_centered(text, &mut pixmap, &l, &message, (label_w, message_w), baseline, message_bg);
    Ok(pixmap)
}

struct Background<'a> {
    label: &'a str,
    label_w: f32,
    message_w: f32,
    label_bg: Color,
    message_bg: Color,
}

/// Everything but the message text. It depends only on the label, widths
/// and colours, and digits share one advance width, so a changing count
/// reuses it.
fn cached_background(text: &TextRenderer, layout: &BadgeLayout, bg: &Background) -> Pixmap {
    let key = format!(
        "badge {} {} {} {:?} {:?} {}",
        layout.id,
        layout.height,
        bg.message_w,
        bg.label_bg.to_color_u8(),
        bg.message_bg.to_color_u8(),
        bg.label
    );
    cached(key, || draw_background(text, layout, bg))
}

fn draw_background(text: &TextRenderer, layout: &BadgeLayout, bg: &Background) -> Pixmap {
    let (label_w, h) = (bg.label_w, layout.height);
    let w = label_w + bg.message_w;
    let mut pixmap = Pixmap::new(w as u32, h as u32).expect("size checked in draw_badge");
    let r = layout.radius;
    // Anti-aliased paths, not fills through a clip mask (~10x dearer).
    if label_w > 0.0 {
        fill(&mut pixmap, section(0.0, label_w, h, r, (true, false)), solid(bg.label_bg));
    }
    fill(&mut pixmap, section(label_w, w, h, r, (label_w == 0.0, true)), solid(bg.message_bg));
    let stops = match layout.gradient {
        Gradient::None => vec![],
        Gradient::Flat => vec![
            GradientStop::new(0.0, Color::from_rgba8(187, 187, 187, 26)),
            GradientStop::new(1.0, Color::from_rgba8(0, 0, 0, 26)),
        ],
        Gradient::Plastic => vec![
            GradientStop::new(0.0, Color::from_rgba8(255, 255, 255, 80)),
            GradientStop::new(0.1, Color::from_rgba8(170, 170, 170, 26)),
            GradientStop::new(0.9, Color::from_rgba8(0, 0, 0, 77)),
            GradientStop::new(1.0, Color::from_rgba8(0, 0, 0, 128)),
        ],
    };
    let shader = LinearGradient::new(
        Point::from_xy(0.0, 0.0),
        Point::from_xy(0.0, h),
        stops,
        SpreadMode::Pad,
        Transform::identity(),
    );
    if let Some(shader) = shader {
        let paint = Paint { shader, anti_alias: true, ..Paint::default() };
        fill(&mut pixmap, section(0.0, w, h, r, (true, true)), paint);
    }
    if label_w > 0.0 {
        let baseline = text.centered_baseline(h, layout.font_size);
        draw_centered(text, &mut pixmap, layout, bg.label, (0.0, label_w), baseline, bg.label_bg);
    }
    pixmap
}

/// `s` centred in the section `(left, width)`, readable on `bg`.
fn draw_centered(
    text: &TextRenderer,
    pixmap: &mut Pixmap,
    layout: &BadgeLayout,
    s: &str,
    (left, width): (f32, f32),
    baseline: f32,
    bg: Color,
) {
    let (px, spacing) = (layout.font_size, layout.letter_spacing);
    let x = left + ((width - text.width(s, px, spacing)) / 2.0).round();
    let fg = text_color_on(bg);
    if layout.shadow && fg == Color::WHITE {
        let shadow = TextStyle { px, spacing, color: Color::from_rgba8(1, 1, 1, 77) };
        text.draw(pixmap, s, x, baseline + (px / 11.0).round().max(1.0), shadow);
    }
    text.draw(pixmap, s, x, baseline, TextStyle { px, spacing, color: fg });
}

fn section_width(text: &TextRenderer, s: &str, layout: &BadgeLayout) -> f32 {
    (text.width(s, layout.font_size, layout.letter_spacing) + 2.0 * layout.padding).ceil()
}
