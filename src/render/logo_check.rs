//! What a custom SVG logo may contain, so that its cost can be stated: an
//! allow-list of elements and attributes checked on the XML (before usvg
//! parses anything), then bounds on the parsed tree. Anything that loops per
//! pixel or expands (filters, `use`, patterns, masks, text, CSS, dashes) is
//! refused by name; what is left is shapes, groups, gradients and clip paths,
//! and the area they paint is budgeted (in logo areas) so that no amount of
//! overdraw or oversized layers is more than a few dozen fills of the box.

use std::collections::HashMap;

use resvg::usvg;

/// Elements nested deeper than this (the root `<svg>` is 1) are refused.
pub const MAX_DEPTH: usize = 32;
/// Elements in the XML, and nodes in the parsed tree, at most.
pub const MAX_NODES: usize = 2_000;
/// Path segments (every shape is a path once parsed), all paths together.
pub const MAX_SEGMENTS: usize = 10_000;
/// Area painted, in logo areas: every path's box within the canvas, every
/// group drawn in a layer of its own (group `opacity`, `clip-path`) as its
/// layer's box (resvg allows up to 25 logo areas), once more per clip path
/// shape. Drawing cost is about proportional to it.
pub const MAX_COVERAGE: f32 = 32.0;

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
        if tag.namespace().is_some_and(|ns| ns != SVG_NS)
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
    // usvg copies what a reference names into every place that uses it (a
    // clip path once per user, again for each clip path its shapes use), so
    // a few dozen elements can expand exponentially before the parsed tree
    // could be counted: the expansion is counted here, on the XML, first.
    let ids: HashMap<&str, roxmltree::Node> = doc.descendants().filter_map(|n| Some((n.attribute("id")?, n))).collect();
    let mut sizes = HashMap::new();
    let expanded = expanded_size(root, &ids, &mut sizes, 0)?;
    if expanded > MAX_NODES {
        return Err(format!(
            "more than {MAX_NODES} elements once its references (clip paths, gradients) are copied where they are used"
        ));
    }
    Ok(())
}

/// The elements `node` stands for once every `url(#…)` and `href="#…"` in
/// it and below it is replaced by what it names (memoized per element;
/// saturating past the limit, so the count itself stays cheap).
fn expanded_size<'a>(
    node: roxmltree::Node<'a, 'a>,
    ids: &HashMap<&'a str, roxmltree::Node<'a, 'a>>,
    sizes: &mut HashMap<roxmltree::NodeId, Option<usize>>,
    chain: usize,
) -> Result<usize, String> {
    match sizes.get(&node.id()) {
        Some(Some(size)) => return Ok(*size),
        Some(None) => return Err("a reference loop (an element refers to itself)".into()),
        None => {}
    }
    if chain > MAX_DEPTH {
        return Err(format!("references nested deeper than {MAX_DEPTH}"));
    }
    sizes.insert(node.id(), None);
    let mut size: usize = 1;
    for attr in node.attributes() {
        for target in references(attr.value()) {
            if let Some(target) = ids.get(target) {
                size = size.saturating_add(expanded_size(*target, ids, sizes, chain + 1)?);
            }
        }
    }
    for child in node.children().filter(roxmltree::Node::is_element) {
        size = size.saturating_add(expanded_size(child, ids, sizes, chain)?);
        if size > MAX_NODES {
            break;
        }
    }
    let size = size.min(MAX_NODES + 1);
    sizes.insert(node.id(), Some(size));
    Ok(size)
}

/// The ids an attribute value refers to: `#id` (an href) or `url(#id)`.
fn references(value: &str) -> Vec<&str> {
    let value = value.trim();
    if let Some(id) = value.strip_prefix('#') {
        return vec![id];
    }
    value
        .match_indices("url(")
        .filter_map(|(at, _)| {
            let inner = value[at + 4..].trim_start().trim_start_matches(['"', '\'']).strip_prefix('#')?;
            inner.split([')', '"', '\'']).next()
        })
        .collect()
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
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TreeCost {
    pub nodes: usize,
    pub segments: usize,
    pub points: usize,
    pub depth: usize,
    /// Area painted, in logo areas (see `MAX_COVERAGE`).
    pub coverage: f32,
}

/// Counts the parsed tree (clip paths included) and checks its bounds.
pub fn check_tree(tree: &usvg::Tree) -> Result<TreeCost, String> {
    let size = tree.size();
    let canvas = Area { w: size.width(), h: size.height() };
    let mut cost = TreeCost::default();
    count(tree.root(), 1, false, canvas, &mut cost);
    if cost.nodes > MAX_NODES {
        return Err(format!("more than {MAX_NODES} nodes once parsed"));
    }
    if cost.depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} once parsed"));
    }
    if cost.segments > MAX_SEGMENTS {
        return Err(format!("more than {MAX_SEGMENTS} path segments"));
    }
    if cost.coverage > MAX_COVERAGE {
        return Err(format!(
            "the shapes paint {:.0} times the logo's area (at most {MAX_COVERAGE}): less overlap, or smaller groups with opacity or clip-path",
            cost.coverage
        ));
    }
    Ok(cost)
}

/// The logo's box, in the tree's absolute coordinates.
#[derive(Clone, Copy)]
struct Area {
    w: f32,
    h: f32,
}

impl Area {
    /// The share of the box (`spread` 0) or of resvg's largest layer (`spread`
    /// 2: two boxes out on every side) that `rect` covers, in boxes.
    fn covered(self, rect: (f32, f32, f32, f32), spread: f32) -> f32 {
        let (x0, y0) = (-spread * self.w, -spread * self.h);
        let (x1, y1) = ((1.0 + spread) * self.w, (1.0 + spread) * self.h);
        let w = (rect.2.min(x1) - rect.0.max(x0)).max(0.0);
        let h = (rect.3.min(y1) - rect.1.max(y0)).max(0.0);
        let share = w * h / (self.w * self.h).max(f32::MIN_POSITIVE);
        // NaN (from infinite coordinates) counts as the whole layer.
        if share.is_nan() { (1.0 + 2.0 * spread).powi(2) } else { share }
    }
}

fn ltrb(r: usvg::Rect) -> (f32, f32, f32, f32) {
    (r.left(), r.top(), r.right(), r.bottom())
}

/// `in_layer`: drawn into a group's layer, which reaches past the box.
fn count(group: &usvg::Group, depth: usize, in_layer: bool, canvas: Area, cost: &mut TreeCost) {
    cost.nodes += 1;
    cost.depth = cost.depth.max(depth);
    let isolated = group.should_isolate();
    if isolated {
        let layer = canvas.covered(ltrb(group.abs_layer_bounding_box().to_rect()), 2.0);
        // The layer is filled, composited, and masked once per clip shape.
        let mut clip_shapes = 0;
        let mut clip = group.clip_path();
        while let Some(c) = clip {
            let before = cost.nodes;
            count(c.root(), depth + 1, true, canvas, cost);
            clip_shapes += cost.nodes - before;
            clip = c.clip_path();
            if cost.nodes > MAX_NODES {
                return;
            }
        }
        cost.coverage += layer * (2 + clip_shapes) as f32;
    }
    let in_layer = in_layer || isolated;
    for node in group.children() {
        if cost.nodes > MAX_NODES {
            return;
        }
        match node {
            usvg::Node::Group(g) => count(g, depth + 1, in_layer, canvas, cost),
            usvg::Node::Path(p) => {
                cost.nodes += 1;
                cost.segments += p.data().verbs().len();
                cost.points += p.data().len();
                let spread = if in_layer { 2.0 } else { 0.0 };
                cost.coverage += canvas.covered(ltrb(p.abs_stroke_bounding_box()), spread);
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
    fn references_are_counted_where_they_are_copied() {
        // Six shapes per clip path, each clipped by the next one: 6^depth
        // once usvg copies them (object-bounding-box clip paths are not shared).
        let mut defs = String::new();
        for d in 0..8 {
            defs.push_str(&format!(r#"<clipPath id="c{d}" clipPathUnits="objectBoundingBox">"#));
            for _ in 0..6 {
                defs.push_str(&format!(r#"<rect width="1" height="1" clip-path="url(#c{})"/>"#, d + 1));
            }
            defs.push_str("</clipPath>");
        }
        let bomb = svg(&format!(
            r#"<defs>{defs}<clipPath id="c8"><rect width="1" height="1"/></clipPath></defs>
            <rect width="10" height="10" clip-path="url(#c0)"/>"#
        ));
        assert!(bomb.len() < 4096);
        let err = check_xml(&bomb).unwrap_err();
        assert!(err.contains("once its references"), "{err}");
        let looped = svg(r#"<defs><clipPath id="a"><rect width="1" height="1" clip-path="url(#a)"/></clipPath></defs>
            <rect width="10" height="10" clip-path="url(#a)"/>"#);
        assert!(check_xml(&looped).unwrap_err().contains("loop"));
        // One clip path used a few times is fine.
        let fine = svg(r#"<defs><clipPath id="c"><circle cx="5" cy="5" r="5"/></clipPath></defs>
            <rect width="10" height="10" clip-path="url(#c)"/><rect width="5" height="5" clip-path="url(#c)"/>"#);
        check_xml(&fine).unwrap();
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
        // The layer (filled, composited, masked by the clip path's group
        // and circle), the clip circle, the rect in the layer, the stroke.
        assert_eq!(cost.coverage, 4.0 + 1.0 + 1.0 + 1.0, "{cost:?}");
        assert!(cost.segments >= 6, "{cost:?}");
    }

    #[test]
    fn segments_and_painted_area_are_bounded_after_parsing() {
        let long = svg(&format!(r#"<path d="M0 0{}"/>"#, "h.1".repeat(MAX_SEGMENTS)));
        check_xml(&long).unwrap();
        let tree = usvg::Tree::from_str(&long, &usvg::Options::default()).unwrap();
        assert!(check_tree(&tree).unwrap_err().contains("segments"));
        let cover = |body: &str, n: usize| {
            let tree = usvg::Tree::from_str(&svg(&body.repeat(n)), &usvg::Options::default()).unwrap();
            check_tree(&tree).map(|c| c.coverage)
        };
        // Whole-box shapes: one box each; shapes past the box count within it.
        let full = r#"<rect x="-1e9" y="-1e9" width="2e9" height="2e9"/>"#;
        assert_eq!(cover(full, 32), Ok(32.0));
        assert!(cover(full, 33).unwrap_err().contains("paint 33 times"));
        // A huge layer: resvg draws 25 boxes of it, twice over.
        let layer = r#"<g opacity=".5"><rect x="-1e9" y="-1e9" width="2e9" height="2e9"/></g>"#;
        assert!(cover(layer, 1).unwrap_err().contains("paint 75 times"));
        let small = r#"<g opacity=".5"><rect width="5" height="5"/></g>"#;
        assert!(cover(small, 20).is_ok());
    }
}
