//! What a custom SVG logo may contain, so that its cost can be stated: an
//! allow-list of elements and attributes checked on the XML (before usvg
//! parses anything), then bounds on the parsed tree. Anything that loops per
//! pixel or expands (filters, `use`, patterns, masks, text, CSS, dashes) is
//! refused by name; what is left is shapes, groups, gradients and clip paths.

use resvg::usvg;

/// Elements nested deeper than this (the root `<svg>` is 1) are refused.
pub const MAX_DEPTH: usize = 32;
/// Elements in the XML, and nodes in the parsed tree, at most.
pub const MAX_NODES: usize = 2_000;
/// Path segments (every shape is a path once parsed), all paths together.
pub const MAX_SEGMENTS: usize = 10_000;
/// Groups drawn into a layer of their own (group `opacity`, `clip-path`):
/// each is a pixmap up to 25 times the logo's box, filled and composited.
pub const MAX_LAYERS: usize = 16;

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

const ELEMENTS: &[&str] = &[
    "svg",
    "g",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "defs",
    "linearGradient",
    "radialGradient",
    "stop",
    "clipPath",
    "title",
    "desc",
];

/// Plain presentation and geometry attributes. `style` (CSS), event
/// handlers, `filter`, `mask`, markers, fonts and dashes are not here.
const ATTRIBUTES: &[&str] = &[
    "id",
    "class",
    "role",
    "version",
    "baseProfile",
    "transform",
    "fill",
    "fill-opacity",
    "fill-rule",
    "stroke",
    "stroke-width",
    "stroke-opacity",
    "stroke-linecap",
    "stroke-linejoin",
    "stroke-miterlimit",
    "opacity",
    "clip-path",
    "clip-rule",
    "color",
    "display",
    "visibility",
    "shape-rendering",
    "x",
    "y",
    "width",
    "height",
    "rx",
    "ry",
    "cx",
    "cy",
    "r",
    "x1",
    "y1",
    "x2",
    "y2",
    "d",
    "points",
    "viewBox",
    "preserveAspectRatio",
    "offset",
    "stop-color",
    "stop-opacity",
    "gradientUnits",
    "gradientTransform",
    "spreadMethod",
    "fx",
    "fy",
    "fr",
    "clipPathUnits",
    "href",
];

/// Checks the XML against the allow-list, depth and element count. `Err`
/// names what is not allowed.
pub fn check_xml(text: &str) -> Result<(), String> {
    let opts = roxmltree::ParsingOptions { allow_dtd: false, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" {
        return Err("the root element is not <svg>".into());
    }
    let mut elements = 0;
    for node in doc.descendants() {
        if node.is_pi() {
            return Err("processing instructions (<?…?>) are not allowed".into());
        }
        if !node.is_element() {
            continue;
        }
        elements += 1;
        if elements > MAX_NODES {
            return Err(format!("more than {MAX_NODES} elements"));
        }
        let tag = node.tag_name();
        let name = tag.name();
        // References first: "external reference" is the clearer refusal.
        for attr in node.attributes() {
            check_reference(name, attr)?;
        }
        if !tag.namespace().is_none_or(|ns| ns == SVG_NS)
            || !ELEMENTS.contains(&name)
            || (name == "svg" && node != root)
        {
            return Err(format!(
                "<{name}> is not allowed in a logo (allowed: shapes, paths, groups, defs, gradients, clipPath)"
            ));
        }
        // `ancestors` counts the element itself and the document node.
        if node.ancestors().count() - 1 > MAX_DEPTH {
            return Err(format!("elements nested deeper than {MAX_DEPTH}"));
        }
        for attr in node.attributes() {
            check_attribute(name, attr)?;
        }
    }
    Ok(())
}

fn check_attribute(element: &str, attr: roxmltree::Attribute) -> Result<(), String> {
    let name = attr.name();
    let allowed = match attr.namespace() {
        None => ATTRIBUTES.contains(&name) || name.starts_with("aria-"),
        Some(XLINK_NS) => name == "href",
        Some(XML_NS) => name == "space",
        Some(_) => false,
    };
    if !allowed {
        let hint = if name.starts_with("on") { " (no scripts)" } else { "" };
        return Err(format!("attribute {name:?} on <{element}> is not allowed in a logo{hint}"));
    }
    Ok(())
}

/// Refuses anything that would load something else: `href`s other than
/// `#fragment`, `url(…)` other than `url(#…)`, `javascript:`.
fn check_reference(element: &str, attr: roxmltree::Attribute) -> Result<(), String> {
    let (name, value) = (attr.name(), attr.value().trim());
    if name == "href" && !value.starts_with('#') {
        return Err(format!("external reference href={value:?} on <{element}> is not allowed"));
    }
    let lower = value.to_ascii_lowercase();
    for (at, _) in lower.match_indices("url(") {
        let inner = lower[at + 4..].trim_start().trim_start_matches(['"', '\'']);
        if !inner.starts_with('#') {
            let shown: String = value[at..].chars().take(60).collect();
            return Err(format!("external reference {shown:?} is not allowed"));
        }
    }
    if lower.contains("javascript:") {
        return Err(format!("attribute {name:?} on <{element}>: javascript: is not allowed"));
    }
    Ok(())
}

/// What the parsed tree costs to draw, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TreeCost {
    pub nodes: usize,
    pub segments: usize,
    pub points: usize,
    pub layers: usize,
    pub depth: usize,
}

/// Counts the parsed tree (clip paths included) and checks its bounds.
pub fn check_tree(tree: &usvg::Tree) -> Result<TreeCost, String> {
    let mut cost = TreeCost::default();
    count(tree.root(), 1, &mut cost);
    if cost.nodes > MAX_NODES {
        return Err(format!("more than {MAX_NODES} nodes once parsed"));
    }
    if cost.depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} once parsed"));
    }
    if cost.segments > MAX_SEGMENTS {
        return Err(format!("more than {MAX_SEGMENTS} path segments"));
    }
    if cost.layers > MAX_LAYERS {
        return Err(format!("more than {MAX_LAYERS} groups with their own opacity or clip-path"));
    }
    Ok(cost)
}

fn count(group: &usvg::Group, depth: usize, cost: &mut TreeCost) {
    cost.nodes += 1;
    cost.depth = cost.depth.max(depth);
    if group.should_isolate() {
        cost.layers += 1;
    }
    // A clip path's own clip path is a clip path too: each is drawn per use.
    let mut clip = group.clip_path();
    while let Some(c) = clip {
        count(c.root(), depth + 1, cost);
        clip = c.clip_path();
        if cost.nodes > MAX_NODES {
            return;
        }
    }
    for node in group.children() {
        if cost.nodes > MAX_NODES {
            return;
        }
        match node {
            usvg::Node::Group(g) => count(g, depth + 1, cost),
            usvg::Node::Path(p) => {
                cost.nodes += 1;
                cost.segments += p.data().verbs().len();
                cost.points += p.data().len();
            }
            // The XML check lets neither through; counted all the same.
            usvg::Node::Image(_) | usvg::Node::Text(_) => cost.nodes += MAX_NODES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svg(body: &str) -> String {
        format!(r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">{body}</svg>"#)
    }

    #[test]
    fn refused_elements_and_attributes_are_named() {
        for (body, named) in [
            (r#"<filter id="f"><feTurbulence numOctaves="4000000000"/></filter>"#, "<filter>"),
            (r##"<defs><path id="p" d="M0 0h1"/></defs><use href="#p"/>"##, "<use>"),
            (r#"<pattern id="p"/>"#, "<pattern>"),
            (r#"<mask id="m"/>"#, "<mask>"),
            (r#"<text>hi</text>"#, "<text>"),
            (r#"<style>rect{fill:red}</style>"#, "<style>"),
            (r#"<foreignObject/>"#, "<foreignObject>"),
            (r#"<script>alert(1)</script>"#, "<script>"),
            (r#"<rect><animate attributeName="x"/></rect>"#, "<animate>"),
            (r#"<image href="x.png"/>"#, "<image>"),
            (r#"<svg/>"#, "<svg>"),
            (r#"<rect style="fill:red"/>"#, "\"style\""),
            (r#"<rect onclick="x()"/>"#, "\"onclick\""),
            (r#"<rect filter="url(#f)"/>"#, "\"filter\""),
            (r#"<path d="M0 0h9" stroke-dasharray="0.001"/>"#, "\"stroke-dasharray\""),
        ] {
            let err = check_xml(&svg(body)).unwrap_err();
            assert!(err.contains(named), "{body}: {err}");
        }
        let err = check_xml(&svg(r#"<linearGradient href="javascript:x"/>"#)).unwrap_err();
        assert!(err.contains("external reference"), "{err}");
        assert!(check_xml(r#"<?xml-stylesheet href="a.css"?><svg/>"#).unwrap_err().contains("processing"));
    }

    #[test]
    fn depth_and_count_are_bounded() {
        let nested = |n: usize| svg(&format!("{}{}", "<g>".repeat(n), "</g>".repeat(n)));
        assert!(check_xml(&nested(MAX_DEPTH - 1)).is_ok());
        assert!(check_xml(&nested(MAX_DEPTH)).unwrap_err().contains("deeper"));
        assert!(check_xml(&svg(&"<rect/>".repeat(MAX_NODES))).unwrap_err().contains("elements"));
    }

    #[test]
    fn plain_logos_pass_and_are_counted() {
        let text = svg(
            r##"<title>x</title><defs><linearGradient id="g" x2="1"><stop offset="0" stop-color="#f00"/></linearGradient>
            <clipPath id="c"><circle cx="5" cy="5" r="5"/></clipPath></defs>
            <g clip-path="url(#c)" opacity=".5"><rect width="10" height="10" fill="url(#g)"/></g>
            <path d="M0 0L10 10" stroke="#000" stroke-width="2" aria-hidden="true"/>"##,
        );
        check_xml(&text).unwrap();
        let tree = usvg::Tree::from_str(&text, &usvg::Options::default()).unwrap();
        let cost = check_tree(&tree).unwrap();
        assert_eq!(cost.layers, 1, "{cost:?}");
        assert!(cost.segments >= 6, "{cost:?}");
    }

    #[test]
    fn segments_and_layers_are_bounded_after_parsing() {
        let long = svg(&format!(r#"<path d="M0 0{}"/>"#, "h.1".repeat(MAX_SEGMENTS)));
        check_xml(&long).unwrap();
        let tree = usvg::Tree::from_str(&long, &usvg::Options::default()).unwrap();
        assert!(check_tree(&tree).unwrap_err().contains("segments"));
        let layers = svg(&r#"<g opacity=".5"><rect width="1" height="1"/></g>"#.repeat(MAX_LAYERS + 1));
        let tree = usvg::Tree::from_str(&layers, &usvg::Options::default()).unwrap();
        assert!(check_tree(&tree).unwrap_err().contains("opacity"));
    }
}
