//! Badges in every script, with the fonts Debian ships (`fonts-noto-core`,
//! `fonts-noto-cjk`, `fonts-noto-color-emoji`; the test command installs
//! them): shaping checked against an independent oracle, Debian's
//! `hb-shape` (HarfBuzz itself), on the same font files; no missing-glyph
//! boxes when a configured font has the glyph (through the running
//! server); joined Arabic; colour emoji; and golden images of each script
//! in each style at 1x and 2x, with `.svg` widths equal to the PNG's.
//! Regenerate the goldens with `UPDATE_GOLDEN=1 cargo test --test scripts`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, decode_png, get};
use framecast::config::fonts::FontFile;
use framecast::render::format::MapValues;
use framecast::render::template::Templates;

const NOTO: &str = "/usr/share/fonts/truetype/noto";
const NOTO_CJK: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";

/// The fallback faces the tests configure, in order.
fn font_files() -> Vec<String> {
    let noto = |f: &str| format!("{NOTO}/{f}");
    vec![
        noto("NotoSansDevanagari-Regular.ttf"),
        noto("NotoSansArabic-Regular.ttf"),
        noto("NotoSansHebrew-Regular.ttf"),
        // Index 0 of the collection: Noto Sans CJK JP.
        NOTO_CJK.to_string(),
        noto("NotoColorEmoji.ttf"),
    ]
}

fn config_fonts() -> Vec<FontFile> {
    font_files().into_iter().map(|f| FontFile::Path(f.into())).collect()
}

fn installed() {
    for file in font_files() {
        assert!(Path::new(&file).exists(), "{file}: missing (the test command installs Debian's font packages)");
    }
    framecast::render::fonts::install(&config_fonts(), false).expect("the Debian fonts load");
}

/// `framecast shape` for `text` with the test fonts: one JSON value per run.
fn framecast_shape(text: &str) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_framecast"));
    cmd.arg("shape").arg(text);
    for f in font_files() {
        cmd.arg("--font").arg(f);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "framecast shape: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// HarfBuzz's own shaping of `text` in `font` (face `index`), as JSON.
fn hb_shape(font: &str, index: u64, text: &str, rtl: bool) -> serde_json::Value {
    let out = Command::new("hb-shape")
        .arg(format!("--font-file={font}"))
        .arg(format!("--face-index={index}"))
        .arg(format!("--direction={}", if rtl { "rtl" } else { "ltr" }))
        .args(["--output-format=json", "--no-glyph-names", "--utf8-clusters", "--"])
        .arg(text)
        // UTF-8 arguments; the C locale names no language, as framecast.
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("hb-shape (Debian's libharfbuzz-bin; the test command installs it)");
    assert!(out.status.success(), "hb-shape: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The file a run names: the embedded faces are the repository's copies.
fn font_path(run: &serde_json::Value) -> String {
    let font = run["font"].as_str().unwrap();
    match font.strip_prefix("embedded:") {
        Some(file) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fonts").join(file).display().to_string(),
        None => font.to_string(),
    }
}

#[test]
fn shaping_matches_hb_shape_on_the_same_fonts() {
    let cases = [
        // (text, the face each run must be drawn with, in visual order)
        ("مرحبا بالعالم", vec!["DejaVuSans.ttf"]),
        ("नमस्ते दुनिया", vec!["NotoSansDevanagari-Regular.ttf"]),
        ("क्षत्रिय", vec!["NotoSansDevanagari-Regular.ttf"]),
        ("オンライン 在线", vec!["NotoSansCJK-Regular.ttc"]),
        ("온라인", vec!["NotoSansCJK-Regular.ttc"]),
        ("שלום עולם", vec!["DejaVuSans.ttf"]),
        // Mixed: an Arabic paragraph with a Latin word, laid out by bidi.
        ("مرحبا world", vec!["DejaVuSans.ttf", "DejaVuSans.ttf"]),
        ("version 2 مستقر", vec!["DejaVuSans.ttf", "DejaVuSans.ttf"]),
        // Urdu: DejaVu Sans lacks ہ, so the word goes whole to a face that
        // has every letter, and its letters join.
        ("شکریہ", vec!["NotoSansArabic-Regular.ttf"]),
        // Emoji after text, a keycap, a ZWJ sequence, and one that is text
        // by default elsewhere (⚡): all in the colour face.
        ("hi 😀", vec!["DejaVuSans.ttf", "NotoColorEmoji.ttf"]),
        ("build ⚡", vec!["DejaVuSans.ttf", "NotoColorEmoji.ttf"]),
        ("Step 1\u{FE0F}\u{20E3}", vec!["DejaVuSans.ttf", "NotoColorEmoji.ttf"]),
        ("so 😶\u{200D}🌫\u{FE0F}", vec!["DejaVuSans.ttf", "NotoColorEmoji.ttf"]),
    ];
    for (text, faces) in cases {
        let runs = framecast_shape(text);
        let used: Vec<String> =
            runs.iter().map(|r| Path::new(&font_path(r)).file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(used, faces, "{text}: the faces of its runs {runs:?}");
        let mut glyphs = 0;
        for run in &runs {
            let expected = hb_shape(
                &font_path(run),
                run["index"].as_u64().unwrap(),
                run["text"].as_str().unwrap(),
                run["rtl"] == true,
            );
            let ours = &run["glyphs"];
            let pick = |v: &serde_json::Value| -> Vec<(u64, i64, u64)> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|g| (g["g"].as_u64().unwrap(), g["ax"].as_i64().unwrap(), g["cl"].as_u64().unwrap()))
                    .collect()
            };
            assert_eq!(pick(ours), pick(&expected), "{text}: run {:?} against hb-shape", run["text"]);
            let offsets = |v: &serde_json::Value| -> Vec<(i64, i64)> {
                v.as_array().unwrap().iter().map(|g| (g["dx"].as_i64().unwrap(), g["dy"].as_i64().unwrap())).collect()
            };
            assert_eq!(offsets(ours), offsets(&expected), "{text}: mark offsets of run {:?}", run["text"]);
            glyphs += ours.as_array().unwrap().len();
        }
        assert!(glyphs > 0, "{text}: no glyphs");
    }
    // The bidi order: the Latin word of an Arabic paragraph is on the left.
    let mixed = framecast_shape("مرحبا world");
    assert_eq!((mixed[0]["text"].as_str(), mixed[0]["rtl"].as_bool()), (Some("world"), Some(false)), "{mixed:?}");
    // Conjuncts and matras: fewer glyphs than characters, reordered.
    let kshatriya = framecast_shape("क्षत्रिय");
    assert!(kshatriya[0]["glyphs"].as_array().unwrap().len() < "क्षत्रिय".chars().count());
}

fn config(fonts: bool) -> String {
    let fonts: Vec<String> = if fonts { font_files() } else { Vec::new() };
    serde_json::json!({ "fonts": fonts, "database": null, "state_file": null }).to_string()
}

async fn badge(server: &Server, label: &str, message: &str) -> (u32, u32, Vec<u8>) {
    let enc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            out.push_str(&format!("%{b:02X}"));
        }
        out
    };
    let (status, _, body) = get(server.addr, &format!("/badge/static/{}-{}-blue.png", enc(label), enc(message))).await;
    assert_eq!(status, 200, "{label} | {message}: {}", String::from_utf8_lossy(&body));
    decode_png(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_boxes_where_a_configured_font_has_the_glyph() {
    let _serial = common::serial();
    let plain = Server::start(&config(false));
    let with_fonts = Server::start(&config(true));
    // Without fallback faces, both are two missing-glyph boxes: the same
    // picture. That is what the fonts change.
    assert_eq!(badge(&plain, "status", "在线").await, badge(&plain, "status", "离线").await);
    for (a, b) in [("在线", "离线"), ("नमस्ते", "दुनिया"), ("オンライン", "オフライン")]
    {
        assert_ne!(badge(&with_fonts, "status", a).await, badge(&with_fonts, "status", b).await, "{a} / {b}");
    }
    // Arabic joins: the same letters with zero-width non-joiners between
    // them (each then in its isolated form) draw differently.
    let joined = badge(&with_fonts, "status", "مرحبا").await;
    let apart = badge(&with_fonts, "status", "م\u{200C}ر\u{200C}ح\u{200C}ب\u{200C}ا").await;
    assert_ne!(joined, apart);
    // Colour emoji from Noto Color Emoji: yellow pixels (😀's face), which
    // a monochrome outline in the badge's text colour cannot have.
    let yellow =
        |(_, _, px): &(u32, u32, Vec<u8>)| px.chunks(4).any(|p| p[0] > 200 && p[1] > 150 && p[2] < 90 && p[3] == 255);
    assert!(yellow(&badge(&with_fonts, "mood", "😀").await), "no colour in the emoji");
    assert!(!yellow(&badge(&plain, "mood", "😀").await), "DejaVu's 😀 is an outline");
    // Hostile text through the server: 200 combining marks on one base,
    // and bidi controls nested past the algorithm's depth, draw as any text.
    let marks: String = std::iter::once('a').chain(std::iter::repeat_n('\u{0301}', 199)).collect();
    let controls: String = "\u{202B}\u{202E}".repeat(70) + "abc";
    for text in [marks, controls] {
        let (w, h, _) = badge(&with_fonts, "x", &text).await;
        assert!(w < 2000 && h == 20, "{w}x{h}");
    }
    // check-config names a font file that is not there, and the key.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fonts.json");
    std::fs::write(&file, r#"{"fonts": ["/nonexistent/font.ttf"]}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("fonts[0]") && said.contains("/nonexistent/font.ttf"), "{said}");
    std::fs::write(&file, format!(r#"{{"fonts": [{{"path": "{NOTO_CJK}", "index": 99}}]}}"#)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("index 99"), "{said}");
}

/// (name, label, message): each script the issue names, emoji, and mixed.
const SCRIPTS: [(&str, &str, &str); 9] = [
    ("ja", "オンライン", "接続中 12"),
    ("zh", "在线", "12 人"),
    ("ko", "온라인", "접속 중"),
    ("ar", "مرحبا", "بالعالم"),
    ("he", "שלום", "עולם"),
    ("hi", "नमस्ते", "दुनिया"),
    ("ru", "Привет", "мир"),
    ("emoji", "party 🎉", "😀 42"),
    ("mixed", "مرحبا world", "v1.2 مستقر"),
];
const STYLES: [&str; 5] = ["flat", "flat-square", "plastic", "for-the-badge", "social"];

fn golden_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/scripts").join(format!("{file}.png"))
}

#[test]
fn every_script_in_every_style_matches_its_golden_image() {
    installed();
    let templates = Templates::builtin();
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for (script, label, message) in SCRIPTS {
        for style in STYLES {
            let template = templates.get(style).unwrap();
            let values = MapValues {
                text: [("label", label), ("message", message), ("color", "blue")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..MapValues::default()
            };
            for scale in [1.0, 2.0] {
                let png = template.render_png(&values, scale).unwrap();
                let file = format!("{script}-{style}{}", if scale == 2.0 { "@2x" } else { "" });
                let path = golden_path(&file);
                if update {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &png).unwrap();
                } else {
                    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    let ((gw, gh, gpx), (w, h, px)) = (decode_png(&golden), decode_png(&png));
                    let worst = px.iter().zip(&gpx).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
                    if (gw, gh) != (w, h) || worst > 3 {
                        failures.push(format!("{file}: {w}x{h} vs golden {gw}x{gh}, worst channel difference {worst}"));
                    }
                }
                // The SVG is exactly as wide, and names the fallback families.
                let svg = template.render_svg(&values, scale).unwrap();
                let width: f32 =
                    svg.split("width=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().parse().unwrap();
                let png_width = decode_png(&png).0 as f32;
                if (width - png_width).abs() > 0.01 {
                    failures.push(format!("{file}: the SVG is {width} wide, the PNG {png_width}"));
                }
                if !svg.contains("Noto Sans CJK JP") {
                    failures.push(format!("{file}: the SVG does not name the fallback families"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "script goldens:\n{}", failures.join("\n"));
    assert!(!update, "UPDATE_GOLDEN=1: script goldens rewritten; look at them, then run again without it");
}

#[test]
fn a_pathological_string_is_bounded_like_any_other() {
    installed();
    let templates = Templates::builtin();
    let flat = templates.get("flat").unwrap();
    // 200 characters (the field limit): one base and 199 combining marks,
    // and bidi controls nested past the algorithm's depth.
    let marks: String = std::iter::once('a').chain(std::iter::repeat_n('\u{0301}', 199)).collect();
    let controls: String = "\u{202B}\u{202E}".repeat(70) + "abc";
    for text in [marks, controls] {
        let values = MapValues {
            text: [("label", "x".to_string()), ("message", text.clone()), ("color", "blue".to_string())]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ..MapValues::default()
        };
        let png = flat.render_png(&values, 1.0).expect("drawn within the pixel bounds");
        let (w, h, _) = decode_png(&png);
        assert!(w < 2000 && h == 20, "{w}x{h}");
    }
}
