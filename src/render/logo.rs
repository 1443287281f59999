//! Logos on badges: the bundled Simple Icons set (CC0, `templates/logos/`,
//! every icon one path on a 24x24 view box) looked up by slug, and custom
//! SVGs (`logoSvg`, `logo=data:…`) checked for size and against the
//! allow-list and bounds of `logo_check`, parsed once and cached (by bytes)
//! under the SHA-256 of their content. Both are drawn with resvg, which
//! renders through the same tiny-skia as everything else.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use resvg::usvg;
use tiny_skia::{Color, Pixmap, Transform};

use super::cache::cached;
use super::color::{hex, parse_color};
use super::logo_check::{TreeCost, check_tree, check_xml};

/// Largest custom SVG, decoded.
pub const MAX_SVG_BYTES: usize = 32 * 1024;
/// Bytes of parsed custom SVGs kept (as estimated by `CustomSvg::weight`;
/// one is under 1 MiB: 2,000 nodes and 10,000 segments).
pub const PARSED_SVG_BYTES: u64 = 16 << 20;
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
    cost: TreeCost,
}

impl CustomSvg {
    /// Roughly the bytes it holds: its source, a node's fixed part and the
    /// path data (points 8 bytes, verbs 1).
    fn weight(&self) -> u64 {
        (self.base64.len() + self.cost.nodes * 256 + self.cost.points * 8 + self.cost.segments) as u64 + 64
    }
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Arc<CustomSvg>> for ByBytes {
    fn weight(&self, key: &String, svg: &Arc<CustomSvg>) -> u64 {
        key.len() as u64 + svg.weight()
    }
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

fn parsed_svgs() -> &'static Cache<String, Arc<CustomSvg>, ByBytes> {
    static CACHE: OnceLock<Cache<String, Arc<CustomSvg>, ByBytes>> = OnceLock::new();
    CACHE.get_or_init(|| Cache::with_weighter(256, PARSED_SVG_BYTES, ByBytes))
}

/// Bytes the parsed-SVG cache holds now.
pub fn parsed_svg_bytes() -> u64 {
    parsed_svgs().weight()
}

/// Checks and parses a base64 SVG (optionally a `data:` URL), once per
/// distinct content.
pub fn custom_svg(sent: &str) -> Result<Arc<CustomSvg>, String> {
    // Base64 of MAX_SVG_BYTES (and the prefix), checked before anything else.
    if sent.len() > MAX_SVG_BYTES.div_ceil(3) * 4 + 64 {
        return Err(format!("the SVG is larger than {} KiB", MAX_SVG_BYTES / 1024));
    }
    // Neither base64 nor the prefix has spaces: one here is a `+` that
    // form-decoding of a query turned into a space (shields' URLs carry
    // `svg+xml` and base64's `+` unescaped).
    let sent = sent.replace(' ', "+");
    let sent = sent.trim();
    let b64 = sent.strip_prefix("data:image/svg+xml;base64,").unwrap_or(sent).to_string();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&b64)
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
    check_xml(text)?;
    let tree = usvg::Tree::from_data(&bytes, &options()).map_err(|e| format!("not a drawable SVG: {e}"))?;
    let cost = check_tree(&tree)?;
    let svg = Arc::new(CustomSvg { hash: hash.clone(), base64: b64, tree, cost });
    parsed_svgs().insert(hash, svg.clone());
    Ok(svg)
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
    fn a_plus_decoded_as_a_space_is_read_as_a_plus() {
        // `>?` encodes to base64 with a `+` in it.
        let text = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><desc>>>?</desc><rect width="9" height="9"/></svg>"#;
        let sent = b64(text);
        assert!(sent.contains('+'), "{sent}");
        let spaced = format!("data:image/svg xml;base64,{}", sent.replace('+', " "));
        let svg = custom_svg(&spaced).unwrap();
        assert_eq!(svg.base64, sent);
    }

    #[test]
    fn parsed_svgs_are_weighed_by_their_size() {
        let path = "h.1 1".repeat(4_000);
        let text = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><path d="M0 0{path}"/></svg>"#);
        let svg = custom_svg(&b64(&text)).unwrap();
        assert_eq!(svg.cost.segments, 8_001);
        assert!(svg.weight() > 8_000 * 8 + text.len() as u64, "{}", svg.weight());
        assert!(parsed_svg_bytes() >= svg.weight(), "{}", parsed_svg_bytes());
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
