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
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
use unicode_script::{Script, UnicodeScript};

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

/// Characters that stay in the face of the character before them: marks,
/// joiners, variation selectors, emoji modifiers and tags.
fn continues_cluster(c: char) -> bool {
    matches!(c as u32, 0x200C | 0x200D | 0xFE00..=0xFE0F | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F | 0xE0100..=0xE01EF)
        || c.general_category_group() == GeneralCategoryGroup::Mark
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

/// Splits `range` of `text` into pieces each one face draws, in logical order.
fn by_face(set: &FontSet, primary: u16, text: &str, range: Range<usize>) -> Vec<(Range<usize>, u16)> {
    let mut pieces: Vec<(Range<usize>, u16)> = Vec::new();
    let mut chars = text[range.clone()].char_indices().peekable();
    let mut after_joiner = false;
    while let Some((i, c)) = chars.next() {
        let at = range.start + i;
        let next = chars.peek().map(|(_, n)| *n);
        let current = pieces.last().map(|(_, f)| *f);
        let face = match current {
            // A mark or joiner goes with its base; so does what a ZWJ joins.
            Some(f) if continues_cluster(c) || after_joiner => f,
            // Spaces, digits and punctuation stay in the face they follow
            // (not in an emoji face, unless they ask for an emoji).
            Some(f)
                if matches!(c.script(), Script::Common | Script::Inherited)
                    && set.faces[f as usize].has(c)
                    && (!set.faces[f as usize].color || wants_emoji(c, next)) =>
            {
                f
            }
            _ => set.face_for(primary, c, wants_emoji(c, next)).unwrap_or(primary),
        };
        after_joiner = c == '\u{200D}';
        match pieces.last_mut() {
            Some((r, f)) if *f == face => r.end = at + c.len_utf8(),
            _ => pieces.push((at..at + c.len_utf8(), face)),
        }
    }
    pieces
}

fn shape_piece(set: &FontSet, face: u16, text: &str, range: Range<usize>, rtl: bool) -> ShapedRun {
    let mut buffer = rustybuzz::UnicodeBuffer::new();
    buffer.push_str(&text[range.clone()]);
    buffer.set_direction(if rtl { rustybuzz::Direction::RightToLeft } else { rustybuzz::Direction::LeftToRight });
    buffer.guess_segment_properties();
    let shaped = rustybuzz::shape(&set.faces[face as usize].shaper, &[], buffer);
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
