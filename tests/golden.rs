//! Golden images: every built-in template drawn with fixed values must match
//! `tests/golden/*.png` on decoded pixels, within a small tolerance. Badges
//! fit their text and grow with it. After an intended change to the drawing,
//! regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and look at the
//! pictures before committing them (the README shows the same files).

mod common;

use std::path::PathBuf;

use common::decode_png;
use framecast::render::format::MapValues;
use framecast::render::logo::LogoFields;
use framecast::render::template::Templates;

/// Largest difference allowed per channel: antialiasing may shift slightly
/// across library versions; anything visible fails.
const TOLERANCE: u8 = 3;

fn values(pairs: &[(&str, &str)], history: &[f64]) -> MapValues {
    MapValues {
        text: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        history: history.to_vec(),
        ..MapValues::default()
    }
}

fn with_logo(mut v: MapValues, slug: &str, color: Option<&str>) -> MapValues {
    v.logo = LogoFields { named: Some(slug), color, ..LogoFields::default() }.resolve().unwrap();
    v
}

/// (file, template, values, scale)
fn cases() -> Vec<(&'static str, &'static str, MapValues, f32)> {
    let build = [("label", "build"), ("message", "passing"), ("color", "brightgreen")];
    let series = [12.0, 15.0, 11.0, 18.0, 22.0, 19.0, 25.0, 24.0, 30.0, 28.0, 35.0, 31.0, 38.0, 42.0];
    // A day of a room in 144 ten-minute maxima: quiet nights, a busy evening.
    let day: Vec<f64> =
        (0..144).map(|i| ((i as f64 / 144.0 * std::f64::consts::TAU).sin() * 20.0 + 22.0).round()).collect();
    vec![
        ("flat", "flat", values(&build, &[]), 1.0),
        ("flat-square", "flat-square", values(&build, &[]), 1.0),
        ("plastic", "plastic", values(&build, &[]), 1.0),
        ("for-the-badge", "for-the-badge", values(&build, &[]), 1.0),
        ("flat@2x", "flat", values(&build, &[]), 2.0),
        ("flat-light", "flat", values(&[("label", "coverage"), ("message", "97%"), ("color", "yellow")], &[]), 1.0),
        ("online", "online", values(&[("viewers", "42")], &[]), 1.0),
        ("online-idle", "online", values(&[("viewers", "0")], &[]), 1.0),
        ("people", "people", values(&[("members", "2"), ("guests", "33")], &[]), 1.0),
        ("people-footer", "people-footer", values(&[("online", "35"), ("members", "2"), ("guests", "33")], &[]), 1.0),
        ("counter", "counter", values(&[("label", "page views"), ("value", "1234567")], &[]), 1.0),
        ("sparkline", "sparkline", values(&[("label", "requests/s"), ("value", "4200")], &series), 1.0),
        ("social", "social", values(&[("label", "stars"), ("message", "1.2k")], &[]), 1.0),
        ("social-nocount", "social", values(&[("label", "follow"), ("message", "")], &[]), 1.0),
        ("logo-flat", "flat", with_logo(values(&build, &[]), "github", None), 1.0),
        ("logo-flat-square", "flat-square", with_logo(values(&build, &[]), "docker", None), 1.0),
        ("logo-plastic", "plastic", with_logo(values(&build, &[]), "rust", Some("orange")), 1.0),
        ("logo-for-the-badge", "for-the-badge", with_logo(values(&build, &[]), "github", None), 1.0),
        (
            "logo-social",
            "social",
            with_logo(values(&[("label", "stars"), ("message", "1.2k")], &[]), "github", None),
            1.0,
        ),
        (
            "logo-only",
            "flat",
            with_logo(values(&[("label", ""), ("message", "passing"), ("color", "blue")], &[]), "linux", None),
            1.0,
        ),
        ("logo-flat@2x", "flat", with_logo(values(&build, &[]), "github", None), 2.0),
        ("room-sparkline", "room-sparkline", values(&[("label", "lobby · 24 h"), ("value", "37")], &day), 1.0),
    ]
}

fn golden_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{file}.png"))
}

#[test]
fn every_template_matches_its_golden_image() {
    let templates = Templates::builtin();
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for (file, template, values, scale) in cases() {
        let png = templates.get(template).unwrap().render_png(&values, scale).unwrap();
        let path = golden_path(file);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &png).unwrap();
            continue;
        }
        let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (gw, gh, gpx) = decode_png(&golden);
        let (w, h, px) = decode_png(&png);
        if (gw, gh) != (w, h) {
            failures.push(format!("{file}: {w}x{h}, golden {gw}x{gh}"));
            continue;
        }
        let worst = px.iter().zip(&gpx).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
        if worst > TOLERANCE {
            failures.push(format!("{file}: a channel differs by {worst} (tolerance {TOLERANCE})"));
        }
    }
    assert!(failures.is_empty(), "golden mismatches:\n{}", failures.join("\n"));
    // A forgotten UPDATE_GOLDEN=1 must not turn every check into a passing write.
    assert!(!update, "UPDATE_GOLDEN=1: golden images rewritten; look at them, then run again without it");
}

/// Whether column `x` holds only the two background colours of the badge
/// (no text pixel reaches it).
fn column_is_plain(px: &[u8], w: u32, h: u32, x: u32) -> bool {
    let at = |y: u32| &px[((y * w + x) * 4) as usize..((y * w + x) * 4 + 4) as usize];
    // Compare each pixel with the one directly above or below it in the
    // badge's middle rows; text would break the smooth vertical gradient.
    (h / 4..h * 3 / 4).all(|y| at(y).iter().zip(at(y + 1)).all(|(a, b)| a.abs_diff(*b) <= 6))
}

#[test]
fn text_fits_and_badges_grow_with_it() {
    let templates = Templates::builtin();
    for style in ["flat", "flat-square", "plastic", "for-the-badge"] {
        let template = templates.get(style).unwrap();
        let mut last_width = 0;
        for message in ["1", "passing", "a considerably longer message, still fitting"] {
            let v = values(&[("label", "label"), ("message", message), ("color", "blue")], &[]);
            let (w, h, px) = decode_png(&template.render_png(&v, 1.0).unwrap());
            assert!(w > last_width, "{style}: {message:?} is not wider");
            last_width = w;
            // The outermost columns inside the padding carry no text.
            for x in [2, w - 3] {
                assert!(column_is_plain(&px, w, h, x), "{style}: text reaches column {x} of {w} for {message:?}");
            }
        }
    }
}
