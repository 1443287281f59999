//! The synthetic test pattern: colour bars, a bar sweeping across once per
//! second of frames, the UTC time and the frame number. Every frame differs,
//! so it shows at a glance that frames flow and how late they are.

use std::time::SystemTime;

use tiny_skia::{Color, Paint, Pixmap, Rect, Transform};

use super::clock::clock;
use super::text::{FontName, TextStyle, font};

const BARS: [(u8, u8, u8); 7] =
    [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0), (0, 0, 192)];

/// Frame `n` of a `width`×`height` pattern running at `fps`, stamped `now`.
pub fn draw_pattern(width: u32, height: u32, fps: f64, n: u64, now: SystemTime) -> Pixmap {
    let mut pixmap = Pixmap::new(width, height).expect("pattern size is validated");
    let (w, h) = (width as f32, height as f32);
    let mut paint = Paint::default();
    let mut fill = |pixmap: &mut Pixmap, x: f32, y: f32, rw: f32, rh: f32, c: Color| {
        paint.set_color(c);
        if let Some(r) = Rect::from_xywh(x, y, rw, rh) {
            pixmap.fill_rect(r, &paint, Transform::identity(), None);
        }
    };
    let bar_w = w / BARS.len() as f32;
    for (i, (r, g, b)) in BARS.iter().enumerate() {
        fill(&mut pixmap, i as f32 * bar_w, 0.0, bar_w + 1.0, h * 0.7, Color::from_rgba8(*r, *g, *b, 255));
    }
    fill(&mut pixmap, 0.0, h * 0.7, w, h * 0.3, Color::from_rgba8(20, 20, 24, 255));
    // The sweep crosses the width once per second of frames.
    let per_sweep = fps.max(1.0).round() as u64;
    let sweep_x = (n % per_sweep) as f32 / per_sweep as f32 * w;
    fill(&mut pixmap, sweep_x, 0.0, (w / 40.0).max(2.0), h * 0.7, Color::WHITE);
    let px = (h * 0.12).clamp(8.0, 96.0);
    let style = TextStyle { px, spacing: 0.0, color: Color::WHITE };
    let baseline = h * 0.7 + (h * 0.3 + px * 0.7) / 2.0;
    font(FontName::Bold).draw(&mut pixmap, &clock(now, true), w * 0.04, baseline, style);
    let label = format!("#{n}");
    let face = font(FontName::Regular);
    face.draw(&mut pixmap, &label, w * 0.96 - face.width(&label, px, 0.0), baseline, style);
    pixmap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_frames_differ() {
        let now = SystemTime::now();
        let a = draw_pattern(160, 90, 10.0, 1, now);
        let b = draw_pattern(160, 90, 10.0, 2, now);
        assert_ne!(a.data(), b.data());
    }
}
