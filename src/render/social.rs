//! shields' `social` look: a light, rounded label box with a thin border
//! (its first letter capitalised, an optional logo in brand colour) and,
//! when there is a message, a count bubble with a little arrow pointing at
//! the label. Template kind `social`, laid out by the same `BadgeLayout`
//! fields as the other badges; PNG here, SVG by `svg::social_svg`.

use tiny_skia::{
    Color, GradientStop, LinearGradient, Paint, PathBuilder, Pixmap, Point, SpreadMode, Stroke, Transform,
};

use super::badge::{BadgeLayout, PlacedLogo, draw_centered, left_section, section_width};
use super::cache::cached;
use super::color::parse_color;
use super::format::{Values, expand};
use super::layout::resolve_color;
use super::logo::{Logo, LogoImage};
use super::shapes::{fill, section, solid};
use super::size::{TooLarge, checked};
use super::text::font;

/// The thin grey border of both boxes.
pub fn border() -> Color {
    Color::from_rgba8(0xd5, 0xd5, 0xd5, 255)
}

/// Where everything on a social badge goes.
pub struct SocialGeometry {
    pub layout: BadgeLayout,
    pub label: String,
    pub message: String,
    pub label_w: f32,
    /// Where the label text is centred: `(left, width)`.
    pub label_text: (f32, f32),
    /// The bubble's left edge and width (width 0: no bubble).
    pub bubble: (f32, f32),
    pub label_bg: Color,
    pub bubble_bg: Color,
    pub logo: Option<PlacedLogo>,
    pub baseline: f32,
}

impl SocialGeometry {
    pub fn width(&self) -> f32 {
        if self.bubble.1 > 0.0 { self.bubble.0 + self.bubble.1 } else { self.label_w }
    }

    /// Space between the label box and the bubble, where the arrow is.
    pub fn arrow_gap(&self) -> f32 {
        (self.layout.height * 0.3).round()
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

pub fn social_geometry(layout: &BadgeLayout, values: &dyn Values, scale: f32) -> Result<SocialGeometry, TooLarge> {
    let l = layout.scaled(scale);
    let text = font(l.font);
    let label = capitalised(&expand(&l.label, values, l.format));
    let message = expand(&l.message, values, l.format);
    let label_bg = resolve_color(&l.label_color, values);
    let bubble_bg = resolve_color(&l.color, values);
    let text_w = if label.is_empty() { 0.0 } else { section_width(text, &label, &l) };
    // Brand colour unless logoColor says otherwise, as shields does.
    let brand = |logo: &Logo| match &logo.image {
        LogoImage::Icon(icon) => parse_color(icon.hex).unwrap_or(Color::BLACK),
        LogoImage::Svg(_) => Color::BLACK,
    };
    let (label_w, label_text, logo) = left_section(&l, values.logo(), scale, text_w, brand)?;
    let bubble_w = if message.is_empty() { 0.0 } else { section_width(text, &message, &l) };
    let mut g = SocialGeometry {
        label,
        message,
        label_w,
        label_text,
        bubble: (0.0, bubble_w),
        label_bg,
        bubble_bg,
        logo,
        baseline: text.centered_baseline(l.height, l.font_size),
        layout: l,
    };
    g.bubble.0 = g.label_w + g.arrow_gap();
    checked(g.width(), g.layout.height)?;
    Ok(g)
}

pub fn draw_social(layout: &BadgeLayout, values: &dyn Values, scale: f32) -> Result<Pixmap, TooLarge> {
    let g = social_geometry(layout, values, scale)?;
    let key = format!(
        "social {} {} {} {:?} {:?} {} {}",
        g.layout.id,
        g.layout.height,
        g.label_w,
        g.label_bg.to_color_u8(),
        g.bubble_bg.to_color_u8(),
        g.logo.as_ref().map(|p| format!("{} {}", p.logo.key(p.default_color), p.w)).unwrap_or_default(),
        g.label
    );
    let label_box = cached(key, || draw_label_box(&g));
    let (w, h) = (g.width(), g.layout.height);
    let mut pixmap = Pixmap::new(w as u32, h as u32).expect("size checked in social_geometry");
    let paint = tiny_skia::PixmapPaint::default();
    pixmap.draw_pixmap(0, 0, label_box.as_ref(), &paint, Transform::identity(), None);
    if g.bubble.1 > 0.0 {
        let (x, bw) = g.bubble;
        let r = g.layout.radius;
        fill(&mut pixmap, section(x, x + bw, h, r, (true, true)), solid(border()));
        let inset = (g.layout.height / 20.0).max(1.0);
        fill(
            &mut pixmap,
            section(x + inset, x + bw - inset, h, r, (true, true)).and_then(|p| shrink_y(p, h, inset)),
            solid(g.bubble_bg),
        );
        let arrow = arrow_path(x, h, g.arrow_gap());
        fill(&mut pixmap, arrow.clone(), solid(g.bubble_bg));
        stroke(&mut pixmap, arrow, g.layout.height / 20.0);
        draw_centered(font(g.layout.font), &mut pixmap, &g.layout, &g.message, g.bubble, g.baseline, g.bubble_bg);
    }
    Ok(pixmap)
}

/// The open arrow on the bubble's left edge, pointing at the label.
pub fn arrow_path(x: f32, h: f32, gap: f32) -> Option<tiny_skia::Path> {
    let (mid, half) = (h / 2.0, (h * 0.2).round());
    let mut pb = PathBuilder::new();
    pb.move_to(x + 1.0, mid - half);
    pb.line_to(x + 1.0 - gap * 0.6, mid);
    pb.line_to(x + 1.0, mid + half);
    pb.finish()
}

fn stroke(pixmap: &mut Pixmap, path: Option<tiny_skia::Path>, width: f32) {
    if let Some(path) = path {
        let stroke = Stroke { width: width.max(1.0), ..Stroke::default() };
        pixmap.stroke_path(&path, &solid(border()), &stroke, Transform::identity(), None);
    }
}

/// `path` (full height) moved in by `inset` at top and bottom.
fn shrink_y(path: tiny_skia::Path, h: f32, inset: f32) -> Option<tiny_skia::Path> {
    let s = (h - 2.0 * inset) / h;
    path.transform(Transform::from_row(1.0, 0.0, 0.0, s, 0.0, inset))
}

/// Label box: border, light fill with a faint darkening towards the
/// bottom, logo and label.
fn draw_label_box(g: &SocialGeometry) -> Pixmap {
    let (w, h, r) = (g.label_w, g.layout.height, g.layout.radius);
    let mut pixmap = Pixmap::new(w.max(1.0) as u32, h as u32).expect("size checked in social_geometry");
    let inset = (h / 20.0).max(1.0);
    fill(&mut pixmap, section(0.0, w, h, r, (true, true)), solid(border()));
    let inner = section(inset, w - inset, h, r, (true, true)).and_then(|p| shrink_y(p, h, inset));
    fill(&mut pixmap, inner.clone(), solid(g.label_bg));
    let shade = LinearGradient::new(
        Point::from_xy(0.0, 0.0),
        Point::from_xy(0.0, h),
        vec![
            GradientStop::new(0.0, Color::from_rgba8(0, 0, 0, 0)),
            GradientStop::new(1.0, Color::from_rgba8(0, 0, 0, 26)),
        ],
        SpreadMode::Pad,
        Transform::identity(),
    );
    if let Some(shader) = shade {
        fill(&mut pixmap, inner, Paint { shader, anti_alias: true, ..Paint::default() });
    }
    if !g.label.is_empty() {
        draw_centered(font(g.layout.font), &mut pixmap, &g.layout, &g.label, g.label_text, g.baseline, g.label_bg);
    }
    if let Some(p) = &g.logo {
        p.draw(&mut pixmap);
    }
    pixmap
}
