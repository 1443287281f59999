//! Text with fontdue onto tiny-skia pixmaps: measuring by the font's real
//! glyph metrics (so badges fit their text) and drawing from a glyph cache
//! (rasterizing is the expensive part; a badge reuses a dozen glyphs).

use std::sync::{Arc, OnceLock};

use fontdue::{Font, FontSettings, Metrics};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use tiny_skia::{Color, Pixmap};

static DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// The bundled faces templates can name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FontName {
    #[default]
    Regular,
    Bold,
}

/// Size, letter spacing and colour of drawn text.
#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    pub px: f32,
    pub spacing: f32,
    pub color: Color,
}

/// Bytes of rasterized glyphs kept per font at most. Anonymous URLs choose
/// the characters, so the cache is bounded by weight, least used first out.
pub const GLYPH_CACHE_BYTES: u64 = 4 << 20;

/// A font plus its rasterized glyphs, shared by every renderer.
pub struct TextRenderer {
    font: Font,
    glyphs: Cache<(char, u32), Arc<Glyph>, GlyphBytes>,
}

struct Glyph {
    metrics: Metrics,
    coverage: Vec<u8>,
}

#[derive(Clone)]
struct GlyphBytes;

impl Weighter<(char, u32), Arc<Glyph>> for GlyphBytes {
    fn weight(&self, _key: &(char, u32), glyph: &Arc<Glyph>) -> u64 {
        glyph.coverage.len() as u64 + 96
    }
}

/// The bundled DejaVu Sans, loaded once per process.
pub fn default_text() -> &'static TextRenderer {
    font(FontName::Regular)
}

/// A bundled face, loaded once per process.
pub fn font(name: FontName) -> &'static TextRenderer {
    static REGULAR: OnceLock<TextRenderer> = OnceLock::new();
    static BOLD: OnceLock<TextRenderer> = OnceLock::new();
    let (cell, bytes) = match name {
        FontName::Regular => (&REGULAR, DEJAVU_SANS),
        FontName::Bold => (&BOLD, DEJAVU_SANS_BOLD),
    };
    cell.get_or_init(|| TextRenderer::new(bytes).expect("bundled font parses"))
}

impl TextRenderer {
    pub fn new(font_bytes: &[u8]) -> Result<TextRenderer, String> {
        let font = Font::from_bytes(font_bytes, FontSettings::default()).map_err(|e| e.to_string())?;
        Ok(TextRenderer { font, glyphs: Cache::with_weighter(4096, GLYPH_CACHE_BYTES, GlyphBytes) })
    }

    /// Advance width of `text` at `px`, kerning and `spacing` between
    /// letters included.
    pub fn width(&self, text: &str, px: f32, spacing: f32) -> f32 {
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            if let Some(p) = prev {
                width += self.font.horizontal_kern(p, c, px).unwrap_or(0.0) + spacing;
            }
            width += self.font.metrics(c, px).advance_width;
            prev = Some(c);
        }
        width
    }

    /// Baseline that centres the font's ascent/descent box in `height`.
    pub fn centered_baseline(&self, height: f32, px: f32) -> f32 {
        match self.font.horizontal_line_metrics(px) {
            Some(m) => ((height + m.ascent + m.descent) / 2.0).round(),
            None => (height * 0.7).round(),
        }
    }

    /// Draws `text` with its left edge at `x` and baseline at `baseline`.
    pub fn draw(&self, pixmap: &mut Pixmap, text: &str, x: f32, baseline: f32, style: TextStyle) {
        let TextStyle { px, spacing, color } = style;
        let glyphs = self.glyphs(text, px);
        let mut pen = x;
        let mut prev = None;
        for (c, glyph) in text.chars().zip(glyphs) {
            if let Some(p) = prev {
                pen += self.font.horizontal_kern(p, c, px).unwrap_or(0.0) + spacing;
            }
            let m = glyph.metrics;
            let left = (pen + m.xmin as f32).round() as i32;
            let top = (baseline - m.ymin as f32 - m.height as f32).round() as i32;
            blend_coverage(pixmap, &glyph.coverage, m.width, left, top, color);
            pen += m.advance_width;
            prev = Some(c);
        }
    }

    /// The rasterized glyphs of `text`.
    fn glyphs(&self, text: &str, px: f32) -> Vec<Arc<Glyph>> {
        text.chars()
            .map(|c| {
                let key = (c, px.to_bits());
                self.glyphs.get(&key).unwrap_or_else(|| {
                    let (metrics, coverage) = self.font.rasterize(c, px);
                    let glyph = Arc::new(Glyph { metrics, coverage });
                    self.glyphs.insert(key, glyph.clone());
                    glyph
                })
            })
            .collect()
    }

    /// Bytes of glyphs held now.
    pub fn cached_bytes(&self) -> u64 {
        self.glyphs.weight()
    }
}

/// Source-over blend of a solid colour through an 8-bit coverage mask, in
/// tiny-skia's premultiplied RGBA.
fn blend_coverage(pixmap: &mut Pixmap, coverage: &[u8], width: usize, left: i32, top: i32, color: Color) {
    if width == 0 {
        return;
    }
    let (pw, ph) = (pixmap.width() as i32, pixmap.height() as i32);
    let rgba = color.premultiply().to_color_u8();
    let src = [rgba.red(), rgba.green(), rgba.blue(), rgba.alpha()];
    let data = pixmap.data_mut();
    for (row, line) in coverage.chunks(width).enumerate() {
        let y = top + row as i32;
        if y < 0 || y >= ph {
            continue;
        }
        for (col, &cov) in line.iter().enumerate() {
            let x = left + col as i32;
            if cov == 0 || x < 0 || x >= pw {
                continue;
            }
            let i = ((y * pw + x) * 4) as usize;
            let a = u32::from(cov);
            let inv = 255 - (u32::from(src[3]) * a + 127) / 255;
            for k in 0..4 {
                let s = (u32::from(src[k]) * a + 127) / 255;
                let d = (u32::from(data[i + k]) * inv + 127) / 255;
                data[i + k] = (s + d).min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wider_text_measures_wider() {
        let t = default_text();
        assert!(t.width("12345", 11.0, 0.0) > t.width("1", 11.0, 0.0));
        assert!(t.width("12345", 11.0, 1.0) == t.width("12345", 11.0, 0.0) + 4.0);
        assert!(t.width("", 11.0, 0.0) == 0.0);
        assert!(font(FontName::Bold).width("88", 11.0, 0.0) > t.width("88", 11.0, 0.0));
    }

    #[test]
    fn drawing_marks_pixels_inside_bounds_only() {
        let t = default_text();
        let mut p = Pixmap::new(40, 20).unwrap();
        let style = TextStyle { px: 11.0, spacing: 0.0, color: Color::WHITE };
        t.draw(&mut p, "8", 2.0, 14.0, style);
        let lit = p.pixels().iter().filter(|px| px.alpha() > 0).count();
        assert!(lit > 10, "glyph drew {lit} pixels");
        // Off-canvas text must not panic.
        t.draw(&mut p, "888", -30.0, 100.0, style);
    }
}
