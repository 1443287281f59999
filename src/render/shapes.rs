//! Filled shapes the templates draw with: solid paints, anti-aliased path
//! fills, and a full-height section with optionally rounded corners.

use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Transform};

pub fn solid(color: Color) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(color);
    paint
}

pub fn fill(pixmap: &mut Pixmap, path: Option<tiny_skia::Path>, paint: Paint) {
    if let Some(path) = path {
        pixmap.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), None);
    }
}

/// The rectangle from x0 to x1, full height, with its left and/or right
/// corners rounded to radius `r` (circular, via cubics).
pub fn section(x0: f32, x1: f32, h: f32, r: f32, (left, right): (bool, bool)) -> Option<tiny_skia::Path> {
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
