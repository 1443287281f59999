//! The two-part "label | message" badge, in the styles people know from
//! shields.io (flat, flat-square, plastic, for-the-badge), laid out by a
//! template of kind `badge` (`templates/badges/*.json`).

use serde::{Deserialize, Serialize};
use tiny_skia::{Color, GradientStop, LinearGradient, Paint, Pixmap, Point, SpreadMode, Transform};

use super::cache::{cached, next_layout_id};
use super::color::text_color_on;
use super::format::{NumberFormat, Values, expand};
use super::layout::{check_color, check_range, check_text, resolve_color};
use super::logo::Logo;
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
    pub(super) fn scaled(&self, scale: f32) -> BadgeLayout {
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

/// Where everything on a badge goes, computed once from the layout and the
/// values: drawn as PNG here, written as SVG by `svg`, so both have the
/// same size and positions.
pub struct Geometry {
    pub layout: BadgeLayout,
    pub label: String,
    pub message: String,
    /// Width of the left section: logo and label (0 when both are absent).
    pub label_w: f32,
    pub message_w: f32,
    /// Where the label text is centred: `(left, width)`.
    pub label_text: (f32, f32),
    pub label_bg: Color,
    pub message_bg: Color,
    pub logo: Option<PlacedLogo>,
    pub baseline: f32,
}

/// A logo and its box, in pixels of the (scaled) badge.
pub struct PlacedLogo {
    pub logo: Logo,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// An icon's colour when `logoColor` is not set.
    pub default_color: Color,
}

impl Geometry {
    pub fn width(&self) -> f32 {
        self.label_w + self.message_w
    }
}

/// Lays the badge out with placeholders filled from `values`.
pub fn badge_geometry(layout: &BadgeLayout, values: &dyn Values, scale: f32) -> Result<Geometry, TooLarge> {
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
    let text_w = if label.is_empty() { 0.0 } else { section_width(text, &label, &l) };
    let whitesmoke = |_: &Logo| Color::from_rgba8(0xf5, 0xf5, 0xf5, 255);
    let (label_w, label_text, logo) = left_section(&l, values.logo(), scale, text_w, whitesmoke)?;
    let message_w = section_width(text, &message, &l);
    checked(label_w + message_w, l.height)?;
    let baseline = text.centered_baseline(l.height, l.font_size);
    Ok(Geometry { layout: l, label, message, label_w, message_w, label_text, label_bg, message_bg, logo, baseline })
}

/// The left section's width, where its label is centred, and its logo.
pub(super) type LeftSection = (f32, (f32, f32), Option<PlacedLogo>);

/// The left section with a logo before the label (`text_w`: the label's
/// section width alone, 0 for none): its width, where the label text is
/// centred, and the placed logo.
pub(super) fn left_section(
    l: &BadgeLayout,
    logo: Option<Logo>,
    scale: f32,
    text_w: f32,
    default_color: impl Fn(&Logo) -> Color,
) -> Result<LeftSection, TooLarge> {
    let Some(logo) = logo else { return Ok((text_w, (0.0, text_w), None)) };
    // shields' proportions: a 14 px logo on a 20 px badge.
    let h = (l.height * 0.7).round();
    let w = logo.width_at(h, scale);
    checked(w, h)?;
    let (left, label_w) = if text_w == 0.0 {
        (l.padding + w, l.padding + w + l.padding)
    } else {
        let left = w + (l.padding / 2.0).round();
        (left, (left + text_w).ceil())
    };
    let y = ((l.height - h) / 2.0).round();
    let default_color = default_color(&logo);
    Ok((label_w, (left, label_w - left), Some(PlacedLogo { logo, x: l.padding, y, w, h, default_color })))
}

impl PlacedLogo {
    pub fn draw(&self, pixmap: &mut Pixmap) {
        let logo = self.logo.pixmap(self.w as u32, self.h as u32, self.default_color);
        let paint = tiny_skia::PixmapPaint::default();
        pixmap.draw_pixmap(self.x as i32, self.y as i32, logo.as_ref(), &paint, Transform::identity(), None);
    }
}

/// Draws the badge with placeholders filled from `values`.
pub fn draw_badge(layout: &BadgeLayout, values: &dyn Values, scale: f32) -> Result<Pixmap, TooLarge> {
    let g = badge_geometry(layout, values, scale)?;
    let text = font(g.layout.font);
    let mut pixmap = cached_background(text, &g);
    let section = (g.label_w, g.message_w);
    draw_centered(text, &mut pixmap, &g.layout, &g.message, section, g.baseline, g.message_bg);
    Ok(pixmap)
}

/// Everything but the message text. It depends only on the label, widths
/// and colours, and digits share one advance width, so a changing count
/// reuses it.
fn cached_background(text: &TextRenderer, g: &Geometry) -> Pixmap {
    let logo = g.logo.as_ref().map(|p| format!("{} {}", p.logo.key(p.default_color), p.w)).unwrap_or_default();
    let key = format!(
        "badge {} {} {} {} {:?} {:?} {logo} {}",
        g.layout.id,
        g.layout.height,
        g.label_w,
        g.message_w,
        g.label_bg.to_color_u8(),
        g.message_bg.to_color_u8(),
        g.label
    );
    cached(key, || draw_background(text, g))
}

fn draw_background(text: &TextRenderer, g: &Geometry) -> Pixmap {
    let (layout, label_w, h) = (&g.layout, g.label_w, g.layout.height);
    let w = g.width();
    let mut pixmap = Pixmap::new(w as u32, h as u32).expect("size checked in badge_geometry");
    let r = layout.radius;
    // Anti-aliased paths, not fills through a clip mask (~10x dearer).
    if label_w > 0.0 {
        fill(&mut pixmap, section(0.0, label_w, h, r, (true, false)), solid(g.label_bg));
    }
    fill(&mut pixmap, section(label_w, w, h, r, (label_w == 0.0, true)), solid(g.message_bg));
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
    if !g.label.is_empty() {
        draw_centered(text, &mut pixmap, layout, &g.label, g.label_text, g.baseline, g.label_bg);
    }
    if let Some(p) = &g.logo {
        p.draw(&mut pixmap);
    }
    pixmap
}

/// `s` centred in the section `(left, width)`, readable on `bg`.
pub(super) fn draw_centered(
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

pub(super) fn section_width(text: &TextRenderer, s: &str, layout: &BadgeLayout) -> f32 {
    (text.width(s, layout.font_size, layout.letter_spacing) + 2.0 * layout.padding).ceil()
}
