//! Text the way a browser lays it out: split into runs by direction (the
//! Unicode bidi algorithm, `unicode-bidi`, paragraph direction from the
//! first strong character, as `dir="auto"`), each run split by the face
//! that has its characters (`fonts`), each piece shaped with HarfBuzz's
//! algorithm (`rustybuzz`: Arabic joins, Devanagari conjuncts and matras
//! form, marks attach) and the pieces placed in visual order.
//!
//! Text the embedded face draws whole and that needs no shaping (Latin,
//! Greek, Cyrillic, common symbols) skips all of it: `text` keeps its
//! per-character path for it, as before shaping came, which is the hot path
//! of every live counter.

use std::ops::Range;

use unicode_bidi::BidiInfo;
use unicode_script::{Script, UnicodeScript};
use unicode_segmentation::UnicodeSegmentation;

use super::fonts::{FontSet, wants_emoji};

/// One shaped glyph, in font units of its face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapedGlyph {
    pub id: u16,
    /// Byte offset in the whole text of the cluster it belongs to.
    pub cluster: u32,
    pub x_advance: i32,
    pub x_offset: i32,
    pub y_offset: i32,
}

/// A piece of text shaped in one face and direction; pieces come in visual
/// order (left to right), and so do the glyphs within each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapedRun {
    pub face: u16,
    pub rtl: bool,
    /// Its bytes in the whole text.
    pub range: Range<usize>,
    pub glyphs: Vec<ShapedGlyph>,
}

/// Whether `text` needs none of this: every character is in a script and
/// block drawn one glyph per character, left to right, and the embedded
/// face has it (`has`).
pub fn is_simple(text: &str, has: impl Fn(char) -> bool) -> bool {
    text.chars().all(|c| {
        let u = c as u32;
        let plain = u < 0x0300
            || (0x0370..0x0483).contains(&u)
            || (0x048A..0x0590).contains(&u)
            || (0x2010..0x2028).contains(&u)
            || (0x2030..0x205F).contains(&u)
            || (0x20A0..0x20D0).contains(&u)
            || (0x2100..0x2C00).contains(&u);
        plain && has(c)
    })
}

/// Whether `text`'s paragraph runs right to left (its first strong
/// character is right-to-left, as `dir="auto"`).
pub fn paragraph_is_rtl(text: &str) -> bool {
    let simple = text.chars().all(|c| (c as u32) < 0x0590);
    !simple && BidiInfo::new(text, None).paragraphs.first().is_some_and(|p| p.level.is_rtl())
}

/// Shapes `text` with faces from `set`, `primary` first.
pub fn shape(set: &FontSet, primary: u16, text: &str) -> Vec<ShapedRun> {
    let bidi = BidiInfo::new(text, None);
    let mut out = Vec::new();
    for paragraph in &bidi.paragraphs {
        let (levels, runs) = bidi.visual_runs(paragraph, paragraph.range.clone());
        for run in runs {
            let rtl = levels[run.start].is_rtl();
            let mut pieces = by_face(set, primary, text, run);
            if rtl {
                pieces.reverse();
            }
            for (range, face) in pieces {
                out.push(shape_piece(set, face, text, range, rtl));
            }
        }
    }
    out
}

/// Characters that need no glyph of their own (joiners, variation
/// selectors, bidi controls, tags, ...): any face "has" them.
fn ignorable(c: char) -> bool {
    matches!(c as u32, 0x00AD | 0x034F | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0xFE00..=0xFE0F | 0xFEFF | 0xE0000..=0xE0FFF)
}

/// Whether `face` draws every character of `text` that needs a glyph.
fn covers(set: &FontSet, face: u16, text: &str) -> bool {
    text.chars().all(|c| ignorable(c) || set.faces[face as usize].has(c))
}

/// What a grapheme cluster is, for choosing its face.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A picture: an emoji, a keycap, a ZWJ sequence.
    Emoji,
    /// Letters of one script.
    Script(Script),
    /// Spaces, digits, punctuation: they go with the text around them.
    Common,
}

fn kind(cluster: &str) -> Kind {
    let mut chars = cluster.chars();
    let first = chars.next().unwrap_or(' ');
    let second = chars.next();
    let emoji = wants_emoji(first, second)
        || (second.is_some() && (cluster.contains('\u{FE0F}') || cluster.contains('\u{20E3}')))
        || (cluster.contains('\u{200D}') && wants_emoji(first, Some('\u{FE0F}')));
    if emoji && !cluster.contains('\u{FE0E}') {
        return Kind::Emoji;
    }
    match cluster.chars().map(|c| c.script()).find(|s| !matches!(s, Script::Common | Script::Inherited)) {
        Some(script) => Kind::Script(script),
        None => Kind::Common,
    }
}

/// Splits `range` of `text` into pieces each one face draws, in logical
/// order. Letters go in runs of one script, emoji in runs of their own: a
/// run takes the first face that has all of it, so a word is shaped in one
/// face (Arabic letters join only within one); failing that, each grapheme
/// cluster takes the first face that has all of it (a base keeps its
/// marks). Spaces, digits and punctuation stay in the face before them if
/// it has them (not an emoji face), else take the first face that does.
fn by_face(set: &FontSet, primary: u16, text: &str, range: Range<usize>) -> Vec<(Range<usize>, u16)> {
    let mut runs: Vec<(Range<usize>, Kind)> = Vec::new();
    for (i, cluster) in text[range.clone()].grapheme_indices(true) {
        let at = range.start + i..range.start + i + cluster.len();
        let kind = kind(cluster);
        match runs.last_mut() {
            Some((r, k)) if *k == kind => r.end = at.end,
            _ => runs.push((at, kind)),
        }
    }
    let mut pieces: Vec<(Range<usize>, u16)> = Vec::new();
    let mut push = |r: Range<usize>, face: u16| match pieces.last_mut() {
        Some((last, f)) if *f == face && last.end == r.start => last.end = r.end,
        _ => pieces.push((r, face)),
    };
    let mut last_face: Option<u16> = None;
    for (run, run_kind) in runs {
        let run_text = &text[run.clone()];
        let clusters = run_text.grapheme_indices(true).map(|(i, c)| (run.start + i..run.start + i + c.len(), c));
        if run_kind == Kind::Common {
            for (at, cluster) in clusters {
                let stay = last_face.filter(|&f| !set.faces[f as usize].color && covers(set, f, cluster));
                let first = cluster.chars().find(|c| !ignorable(*c)).unwrap_or(' ');
                let face = stay.or_else(|| set.face_for(primary, first, false)).unwrap_or(primary);
                push(at, face);
                last_face = Some(face);
            }
            continue;
        }
        let emoji = run_kind == Kind::Emoji;
        // The faces that could draw all of it: each character's first face.
        let mut candidates: Vec<u16> = Vec::new();
        for c in run_text.chars().filter(|c| !ignorable(*c)) {
            if candidates.len() == 8 {
                break;
            }
            if let Some(face) = set.face_for(primary, c, emoji).filter(|f| !candidates.contains(f)) {
                candidates.push(face);
            }
        }
        if let Some(face) = candidates.iter().copied().find(|&f| covers(set, f, run_text)) {
            push(run, face);
            last_face = Some(face);
            continue;
        }
        for (at, cluster) in clusters {
            let first = cluster.chars().find(|c| !ignorable(*c)).unwrap_or(' ');
            let wanted = set.face_for(primary, first, emoji);
            let covering = candidates.iter().copied().chain(wanted).find(|&f| covers(set, f, cluster));
            let face = covering.or(wanted).unwrap_or(primary);
            push(at, face);
            last_face = Some(face);
        }
    }
    pieces
}

fn shape_piece(set: &FontSet, face: u16, text: &str, range: Range<usize>, rtl: bool) -> ShapedRun {
    let mut buffer = rustybuzz::UnicodeBuffer::new();
    buffer.push_str(&text[range.clone()]);
    let direction = if rtl { rustybuzz::Direction::RightToLeft } else { rustybuzz::Direction::LeftToRight };
    buffer.set_direction(direction);
    buffer.guess_segment_properties();
    let plan = set.plan(face, direction, buffer.script());
    let shaped = rustybuzz::shape_with_plan(&set.faces[face as usize].shaper, &plan, buffer);
    let glyphs = shaped
        .glyph_infos()
        .iter()
        .zip(shaped.glyph_positions())
        .map(|(info, pos)| ShapedGlyph {
            id: info.glyph_id as u16,
            cluster: range.start as u32 + info.cluster,
            x_advance: pos.x_advance,
            x_offset: pos.x_offset,
            y_offset: pos.y_offset,
        })
        .collect();
    ShapedRun { face, rtl, range, glyphs }
}

/// Clusters in `runs` (letter spacing goes between them).
pub fn clusters(runs: &[ShapedRun]) -> usize {
    let mut count = 0;
    let mut last = None;
    for g in runs.iter().flat_map(|r| r.glyphs.iter()) {
        if last != Some(g.cluster) {
            count += 1;
            last = Some(g.cluster);
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fonts::{REGULAR, set};

    #[test]
    fn latin_and_cyrillic_are_simple_and_arabic_is_not() {
        let has = |_| true;
        assert!(is_simple("build passing 42 € — Привет", has));
        assert!(!is_simple("مرحبا", has));
        assert!(!is_simple("e\u{301}", has), "a combining mark needs shaping");
        assert!(!is_simple("नमस्ते", has));
        assert!(!is_simple("ok", |c| c != 'k'), "a character the face lacks");
    }

    #[test]
    fn arabic_joins_and_reads_right_to_left() {
        let runs = shape(set(), REGULAR, "مرحبا");
        assert_eq!(runs.len(), 1);
        assert!(runs[0].rtl);
        // Visual order: the last letter's glyph comes first.
        let clusters: Vec<u32> = runs[0].glyphs.iter().map(|g| g.cluster).collect();
        assert!(clusters.windows(2).all(|w| w[0] >= w[1]), "{clusters:?}");
        // Joined forms: not the isolated glyphs the characters map to.
        let face = &set().faces[REGULAR as usize];
        let isolated: Vec<u16> = "مرحبا".chars().rev().map(|c| face.shaper.glyph_index(c).unwrap().0).collect();
        let shaped: Vec<u16> = runs[0].glyphs.iter().map(|g| g.id).collect();
        assert_ne!(shaped, isolated);
    }

    #[test]
    fn mixed_text_follows_the_bidi_algorithm() {
        // An Arabic paragraph (first strong character) with a Latin word:
        // the Latin run is placed left of the Arabic one.
        let text = "مرحبا world";
        let runs = shape(set(), REGULAR, text);
        let latin = runs.iter().position(|r| !r.rtl && text[r.range.clone()].contains("world")).unwrap();
        let arabic = runs.iter().position(|r| r.rtl && text[r.range.clone()].contains('م')).unwrap();
        assert!(latin < arabic, "{runs:?}");
        assert_eq!(clusters(&shape(set(), REGULAR, "ab")), 2);
    }
}
