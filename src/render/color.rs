//! Colours as badge users write them: shields' named colours (`brightgreen`),
//! hex with or without `#` (`4c1`, `#44cc11ff`), or any CSS colour
//! (`rebeccapurple`, `rgb(0 128 0)`); and the text colour readable on a
//! background.

use tiny_skia::Color;

/// shields.io's named colours, so `color: "brightgreen"` means what it does there.
const NAMED: &[(&str, &str)] = &[
    ("brightgreen", "#44cc11"),
    ("green", "#97ca00"),
    ("yellowgreen", "#a4a61d"),
    ("yellow", "#dfb317"),
    ("orange", "#fe7d37"),
    ("red", "#e05d44"),
    ("blue", "#007ec6"),
    ("lightgrey", "#9f9f9f"),
    ("lightgray", "#9f9f9f"),
    ("grey", "#555555"),
    ("gray", "#555555"),
    ("success", "#44cc11"),
    ("important", "#fe7d37"),
    ("critical", "#e05d44"),
    ("informational", "#007ec6"),
    ("inactive", "#9f9f9f"),
];

pub fn parse_color(s: &str) -> Result<Color, String> {
    let s = s.trim();
    if let Some((_, hex)) = NAMED.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)) {
        return parse_hex(&hex[1..]).ok_or_else(|| unreachable_named(s));
    }
    if let Some(color) = parse_hex(s.strip_prefix('#').unwrap_or(s)) {
        return Ok(color);
    }
    let css = csscolorparser::parse(s).map_err(|_| {
        format!(
            "{s:?} is not a colour: use a shields name (brightgreen), hex (#4c1) or a CSS colour (teal, rgb(0 128 0))"
        )
    })?;
    Ok(Color::from_rgba(css.r, css.g, css.b, css.a).unwrap_or(Color::BLACK))
}

fn unreachable_named(s: &str) -> String {
    format!("named colour {s:?} has a bad table entry")
}

fn parse_hex(hex: &str) -> Option<Color> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    let nibble = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok().map(|v| v * 17);
    let (r, g, b, a) = match hex.len() {
        3 => (nibble(0)?, nibble(1)?, nibble(2)?, 255),
        6 => (byte(0)?, byte(2)?, byte(4)?, 255),
        8 => (byte(0)?, byte(2)?, byte(4)?, byte(6)?),
        _ => return None,
    };
    Some(Color::from_rgba8(r, g, b, a))
}

/// `#rrggbb`, or `#rrggbbaa` when not opaque (SVG output, cache keys).
pub fn hex(color: Color) -> String {
    let c = color.to_color_u8();
    match c.alpha() {
        255 => format!("#{:02x}{:02x}{:02x}", c.red(), c.green(), c.blue()),
        a => format!("#{:02x}{:02x}{:02x}{a:02x}", c.red(), c.green(), c.blue()),
    }
}

/// White on dark backgrounds, dark grey on light ones (relative luminance).
pub fn text_color_on(bg: Color) -> Color {
    let lin = |c: f32| {
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    let l = 0.2126 * lin(bg.red()) + 0.7152 * lin(bg.green()) + 0.0722 * lin(bg.blue());
    if l > 0.45 { Color::from_rgba8(0x33, 0x33, 0x33, 255) } else { Color::WHITE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_names() {
        assert_eq!(parse_color("#4c1").unwrap().to_color_u8().green(), 0xcc);
        assert_eq!(parse_color("44cc11").unwrap().to_color_u8().red(), 0x44);
        assert_eq!(parse_color("BrightGreen").unwrap(), parse_color("#44cc11").unwrap());
        assert_eq!(parse_color("#00000080").unwrap().to_color_u8().alpha(), 0x80);
        assert!(parse_color("#12345").is_err());
        assert!(parse_color("nope").is_err());
        assert_eq!(parse_color("teal").unwrap().to_color_u8().green(), 128);
        assert_eq!(parse_color("rgb(255 0 0)").unwrap().to_color_u8().red(), 255);
        assert!(parse_color("#ééé").is_err());
    }

    #[test]
    fn text_flips_dark_on_light_backgrounds() {
        assert_eq!(text_color_on(parse_color("#555").unwrap()), Color::WHITE);
        assert_ne!(text_color_on(parse_color("#ffff00").unwrap()), Color::WHITE);
    }
}
