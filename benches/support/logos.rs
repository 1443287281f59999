//! The costliest custom logo the checks let through that still fits a URL,
//! shared by `cargo bench --bench render` (which times it) and tests/logos.rs
//! (which serves it while `/healthz` must keep answering).

/// Fifteen layers each as large as resvg allows (25 times the logo's box),
/// clipped and filled with a radial gradient, under a long, thick, round-
/// joined stroke of curves. `salt` makes each one new, so no cache helps.
pub fn costly_svg(salt: usize) -> String {
    let layer = r##"<g opacity=".9" clip-path="url(#c)"><rect x="-1e4" y="-1e4" width="2e4" height="2e4" fill="url(#g)"/></g>"##;
    let curves = "c9 9 -9 9 0 1".repeat(500);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 20" id="s{salt}"><defs><radialGradient id="g"><stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f"/></radialGradient><clipPath id="c"><circle cx="50" cy="10" r="60"/></clipPath></defs>{}<path d="M0 0{curves}" stroke="#0f0" stroke-width="40" stroke-linejoin="round" fill="none"/></svg>"##,
        layer.repeat(15)
    )
}
