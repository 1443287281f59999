//! The frame a camera stream shows while its source is starting or down:
//! viewers stay connected and see why there is no picture.

use tiny_skia::{Color, Paint, Pixmap, Rect, Transform};

use super::jpeg::encode_pixmap;
use super::text::{FontName, TextStyle, font};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Connecting,
    Offline,
    /// A reload removed the camera: the stream's last frame.
    Removed,
}

impl Placeholder {
    fn title(self) -> &'static str {
        match self {
            Placeholder::Connecting => "connecting…",
            Placeholder::Offline => "camera offline",
            Placeholder::Removed => "camera removed",
        }
    }
}

/// A `width`×`height` JPEG saying `kind` for camera `name`; `detail` is a
/// second line (a time, "retrying").
pub fn placeholder_jpeg(kind: Placeholder, name: &str, detail: &str, width: u32, height: u32) -> Vec<u8> {
    let mut pixmap = Pixmap::new(width.max(16), height.max(16)).expect("placeholder size is bounded and non-zero");
    pixmap.fill(Color::from_rgba8(32, 36, 44, 255));
    let (w, h) = (pixmap.width() as f32, pixmap.height() as f32);
    // A hazard stripe along the bottom: recognisable as "not a picture" at any size.
    let mut paint = Paint::default();
    let stripe = (h / 24.0).max(2.0);
    paint.set_color(match kind {
        Placeholder::Connecting => Color::from_rgba8(70, 130, 200, 255),
        Placeholder::Offline | Placeholder::Removed => Color::from_rgba8(200, 60, 50, 255),
    });
    if let Some(r) = Rect::from_xywh(0.0, h - stripe, w, stripe) {
        pixmap.fill_rect(r, &paint, Transform::identity(), None);
    }
    let title_px = (h / 9.0).clamp(8.0, 72.0);
    let small_px = (title_px * 0.45).max(7.0);
    let white = Color::from_rgba8(235, 235, 235, 255);
    let grey = Color::from_rgba8(160, 165, 175, 255);
    let centred = |pixmap: &mut Pixmap, face: FontName, text: &str, px: f32, baseline: f32, color: Color| {
        let f = font(face);
        let x = ((w - f.width(text, px, 0.0)) / 2.0).max(2.0);
        f.draw(pixmap, text, x, baseline, TextStyle { px, spacing: 0.0, color });
    };
    centred(&mut pixmap, FontName::Bold, kind.title(), title_px, h / 2.0, white);
    centred(&mut pixmap, FontName::Regular, name, small_px, h / 2.0 + title_px * 0.9, grey);
    centred(&mut pixmap, FontName::Regular, detail, small_px, h / 2.0 + title_px * 0.9 + small_px * 1.4, grey);
    encode_pixmap(&pixmap, 80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::jpeg::decode;

    #[test]
    fn decodes_at_the_asked_size() {
        let jpeg = placeholder_jpeg(Placeholder::Offline, "porch", "12:00:00", 320, 180);
        let image = decode(&jpeg).unwrap();
        assert_eq!((image.width, image.height), (320, 180));
        // The red stripe along the bottom.
        let i = (178 * 320 + 160) * 3;
        assert!(image.pixels[i] > 150 && image.pixels[i + 1] < 110, "{:?}", &image.pixels[i..i + 3]);
    }
}
