//! A value badge's state and the writes that change it. Accepted bodies:
//! `{"value": 42}`, `{"label": "build", "message": "passing", "color":
//! "green"}`, and shields' endpoint schema v1 (`schemaVersion`, `label`,
//! `message`, `color`, `labelColor`, `isError`, `style`, `cacheSeconds`).
//! Logos (`namedLogo`, `logoSvg`, `logoColor`, `logoWidth`) are checked
//! as they arrive: an unknown slug or an SVG with external references is a
//! `400`; `"namedLogo": ""` removes the logo.

use serde::Deserialize;

use crate::render::color::parse_color;
use crate::render::format::Values;
use crate::render::logo::{Logo, LogoFields};

/// Longest label or message accepted.
pub const MAX_TEXT: usize = 200;

/// A badge's state: the record the store keeps (see `store::record`).
pub use crate::store::BadgeState;

/// One write, as sent. Field names follow shields (camelCase); snake_case is
/// accepted too.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadgeUpdate {
    #[serde(default, rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default, rename = "labelColor", alias = "label_color")]
    label_color: Option<String>,
    #[serde(default, rename = "isError", alias = "is_error")]
    is_error: Option<bool>,
    #[serde(default)]
    style: Option<String>,
    /// Accepted and ignored: a live badge never needs caching hints.
    #[serde(default, rename = "cacheSeconds")]
    _cache_seconds: Option<u64>,
    #[serde(default, rename = "namedLogo", alias = "named_logo")]
    named_logo: Option<String>,
    #[serde(default, rename = "logoSvg", alias = "logo_svg")]
    logo_svg: Option<String>,
    #[serde(default, rename = "logoColor", alias = "logo_color")]
    logo_color: Option<String>,
    #[serde(default, rename = "logoWidth", alias = "logo_width")]
    logo_width: Option<f64>,
}

/// A write body that is not acceptable, and why (a `400`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidUpdate(pub String);

impl BadgeUpdate {
    /// Parses and checks a request body; `Err` says what is wrong.
    pub fn parse(body: &[u8], is_style: impl Fn(&str) -> bool) -> Result<BadgeUpdate, InvalidUpdate> {
        let update: BadgeUpdate =
            serde_json::from_slice(body).map_err(|e| InvalidUpdate(format!("invalid JSON: {e}")))?;
        if !update.removes_logo() {
            let fields = LogoFields {
                named: update.named_logo.as_deref(),
                svg: update.logo_svg.as_deref(),
                color: update.logo_color.as_deref(),
                width: update.logo_width,
            };
            if update.named_logo.is_some() || update.logo_svg.is_some() {
                fields.resolve().map_err(InvalidUpdate)?;
            } else {
                // Colour or width alone restyle the logo the badge has.
                LogoFields { named: Some("github"), ..fields }.resolve().map_err(InvalidUpdate)?;
            }
        }
        if let Some(v) = update.schema_version.filter(|v| *v != 1) {
            return Err(InvalidUpdate(format!("schemaVersion: {v} is not supported: only 1")));
        }
        let logo = update.named_logo.is_some() || update.logo_svg.is_some();
        let restyle = update.logo_color.is_some() || update.logo_width.is_some();
        if update.value.is_none()
            && update.message.is_none()
            && update.label.is_none()
            && update.color.is_none()
            && !logo
            && !restyle
        {
            return Err(InvalidUpdate("nothing to set: send value, or label/message/color".into()));
        }
        if update.value.is_some() && update.message.is_some() {
            return Err(InvalidUpdate(
                "value and message are both set: send one (value is shown as the message)".into(),
            ));
        }
        if let Some(v) = update.value.filter(|v| !v.is_finite()) {
            return Err(InvalidUpdate(format!("value: {v} is not a finite number")));
        }
        for (field, text) in [("label", &update.label), ("message", &update.message)] {
            if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT) {
                return Err(InvalidUpdate(format!("{field}: longer than {MAX_TEXT} characters")));
            }
        }
        for (field, color) in [("color", &update.color), ("labelColor", &update.label_color)] {
            if let Some(c) = color {
                parse_color(c).map_err(|e| InvalidUpdate(format!("{field}: {e}")))?;
            }
        }
        if let Some(style) = update.style.as_deref().filter(|s| !is_style(s)) {
            return Err(InvalidUpdate(format!("style: {style:?} is not a badge template")));
        }
        Ok(update)
    }

    /// `"namedLogo": ""`: the badge shows no logo after this write.
    fn removes_logo(&self) -> bool {
        self.named_logo.as_deref() == Some("") && self.logo_svg.is_none()
    }

    /// A polled source's reading: the number (for history and sparklines,
    /// if it is one) and the text shown, with its colour and error look.
    pub fn from_source(value: Option<f64>, message: String, color: String, is_error: bool) -> BadgeUpdate {
        BadgeUpdate {
            value,
            message: Some(message),
            color: Some(color),
            is_error: Some(is_error),
            ..BadgeUpdate::default()
        }
    }

    /// The value this write adds to the badge's history, if any.
    pub fn appends(&self) -> Option<f64> {
        self.value
    }

    /// The state after this write. Fields it names replace the old ones;
    /// `value` and `message` share one slot (setting one clears the other).
    pub fn apply(self, old: Option<&BadgeState>, history_len: usize, now: u64) -> BadgeState {
        let mut state = old.cloned().unwrap_or_default();
        let removes_logo = self.removes_logo();
        if let Some(v) = self.value {
            state.value = Some(v);
            state.message = None;
            state.history.push(v);
            let excess = state.history.len().saturating_sub(history_len);
            state.history.drain(..excess);
        }
        if let Some(m) = self.message {
            state.message = Some(m);
            // A source's reading sets both: the text shown, the number kept.
            if self.value.is_none() {
                state.value = None;
            }
        }
        if let Some(l) = self.label {
            state.label = Some(l);
        }
        if let Some(c) = self.color {
            state.color = Some(c);
        }
        if let Some(c) = self.label_color {
            state.label_color = Some(c);
        }
        if let Some(e) = self.is_error {
            state.is_error = e;
        }
        if let Some(s) = self.style {
            state.style = Some(s);
        }
        if removes_logo {
            (state.named_logo, state.logo_svg, state.logo_color, state.logo_width) = (None, None, None, None);
        } else if let Some(named) = self.named_logo {
            (state.named_logo, state.logo_svg) = (Some(named), None);
        } else if let Some(svg) = self.logo_svg {
            (state.named_logo, state.logo_svg) = (None, Some(svg));
        }
        if let Some(c) = self.logo_color {
            state.logo_color = Some(c);
        }
        if let Some(w) = self.logo_width {
            state.logo_width = Some(w);
        }
        state.updated = now;
        state
    }
}

/// What a badge's template reads: its state (or none yet), its default
/// label, and live viewer counts.
pub struct BadgeView<'a> {
    pub state: Option<&'a BadgeState>,
    pub default_label: &'a str,
    pub viewers: &'a dyn Fn(&str) -> u64,
    /// Other badges' states, for `{badge:NAME}`.
    pub others: &'a dyn Fn(&str) -> Option<std::sync::Arc<BadgeState>>,
    /// Room figures, `{peak_today:ROOM}`.
    pub figures: &'a dyn Fn(&str) -> Option<f64>,
    /// A logo asked for by the URL, shown instead of the badge's own.
    pub url_logo: Option<Logo>,
}

/// The logo a badge's state names, if it still resolves (a slug dropped
/// from a later icon set shows no logo rather than failing the badge).
pub fn state_logo(state: &BadgeState) -> Option<Logo> {
    let fields = LogoFields {
        named: state.named_logo.as_deref(),
        svg: state.logo_svg.as_deref(),
        color: state.logo_color.as_deref(),
        width: state.logo_width,
    };
    fields.resolve().ok().flatten()
}

impl Values for BadgeView<'_> {
    fn number(&self, key: &str) -> Option<f64> {
        match key {
            "value" => self.state?.value,
            "message" => self.state.filter(|s| s.message.is_none())?.value,
            "viewers" => Some((self.viewers)("") as f64),
            _ if crate::render::format::is_room_key(key) => (self.figures)(key),
            _ => match key.strip_prefix("badge:") {
                // Another badge's number, unless it shows text.
                Some(name) => (self.others)(name).filter(|s| s.message.is_none())?.value,
                None => key.strip_prefix("viewers:").map(|channel| (self.viewers)(channel) as f64),
            },
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        let state = self.state;
        match key {
            "label" => Some(state.and_then(|s| s.label.clone()).unwrap_or_else(|| self.default_label.to_string())),
            "message" => Some(state.and_then(|s| s.message.clone()).unwrap_or_else(|| "no value".into())),
            "value" => Some("no value".into()),
            "color" => match state {
                Some(s) if s.color.is_some() => s.color.clone(),
                Some(s) if s.is_error => Some("critical".into()),
                Some(_) => Some("blue".into()),
                None => None,
            },
            "label_color" => state.and_then(|s| s.label_color.clone()),
            _ => {
                let other = (self.others)(key.strip_prefix("badge:")?);
                Some(other.and_then(|s| s.message.clone()).unwrap_or_else(|| "–".into()))
            }
        }
    }

    fn history(&self) -> Vec<f64> {
        self.state.map(|s| s.history.clone()).unwrap_or_default()
    }

    fn logo(&self) -> Option<Logo> {
        self.url_logo.clone().or_else(|| state_logo(self.state?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BadgeUpdate, String> {
        BadgeUpdate::parse(json.as_bytes(), |s| s == "flat" || s == "plastic").map_err(|e| e.0)
    }

    #[test]
    fn accepted_bodies() {
        assert!(parse(r#"{"value": 42}"#).is_ok());
        assert!(parse(r#"{"label": "build", "message": "passing", "color": "green"}"#).is_ok());
        let shields = r##"{"schemaVersion": 1, "label": "hello", "message": "sweet world", "color": "orange",
            "labelColor": "#555", "isError": false, "style": "plastic", "cacheSeconds": 300}"##;
        assert!(parse(shields).is_ok());
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            (r#"{"value": 1, "namedLogo": "nosuchbrandxyz"}"#, "logo \"nosuchbrandxyz\" is not a Simple Icons slug"),
            (
                r#"{"value": 1, "logoSvg": "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciPjxpbWFnZSBocmVmPSJodHRwOi8veC95LnBuZyIvPjwvc3ZnPg=="}"#,
                "logoSvg: external reference",
            ),
            (r#"{"value": 1, "logoWidth": 1000}"#, "logoWidth: 1000 is out of range"),
            (r#"{"schemaVersion": 2, "message": "x"}"#, "schemaVersion: 2"),
            (r#"{"color": "nope", "message": "x"}"#, "color: \"nope\" is not a colour"),
            (r#"{"message": "x", "style": "social"}"#, "style: \"social\""),
            (r#"{"mesage": "x"}"#, "unknown field `mesage`"),
            (r#"{}"#, "nothing to set"),
            (r#"{"value": 1, "message": "x"}"#, "both set"),
            (r#"{"value": "many"}"#, "invalid JSON"),
            (r#"{"message": 5"#, "invalid JSON"),
        ];
        for (body, want) in cases {
            let err = parse(body).err().unwrap_or_default();
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn other_badges_show_through_placeholders() {
        use crate::render::format::{NumberFormat, expand};
        let temp = std::sync::Arc::new(parse(r#"{"value": 21.5}"#).unwrap().apply(None, 3, 1));
        let build = std::sync::Arc::new(parse(r#"{"message": "passing"}"#).unwrap().apply(None, 3, 1));
        let others = |name: &str| match name {
            "temp" => Some(temp.clone()),
            "build" => Some(build.clone()),
            _ => None,
        };
        let view = BadgeView {
            state: None,
            default_label: "x",
            viewers: &|_| 0,
            others: &others,
            figures: &|_| None,
            url_logo: None,
        };
        let text = expand("{badge:temp} °C, build {badge:build}, {badge:none}", &view, NumberFormat::Plain);
        assert_eq!(text, "21.5 °C, build passing, –");
        assert!(crate::render::format::parse("{badge:temp}").is_ok());
        assert!(crate::render::format::parse("{badge:../x}").is_err());
    }

    #[test]
    fn a_source_reading_keeps_the_number_and_shows_the_text() {
        let s = BadgeUpdate::from_source(Some(1234.0), "1,234 jobs".into(), "green".into(), false).apply(None, 3, 1);
        assert_eq!(
            (s.value, s.message.as_deref(), s.history.clone()),
            (Some(1234.0), Some("1,234 jobs"), vec![1234.0])
        );
        let e = BadgeUpdate::from_source(None, "unavailable".into(), "critical".into(), true).apply(Some(&s), 3, 2);
        assert_eq!((e.value, e.is_error, e.history.len()), (None, true, 1), "an error adds no history");
    }

    #[test]
    fn writes_merge_and_history_is_bounded() {
        let s1 = parse(r#"{"label": "temp", "value": 20}"#).unwrap().apply(None, 3, 1);
        let mut s = s1;
        for v in [21, 22, 23] {
            s = parse(&format!(r#"{{"value": {v}}}"#)).unwrap().apply(Some(&s), 3, 2);
        }
        assert_eq!(s.label.as_deref(), Some("temp"));
        assert_eq!(s.history, vec![21.0, 22.0, 23.0]);
        let s = parse(r#"{"message": "hot"}"#).unwrap().apply(Some(&s), 3, 3);
        assert_eq!((s.value, s.message.as_deref()), (None, Some("hot")));
    }
}
