//! The faces text is drawn with: the embedded DejaVu Sans (regular or bold)
//! first, then the `fonts` files in order, then with `system_fonts` the
//! machine's own. Each character takes the first face that has it, as a
//! browser's font fallback does; an emoji takes a colour face first when
//! one is configured.
//!
//! Loaded once per process, at startup (`install`): each file is
//! memory-mapped and never unmapped, since shaped faces borrow it for the
//! process's life; only the pages drawn from are read. A `fonts` change
//! needs a restart.

use std::path::Path;
use std::sync::OnceLock;

use quick_cache::sync::Cache;
use rustybuzz::ttf_parser;
use unicode_properties::emoji::{EmojiStatus, UnicodeEmoji};

use crate::config::fonts::FontFile;

static DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// The embedded faces' places in the set.
pub const REGULAR: u16 = 0;
pub const BOLD: u16 = 1;

/// Characters whose face was looked up, remembered at most.
const COVERAGE_ENTRIES: usize = 8192;

/// One face: shaped by rustybuzz; the embedded ones are also rasterized by
/// fontdue (as they were before fallback came), the others from their
/// outlines or colour bitmaps.
pub struct Face {
    pub shaper: rustybuzz::Face<'static>,
    /// The file (or `embedded:` name), for errors and `framecast shape`.
    pub file: String,
    pub index: u32,
    /// Its family name, for SVG's `font-family`.
    pub family: String,
    /// It has colour glyphs (CBDT, sbix or COLR tables).
    pub color: bool,
    pub fontdue: Option<fontdue::Font>,
}

impl Face {
    fn embedded(bytes: &'static [u8], file: &str) -> Face {
        let shaper = rustybuzz::Face::from_slice(bytes, 0).expect("the embedded font parses");
        let fontdue =
            fontdue::Font::from_bytes(bytes, fontdue::FontSettings::default()).expect("the embedded font parses");
        Face {
            family: family(&shaper),
            shaper,
            file: format!("embedded:{file}"),
            index: 0,
            color: false,
            fontdue: Some(fontdue),
        }
    }

    fn from_data(data: &'static [u8], file: String, index: u32) -> Result<Face, String> {
        let count = ttf_parser::fonts_in_collection(data).unwrap_or(1);
        if index >= count {
            return Err(format!("{file}: has {count} face(s), so index {index} is out of range"));
        }
        let shaper = rustybuzz::Face::from_slice(data, index)
            .ok_or_else(|| format!("{file}: not a font this server reads (TrueType, OpenType or a collection)"))?;
        let tables = shaper.tables();
        let color = tables.cbdt.is_some() || tables.sbix.is_some() || tables.colr.is_some();
        Ok(Face { family: family(&shaper), shaper, file, index, color, fontdue: None })
    }

    pub fn has(&self, c: char) -> bool {
        self.shaper.glyph_index(c).is_some_and(|g| g.0 != 0)
    }

    pub fn units_per_em(&self) -> f32 {
        self.shaper.units_per_em() as f32
    }
}

/// The face's family name (the typographic one where given, as "Noto Sans
/// CJK JP" rather than its style-linked name).
fn family(face: &ttf_parser::Face) -> String {
    let name = |id| face.names().into_iter().find(|n| n.name_id == id && n.is_unicode()).and_then(|n| n.to_string());
    name(ttf_parser::name_id::TYPOGRAPHIC_FAMILY).or_else(|| name(ttf_parser::name_id::FAMILY)).unwrap_or_default()
}

/// Every face, and which one each character is drawn with.
pub struct FontSet {
    pub faces: Vec<Face>,
    /// `(char, bold, emoji)` → the face that draws it (`None`: no face has it).
    coverage: Cache<(char, bool, bool), Option<u16>>,
}

static SET: OnceLock<FontSet> = OnceLock::new();

/// The process's faces: those `install`ed, else the embedded ones only.
pub fn set() -> &'static FontSet {
    SET.get_or_init(|| FontSet::with(Vec::new()))
}

/// Loads `fonts` (and the machine's fonts with `system`) as the process's
/// fallback faces. Called once at startup, before anything is drawn; a
/// later call (tests in one process) keeps the first set.
pub fn install(fonts: &[FontFile], system: bool) -> Result<(), String> {
    let set = FontSet::load(fonts, system)?;
    let _ = SET.set(set);
    Ok(())
}

/// Checks `fonts` as `install` would, for `check-config`: each file opens,
/// is a font and has the face named. Returns how many faces `system` adds.
pub fn check(fonts: &[FontFile], system: bool) -> Result<usize, String> {
    for (i, font) in fonts.iter().enumerate() {
        let data = std::fs::read(font.path()).map_err(|e| format!("fonts[{i}]: {}: {e}", font.path().display()))?;
        let count = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        if font.index() >= count {
            return Err(format!(
                "fonts[{i}]: {}: has {count} face(s), so index {} is out of range",
                font.path().display(),
                font.index()
            ));
        }
        ttf_parser::Face::parse(&data, font.index()).map_err(|e| {
            format!(
                "fonts[{i}]: {}: not a font this server reads (TrueType, OpenType or a collection): {e}",
                font.path().display()
            )
        })?;
    }
    Ok(if system { system_faces().len() } else { 0 })
}

impl FontSet {
    fn with(fallbacks: Vec<Face>) -> FontSet {
        let mut faces = vec![
            Face::embedded(DEJAVU_SANS, "DejaVuSans.ttf"),
            Face::embedded(DEJAVU_SANS_BOLD, "DejaVuSans-Bold.ttf"),
        ];
        faces.extend(fallbacks);
        FontSet { faces, coverage: Cache::new(COVERAGE_ENTRIES) }
    }

    fn load(fonts: &[FontFile], system: bool) -> Result<FontSet, String> {
        let mut faces = Vec::new();
        for (i, font) in fonts.iter().enumerate() {
            let data = map(font.path()).map_err(|e| format!("fonts[{i}]: {e}"))?;
            faces.push(
                Face::from_data(data, font.path().display().to_string(), font.index())
                    .map_err(|e| format!("fonts[{i}]: {e}"))?,
            );
        }
        if system {
            for (path, index) in system_faces() {
                // A system file that went away or is not a font is skipped:
                // the machine's fonts are a best effort, `fonts` is not.
                let Ok(data) = map(&path) else { continue };
                if let Ok(face) = Face::from_data(data, path.display().to_string(), index) {
                    faces.push(face);
                }
            }
        }
        Ok(FontSet::with(faces))
    }

    /// The face that draws `c` in text whose first face is `primary`
    /// (`REGULAR` or `BOLD`); `emoji`: a colour face first. `None`: no
    /// face has it (the primary draws its missing-glyph box).
    pub fn face_for(&self, primary: u16, c: char, emoji: bool) -> Option<u16> {
        let key = (c, primary == BOLD, emoji);
        if let Some(found) = self.coverage.get(&key) {
            return found;
        }
        let fallbacks = (2..self.faces.len() as u16).map(|i| (i, &self.faces[i as usize]));
        let colour = fallbacks.clone().filter(|(_, f)| f.color);
        let chain = std::iter::once((primary, &self.faces[primary as usize])).chain(fallbacks);
        let found =
            if emoji { colour.chain(chain).find(|(_, f)| f.has(c)) } else { chain.clone().find(|(_, f)| f.has(c)) };
        let found = found.map(|(i, _)| i);
        self.coverage.insert(key, found);
        found
    }

    /// The families after DejaVu Sans, in order, for SVG's `font-family`.
    pub fn fallback_families(&self) -> Vec<&str> {
        let mut families: Vec<&str> = Vec::new();
        for face in &self.faces[2..] {
            if !face.family.is_empty() && !families.contains(&face.family.as_str()) {
                families.push(&face.family);
            }
        }
        families
    }
}

/// Whether `c` asks for an emoji picture: it is shown as emoji by default,
/// or `next` is the emoji variation selector (U+FE0F).
pub fn wants_emoji(c: char, next: Option<char>) -> bool {
    let presentation = matches!(
        c.emoji_status(),
        EmojiStatus::EmojiPresentation
            | EmojiStatus::EmojiPresentationAndModifierBase
            | EmojiStatus::EmojiPresentationAndEmojiComponent
            | EmojiStatus::EmojiPresentationAndModifierAndEmojiComponent
    );
    presentation || next == Some('\u{FE0F}')
}

/// Maps `path` for the process's life.
fn map(path: &Path) -> Result<&'static [u8], String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: the file is only read; a font file changed while mapped could
    // show wrong glyphs but not break memory safety of what we own, and
    // fonts are installed packages nobody rewrites in place.
    let mapped = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Box::leak(Box::new(mapped)))
}

/// The machine's regular upright faces (fontconfig's directories, through
/// fontdb), sans-serif families first: Noto Sans, then the other Noto Sans
/// families (one per script), colour emoji, other sans, then the rest.
fn system_faces() -> Vec<(std::path::PathBuf, u32)> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    let mut faces: Vec<(u8, String, std::path::PathBuf, u32)> = db
        .faces()
        .filter(|f| f.style == fontdb::Style::Normal && f.weight == fontdb::Weight::NORMAL)
        .filter_map(|f| {
            let path = match &f.source {
                fontdb::Source::File(path) | fontdb::Source::SharedFile(path, _) => path.clone(),
                fontdb::Source::Binary(_) => return None,
            };
            let family = f.families.first().map(|(name, _)| name.clone()).unwrap_or_default();
            let rank = match family.as_str() {
                "Noto Sans" => 0,
                f if f.starts_with("Noto Sans") => 1,
                "Noto Color Emoji" => 2,
                f if f.contains("Sans") => 3,
                _ => 4,
            };
            Some((rank, family, path, f.index))
        })
        .collect();
    faces.sort();
    faces.dedup_by(|a, b| a.2 == b.2 && a.3 == b.3);
    faces.into_iter().map(|(_, _, path, index)| (path, index)).collect()
}
