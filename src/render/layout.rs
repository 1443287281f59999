//! Checks and colours shared by the template kinds (badge, counter,
//! sparkline): a field's placeholders, colour fields and numeric ranges are
//! validated the same way, and colour fields resolve the same way.

use tiny_skia::Color;

use super::color::parse_color;
use super::format::{Piece, Values, expand, parse};

/// `field`'s placeholders are well formed and known.
pub fn check_text(field: &str, text: &str) -> Result<(), String> {
    parse(text).map(|_| ()).map_err(|e| format!("{field}: {e}"))
}

/// `field` is a colour, or placeholders whose defaults are colours.
pub fn check_color(field: &str, text: &str) -> Result<(), String> {
    let pieces = parse(text).map_err(|e| format!("{field}: {e}"))?;
    if let [Piece::Literal(literal)] = pieces[..] {
        parse_color(literal).map_err(|e| format!("{field}: {e}"))?;
    }
    for piece in pieces {
        if let Piece::Placeholder { default: Some(d), .. } = piece {
            parse_color(d).map_err(|e| format!("{field}: default {e}"))?;
        }
    }
    Ok(())
}

pub fn check_range(field: &str, value: f32, lo: f32, hi: f32) -> Result<(), String> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(format!("{field}: {value} is out of range: expected {lo} to {hi}"))
    }
}

/// A colour field with its placeholders filled; values that are not colours
/// (refused at write time, so only from odd templates) read as light grey.
pub fn resolve_color(text: &str, values: &dyn Values) -> Color {
    let expanded = expand(text, values, Default::default());
    parse_color(&expanded).unwrap_or_else(|_| Color::from_rgba8(0x9f, 0x9f, 0x9f, 255))
}
