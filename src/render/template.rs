//! Templates: the JSON layouts in `templates/badges/` (compiled in) plus
//! any in the configured `template_dir`. A template's `kind` picks its
//! drawing (`badge`, `counter`, `sparkline`); its text uses placeholders
//! (`{value}`, `{label|build}`, `{viewers:online/lobby}`). A bad template
//! is refused with its file, field and reason.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tiny_skia::Pixmap;

use super::badge::{BadgeLayout, badge_geometry, draw_badge};
use super::format::Values;
use super::png::encode_png;
use super::size::TooLarge;
use super::social::{draw_social, social_geometry};
use super::svg::{badge_svg, social_svg, wrapped_png};
use super::tile::{CounterLayout, SparklineLayout, draw_counter, draw_sparkline};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Template {
    Badge(BadgeLayout),
    /// shields' social look (`render/social.rs`).
    Social(BadgeLayout),
    Counter(CounterLayout),
    Sparkline(SparklineLayout),
}

/// The templates shipped in `templates/badges/`.
const BUILTIN: &[(&str, &str)] = &[
    ("flat", include_str!("../../templates/badges/flat.json")),
    ("flat-square", include_str!("../../templates/badges/flat-square.json")),
    ("plastic", include_str!("../../templates/badges/plastic.json")),
    ("for-the-badge", include_str!("../../templates/badges/for-the-badge.json")),
    ("social", include_str!("../../templates/badges/social.json")),
    ("online", include_str!("../../templates/badges/online.json")),
    ("people", include_str!("../../templates/badges/people.json")),
    ("people-footer", include_str!("../../templates/badges/people-footer.json")),
    ("counter", include_str!("../../templates/badges/counter.json")),
    ("sparkline", include_str!("../../templates/badges/sparkline.json")),
    ("room-sparkline", include_str!("../../templates/badges/room-sparkline.json")),
];

/// Largest output scale (`@2x`, `?scale=`).
pub const MAX_SCALE: f32 = 4.0;

impl Template {
    pub fn parse(json: &str) -> Result<Template, String> {
        let template: Template = serde_json::from_str(json).map_err(|e| e.to_string())?;
        match &template {
            Template::Badge(l) | Template::Social(l) => l.validate()?,
            Template::Counter(l) => l.validate()?,
            Template::Sparkline(l) => l.validate()?,
        }
        Ok(template)
    }

    /// The picture, or `TooLarge` (measured before anything is drawn).
    pub fn draw(&self, values: &dyn Values, scale: f32) -> Result<Pixmap, TooLarge> {
        let scale = scale.clamp(1.0, MAX_SCALE);
        match self {
            Template::Badge(l) => draw_badge(l, values, scale),
            Template::Social(l) => draw_social(l, values, scale),
            Template::Counter(l) => draw_counter(l, values, scale),
            Template::Sparkline(l) => draw_sparkline(l, values, scale),
        }
    }

    /// The PNG bytes the server pushes for these values.
    pub fn render_png(&self, values: &dyn Values, scale: f32) -> Result<Vec<u8>, TooLarge> {
        self.draw(values, scale).map(|pixmap| encode_png(&pixmap))
    }

    /// The same picture as SVG: badges drawn as vectors, other kinds as
    /// their PNG inside an SVG.
    pub fn render_svg(&self, values: &dyn Values, scale: f32) -> Result<String, TooLarge> {
        let scale = scale.clamp(1.0, MAX_SCALE);
        match self {
            Template::Badge(l) => badge_geometry(l, values, scale).map(|g| badge_svg(&g)),
            Template::Social(l) => social_geometry(l, values, scale).map(|g| social_svg(&g)),
            _ => {
                let pixmap = self.draw(values, scale)?;
                let title = values.text("label").unwrap_or_default();
                Ok(wrapped_png(pixmap.width(), pixmap.height(), &encode_png(&pixmap), &title))
            }
        }
    }

    /// Whether this template shows other badges (`{badge:…}`).
    pub fn shows_other_badges(&self) -> bool {
        serde_json::to_string(self).unwrap_or_default().contains("{badge:")
    }

    /// Channels whose viewer counts this template shows (`{viewers:…}`).
    pub fn watched_channels(&self) -> Vec<String> {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut out: Vec<String> = json
            .split("{viewers:")
            .skip(1)
            .filter_map(|rest| rest.split(['}', '|']).next())
            .map(str::to_string)
            .collect();
        // A room's figures change as its count does.
        for key in super::format::ROOM_KEYS {
            let open = format!("{{{key}:");
            let rooms = json.split(&open).skip(1).filter_map(|rest| rest.split(['}', '|']).next());
            out.extend(rooms.map(|room| format!("online/{room}")));
        }
        out.sort();
        out.dedup();
        out
    }
}

/// All templates by name.
#[derive(Clone)]
pub struct Templates {
    map: BTreeMap<String, Arc<Template>>,
}

impl Templates {
    /// Whether `other` holds the same templates, drawn the same (a reload's
    /// summary; compared as their JSON).
    pub fn same_as(&self, other: &Templates) -> bool {
        let json = |t: &Template| serde_json::to_string(t).unwrap_or_default();
        self.map.len() == other.map.len()
            && self.map.iter().zip(&other.map).all(|((a, x), (b, y))| a == b && json(x) == json(y))
    }

    pub fn builtin() -> Templates {
        let map = BUILTIN
            .iter()
            .map(|(name, json)| {
                let t = Template::parse(json).unwrap_or_else(|e| panic!("templates/badges/{name}.json: {e}"));
                (name.to_string(), Arc::new(t))
            })
            .collect();
        Templates { map }
    }

    /// The built-in templates plus every `*.json` in `dir` (a file named
    /// like a built-in one replaces it).
    pub fn load(dir: Option<&Path>) -> Result<Templates, String> {
        let mut templates = Self::builtin();
        let Some(dir) = dir else { return Ok(templates) };
        let entries = std::fs::read_dir(dir).map_err(|e| format!("template_dir {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("template_dir {}: {e}", dir.display()))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            if !crate::names::valid_name(&name) {
                return Err(format!("{}: template names use A-Z a-z 0-9 _ -", path.display()));
            }
            let json = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let template = Template::parse(&json).map_err(|e| format!("{}: {e}", path.display()))?;
            templates.map.insert(name, Arc::new(template));
        }
        Ok(templates)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Template>> {
        self.map.get(name).cloned()
    }

    /// Any template can be put on any public badge (`?style=`): one that
    /// shows a private badge or room (`{badge:…}`, `{viewers:…}`, room
    /// figures) would show it to anyone, so it is refused at startup.
    pub fn show_nothing_private(&self, config: &crate::config::Config) -> Result<(), String> {
        for name in self.names() {
            let text = self.get(name).map(|t| serde_json::to_string(&*t).unwrap_or_default()).unwrap_or_default();
            if let Some(private) = config.first_private_in(&text) {
                return Err(format!(
                    "template {name:?} shows {private}, which requires a signature; any public badge can use a \
                     template (?style=), so a template may show only public badges and rooms"
                ));
            }
        }
        Ok(())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_are_valid() {
        let t = Templates::builtin();
        for name in ["flat", "flat-square", "plastic", "for-the-badge", "social", "online", "counter", "sparkline"] {
            assert!(t.get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn errors_name_the_field_and_reason() {
        let bad = BUILTIN[0].1.replace("\"radius\": 3", "\"radius\": 300");
        assert!(Template::parse(&bad).unwrap_err().starts_with("radius: 300 is out of range"));
        let bad = BUILTIN[0].1.replace("{color|lightgrey}", "{color|notacolour}");
        assert!(Template::parse(&bad).unwrap_err().starts_with("color: default"));
        let bad = BUILTIN[0].1.replace("{message}", "{mesage}");
        assert!(Template::parse(&bad).unwrap_err().contains("unknown placeholder {mesage}"));
        let bad = BUILTIN[0].1.replace("\"shadow\"", "\"shadw\"");
        assert!(Template::parse(&bad).unwrap_err().contains("unknown field `shadw`"));
        let bad = BUILTIN[0].1.replace("\"badge\"", "\"bagde\"");
        assert!(Template::parse(&bad).unwrap_err().contains("unknown variant `bagde`"));
    }

    #[test]
    fn watched_channels_are_found() {
        let json = BUILTIN[0].1.replace("{message}", "{viewers:online/lobby} reading");
        assert_eq!(Template::parse(&json).unwrap().watched_channels(), vec!["online/lobby".to_string()]);
        assert!(Templates::builtin().get("flat").unwrap().watched_channels().is_empty());
    }

    #[test]
    fn a_template_dir_adds_and_rejects_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.json"), BUILTIN[0].1).unwrap();
        assert!(Templates::load(Some(dir.path())).unwrap().get("mine").is_some());
        std::fs::write(dir.path().join("broken.json"), BUILTIN[0].1.replace("#555", "#55")).unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert!(err.contains("broken.json: label_color:"), "{err}");
    }
}
