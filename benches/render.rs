//! `cargo bench --bench render`: what one frame costs, from drawing to the
//! shared part bytes, a camera overlay per 1280x720 frame, and the worst
//! anonymous render: the costliest allowed custom logo, new each time. Prints medians over many batches, and ratios taken in
//! the same run (this machine is noisy; ratios travel better than times).

#[path = "support/frames.rs"]
mod frames;
#[path = "support/logos.rs"]
mod logos;

use std::hint::black_box;
use std::time::{Duration, Instant};

use framecast::config::camera::OverlayConfig;
use framecast::push::part::Frame;
use framecast::render::board::compose;
use framecast::render::format::MapValues;
use framecast::render::jpeg;
use framecast::render::online::{OnlineCount, builtin_online};
use framecast::render::overlay::Overlay;
use framecast::render::png::{encode_png, encode_png_board, encode_png_with};
use framecast::render::template::Templates;

/// Median time per call over 101 batches sized to ~2 ms each.
fn median<T>(mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < Duration::from_millis(20) {
        black_box(f());
        calls += 1;
    }
    let per_batch = (calls / 10).max(1);
    let mut samples: Vec<Duration> = (0..101)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                black_box(f());
            }
            t.elapsed() / per_batch
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn values(pairs: &[(&str, &str)], history: Vec<f64>) -> MapValues {
    MapValues { text: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), history, logo: None }
}

fn main() {
    // The fallback faces first (before anything is drawn), as `serve` does.
    let scripts = script_fonts();
    let templates = Templates::builtin();
    let online = builtin_online();
    let flat = templates.get("flat").unwrap();
    let sparkline = templates.get("sparkline").unwrap();
    let counter = templates.get("counter").unwrap();
    let build = values(&[("label", "build"), ("message", "passing"), ("color", "brightgreen")], vec![]);
    let series: Vec<f64> = (0..60).map(|i| ((i * 37) % 23) as f64).collect();
    let latency = values(&[("label", "latency"), ("value", "42.5")], series);
    let views = values(&[("label", "page views"), ("value", "12345")], vec![]);

    let pixmap = online.draw(&OnlineCount(1234), 1.0).expect("fits");
    let png = encode_png(&pixmap);
    let draw = median(|| online.draw(&OnlineCount(1234), 1.0));
    let fast = median(|| encode_png(&pixmap));
    let balanced = median(|| encode_png_with(&pixmap, png::Compression::Balanced));
    let online_png = median(|| online.render_png(&OnlineCount(1234), 1.0));
    let flat_png = median(|| flat.render_png(&build, 1.0));
    let flat_2x = median(|| flat.render_png(&build, 2.0));
    let spark_png = median(|| sparkline.render_png(&latency, 1.0));
    let counter_png = median(|| counter.render_png(&views, 1.0));
    let part = median(|| Frame::new(7, "image/png", &png));
    let big = vec![0x5au8; 50_000];
    let part_50k = median(|| Frame::new(7, "image/jpeg", &big));
    let balanced_len = encode_png_with(&pixmap, png::Compression::Balanced).len();

    println!("medians per frame:");
    println!("  online badge 86x20: draw (cached background)   {draw:>10.2?}");
    println!("  PNG encode, Fast                               {fast:>10.2?}  ({} bytes)", png.len());
    println!("  PNG encode, Balanced                           {balanced:>10.2?}  ({balanced_len} bytes)");
    println!("  online badge: draw + encode                    {online_png:>10.2?}");
    println!("  flat \"build | passing\" 20 px: draw + encode    {flat_png:>10.2?}   (goal <= 30 us)");
    println!("  the same @2x                                   {flat_2x:>10.2?}");
    println!("  sparkline tile 160x48, 30 points               {spark_png:>10.2?}   (goal <= 100 us)");
    println!("  counter tile 120x64                            {counter_png:>10.2?}");
    println!("  serialize part (1.7 KB PNG)                    {part:>10.2?}");
    println!("  serialize part (50 KB JPEG)                    {part_50k:>10.2?}");
    // A camera overlay on a 1280x720 frame: decode, draw, encode, once per
    // frame for every viewer.
    let camera = jpeg::encode_rgb(&frames::camera_rgb(1280, 720, 1, 4), 80);
    let decoded = jpeg::decode(&camera).unwrap();
    let overlay_config: OverlayConfig =
        serde_json::from_str(r#"{"text": "1234 watching · 12:34:56 · 30.0 fps", "size": 24}"#).unwrap();
    let overlay = Overlay::new(&overlay_config).unwrap();
    let decode = median(|| jpeg::decode(&camera).unwrap());
    let mut canvas = decoded.clone();
    let draw_overlay = median(|| overlay.draw(&mut canvas, "1234 watching · 12:34:56 · 30.0 fps"));
    let encode = median(|| jpeg::encode_rgb(&decoded, 80));
    let whole = median(|| {
        let mut image = jpeg::decode(&camera).unwrap();
        overlay.draw(&mut image, "1234 watching · 12:34:56 · 30.0 fps");
        jpeg::encode_rgb(&image, 80)
    });
    // A 2x4 board (what one change of any tile costs): 4 flat badges, 2
    // counters, 2 sparklines drawn, composed and encoded.
    let tiles = || {
        vec![
            flat.draw(&build, 1.0).unwrap(),
            flat.draw(&build, 1.0).unwrap(),
            flat.draw(&build, 1.0).unwrap(),
            flat.draw(&build, 1.0).unwrap(),
            counter.draw(&views, 1.0).unwrap(),
            counter.draw(&views, 1.0).unwrap(),
            sparkline.draw(&latency, 1.0).unwrap(),
            sparkline.draw(&latency, 1.0).unwrap(),
        ]
    };
    let board = || encode_png_board(&compose(&tiles(), 2, 6.0, Some(tiny_skia::Color::WHITE)).unwrap());
    let board_len = board().len();
    let board_time = median(board);
    // What the live board does per change: the changed tile is drawn, the
    // other seven are kept from the last frame.
    let mut kept = tiles();
    let one_change = median(|| {
        kept[0] = flat.draw(&build, 1.0).unwrap();
        encode_png_board(&compose(&kept, 2, 6.0, Some(tiny_skia::Color::WHITE)).unwrap())
    });
    let composed = compose(&kept, 2, 6.0, Some(tiny_skia::Color::WHITE)).unwrap();
    let board_encode = median(|| encode_png_board(&composed));
    println!(
        "  board 2x4 (4 badges, 2 counters, 2 sparklines), {}x{}, {board_len} bytes:",
        composed.width(),
        composed.height()
    );
    println!("    every tile drawn + layout + encode           {board_time:>10.2?}");
    println!("    one tile changed (the live board's case)     {one_change:>10.2?}   (goal <= 200 us)");
    println!("    of which PNG encode                          {board_encode:>10.2?}");
    println!("camera overlay, 1280x720 JPEG ({} KB):", camera.len() / 1000);
    println!("  decode (zune-jpeg)                             {decode:>10.2?}");
    println!("  draw box + text (tiny-skia, cached glyphs)     {draw_overlay:>10.2?}");
    println!("  encode q80 (jpeg-encoder, simd)                {encode:>10.2?}");
    println!("  decode + draw + encode                         {whole:>10.2?}   (goal <= 12 ms)");
    costliest_logo(&templates);
    if scripts {
        text_in_scripts(&templates, flat_png);
    } else {
        println!("text in other scripts: skipped (install fonts-noto-core and fonts-noto-cjk)");
    }
    println!("ratios in this run:");
    println!("  Balanced / Fast encode time                    {:>10.1}x", balanced.as_secs_f64() / fast.as_secs_f64());
    println!("  Fast / Balanced size                           {:>10.2}x", png.len() as f64 / balanced_len as f64);
}

/// One anonymous render at its worst: a custom logo the cache has not seen
/// (parsed, checked, drawn) on a static `for-the-badge` badge at the
/// largest scale, with the longest text a field may carry.
fn costliest_logo(templates: &Templates) {
    use framecast::render::logo::LogoFields;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let badge = templates.get("for-the-badge").unwrap();
    let salt = AtomicUsize::new(0);
    let fresh = || {
        let b64 = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            logos::costly_svg(salt.fetch_add(1, Relaxed)),
        );
        format!("data:image/svg+xml;base64,{b64}")
    };
    let with_text = |n: usize, logo| {
        let text = "W".repeat(n);
        let mut v = values(&[("label", &text), ("message", &text), ("color", "blue")], vec![]);
        v.logo = logo;
        v
    };
    let resolve = |url: &str| LogoFields { named: Some(url), ..LogoFields::default() }.resolve().unwrap();
    // The longest text that still fits the picture bound at @4x (longer is
    // a `400` before anything is drawn).
    // (The size is measured before drawing, so the refused lengths cost nothing.)
    let probe = resolve(&fresh());
    let chars = (1..=200).rev().find(|n| badge.draw(&with_text(*n, probe.clone()), 4.0).is_ok()).unwrap();
    let with_logo = |logo| with_text(chars, logo);
    let parse = median(|| resolve(&fresh()));
    let whole = median(|| badge.render_png(&with_logo(resolve(&fresh())), 4.0).unwrap());
    let plain = median(|| badge.render_png(&with_logo(None), 4.0).unwrap());
    let drawn = badge.draw(&with_logo(resolve(&fresh())), 4.0).unwrap();
    let (w, h) = (drawn.width(), drawn.height());
    println!("the costliest allowed custom logo ({} bytes of SVG), new each time:", logos::costly_svg(0).len());
    println!("  parse + check (on the request's thread)        {parse:>10.2?}");
    println!("  for-the-badge @4x {w}x{h}, {chars}+{chars} chars: all   {whole:>10.2?}");
    println!("  the same badge without a logo                  {plain:>10.2?}");
}

const NOTO_CJK: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
const NOTO_ARABIC: &str = "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf";

/// Installs Debian's Noto CJK and Arabic faces as fallbacks, if present.
fn script_fonts() -> bool {
    use framecast::config::fonts::{FontFace, FontFile};
    if !std::path::Path::new(NOTO_CJK).exists() || !std::path::Path::new(NOTO_ARABIC).exists() {
        return false;
    }
    let files = [FontFile::Path(NOTO_ARABIC.into()), FontFile::Face(FontFace { path: NOTO_CJK.into(), index: 2 })];
    framecast::render::fonts::install(&files, false).is_ok()
}

/// A CJK, an Arabic and a Latin badge: with the shaped-run cache warm (a
/// live badge's steady state), with a new text each time (shaped, glyphs
/// cached), and the worst anonymous case: as many CJK characters as fit,
/// none drawn before, at @4x.
fn text_in_scripts(templates: &Templates, latin: Duration) {
    let flat = templates.get("flat").unwrap();
    let badge =
        |label: &str, message: &str| values(&[("label", label), ("message", message), ("color", "blue")], vec![]);
    let cjk = badge("在线", "12 人");
    let arabic = badge("مرحبا", "بالعالم");
    let cjk_warm = median(|| flat.render_png(&cjk, 1.0));
    let arabic_warm = median(|| flat.render_png(&arabic, 1.0));
    let mut n = 0u64;
    let arabic_new = median(|| {
        n += 1;
        flat.render_png(&badge("مرحبا", &format!("بالعالم {n}")), 1.0)
    });
    // As many CJK characters as fit the pixel bounds at @4x (40 + 40; more
    // is refused before anything is drawn), none drawn before.
    let mut next = 0x4E00u32;
    let mut fresh = || {
        (0..40)
            .map(|_| {
                next = if next >= 0x9FA5 { 0x4E00 } else { next + 1 };
                char::from_u32(next).unwrap()
            })
            .collect::<String>()
    };
    assert!(flat.render_png(&badge(&fresh(), &fresh()), 4.0).is_ok(), "40 + 40 CJK characters fit at @4x");
    let worst = median(|| flat.render_png(&badge(&fresh(), &fresh()), 4.0).unwrap());
    println!("text in other scripts (Noto Sans CJK SC, Noto Sans Arabic as fallbacks):");
    println!("  flat \"build | passing\" (Latin, unshaped path) {latin:>10.2?}");
    println!("  flat \"在线 | 12 人\", shaped text cached       {cjk_warm:>10.2?}");
    println!("  flat \"مرحبا | بالعالم\", shaped text cached    {arabic_warm:>10.2?}");
    println!("  the Arabic badge, a new text each time         {arabic_new:>10.2?}");
    println!("  40 + 40 CJK characters never drawn before, @4x {worst:>10.2?}");
}
