//! Picture overlays on camera frames, drawn once per frame for all viewers:
//! privacy masks (filled rectangles, drawn first, so nothing shows through),
//! PNG watermarks with alpha (decoded once at startup) and live badge or
//! tile pictures, each in a corner. Only the pixels under an item change.

use std::sync::Arc;

use tiny_skia::Pixmap;

use super::color::parse_color;
use super::jpeg::Rgb;
use crate::config::camera::{OverlayItemConfig, Position};

/// One picture overlay, ready to draw.
pub struct ImageItem {
    pub kind: ItemKind,
    pub position: Position,
    pub margin: usize,
    pub opacity: f32,
}

pub enum ItemKind {
    Png(Arc<Pixmap>),
    /// A badge, drawn by the caller as it is at each frame.
    Badge {
        name: String,
        template: Option<String>,
    },
    Mask(Vec<MaskRect>, [u8; 3]),
}

impl ImageItem {
    /// The item `config` describes; reads its PNG file. Errors name the key.
    pub fn new(config: &OverlayItemConfig, key: &str) -> Result<ImageItem, String> {
        let kind = if let Some(path) = &config.png {
            let bytes = std::fs::read(path).map_err(|e| format!("{key}.png: {}: {e}", path.display()))?;
            ItemKind::Png(Arc::new(load_png(&bytes).map_err(|e| format!("{key}.png: {}: {e}", path.display()))?))
        } else if let Some(name) = &config.badge {
            ItemKind::Badge { name: name.clone(), template: config.template.clone() }
        } else {
            let c = parse_color(&config.color).map_err(|e| format!("{key}.color: {e}"))?.to_color_u8();
            let rects = config.mask.iter().map(|&[x, y, width, height]| MaskRect { x, y, width, height }).collect();
            ItemKind::Mask(rects, [c.red(), c.green(), c.blue()])
        };
        Ok(ImageItem { kind, position: config.position, margin: config.margin as usize, opacity: config.opacity })
    }
}

/// Draws `items` onto the frame: masks first, then pictures in order.
/// `badge` draws a badge item as it is now (`None`: nothing to draw).
pub fn apply(image: &mut Rgb, items: &[ImageItem], badge: &dyn Fn(&str, Option<&str>) -> Option<Pixmap>) {
    for item in items {
        if let ItemKind::Mask(rects, rgb) = &item.kind {
            mask(image, rects, *rgb);
        }
    }
    for item in items {
        let drawn;
        let pixmap = match &item.kind {
            ItemKind::Mask(..) => continue,
            ItemKind::Png(p) => &**p,
            ItemKind::Badge { name, template } => match badge(name, template.as_deref()) {
                Some(p) => {
                    drawn = p;
                    &drawn
                }
                None => continue,
            },
        };
        let size = (pixmap.width() as usize, pixmap.height() as usize);
        if let Some(at) = place(image, size, item.position, item.margin) {
            composite(image, pixmap, at, item.opacity);
        }
    }
}

/// Largest overlay PNG, each side.
pub const MAX_PNG_SIDE: u32 = 2048;

/// A rectangle to fill, in frame pixels (clipped to the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Fills `rects` with `rgb`.
pub fn mask(image: &mut Rgb, rects: &[MaskRect], rgb: [u8; 3]) {
    for r in rects {
        let x0 = (r.x as usize).min(image.width);
        let x1 = (r.x as usize).saturating_add(r.width as usize).min(image.width);
        let y1 = (r.y as usize).saturating_add(r.height as usize).min(image.height);
        for y in (r.y as usize).min(image.height)..y1 {
            let row = &mut image.pixels[(y * image.width + x0) * 3..(y * image.width + x1) * 3];
            for px in row.chunks_exact_mut(3) {
                px.copy_from_slice(&rgb);
            }
        }
    }
}

/// Where a `w`x`h` item goes in the frame; `None` if it does not fit.
pub fn place(image: &Rgb, (w, h): (usize, usize), position: Position, margin: usize) -> Option<(usize, usize)> {
    if w + margin > image.width || h + margin > image.height {
        return None;
    }
    let x = match position {
        Position::TopLeft | Position::BottomLeft => margin,
        Position::TopRight | Position::BottomRight => image.width - margin - w,
    };
    let y = match position {
        Position::TopLeft | Position::TopRight => margin,
        Position::BottomLeft | Position::BottomRight => image.height - margin - h,
    };
    Some((x, y))
}

/// Blends `pixmap` (premultiplied RGBA) onto the frame at `at`, scaled by
/// `opacity` (0 to 1): source-over, pixel by pixel, on the item's box only.
pub fn composite(image: &mut Rgb, pixmap: &Pixmap, (x, y): (usize, usize), opacity: f32) {
    let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
    let o = (opacity.clamp(0.0, 1.0) * 256.0) as u32;
    let src = pixmap.data();
    for row in 0..h.min(image.height.saturating_sub(y)) {
        let cols = w.min(image.width.saturating_sub(x));
        let dst = &mut image.pixels[((y + row) * image.width + x) * 3..][..cols * 3];
        let from = &src[row * w * 4..][..cols * 4];
        for (d, s) in dst.chunks_exact_mut(3).zip(from.chunks_exact(4)) {
            let a = (u32::from(s[3]) * o) >> 8;
            if a == 0 {
                continue;
            }
            for c in 0..3 {
                let premul = (u32::from(s[c]) * o) >> 8;
                d[c] = (premul + (u32::from(d[c]) * (255 - a) + 127) / 255).min(255) as u8;
            }
        }
    }
}

/// A PNG file as a pixmap, refused past `MAX_PNG_SIDE`.
pub fn load_png(bytes: &[u8]) -> Result<Pixmap, String> {
    let pixmap = Pixmap::decode_png(bytes).map_err(|e| format!("not a readable PNG: {e}"))?;
    if pixmap.width() > MAX_PNG_SIDE || pixmap.height() > MAX_PNG_SIDE {
        return Err(format!("{}x{} is larger than {MAX_PNG_SIDE}x{MAX_PNG_SIDE}", pixmap.width(), pixmap.height()));
    }
    Ok(pixmap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey() -> Rgb {
        Rgb { width: 64, height: 48, pixels: vec![100; 64 * 48 * 3] }
    }

    fn changed(a: &Rgb, b: &Rgb) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for y in 0..a.height {
            for x in 0..a.width {
                let i = (y * a.width + x) * 3;
                if a.pixels[i..i + 3] != b.pixels[i..i + 3] {
                    out.push((x, y));
                }
            }
        }
        out
    }

    #[test]
    fn items_change_exactly_their_pixels() {
        let mut image = grey();
        mask(&mut image, &[MaskRect { x: 60, y: 0, width: 100, height: 2 }], [0, 0, 0]);
        let masked = changed(&grey(), &image);
        assert_eq!(masked.len(), 4 * 2, "clipped to the frame");
        assert!(masked.iter().all(|&(x, y)| x >= 60 && y < 2));

        let mut logo = Pixmap::new(10, 6).unwrap();
        logo.fill(tiny_skia::Color::from_rgba8(255, 0, 0, 255));
        let mut image = grey();
        let at = place(&image, (10, 6), Position::BottomRight, 2).unwrap();
        assert_eq!(at, (52, 40));
        composite(&mut image, &logo, at, 1.0);
        let drawn = changed(&grey(), &image);
        assert_eq!(drawn.len(), 60);
        assert!(drawn.iter().all(|&(x, y)| (52..62).contains(&x) && (40..46).contains(&y)));
        assert_eq!(&image.pixels[(41 * 64 + 53) * 3..][..3], &[255, 0, 0]);
        // Half transparent: halfway between.
        let mut half = Pixmap::new(1, 1).unwrap();
        half.fill(tiny_skia::Color::from_rgba8(255, 255, 255, 128));
        let mut image = grey();
        composite(&mut image, &half, (0, 0), 1.0);
        assert!((175..=179).contains(&image.pixels[0]), "{}", image.pixels[0]);
        assert!(place(&grey(), (100, 10), Position::TopLeft, 0).is_none());
    }
}
