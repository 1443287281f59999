//! The faces text is drawn with: the embedded DejaVu Sans (regular or bold)
//! first, then the `fonts` files in order, then with `system_fonts` the
//! machine's own. Text takes the first face that has it, as a browser's
//! font fallback does (`shape` applies it a run or a grapheme at a time);
//! an emoji takes a colour face first when one is configured.
//!
//! Loaded once per process, at startup (`install`): each file is
//! memory-mapped and never unmapped, since shaped faces borrow it for the
//! process's life. Which fallback face has each character is worked out
//! once, from the faces' character maps, so a lookup is one hash probe
//! however many faces there are (an anonymous URL chooses the characters).
//! A `fonts` change needs a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustybuzz::ttf_parser;
use unicode_properties::emoji::{EmojiStatus, UnicodeEmoji};

use crate::config::fonts::FontFile;

static DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// The embedded faces' places in the set.
pub const REGULAR: u16 = 0;
pub const BOLD: u16 = 1;

/// Shaping plans kept at most (one per face, direction and script used).
const PLANS: usize = 1024;

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
    /// It has colour bitmaps (CBDT or sbix), which are drawn in colour.
    /// (COLR is not drawn: such a face counts as an outline face.)
    pub color: bool,
    pub fontdue: Option<fontdue::Font>,
}

impl Face {
    fn embedded(bytes: &'static [u8], file: &str) -> Face {
        let shaper = rustybuzz::Face::from_slice(bytes, 0).expect("the embedded font parses");
        let fontdue =
            fontdue::Font::from_bytes(bytes, fontdue::FontSettings::default()).expect("the embedded font parses");
        let family = family(&shaper);
        Face { family, shaper, file: format!("embedded:{file}"), index: 0, color: false, fontdue: Some(fontdue) }
    }

    fn from_data(data: &'static [u8], file: String, index: u32) -> Result<Face, String> {
        let count = ttf_parser::fonts_in_collection(data).unwrap_or(1);
        if index >= count {
            return Err(format!("{file}: has {count} face(s), so index {index} is out of range"));
        }
        let shaper = rustybuzz::Face::from_slice(data, index)
            .ok_or_else(|| format!("{file}: not a font this server reads (TrueType, OpenType or a collection)"))?;
        let tables = shaper.tables();
        let color = tables.cbdt.is_some() || tables.sbix.is_some();
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

/// A shaping plan's face, direction (right to left?) and script tag.
type PlanKey = (u16, bool, [u8; 4]);

/// Every face, and which one each character is drawn with.
pub struct FontSet {
    pub faces: Vec<Face>,
    /// What it was loaded from (`install` loads once).
    files: Vec<FontFile>,
    system: bool,
    /// Character → the first fallback face without colour bitmaps that has it.
    first_plain: HashMap<u32, u16>,
    /// Character → the first colour fallback face that has it.
    first_colour: HashMap<u32, u16>,
    /// SVG's `font-family` list, made once.
    families: String,
    plans: Mutex<HashMap<PlanKey, Arc<rustybuzz::ShapePlan>>>,
}

static SET: OnceLock<FontSet> = OnceLock::new();

/// The process's faces: those `install`ed, else the embedded ones only.
pub fn set() -> &'static FontSet {
    SET.get_or_init(|| FontSet::with(Vec::new(), Vec::new(), false))
}

/// Loads `fonts` (and the machine's fonts with `system`) as the process's
/// fallback faces. Called once at startup, before anything is drawn. A
/// second call with the same fonts (tests in one process) changes nothing;
/// with others it is refused: the faces are the process's for its life.
pub fn install(fonts: &[FontFile], system: bool) -> Result<(), String> {
    let same = |set: &FontSet| set.files == fonts && set.system == system;
    let refused = || Err("fonts: other fonts are loaded already (fonts need a restart)".to_string());
    if let Some(set) = SET.get() {
        return if same(set) { Ok(()) } else { refused() };
    }
    let loaded = FontSet::load(fonts, system)?;
    if same(SET.get_or_init(|| loaded)) { Ok(()) } else { refused() }
}

/// Checks `fonts` as `install` would, for `check-config`: each file opens,
/// is a font and has the face named. Returns how many faces `system` adds.
pub fn check(fonts: &[FontFile], system: bool) -> Result<usize, String> {
    for (i, font) in fonts.iter().enumerate() {
        let path = font.path().display();
        let data = std::fs::read(font.path()).map_err(|e| format!("fonts[{i}]: {path}: {e}"))?;
        let count = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        if font.index() >= count {
            return Err(format!("fonts[{i}]: {path}: has {count} face(s), so index {} is out of range", font.index()));
        }
        ttf_parser::Face::parse(&data, font.index()).map_err(|e| {
            format!("fonts[{i}]: {path}: not a font this server reads (TrueType, OpenType or a collection): {e}")
        })?;
    }
    Ok(if system { system_faces().len() } else { 0 })
}

impl FontSet {
    fn with(fallbacks: Vec<Face>, files: Vec<FontFile>, system: bool) -> FontSet {
        let mut faces = vec![
            Face::embedded(DEJAVU_SANS, "DejaVuSans.ttf"),
            Face::embedded(DEJAVU_SANS_BOLD, "DejaVuSans-Bold.ttf"),
        ];
        // Face numbers are u16 in glyph keys: faces past that are not used.
        faces.extend(fallbacks.into_iter().take(usize::from(u16::MAX) - 2));
        let (mut first_plain, mut first_colour) = (HashMap::new(), HashMap::new());
        for (i, face) in faces.iter().enumerate().skip(2) {
            let first = if face.color { &mut first_colour } else { &mut first_plain };
            let Some(cmap) = face.shaper.tables().cmap else { continue };
            for table in cmap.subtables.into_iter().filter(|t| t.is_unicode()) {
                table.codepoints(|cp| {
                    if table.glyph_index(cp).is_some_and(|g| g.0 != 0) {
                        first.entry(cp).or_insert(i as u16);
                    }
                });
            }
        }
        let families = svg_families(&faces[2..]);
        FontSet { faces, files, system, first_plain, first_colour, families, plans: Mutex::default() }
    }

    fn load(fonts: &[FontFile], system: bool) -> Result<FontSet, String> {
        let mut mapped: HashMap<PathBuf, &'static [u8]> = HashMap::new();
        let mut open = |path: &Path| -> Result<&'static [u8], String> {
            if let Some(data) = mapped.get(path) {
                return Ok(data);
            }
            let data = map(path)?;
            mapped.insert(path.to_path_buf(), data);
            Ok(data)
        };
        let mut faces = Vec::new();
        for (i, font) in fonts.iter().enumerate() {
            let data = open(font.path()).map_err(|e| format!("fonts[{i}]: {e}"))?;
            let face = Face::from_data(data, font.path().display().to_string(), font.index());
            faces.push(face.map_err(|e| format!("fonts[{i}]: {e}"))?);
        }
        if system {
            for (path, index) in system_faces() {
                // A system file that went away or is not a font is skipped:
                // the machine's fonts are a best effort, `fonts` is not.
                let Ok(data) = open(&path) else { continue };
                if let Ok(face) = Face::from_data(data, path.display().to_string(), index) {
                    faces.push(face);
                }
            }
        }
        Ok(FontSet::with(faces, fonts.to_vec(), system))
    }

    /// The face that draws `c` in text whose first face is `primary`
    /// (`REGULAR` or `BOLD`); `emoji`: a colour face first. `None`: no
    /// face has it (the primary draws its missing-glyph box). Text (a
    /// digit, a '#') comes from a colour face only when no other face has
    /// it: an emoji font's digits are keycap parts.
    pub fn face_for(&self, primary: u16, c: char, emoji: bool) -> Option<u16> {
        let colour = self.first_colour.get(&(c as u32)).copied();
        if emoji && colour.is_some() {
            return colour;
        }
        if self.faces[primary as usize].has(c) {
            return Some(primary);
        }
        self.first_plain.get(&(c as u32)).copied().or(colour)
    }

    /// Whether any colour face is loaded.
    pub fn has_colour(&self) -> bool {
        !self.first_colour.is_empty()
    }

    /// The shaping plan of `face` for a direction and script (cached:
    /// making one is most of the cost of shaping a short text).
    pub fn plan(
        &self,
        face: u16,
        direction: rustybuzz::Direction,
        script: rustybuzz::Script,
    ) -> Arc<rustybuzz::ShapePlan> {
        let key = (face, direction == rustybuzz::Direction::RightToLeft, script.tag().to_bytes());
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = plans.get(&key) {
            return plan.clone();
        }
        let shaper = &self.faces[face as usize].shaper;
        let plan = Arc::new(rustybuzz::ShapePlan::new(shaper, direction, Some(script), None, &[]));
        if plans.len() < PLANS {
            plans.insert(key, plan.clone());
        }
        plan
    }

    /// SVG's `font-family` list (the attribute's value).
    pub fn svg_families(&self) -> &str {
        &self.families
    }
}

/// DejaVu Sans first (the badge has its widths), then the first 8
/// fallback families in order (with `system_fonts` there can be hundreds,
/// and the list is in every text element), then `sans-serif`.
fn svg_families(fallbacks: &[Face]) -> String {
    let mut families = vec!["'DejaVu Sans'".to_string(), "Verdana".into(), "Geneva".into()];
    for face in fallbacks {
        if families.len() == 11 {
            break;
        }
        // A CSS string: no quotes, backslashes or line breaks in it.
        let name: String = face.family.chars().filter(|c| !matches!(c, '\\' | '\'' | '"') && !c.is_control()).collect();
        let quoted = format!("'{name}'");
        if !name.is_empty() && !families.contains(&quoted) {
            families.push(quoted);
        }
    }
    families.push("sans-serif".into());
    families.join(",")
}

/// Whether `c` asks for an emoji picture: it is shown as emoji by default,
/// or `next` is the emoji variation selector (U+FE0F); not if `next` is the
/// text one (U+FE0E).
pub fn wants_emoji(c: char, next: Option<char>) -> bool {
    let presentation = matches!(
        c.emoji_status(),
        EmojiStatus::EmojiPresentation
            | EmojiStatus::EmojiPresentationAndModifierBase
            | EmojiStatus::EmojiPresentationAndEmojiComponent
            | EmojiStatus::EmojiPresentationAndModifierAndEmojiComponent
    );
    (presentation || next == Some('\u{FE0F}')) && next != Some('\u{FE0E}')
}

/// Maps `path` for the process's life.
fn map(path: &Path) -> Result<&'static [u8], String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: the mapping is only read, and lives as long as the process.
    // A font file rewritten in place while mapped breaks that (a truncated
    // one stops the process with SIGBUS): docs/badges.md says to replace
    // font files by renaming a new one over them, as dpkg does, which
    // leaves the mapped file as it was.
    let mapped = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Box::leak(Box::new(mapped)))
}

/// The machine's regular upright faces (fontconfig's directories, through
/// fontdb), sans-serif families first: Noto Sans, then the other Noto Sans
/// families (one per script), colour emoji, other sans, then the rest.
fn system_faces() -> Vec<(PathBuf, u32)> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    let mut faces: Vec<(u8, String, PathBuf, u32)> = db
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
