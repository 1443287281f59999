//! Badges as SVG: the same geometry as the PNG (widths from the same font
//! metrics, so a page can switch between them), text pinned to the
//! measured width with `textLength` as shields does, and every piece of
//! text escaped. Tiles that are not badges are wrapped: their PNG inside an
//! SVG of the same size.

use std::fmt::Write;

use base64::Engine;
use tiny_skia::Color;

use super::badge::{Geometry, Gradient, PlacedLogo};
use super::color::{hex, text_color_on};
use super::logo::{LogoImage, icon_svg};
use super::social::{SocialGeometry, border};
use super::text::{FontName, font};

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `fill="#rrggbb"` plus `fill-opacity` when not opaque.
fn fill_attr(color: Color) -> String {
    let c = color.to_color_u8();
    let rgb = format!("#{:02x}{:02x}{:02x}", c.red(), c.green(), c.blue());
    if c.alpha() == 255 {
        format!(r#"fill="{rgb}""#)
    } else {
        format!(r#"fill="{rgb}" fill-opacity="{:.3}""#, color.alpha())
    }
}

/// The families a browser should draw with: DejaVu Sans (whose widths
/// the badge has), then the fallback faces' families in the server's own
/// order, so a browser picks the same coverage.
fn family(name: FontName) -> String {
    let weight = if name == FontName::Bold { r#" font-weight="bold""# } else { "" };
    format!(r#"font-family="{}"{weight}"#, escape(super::fonts::set().svg_families()))
}

struct TextRun<'a> {
    s: &'a str,
    /// The section it is centred in: `(left, width)`.
    section: (f32, f32),
    baseline: f32,
    bg: Color,
    shadow: Option<Color>,
}

/// One centred text run, as the PNG draws it: the same left edge and
/// advance width.
fn text(out: &mut String, g: (&super::badge::BadgeLayout, FontName), run: TextRun) {
    if run.s.is_empty() {
        return;
    }
    let (layout, face) = g;
    let measure = font(face);
    let w = measure.width(run.s, layout.font_size, layout.letter_spacing);
    let mut x = run.section.0 + ((run.section.1 - w) / 2.0).round();
    // A right-to-left paragraph (first strong character) is laid out as
    // the PNG lays it out: from its right edge.
    let rtl = super::shape::paragraph_is_rtl(run.s);
    if rtl {
        x += w;
    }
    let dir = if rtl { r#" direction="rtl""# } else { "" };
    let s = escape(run.s);
    if let Some(shadow) = run.shadow {
        let dy = (layout.font_size / 11.0).round().max(1.0);
        let _ = write!(
            out,
            r#"<text x="{x}" y="{}" {}{dir} textLength="{w:.2}" lengthAdjust="spacingAndGlyphs">{s}</text>"#,
            run.baseline + dy,
            fill_attr(shadow)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{x}" y="{}" {}{dir} textLength="{w:.2}" lengthAdjust="spacingAndGlyphs">{s}</text>"#,
        run.baseline,
        fill_attr(text_color_on(run.bg))
    );
}

fn logo(out: &mut String, p: &PlacedLogo) {
    let (x, y, w, h) = (p.x, p.y, p.w, p.h);
    let href = match &p.logo.image {
        LogoImage::Icon(icon) => {
            let svg = icon_svg(icon, p.logo.icon_color(p.default_color));
            base64::engine::general_purpose::STANDARD.encode(svg)
        }
        LogoImage::Svg(svg) => svg.base64.clone(),
    };
    let _ = write!(out, r#"<image x="{x}" y="{y}" width="{w}" height="{h}" href="data:image/svg+xml;base64,{href}"/>"#);
}

fn open(out: &mut String, w: f32, h: f32, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
}

fn title(label: &str, message: &str) -> String {
    if label.is_empty() { message.to_string() } else { format!("{label}: {message}") }
}

/// A label/message badge.
pub fn badge_svg(g: &Geometry) -> String {
    let l = &g.layout;
    let (w, h, r) = (g.width(), l.height, l.radius);
    let mut out = String::with_capacity(1024);
    open(&mut out, w, h, &title(&g.label, &g.message));
    let stops: &[(f32, &str, f32)] = match l.gradient {
        Gradient::None => &[],
        Gradient::Flat => &[(0.0, "#bbb", 0.1), (1.0, "#000", 0.1)],
        Gradient::Plastic => &[(0.0, "#fff", 0.314), (0.1, "#aaa", 0.1), (0.9, "#000", 0.3), (1.0, "#000", 0.5)],
    };
    if !stops.is_empty() {
        out.push_str(r#"<linearGradient id="s" x2="0" y2="100%">"#);
        for (offset, color, opacity) in stops {
            let _ = write!(out, r#"<stop offset="{offset}" stop-color="{color}" stop-opacity="{opacity}"/>"#);
        }
        out.push_str("</linearGradient>");
    }
    let _ = write!(
        out,
        r##"<clipPath id="r"><rect width="{w}" height="{h}" rx="{r}" fill="#fff"/></clipPath><g clip-path="url(#r)">"##
    );
    if g.label_w > 0.0 {
        let _ = write!(out, r#"<rect width="{}" height="{h}" {}/>"#, g.label_w, fill_attr(g.label_bg));
    }
    let _ =
        write!(out, r#"<rect x="{}" width="{}" height="{h}" {}/>"#, g.label_w, g.message_w, fill_attr(g.message_bg));
    if !stops.is_empty() {
        let _ = write!(out, r#"<rect width="{w}" height="{h}" fill="url(#s)"/>"#);
    }
    out.push_str("</g>");
    let _ = write!(out, r#"<g {} font-size="{}">"#, family(l.font), l.font_size);
    let shadow = |bg: Color| (l.shadow && text_color_on(bg) == Color::WHITE).then(|| Color::from_rgba8(1, 1, 1, 77));
    let face = (l, l.font);
    let label = TextRun {
        s: &g.label,
        section: g.label_text,
        baseline: g.baseline,
        bg: g.label_bg,
        shadow: shadow(g.label_bg),
    };
    text(&mut out, face, label);
    let message = TextRun {
        s: &g.message,
        section: (g.label_w, g.message_w),
        baseline: g.baseline,
        bg: g.message_bg,
        shadow: shadow(g.message_bg),
    };
    text(&mut out, face, message);
    out.push_str("</g>");
    if let Some(p) = &g.logo {
        logo(&mut out, p);
    }
    out.push_str("</svg>");
    out
}

/// shields' `social` look.
pub fn social_svg(g: &SocialGeometry) -> String {
    let l = &g.layout;
    let (w, h, r) = (g.width(), l.height, l.radius);
    let mut out = String::with_capacity(1024);
    open(&mut out, w, h, &title(&g.label, &g.message));
    out.push_str(r#"<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-opacity="0"/><stop offset="1" stop-opacity=".1"/></linearGradient>"#);
    let border = hex(border());
    let _ = write!(
        out,
        r#"<rect x=".5" y=".5" width="{}" height="{}" rx="{r}" {} stroke="{border}"/>"#,
        g.label_w - 1.0,
        h - 1.0,
        fill_attr(g.label_bg)
    );
    let _ = write!(
        out,
        r#"<rect x=".5" y=".5" width="{}" height="{}" rx="{r}" fill="url(#s)"/>"#,
        g.label_w - 1.0,
        h - 1.0
    );
    if g.bubble.1 > 0.0 {
        let (x, bw) = g.bubble;
        let _ = write!(
            out,
            r#"<rect x="{}" y=".5" width="{}" height="{}" rx="{r}" {} stroke="{border}"/>"#,
            x + 0.5,
            bw - 1.0,
            h - 1.0,
            fill_attr(g.bubble_bg)
        );
        let (mid, half) = (h / 2.0, (h * 0.2).round());
        let tip = x + 1.0 - g.arrow_gap() * 0.6;
        let _ = write!(
            out,
            r#"<path d="M{x1} {y0}L{tip} {mid}L{x1} {y1}" {} stroke="{border}"/>"#,
            fill_attr(g.bubble_bg),
            x1 = x + 1.0,
            y0 = mid - half,
            y1 = mid + half
        );
    }
    let _ = write!(out, r#"<g {} font-size="{}">"#, family(l.font), l.font_size);
    let face = (l, l.font);
    text(
        &mut out,
        face,
        TextRun { s: &g.label, section: g.label_text, baseline: g.baseline, bg: g.label_bg, shadow: None },
    );
    text(
        &mut out,
        face,
        TextRun { s: &g.message, section: g.bubble, baseline: g.baseline, bg: g.bubble_bg, shadow: None },
    );
    out.push_str("</g>");
    if let Some(p) = &g.logo {
        logo(&mut out, p);
    }
    out.push_str("</svg>");
    out
}

/// Any other picture: its PNG inside an SVG of the same size.
pub fn wrapped_png(width: u32, height: u32, png: &[u8], title_text: &str) -> String {
    let mut out = String::with_capacity(png.len() * 4 / 3 + 400);
    open(&mut out, width as f32, height as f32, title_text);
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    let _ = write!(out, r#"<image width="{width}" height="{height}" href="data:image/png;base64,{data}"/></svg>"#);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
    }
}
