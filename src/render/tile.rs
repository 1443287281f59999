//! Dashboard tiles: a counter (big number, caption) and a sparkline (the
//! last values as a line, with label and current value). Templates of kind
//! `counter` and `sparkline`. Tiles grow to fit their text.

use serde::{Deserialize, Serialize};
use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Stroke, Transform};

use super::cache::{cached, next_layout_id};
use super::format::{NumberFormat, Values, expand};
use super::layout::{check_color, check_range, check_text, resolve_color};
use super::shapes::{fill, section, solid};
use super::size::{TooLarge, checked};
use super::text::{FontName, TextStyle, font};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CounterLayout {
    pub value: String,
    pub caption: String,
    #[serde(default)]
    pub format: NumberFormat,
    pub width: f32,
    pub height: f32,
    pub background: String,
    pub color: String,
    pub caption_color: String,
    pub value_size: f32,
    pub caption_size: f32,
    pub radius: f32,
    #[serde(skip, default = "next_layout_id")]
    pub(crate) id: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SparklineLayout {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub format: NumberFormat,
    pub width: f32,
    pub height: f32,
    /// How many of the latest values the line shows.
    pub points: usize,
    pub background: String,
    pub line_color: String,
    /// Opacity of the area under the line, 0 to 1.
    pub fill_opacity: f32,
    /// Drawn as stacked 1 px hairlines: ~5x cheaper than a wide stroke.
    pub line_width: f32,
    pub text_color: String,
    pub text_size: f32,
    pub radius: f32,
    #[serde(skip, default = "next_layout_id")]
    pub(crate) id: u64,
}

const PAD: f32 = 8.0;

impl CounterLayout {
    pub fn validate(&self) -> Result<(), String> {
        check_text("value", &self.value)?;
        check_text("caption", &self.caption)?;
        check_color("background", &self.background)?;
        check_color("color", &self.color)?;
        check_color("caption_color", &self.caption_color)?;
        check_range("width", self.width, 8.0, 2048.0)?;
        check_range("height", self.height, 8.0, 2048.0)?;
        check_range("value_size", self.value_size, 4.0, 400.0)?;
        check_range("caption_size", self.caption_size, 4.0, 200.0)?;
        check_range("radius", self.radius, 0.0, 200.0)
    }
}

impl SparklineLayout {
    pub fn validate(&self) -> Result<(), String> {
        check_text("label", &self.label)?;
        check_text("value", &self.value)?;
        check_color("background", &self.background)?;
        check_color("line_color", &self.line_color)?;
        check_color("text_color", &self.text_color)?;
        check_range("width", self.width, 16.0, 2048.0)?;
        check_range("height", self.height, 16.0, 2048.0)?;
        check_range("points", self.points as f32, 2.0, 1000.0)?;
        check_range("fill_opacity", self.fill_opacity, 0.0, 1.0)?;
        check_range("line_width", self.line_width, 0.5, 4.0)?;
        check_range("text_size", self.text_size, 4.0, 200.0)?;
        check_range("radius", self.radius, 0.0, 200.0)
    }
}

pub fn draw_counter(l: &CounterLayout, values: &dyn Values, scale: f32) -> Result<Pixmap, TooLarge> {
    let (bold, regular) = (font(FontName::Bold), font(FontName::Regular));
    let value = expand(&l.value, values, l.format);
    let caption = expand(&l.caption, values, l.format);
    let (value_px, caption_px, pad) = (l.value_size * scale, l.caption_size * scale, PAD * scale);
    let value_w = bold.width(&value, value_px, 0.0);
    let caption_w = regular.width(&caption, caption_px, 0.0);
    let w = (l.width * scale).max(value_w.max(caption_w) + 2.0 * pad).ceil();
    let h = (l.height * scale).max(value_px + caption_px + 2.0 * pad).ceil();
    checked(w, h)?;
    let background = resolve_color(&l.background, values);
    let caption_color = resolve_color(&l.caption_color, values);
    let caption_baseline = (h - pad).round();
    // Background and caption change rarely: drawn once, copied after.
    let key =
        format!("counter {} {w} {h} {:?} {:?} {caption}", l.id, background.to_color_u8(), caption_color.to_color_u8());
    let mut pixmap = cached(key, || {
        let mut pixmap = Pixmap::new(w as u32, h as u32).expect("size checked above");
        fill(&mut pixmap, section(0.0, w, h, l.radius * scale, (true, true)), solid(background));
        let style = TextStyle { px: caption_px, spacing: 0.0, color: caption_color };
        regular.draw(&mut pixmap, &caption, ((w - caption_w) / 2.0).round(), caption_baseline, style);
        pixmap
    });
    let value_baseline = (caption_baseline - caption_px * 1.4).min((h + value_px * 0.7) / 2.0).round();
    let style = TextStyle { px: value_px, spacing: 0.0, color: resolve_color(&l.color, values) };
    bold.draw(&mut pixmap, &value, ((w - value_w) / 2.0).round(), value_baseline, style);
    Ok(pixmap)
}

pub fn draw_sparkline(l: &SparklineLayout, values: &dyn Values, scale: f32) -> Result<Pixmap, TooLarge> {
    let text = font(FontName::Regular);
    let label = expand(&l.label, values, l.format);
    let value = expand(&l.value, values, l.format);
    let (px, pad) = (l.text_size * scale, PAD * scale);
    let (label_w, value_w) = (text.width(&label, px, 0.0), text.width(&value, px, 0.0));
    let w = (l.width * scale).max(label_w + value_w + 3.0 * pad).ceil();
    let h = (l.height * scale).max(px * 2.0 + 2.0 * pad).ceil();
    checked(w, h)?;
    let background = resolve_color(&l.background, values);
    let text_color = resolve_color(&l.text_color, values);
    let baseline = (pad + px * 0.8).round();
    let key =
        format!("sparkline {} {w} {h} {:?} {:?} {label}", l.id, background.to_color_u8(), text_color.to_color_u8());
    let mut pixmap = cached(key, || {
        let mut pixmap = Pixmap::new(w as u32, h as u32).expect("size checked above");
        fill(&mut pixmap, section(0.0, w, h, l.radius * scale, (true, true)), solid(background));
        text.draw(&mut pixmap, &label, pad, baseline, TextStyle { px, spacing: 0.0, color: text_color });
        pixmap
    });
    text.draw(
        &mut pixmap,
        &value,
        (w - pad - value_w).round(),
        baseline,
        TextStyle { px, spacing: 0.0, color: text_color },
    );

    let history = values.history();
    let series = &history[history.len().saturating_sub(l.points)..];
    let (top, bottom) = (baseline + pad / 2.0, h - pad / 2.0);
    let line_color = resolve_color(&l.line_color, values);
    if let Some((line, area)) = plot(series, l.points, (pad, w - pad), (top, bottom)) {
        let mut under = line_color;
        under.apply_opacity(l.fill_opacity);
        // No anti-aliasing needed: the line covers the area's only slanted edge.
        let paint = Paint { anti_alias: false, ..solid(under) };
        pixmap.fill_path(&area, &paint, FillRule::Winding, Transform::identity(), None);
        stroke_hairlines(&mut pixmap, &line, l.line_width * scale, line_color);
    }
    Ok(pixmap)
}

/// A line `width` px thick as 1 px hairlines stacked vertically: tiny-skia
/// draws hairlines ~5x faster than wide strokes, and a sparkline is thin.
fn stroke_hairlines(pixmap: &mut Pixmap, line: &tiny_skia::Path, width: f32, color: tiny_skia::Color) {
    let passes = width.ceil().max(1.0) as usize;
    let hairline = Stroke { width: 1.0, ..Stroke::default() };
    let mut paint = solid(color);
    paint.anti_alias = true;
    for i in 0..passes {
        let offset = if passes == 1 { 0.0 } else { (i as f32 / (passes - 1) as f32 - 0.5) * (width - 1.0) };
        pixmap.stroke_path(line, &paint, &hairline, Transform::from_translate(0.0, offset), None);
    }
}

/// The line through `series` (right-aligned in `points` slots) and the area
/// under it, scaled to the box. `None` with fewer than two values.
fn plot(
    series: &[f64],
    points: usize,
    (x0, x1): (f32, f32),
    (top, bottom): (f32, f32),
) -> Option<(tiny_skia::Path, tiny_skia::Path)> {
    let finite: Vec<f64> = series.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.len() < 2 {
        return None;
    }
    let (min, max) = finite.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let step = (x1 - x0) / (points.max(2) - 1) as f32;
    let first_x = x1 - step * (finite.len() - 1) as f32;
    let y = |v: f64| {
        if max > min { bottom - ((v - min) / (max - min)) as f32 * (bottom - top) } else { (top + bottom) / 2.0 }
    };
    let mut line = PathBuilder::new();
    let mut area = PathBuilder::new();
    area.move_to(first_x, bottom);
    for (i, &v) in finite.iter().enumerate() {
        let (x, y) = (first_x + step * i as f32, y(v));
        if i == 0 {
            line.move_to(x, y)
        } else {
            line.line_to(x, y)
        }
        area.line_to(x, y);
    }
    area.line_to(x1, bottom);
    area.close();
    Some((line.finish()?, area.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_needs_two_points_and_stays_in_the_box() {
        assert!(plot(&[1.0], 10, (0.0, 100.0), (0.0, 50.0)).is_none());
        let (line, area) = plot(&[1.0, 5.0, 3.0], 10, (0.0, 100.0), (10.0, 50.0)).unwrap();
        let b = line.bounds();
        assert!(b.top() >= 10.0 && b.bottom() <= 50.0 && b.right() <= 100.0);
        assert!(area.bounds().bottom() <= 50.0);
        // Flat series: a line through the middle.
        let (line, _) = plot(&[2.0, 2.0], 10, (0.0, 100.0), (10.0, 50.0)).unwrap();
        assert_eq!(line.bounds().top(), 30.0);
    }
}
