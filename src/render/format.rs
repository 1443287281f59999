//! Template text: `{key}` and `{key|default}` placeholders, and numbers as
//! people read them (`1234`, `1,234`, `1.2k`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// How numeric placeholders are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NumberFormat {
    /// `1234567`
    #[default]
    Plain,
    /// `1,234,567`
    Grouped,
    /// `1.2M`
    Compact,
}

/// What placeholders read: numbers are formatted by the template, text is
/// taken as it is.
pub trait Values {
    fn number(&self, key: &str) -> Option<f64>;
    fn text(&self, key: &str) -> Option<String>;
    /// Recent numeric values, oldest first (sparklines draw them).
    fn history(&self) -> Vec<f64> {
        Vec::new()
    }
    /// The logo a badge shows (`?logo=`, `namedLogo`), if any.
    fn logo(&self) -> Option<super::logo::Logo> {
        None
    }
}

/// Values from a map of strings (`--set key=value`, a badge's state):
/// `value` and `viewers…` read as numbers when they parse as one.
#[derive(Debug, Clone, Default)]
pub struct MapValues {
    pub text: HashMap<String, String>,
    pub history: Vec<f64>,
    pub logo: Option<super::logo::Logo>,
}

impl Values for MapValues {
    fn number(&self, key: &str) -> Option<f64> {
        if key == "value" || key.starts_with("viewers") { self.text.get(key)?.trim().parse().ok() } else { None }
    }
    fn text(&self, key: &str) -> Option<String> {
        self.text.get(key).cloned()
    }
    fn history(&self) -> Vec<f64> {
        self.history.clone()
    }
    fn logo(&self) -> Option<super::logo::Logo> {
        self.logo.clone()
    }
}

/// Placeholder keys a template may use; `viewers:{channel}` reads another
/// channel's live viewer count, e.g. `{viewers:online/lobby}`, and
/// `badge:{name}` another badge's value or message.
pub const KEYS: &[&str] = &[
    "label",
    "message",
    "value",
    "color",
    "label_color",
    "background",
    "viewers",
    // A room's people (`count: "people"`).
    "members",
    "guests",
    "hidden",
    "online",
    "member_names",
];

/// A room's figures (`sources/room_stats.rs`): `{peak_today}` in a room's
/// own template, `{peak_today:ROOM}` anywhere.
/// One list, kept where config checks which resources a placeholder shows.
pub const ROOM_KEYS: &[&str] = crate::config::privacy::ROOM_FIGURES;

/// Whether `key` is a room figure, alone or with a room.
pub fn is_room_key(key: &str) -> bool {
    let (figure, room) = match key.split_once(':') {
        Some((figure, room)) => (figure, Some(room)),
        None => (key, None),
    };
    ROOM_KEYS.contains(&figure) && room.is_none_or(crate::names::valid_name)
}

/// One piece of template text.
#[derive(Debug, PartialEq)]
pub enum Piece<'a> {
    Literal(&'a str),
    Placeholder { key: &'a str, default: Option<&'a str> },
}

/// Splits template text into literals and placeholders; `Err` names what is
/// wrong (an unclosed brace, an unknown key).
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let known = |key: &str| {
        KEYS.contains(&key)
            || is_room_key(key)
            || key.strip_prefix("viewers:").is_some_and(|c| !c.is_empty())
            || key.strip_prefix("badge:").is_some_and(crate::names::valid_name)
    };
    let listing = format!("{}, {}, viewers:{{channel}}, badge:{{name}}", KEYS.join(", "), ROOM_KEYS.join(", "));
    parse_with(text, &known, &listing)
}

/// `parse` for text whose placeholders are `known` (listed as `listing` in errors).
pub fn parse_with<'a>(text: &'a str, known: &dyn Fn(&str) -> bool, listing: &str) -> Result<Vec<Piece<'a>>, String> {
    let pieces = split(text)?;
    for piece in &pieces {
        if let Piece::Placeholder { key, .. } = piece
            && !known(key)
        {
            return Err(format!("{text:?}: unknown placeholder {{{key}}}; known: {listing}"));
        }
    }
    Ok(pieces)
}

/// Literals and placeholders, keys unchecked.
fn split(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(&rest[..open]));
        }
        let close = rest[open..].find('}').ok_or_else(|| format!("{text:?}: unclosed '{{'"))? + open;
        let inner = &rest[open + 1..close];
        let (key, default) = match inner.split_once('|') {
            Some((k, d)) => (k.trim(), Some(d)),
            None => (inner.trim(), None),
        };
        pieces.push(Piece::Placeholder { key, default });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest));
    }
    Ok(pieces)
}

/// Expands placeholders; a missing value takes its default, else nothing.
/// Template text is validated at load, so unparsable text is kept literally.
pub fn expand(text: &str, values: &dyn Values, format: NumberFormat) -> String {
    let Ok(pieces) = split(text) else { return text.to_string() };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Placeholder { key, default } => match values.number(key) {
                Some(n) => out.push_str(&format_number(n, format)),
                None => match values.text(key) {
                    Some(t) => out.push_str(&t),
                    None => out.push_str(default.unwrap_or("")),
                },
            },
        }
    }
    out
}

pub fn format_number(n: f64, format: NumberFormat) -> String {
    if !n.is_finite() {
        return "–".into();
    }
    match format {
        NumberFormat::Plain => plain(n),
        NumberFormat::Grouped => group(&plain(n)),
        NumberFormat::Compact => compact(n),
    }
}

/// Integers without decimals, others with at most two.
fn plain(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn group(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn compact(n: f64) -> String {
    const UNITS: [&str; 5] = ["", "k", "M", "B", "T"];
    let sign = if n < 0.0 { "-" } else { "" };
    let mut v = n.abs();
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return plain((n * 100.0).round() / 100.0);
    }
    // One decimal below 10 (1.2k), none above (12k); rounding may carry up
    // (999,950 reads 1M, not 1000k).
    let mut rounded = if v < 9.95 { (v * 10.0).round() / 10.0 } else { v.round() };
    if rounded >= 1000.0 && unit < UNITS.len() - 1 {
        rounded = 1.0;
        unit += 1;
    }
    let text = if rounded < 10.0 { format!("{rounded:.1}") } else { format!("{rounded:.0}") };
    format!("{sign}{}{}", text.trim_end_matches(".0"), UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Map(HashMap<&'static str, &'static str>);
    impl Values for Map {
        fn number(&self, key: &str) -> Option<f64> {
            self.0.get(key)?.parse().ok()
        }
        fn text(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|s| s.to_string())
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(format_number(1234567.0, NumberFormat::Plain), "1234567");
        assert_eq!(format_number(1234567.0, NumberFormat::Grouped), "1,234,567");
        assert_eq!(format_number(-1234.5, NumberFormat::Grouped), "-1,234.5");
        assert_eq!(format_number(999.0, NumberFormat::Compact), "999");
        assert_eq!(format_number(1234.0, NumberFormat::Compact), "1.2k");
        assert_eq!(format_number(12_345.0, NumberFormat::Compact), "12k");
        assert_eq!(format_number(999_950.0, NumberFormat::Compact), "1M");
        assert_eq!(format_number(2_000_000.0, NumberFormat::Compact), "2M");
        assert_eq!(format_number(-4_500.0, NumberFormat::Compact), "-4.5k");
        assert_eq!(format_number(0.126, NumberFormat::Plain), "0.13");
        assert_eq!(format_number(f64::NAN, NumberFormat::Plain), "–");
    }

    #[test]
    fn placeholders() {
        let v = Map(HashMap::from([("label", "build"), ("value", "1500")]));
        assert_eq!(expand("{label}: {value}", &v, NumberFormat::Compact), "build: 1.5k");
        assert_eq!(expand("{color|lightgrey}", &v, NumberFormat::Plain), "lightgrey");
        assert_eq!(expand("{message}", &v, NumberFormat::Plain), "");
        assert!(parse("{nope}").unwrap_err().contains("unknown placeholder {nope}"));
        assert!(parse("{label").unwrap_err().contains("unclosed"));
        assert!(parse("{viewers:online/lobby} reading").is_ok());
        assert!(parse("{viewers:}").is_err());
    }
}
