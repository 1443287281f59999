//! Text onto tiny-skia pixmaps: measured by the faces' real metrics (so
//! badges fit their text) and drawn from a glyph cache (rasterizing is the
//! expensive part; a badge reuses a dozen glyphs). Text the embedded DejaVu
//! Sans draws alone, one glyph per character (Latin, Greek, Cyrillic), goes
//! character by character with its kerning, as it always did; any other
//! text is laid out by `shape` (fallback faces, bidi, HarfBuzz shaping) and
//! its shaped runs are cached, so a live badge shapes each distinct text once.

use std::sync::{Arc, OnceLock};

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use rustybuzz::ttf_parser::{self, GlyphId};
use tiny_skia::{Color, FillRule, Mask, PathBuilder, Pixmap, PixmapPaint, Transform};

use super::fonts::{self, BOLD, Face, REGULAR};
use super::shape::{self, ShapedRun};

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
/// Bytes of shaped runs kept per font at most (the text and its glyphs).
pub const SHAPED_CACHE_BYTES: u64 = 2 << 20;

/// One of the embedded faces with its fallbacks, and its caches; shared by
/// every renderer.
pub struct TextRenderer {
    primary: u16,
    /// `(face, glyph, px bits)` → its pixels.
    glyphs: Cache<(u16, u16, u32), Arc<Glyph>, GlyphBytes>,
    shaped: Cache<String, Arc<Vec<ShapedRun>>, RunBytes>,
}

struct Glyph {
    /// Of its top-left pixel, from the pen on the baseline (y down).
    left: i32,
    top: i32,
    width: usize,
    pixels: Pixels,
}

enum Pixels {
    /// How much of each pixel the glyph covers: drawn in the text's colour.
    Coverage(Vec<u8>),
    /// A colour emoji's own pixels (premultiplied).
    Color(Pixmap),
}

#[derive(Clone)]
struct GlyphBytes;

impl Weighter<(u16, u16, u32), Arc<Glyph>> for GlyphBytes {
    fn weight(&self, _key: &(u16, u16, u32), glyph: &Arc<Glyph>) -> u64 {
        let pixels = match &glyph.pixels {
            Pixels::Coverage(c) => c.len(),
            Pixels::Color(p) => p.data().len(),
        };
        pixels as u64 + 96
    }
}

#[derive(Clone)]
struct RunBytes;

impl Weighter<String, Arc<Vec<ShapedRun>>> for RunBytes {
    fn weight(&self, text: &String, runs: &Arc<Vec<ShapedRun>>) -> u64 {
        let glyph = std::mem::size_of::<shape::ShapedGlyph>();
        let glyphs: usize = runs.iter().map(|r| r.glyphs.capacity() * glyph).sum();
        // The text, the runs, their glyphs, and the entry's own overhead.
        (text.capacity() + runs.capacity() * std::mem::size_of::<ShapedRun>() + glyphs + 128) as u64
    }
}

/// The embedded DejaVu Sans with its fallbacks, loaded once per process.
pub fn default_text() -> &'static TextRenderer {
    font(FontName::Regular)
}

/// An embedded face with its fallbacks, loaded once per process.
pub fn font(name: FontName) -> &'static TextRenderer {
    static REGULAR_TEXT: OnceLock<TextRenderer> = OnceLock::new();
    static BOLD_TEXT: OnceLock<TextRenderer> = OnceLock::new();
    let (cell, primary) = match name {
        FontName::Regular => (&REGULAR_TEXT, REGULAR),
        FontName::Bold => (&BOLD_TEXT, BOLD),
    };
    cell.get_or_init(|| TextRenderer::new(primary))
}

/// A glyph placed on a line: `x` from the line's left edge and `y` up from
/// the baseline, in pixels.
struct Placed {
    face: u16,
    id: u16,
    x: f32,
    y: f32,
}

impl TextRenderer {
    fn new(primary: u16) -> TextRenderer {
        TextRenderer {
            primary,
            glyphs: Cache::with_weighter(4096, GLYPH_CACHE_BYTES, GlyphBytes),
            shaped: Cache::with_weighter(1024, SHAPED_CACHE_BYTES, RunBytes),
        }
    }

    fn face(&self) -> &'static Face {
        &fonts::set().faces[self.primary as usize]
    }

    fn fontdue(&self) -> &'static fontdue::Font {
        self.face().fontdue.as_ref().expect("the embedded faces have fontdue")
    }

    fn is_simple(&self, text: &str) -> bool {
        let font = self.fontdue();
        // With a colour face, a character shown as emoji by default (⚡, ☕)
        // goes the shaped way, to be drawn in colour.
        let colour = fonts::set().has_colour();
        shape::is_simple(text, |c| font.lookup_glyph_index(c) != 0 && !(colour && fonts::wants_emoji(c, None)))
    }

    /// The shaped runs of `text` (cached).
    pub fn shaped(&self, text: &str) -> Arc<Vec<ShapedRun>> {
        if let Some(runs) = self.shaped.get(text) {
            return runs;
        }
        let mut runs = shape::shape(fonts::set(), self.primary, text);
        runs.shrink_to_fit();
        let runs = Arc::new(runs);
        self.shaped.insert(text.to_string(), runs.clone());
        runs
    }

    /// The glyphs of `text` placed on one line at `px`, and its width.
    fn layout(&self, text: &str, px: f32, spacing: f32) -> (Vec<Placed>, f32) {
        let mut placed = Vec::new();
        let mut pen = 0.0;
        if self.is_simple(text) {
            // One glyph per character, kerned: the hot path, as before shaping.
            let font = self.fontdue();
            let mut prev = None;
            for c in text.chars() {
                let id = font.lookup_glyph_index(c);
                if let Some(p) = prev {
                    pen += font.horizontal_kern_indexed(p, id, px).unwrap_or(0.0) + spacing;
                }
                placed.push(Placed { face: self.primary, id, x: pen, y: 0.0 });
                pen += font.metrics_indexed(id, px).advance_width;
                prev = Some(id);
            }
            return (placed, pen);
        }
        let runs = self.shaped(text);
        let mut last_cluster = None;
        for run in runs.iter() {
            let scale = px / fonts::set().faces[run.face as usize].units_per_em();
            for g in &run.glyphs {
                if last_cluster.is_some_and(|c| c != g.cluster) {
                    pen += spacing;
                }
                last_cluster = Some(g.cluster);
                let (x, y) = (pen + g.x_offset as f32 * scale, g.y_offset as f32 * scale);
                placed.push(Placed { face: run.face, id: g.id, x, y });
                pen += g.x_advance as f32 * scale;
            }
        }
        (placed, pen)
    }

    /// Advance width of `text` at `px`, kerning and `spacing` between
    /// letters included.
    pub fn width(&self, text: &str, px: f32, spacing: f32) -> f32 {
        self.layout(text, px, spacing).1
    }

    /// Baseline that centres the font's ascent/descent box in `height`.
    pub fn centered_baseline(&self, height: f32, px: f32) -> f32 {
        match self.fontdue().horizontal_line_metrics(px) {
            Some(m) => ((height + m.ascent + m.descent) / 2.0).round(),
            None => (height * 0.7).round(),
        }
    }

    /// Draws `text` with its left edge at `x` and baseline at `baseline`.
    /// Colour glyphs keep their colours in opaque text; in translucent text
    /// (a shadow) they are drawn as shapes in its colour.
    pub fn draw(&self, pixmap: &mut Pixmap, text: &str, x: f32, baseline: f32, style: TextStyle) {
        let (placed, _) = self.layout(text, style.px, style.spacing);
        for p in placed {
            let glyph = self.glyph(p.face, p.id, style.px);
            let left = (x + p.x).round() as i32 + glyph.left;
            let top = (baseline - p.y).round() as i32 + glyph.top;
            match &glyph.pixels {
                Pixels::Coverage(coverage) => blend_coverage(pixmap, coverage, glyph.width, left, top, style.color),
                Pixels::Color(image) if style.color.alpha() >= 1.0 => {
                    pixmap.draw_pixmap(left, top, image.as_ref(), &PixmapPaint::default(), Transform::identity(), None);
                }
                Pixels::Color(image) => {
                    let alpha: Vec<u8> = image.pixels().iter().map(|p| p.alpha()).collect();
                    blend_coverage(pixmap, &alpha, glyph.width, left, top, style.color);
                }
            }
        }
    }

    /// The rasterized glyph `id` of `face` at `px` (cached).
    fn glyph(&self, face: u16, id: u16, px: f32) -> Arc<Glyph> {
        let key = (face, id, px.to_bits());
        if let Some(glyph) = self.glyphs.get(&key) {
            return glyph;
        }
        let glyph = Arc::new(rasterize(&fonts::set().faces[face as usize], id, px));
        self.glyphs.insert(key, glyph.clone());
        glyph
    }

    /// Bytes of glyphs and shaped runs held now.
    pub fn cached_bytes(&self) -> u64 {
        self.glyphs.weight() + self.shaped.weight()
    }
}

fn rasterize(face: &Face, id: u16, px: f32) -> Glyph {
    if let Some(font) = &face.fontdue {
        let (m, coverage) = font.rasterize_indexed(id, px);
        return Glyph {
            left: m.xmin,
            top: -(m.ymin + m.height as i32),
            width: m.width,
            pixels: Pixels::Coverage(coverage),
        };
    }
    let empty = || Glyph { left: 0, top: 0, width: 0, pixels: Pixels::Coverage(Vec::new()) };
    if face.color
        && let Some(glyph) = color_bitmap(face, id, px)
    {
        return glyph;
    }
    outline(face, id, px).unwrap_or_else(empty)
}

/// A glyph's outline, filled with antialiasing (how fallback faces draw).
fn outline(face: &Face, id: u16, px: f32) -> Option<Glyph> {
    struct Builder(PathBuilder, f32);
    impl ttf_parser::OutlineBuilder for Builder {
        fn move_to(&mut self, x: f32, y: f32) {
            self.0.move_to(x * self.1, -y * self.1);
        }
        fn line_to(&mut self, x: f32, y: f32) {
            self.0.line_to(x * self.1, -y * self.1);
        }
        fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
            self.0.quad_to(x1 * self.1, -y1 * self.1, x * self.1, -y * self.1);
        }
        fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
            let s = self.1;
            self.0.cubic_to(x1 * s, -y1 * s, x2 * s, -y2 * s, x * s, -y * s);
        }
        fn close(&mut self) {
            self.0.close();
        }
    }
    let mut builder = Builder(PathBuilder::new(), px / face.units_per_em());
    face.shaper.outline_glyph(GlyphId(id), &mut builder)?;
    let path = builder.0.finish()?;
    let b = path.bounds();
    let (left, top) = (b.left().floor(), b.top().floor());
    // A glyph reaching far outside its em (a broken font) is cut to a sane box.
    let limit = (2.0 * px + 16.0) as u32;
    let width = ((b.right().ceil() - left) as u32).clamp(1, limit);
    let height = ((b.bottom().ceil() - top) as u32).clamp(1, limit);
    let mut mask = Mask::new(width, height)?;
    mask.fill_path(&path, FillRule::Winding, true, Transform::from_translate(-left, -top));
    Some(Glyph {
        left: left as i32,
        top: top as i32,
        width: width as usize,
        pixels: Pixels::Coverage(mask.data().to_vec()),
    })
}

/// A colour emoji's bitmap (CBDT or sbix, PNG), scaled to `px`.
fn color_bitmap(face: &Face, id: u16, px: f32) -> Option<Glyph> {
    let image = face.shaper.glyph_raster_image(GlyphId(id), px.ceil() as u16)?;
    // Emoji strikes are about 128 px; anything far larger is not decoded.
    if image.format != ttf_parser::RasterImageFormat::PNG
        || image.pixels_per_em == 0
        || image.width.max(image.height) > 1024
    {
        return None;
    }
    let source = Pixmap::decode_png(image.data).ok()?;
    let scale = px / f32::from(image.pixels_per_em);
    let width = ((source.width() as f32 * scale).ceil() as u32).max(1);
    let height = ((source.height() as f32 * scale).ceil() as u32).max(1);
    let mut scaled = Pixmap::new(width, height)?;
    let paint = PixmapPaint { quality: tiny_skia::FilterQuality::Bicubic, ..PixmapPaint::default() };
    scaled.draw_pixmap(0, 0, source.as_ref(), &paint, Transform::from_scale(scale, scale), None);
    let left = (f32::from(image.x) * scale).round() as i32;
    let top = -((f32::from(image.y) + f32::from(image.height)) * scale).round() as i32;
    Some(Glyph { left, top, width: width as usize, pixels: Pixels::Color(scaled) })
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
