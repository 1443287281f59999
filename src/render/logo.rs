//! Logos on badges: the bundled Simple Icons set (CC0, `templates/logos/`,
//! every icon one path on a 24x24 view box) looked up by slug, and custom
//! SVGs (`logoSvg`) checked for size and external references, parsed once
//! and cached by the SHA-256 of their bytes. Both are drawn with resvg,
//! which renders through the same tiny-skia as everything else.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use quick_cache::sync::Cache;
use resvg::usvg;
use tiny_skia::{Color, Pixmap, Transform};

use super::cache::cached;
use super::color::{hex, parse_color};

/// Largest custom SVG, decoded.
pub const MAX_SVG_BYTES: usize = 32 * 1024;
/// Custom SVGs kept parsed (each at most `MAX_SVG_BYTES` of source).
const PARSED_SVGS: usize = 256;
/// Widest logo a write or URL may ask for, before scaling.
pub const MAX_LOGO_WIDTH: f32 = 100.0;

static ICONS_GZ: &[u8] = include_bytes!("../../templates/logos/simple-icons.tsv.gz");

/// A Simple Icons icon: its brand colour and its path on a 24x24 box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icon {
    pub slug: &'static str,
    pub hex: &'static str,
    pub path: &'static str,
}

/// A checked custom SVG, ready to draw.
pub struct CustomSvg {
    /// Hex SHA-256 of the SVG bytes: its cache key.
    pub hash: String,
    /// The SVG as sent, base64 (SVG badges embed it as a data URL).
    pub base64: String,
    tree: usvg::Tree,
}

impl std::fmt::Debug for CustomSvg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomSvg({})", self.hash)
    }
}

#[derive(Debug, Clone)]
pub enum LogoImage {
    Icon(Icon),
    Svg(Arc<CustomSvg>),
}

/// A logo as a badge shows it: the image, the colour of an icon
/// (`logoColor`; a custom SVG keeps its own colours) and a width.
#[derive(Debug, Clone)]
pub struct Logo {
    pub image: LogoImage,
    pub color: Option<Color>,
    /// `logoWidth`, before scaling; the natural width when unset.
    pub width: Option<f32>,
}

/// The logo fields of a write or a URL, as sent (shields' names).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogoFields<'a> {
    pub named: Option<&'a str>,
    pub svg: Option<&'a str>,
    pub color: Option<&'a str>,
    pub width: Option<f64>,
}

impl LogoFields<'_> {
    /// The logo these fields ask for, `None` when they name none; `Err` is
    /// a message naming the field (a `400`). `logo=data:image/svg+xml;
    /// base64,…` in `named` is read as a custom SVG, as shields does.
    pub fn resolve(&self) -> Result<Option<Logo>, String> {
        let image = match (self.named, self.svg) {
            (_, Some(svg)) => LogoImage::Svg(custom_svg(svg).map_err(|e| format!("logoSvg: {e}"))?),
            (Some(named), None) if named.starts_with("data:") => {
                LogoImage::Svg(custom_svg(named).map_err(|e| format!("logo: {e}"))?)
            }
            (Some(named), None) => LogoImage::Icon(icon(named).ok_or_else(|| unknown(named))?),
            (None, None) => {
                if self.color.is_some() || self.width.is_some() {
                    return Err("logoColor and logoWidth need a logo: send namedLogo (?logo=) or logoSvg".into());
                }
                return Ok(None);
            }
        };
        let color = match self.color {
            Some(c) => Some(parse_color(c).map_err(|e| format!("logoColor: {e}"))?),
            None => None,
        };
        let width = match self.width {
            Some(w) if (1.0..=f64::from(MAX_LOGO_WIDTH)).contains(&w) => Some(w as f32),
            Some(w) => return Err(format!("logoWidth: {w} is out of range: expected 1 to {MAX_LOGO_WIDTH}")),
            None => None,
        };
        Ok(Some(Logo { image, color, width }))
    }
}

fn unknown(name: &str) -> String {
    let shown: String = name.chars().take(60).collect();
    format!("logo {shown:?} is not a Simple Icons slug (https://simpleicons.org; e.g. github, docker, rust)")
}

/// The icon for a slug or a brand's title (`github`, `GitHub`, `C++`).
pub fn icon(name: &str) -> Option<Icon> {
    let icons = icons();
    let lower = name.trim().to_lowercase();
    icons.get(lower.as_str()).or_else(|| icons.get(title_to_slug(&lower).as_str())).copied()
}

/// Simple Icons' own rule from a title to a slug.
fn title_to_slug(title: &str) -> String {
    title
        .replace('+', "plus")
        .replace('.', "dot")
        .replace('&', "and")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn icons() -> &'static HashMap<&'static str, Icon> {
    static ICONS: OnceLock<HashMap<&'static str, Icon>> = OnceLock::new();
    ICONS.get_or_init(|| {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(ICONS_GZ).read_to_string(&mut text).expect("the bundled icons decompress");
        // Read once per process and kept for its life: ~4.6 MB.
        let text: &'static str = Box::leak(text.into_boxed_str());
        text.lines()
            .filter_map(|line| {
                let mut f = line.splitn(3, '\t');
                let (slug, hex, path) = (f.next()?, f.next()?, f.next()?);
                Some((slug, Icon { slug, hex, path }))
            })
            .collect()
    })
}

/// How many icons are bundled.
pub fn icon_count() -> usize {
    icons().len()
}

fn parsed_svgs() -> &'static Cache<String, Arc<CustomSvg>> {
    static CACHE: OnceLock<Cache<String, Arc<CustomSvg>>> = OnceLock::new();
    CACHE.get_or_init(|| Cache::new(PARSED_SVGS))
}

/// Checks and parses a base64 SVG (optionally a `data:` URL), once per
/// distinct content.
pub fn custom_svg(sent: &str) -> Result<Arc<CustomSvg>, String> {
    let b64 = sent.strip_prefix("data:image/svg+xml;base64,").unwrap_or(sent).trim();
    // Base64 of MAX_SVG_BYTES, checked before decoding anything.
    if b64.len() > MAX_SVG_BYTES.div_ceil(3) * 4 + 4 {
        return Err(format!("the SVG is larger than {} KiB", MAX_SVG_BYTES / 1024));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("not base64 (send the SVG as standard base64): {e}"))?;
    if bytes.len() > MAX_SVG_BYTES {
        return Err(format!("the SVG is larger than {} KiB", MAX_SVG_BYTES / 1024));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hash: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if let Some(svg) = parsed_svgs().get(&hash) {
        return Ok(svg);
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| "the SVG is not UTF-8 text".to_string())?;
    check_self_contained(text)?;
    let tree = usvg::Tree::from_data(&bytes, &options()).map_err(|e| format!("not a drawable SVG: {e}"))?;
    let svg = Arc::new(CustomSvg { hash: hash.clone(), base64: b64.to_string(), tree });
    parsed_svgs().insert(hash, svg.clone());
    Ok(svg)
}

/// Refuses anything that would make the SVG load something else: `href`s
/// other than `#fragment`, `url(…)` other than `url(#…)`, `@import`.
fn check_self_contained(text: &str) -> Result<(), String> {
    let opts = roxmltree::ParsingOptions { allow_dtd: false, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| format!("not well-formed XML: {e}"))?;
    if doc.root_element().tag_name().name() != "svg" {
        return Err("the root element is not <svg>".into());
    }
    for node in doc.descendants() {
        for attr in node.attributes() {
            let value = attr.value().trim();
            if attr.name() == "href" && !value.starts_with('#') {
                return Err(format!("external reference {}={value:?} is not allowed", attr.name()));
            }
            check_urls(value)?;
        }
        if let Some(text) = node.text().filter(|_| node.is_text()) {
            check_urls(text)?;
            if text.contains("@import") {
                return Err("@import is not allowed".into());
            }
        }
    }
    Ok(())
}

fn check_urls(value: &str) -> Result<(), String> {
    let lower = value.to_ascii_lowercase();
    for (at, _) in lower.match_indices("url(") {
        let inner = lower[at + 4..].trim_start().trim_start_matches(['"', '\'']);
        if !inner.starts_with('#') {
            let shown: String = value[at..].chars().take(60).collect();
            return Err(format!("external reference {shown:?} is not allowed"));
        }
    }
    Ok(())
}

/// usvg reading nothing from anywhere: no files, no images, no fonts.
fn options() -> usvg::Options<'static> {
    usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    }
}

impl Logo {
    /// Width drawn at `height` pixels (already scaled) and `scale`.
    pub fn width_at(&self, height: f32, scale: f32) -> f32 {
        if let Some(w) = self.width {
            return (w * scale).round();
        }
        match &self.image {
            LogoImage::Icon(_) => height,
            LogoImage::Svg(svg) => {
                let size = svg.tree.size();
                (height * size.width() / size.height()).round().clamp(1.0, MAX_LOGO_WIDTH * scale)
            }
        }
    }

    /// The colour an icon is drawn in: `logoColor`, else `default`.
    pub fn icon_color(&self, default: Color) -> Color {
        self.color.unwrap_or(default)
    }

    /// A key that differs whenever the drawing would.
    pub fn key(&self, default: Color) -> String {
        match &self.image {
            LogoImage::Icon(icon) => format!("icon {} {}", icon.slug, hex(self.icon_color(default))),
            LogoImage::Svg(svg) => format!("svg {}", svg.hash),
        }
    }

    /// The logo drawn into a `w`x`h` box (aspect kept, centred), cached.
    pub fn pixmap(&self, w: u32, h: u32, default: Color) -> Pixmap {
        let key = format!("logo {} {w}x{h}", self.key(default));
        cached(key, || {
            let mut pixmap = Pixmap::new(w.max(1), h.max(1)).expect("logo sizes are bounded");
            match &self.image {
                LogoImage::Icon(icon) => {
                    let svg = icon_svg(icon, self.icon_color(default));
                    if let Ok(tree) = usvg::Tree::from_str(&svg, &options()) {
                        draw_tree(&tree, &mut pixmap);
                    }
                }
                LogoImage::Svg(svg) => draw_tree(&svg.tree, &mut pixmap),
            }
            pixmap
        })
    }
}

/// An icon as a standalone SVG in one colour.
pub fn icon_svg(icon: &Icon, color: Color) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="{}" d="{}"/></svg>"#,
        hex(color),
        icon.path
    )
}

fn draw_tree(tree: &usvg::Tree, pixmap: &mut Pixmap) {
    let size = tree.size();
    let (w, h) = (pixmap.width() as f32, pixmap.height() as f32);
    let s = (w / size.width()).min(h / size.height());
    let (dx, dy) = ((w - size.width() * s) / 2.0, (h - size.height() * s) / 2.0);
    resvg::render(tree, Transform::from_row(s, 0.0, 0.0, s, dx, dy), &mut pixmap.as_mut());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn icons_by_slug_and_title() {
        assert!(icon_count() > 3000);
        assert_eq!(icon("github").unwrap().hex, "181717");
        assert_eq!(icon("GitHub").unwrap().slug, "github");
        assert_eq!(icon("C++").unwrap().slug, "cplusplus");
        assert!(icon("no-such-brand-xyz").is_none());
    }

    #[test]
    fn unknown_slug_names_it() {
        let err = LogoFields { named: Some("nosuchlogo"), ..Default::default() }.resolve().unwrap_err();
        assert!(err.contains("\"nosuchlogo\""), "{err}");
    }

    #[test]
    fn custom_svgs_must_be_self_contained() {
        let ok = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><defs><linearGradient id="g"/></defs><rect width="10" height="10" fill="url(#g)"/></svg>"#;
        assert!(custom_svg(&b64(ok)).is_ok());
        for bad in [
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://evil/x.png"/></svg>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill: url( 'http://x/y' )"/></svg>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg"><style>@import "http://x/y.css";</style></svg>"#,
        ] {
            let err = custom_svg(&b64(bad)).unwrap_err();
            assert!(err.contains("not allowed"), "{bad}: {err}");
        }
        assert!(custom_svg(&b64(&"x".repeat(MAX_SVG_BYTES + 1))).unwrap_err().contains("larger than 32 KiB"));
        assert!(custom_svg("%%%").unwrap_err().contains("not base64"));
        assert!(custom_svg(&b64("<html/>")).unwrap_err().contains("not <svg>"));
        let dtd = r#"<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>"#;
        assert!(custom_svg(&b64(dtd)).is_err());
    }

    #[test]
    fn icons_draw_in_their_colour() {
        let logo =
            LogoFields { named: Some("github"), color: Some("#ff0000"), ..Default::default() }.resolve().unwrap();
        let p = logo.unwrap().pixmap(14, 14, Color::WHITE);
        let red = p.pixels().iter().filter(|px| px.alpha() == 255 && px.red() > 200 && px.green() < 90).count();
        assert!(red > 40, "{red} red pixels");
    }
}
