//! The costliest custom logo the checks let through that still fits a URL,
//! shared by `cargo bench --bench render` (which times it) and tests/logos.rs
//! (which serves it while `/healthz` must keep answering).

/// Thirty radial-gradient fills of the whole box and a long, thick,
/// round-joined stroke of curves looping over it: 31 of the 32 logo areas
/// the painted-area budget allows, and as many curves as the URL has room
/// for. `salt` makes each one new, so no cache helps.
pub fn costly_svg(salt: usize) -> String {
    let fill = r#"<rect width="100" height="20" fill="url(#g)"/>"#.repeat(30);
    let curves = "c90 20-90 20 0 0".repeat(400);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 20" id="s{salt}"><defs><radialGradient id="g"><stop offset="0" stop-color="#f00"/><stop offset=".5" stop-color="#0f0"/><stop offset="1" stop-color="#00f"/></radialGradient></defs>{fill}<path d="M5 0{curves}" stroke="#0f0" stroke-width="9" stroke-linejoin="round" stroke-linecap="round" fill="none"/></svg>"##
    )
}
