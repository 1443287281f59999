//! Stats burned into camera frames: a translucent box with text in a corner.
//! Only the box's pixels pass through tiny-skia; the rest of the decoded
//! frame is untouched, so drawing costs ~0.1 ms even at 1280×720.

use tiny_skia::{Paint, Pixmap, Rect, Transform};

use super::color::parse_color;
use super::jpeg::Rgb;
use super::text::{FontName, TextStyle, font};
use crate::config::camera::{OverlayConfig, Position};

/// An overlay with its colours parsed.
pub struct Overlay {
    config: OverlayConfig,
    color: tiny_skia::Color,
    background: tiny_skia::Color,
}

/// Where the box was drawn, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxRect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Overlay {
    pub fn new(config: &OverlayConfig) -> Result<Overlay, String> {
        let color = parse_color(&config.color).map_err(|e| format!("overlay.color: {e}"))?;
        let background = parse_color(&config.background).map_err(|e| format!("overlay.background: {e}"))?;
        Ok(Overlay { config: config.clone(), color, background })
    }

    pub fn text_template(&self) -> &str {
        &self.config.text
    }

    /// Draws `text` (lines split on `\n`) into `image`; returns the box, or
    /// `None` when the image is too small to hold any of it.
    pub fn draw(&self, image: &mut Rgb, text: &str) -> Option<BoxRect> {
        let face = font(if self.config.bold { FontName::Bold } else { FontName::Regular });
        let px = self.config.size;
        let pad = (px * 0.4).round();
        let line_height = (px * 1.3).round();
        let lines: Vec<&str> = text.lines().collect();
        let text_width = lines.iter().map(|l| face.width(l, px, 0.0)).fold(0.0, f32::max);
        let margin = self.config.margin as usize;
        let width = ((text_width + 2.0 * pad).ceil() as usize).min(image.width.saturating_sub(margin));
        let height =
            ((line_height * lines.len().max(1) as f32 + 2.0 * pad) as usize).min(image.height.saturating_sub(margin));
        if width == 0 || height == 0 {
            return None;
        }
        let x = match self.config.position {
            Position::TopLeft | Position::BottomLeft => margin,
            Position::TopRight | Position::BottomRight => image.width - margin - width,
        };
        let y = match self.config.position {
            Position::TopLeft | Position::TopRight => margin,
            Position::BottomLeft | Position::BottomRight => image.height - margin - height,
        };
        let rect = BoxRect { x, y, width, height };
        let mut pixmap = Pixmap::new(width as u32, height as u32)?;
        copy_in(image, rect, &mut pixmap);
        let mut paint = Paint::default();
        paint.set_color(self.background);
        let all = Rect::from_xywh(0.0, 0.0, width as f32, height as f32)?;
        pixmap.fill_rect(all, &paint, Transform::identity(), None);
        let ascent = face.centered_baseline(line_height, px);
        let style = TextStyle { px, spacing: 0.0, color: self.color };
        for (i, line) in lines.iter().enumerate() {
            face.draw(&mut pixmap, line, pad, pad + i as f32 * line_height + ascent, style);
        }
        copy_out(&pixmap, rect, image);
        Some(rect)
    }
}

/// The box's region of the frame into an opaque pixmap.
fn copy_in(image: &Rgb, r: BoxRect, pixmap: &mut Pixmap) {
    let dst = pixmap.data_mut();
    for row in 0..r.height {
        let src = &image.pixels[((r.y + row) * image.width + r.x) * 3..][..r.width * 3];
        let out = &mut dst[row * r.width * 4..][..r.width * 4];
        for (d, s) in out.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
            d.copy_from_slice(&[s[0], s[1], s[2], 255]);
        }
    }
}

/// The drawn pixmap back into the frame (still opaque, so no demultiply).
fn copy_out(pixmap: &Pixmap, r: BoxRect, image: &mut Rgb) {
    let src = pixmap.data();
    for row in 0..r.height {
        let dst = &mut image.pixels[((r.y + row) * image.width + r.x) * 3..][..r.width * 3];
        let from = &src[row * r.width * 4..][..r.width * 4];
        for (d, s) in dst.chunks_exact_mut(3).zip(from.chunks_exact(4)) {
            d.copy_from_slice(&s[..3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(position: Position) -> OverlayConfig {
        serde_json::from_value(serde_json::json!({ "text": "x", "position": position })).unwrap()
    }

    #[test]
    fn draws_inside_the_box_only() {
        let grey = Rgb { width: 320, height: 180, pixels: vec![128; 320 * 180 * 3] };
        for position in [Position::TopLeft, Position::TopRight, Position::BottomLeft, Position::BottomRight] {
            let overlay = Overlay::new(&config(position)).unwrap();
            let mut image = grey.clone();
            let r = overlay.draw(&mut image, "12 watching\n12:00:00").unwrap();
            assert!(r.x + r.width <= 320 && r.y + r.height <= 180);
            for y in 0..180 {
                for x in 0..320 {
                    let i = (y * 320 + x) * 3;
                    let inside = (r.x..r.x + r.width).contains(&x) && (r.y..r.y + r.height).contains(&y);
                    if !inside {
                        assert_eq!(&image.pixels[i..i + 3], &[128, 128, 128], "outside the box at {x},{y}");
                    }
                }
            }
            let changed = image.pixels.iter().zip(&grey.pixels).filter(|(a, b)| a != b).count();
            assert!(changed > r.width * r.height, "box and text drawn ({position:?})");
        }
    }

    #[test]
    fn tiny_images_do_not_panic() {
        let overlay = Overlay::new(&config(Position::BottomRight)).unwrap();
        let mut image = Rgb { width: 4, height: 4, pixels: vec![0; 48] };
        let _ = overlay.draw(&mut image, "a long line of text that cannot fit");
    }
}
