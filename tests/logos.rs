//! Logos, the social style and SVG badges through the running binary:
//! `?logo=` on static and value badges matches the golden images; an
//! unknown slug is a `400` naming it; a `logoSvg` with an external
//! reference is refused and a clean one drawn; every `.svg` badge parses as
//! XML with the PNG's width and escaped text; logos written by the API are
//! kept across a restart. Hostile SVGs (filters, `use` bombs, deep nesting,
//! long paths) are refused fast while `/healthz` keeps answering, and the
//! costliest allowed logo is drawn off the async threads; shields' raw `+`
//! works; a URL logo's channel carries its full hash.

mod common;
#[path = "../benches/support/logos.rs"]
mod costly_logo;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use common::{Server, Viewer, decode_png, get, request};
use serde_json::Value;

const TOKEN: &str = "logo-test-token-0123456789";

fn check_golden(file: &str, png: &[u8]) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{file}.png"));
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ((gw, gh, gpx), (w, h, px)) = (decode_png(&golden), decode_png(png));
    assert_eq!((w, h), (gw, gh), "{file}: size");
    let worst = px.iter().zip(&gpx).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    assert!(worst <= 3, "{file}: a channel differs by {worst}");
}

async fn put(addr: SocketAddr, name: &str, body: &str) -> (u16, Value) {
    let raw = format!(
        "PUT /api/v1/badges/{name} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = request(addr, &raw).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn ok(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let (status, head, body) = get(addr, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    (head, body)
}

/// The SVG's `width` attribute, after checking it parses as XML.
fn svg_width(svg: &[u8]) -> (u32, String) {
    let text = std::str::from_utf8(svg).expect("UTF-8");
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not XML: {e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: String = doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).collect();
    (root.attribute("width").unwrap().parse().unwrap(), texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logos_social_and_svg_badges() {
    let _serial = common::serial();
    let server = Server::start(&format!(r#"{{"api_tokens": ["{TOKEN}"]}}"#));
    let addr = server.addr;

    // Served pictures are the golden ones.
    let build = "/badge/static/build-passing-brightgreen.png";
    for (query, golden) in [
        ("?logo=github", "logo-flat"),
        ("?logo=docker&style=flat-square", "logo-flat-square"),
        ("?logo=rust&logoColor=orange&style=plastic", "logo-plastic"),
        ("?logo=GitHub&style=for-the-badge", "logo-for-the-badge"),
    ] {
        check_golden(golden, &ok(addr, &format!("{build}{query}")).await.1);
    }
    check_golden("logo-social", &ok(addr, "/badge/static/stars-1.2k-blue.png?style=social&logo=github").await.1);
    check_golden("social", &ok(addr, "/badge/static/stars-1.2k-blue.png?style=social").await.1);

    // Unknown slugs and bad logo parameters are 400s that say why.
    let (status, _, body) = get(addr, &format!("{build}?logo=nosuchbrandxyz")).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("\"nosuchbrandxyz\" is not a Simple Icons slug"));
    assert_eq!(get(addr, &format!("{build}?logo=github&logoWidth=1000")).await.0, 400);
    assert_eq!(get(addr, &format!("{build}?logoColor=red")).await.0, 400);
    assert_eq!(get(addr, "/online/lobby.png?logo=github").await.0, 400, "rooms say logos are not theirs");

    // SVG: XML, same width as the PNG in every style, text escaped.
    for style in ["flat", "flat-square", "plastic", "for-the-badge", "social"] {
        for logo in ["", "&logo=github"] {
            let q = format!("?style={style}{logo}");
            let (head, svg) = ok(addr, &format!("/badge/static/a%3Cb%26c-1%2C234-blue.svg{q}")).await;
            assert!(head.to_ascii_lowercase().contains("content-type: image/svg+xml"), "{head}");
            let (png_w, _, _) = decode_png(&ok(addr, &format!("/badge/static/a%3Cb%26c-1%2C234-blue.png{q}")).await.1);
            let (svg_w, texts) = svg_width(&svg);
            assert_eq!(svg_w, png_w, "{style}{logo}: SVG and PNG widths");
            let label = if style == "social" {
                "A<b&c"
            } else if style == "for-the-badge" {
                "A<B&C"
            } else {
                "a<b&c"
            };
            assert!(texts.contains(label), "{style}: text {texts:?}");
        }
    }

    // Writes: logoSvg with an external reference is refused, a clean one drawn.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let evil = b64(r#"<svg xmlns="http://www.w3.org/2000/svg"><image href="https://tracker.example/x.png"/></svg>"#);
    let (status, body) = put(addr, "build", &format!(r#"{{"message": "ok", "logoSvg": "{evil}"}}"#)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("external reference"), "{body}");
    assert_eq!(put(addr, "build", r#"{"message": "ok", "namedLogo": "nosuchbrandxyz"}"#).await.0, 400);
    assert_eq!(put(addr, "build", r#"{"message": "ok"}"#).await.0, 200);
    let plain = ok(addr, "/badge/build.png?once").await.1;
    let square = b64(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#ff0000"/></svg>"##,
    );
    let (status, body) = put(addr, "build", &format!(r#"{{"message": "ok", "logoSvg": "{square}"}}"#)).await;
    assert_eq!(status, 200, "{body}");
    let (w, h, px) = decode_png(&ok(addr, "/badge/build.png?once").await.1);
    let red = px.chunks(4).filter(|p| p[0] > 240 && p[1] < 16 && p[2] < 16 && p[3] == 255).count();
    assert!(red >= 14 * 14 - 4, "the red square logo: {red} red pixels of {w}x{h}");
    assert_eq!(decode_png(&plain).1, h);
    let svg = ok(addr, "/badge/build.svg?once").await.1;
    assert!(String::from_utf8_lossy(&svg).contains(&format!("data:image/svg+xml;base64,{square}")));
    assert_eq!(svg_width(&svg).0, w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_written_logo_is_kept_across_a_restart() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let config =
        serde_json::json!({ "api_tokens": [TOKEN], "database": dir.path().join("db"), "state_file": null }).to_string();
    let mut server = Server::start(&config);
    let (status, body) =
        put(server.addr, "build", r#"{"message": "passing", "namedLogo": "docker", "logoColor": "yellow"}"#).await;
    assert_eq!(status, 200, "{body}");
    let before = ok(server.addr, "/badge/build.png?once").await.1;
    assert!(server.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let server = Server::start(&config);
    let api = common::api(server.addr, "/api/v1/badges/build").await;
    assert_eq!(
        (api["state"]["named_logo"].as_str(), api["state"]["logo_color"].as_str()),
        (Some("docker"), Some("yellow"))
    );
    assert_eq!(decode_png(&ok(server.addr, "/badge/build.png?once").await.1), decode_png(&before));
    // `"namedLogo": ""` removes it.
    let (status, body) = put(server.addr, "build", r#"{"namedLogo": ""}"#).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["state"].get("named_logo").is_none(), "{body}");
}

/// A `logo=` query value, shields-style: `+` left unescaped (form-decoding
/// reads it as a space, which the server takes back).
fn url_logo(svg: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(svg);
    format!("data:image/svg+xml;base64,{}", b64.replace('/', "%2F").replace('=', "%3D"))
}

/// SVGs that would pin a core or blow up once parsed, as an attacker sends them.
fn hostile_svgs() -> Vec<(&'static str, String)> {
    const NS: &str = r#"xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink""#;
    let turbulence = format!(
        r#"<svg {NS} width="100" height="20"><filter id="f"><feTurbulence baseFrequency="0.9" numOctaves="4000000000"/></filter><rect width="100" height="20" filter="url(#f)"/></svg>"#
    );
    // Six levels of ten `<use>`s: a million paths from a few hundred bytes.
    let mut bomb = format!(r#"<svg {NS} viewBox="0 0 9 9"><defs><path id="l0" d="M0 0h9v9z"/>"#);
    for level in 1..=6 {
        bomb += &format!(r#"<g id="l{level}">{}</g>"#, format!(r##"<use xlink:href="#l{}"/>"##, level - 1).repeat(10));
    }
    bomb += r##"</defs><use xlink:href="#l6"/></svg>"##;
    let nested = format!(
        r#"<svg {NS} viewBox="0 0 9 9">{}<rect width="9" height="9"/>{}</svg>"#,
        "<g>".repeat(1000),
        "</g>".repeat(1000)
    );
    // Clip paths whose six shapes are each clipped by the next clip path:
    // usvg copies object-bounding-box clip paths per use, 6^8 shapes.
    let mut clips = String::new();
    for d in 0..8 {
        clips += &format!(r#"<clipPath id="c{d}" clipPathUnits="objectBoundingBox">"#);
        clips += &format!(r#"<rect width="1" height="1" clip-path="url(#c{})"/>"#, d + 1).repeat(6);
        clips += "</clipPath>";
    }
    let clip_bomb = format!(
        r#"<svg {NS} viewBox="0 0 9 9"><defs>{clips}<clipPath id="c8"><rect width="1" height="1"/></clipPath></defs><rect width="9" height="9" clip-path="url(#c0)"/></svg>"#
    );
    vec![
        ("feTurbulence", turbulence),
        ("use bomb", bomb),
        ("1,000 nested groups", nested),
        ("clip-path bomb", clip_bomb),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_logos_are_refused_fast_and_healthz_keeps_answering() {
    let _serial = common::serial();
    let server = Server::start(&format!(r#"{{"api_tokens": ["{TOKEN}"]}}"#));
    let addr = server.addr;
    assert_eq!(put(addr, "build", r#"{"message": "ok"}"#).await.0, 200);

    // A parallel client asks /healthz on fresh connections all along.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                assert_eq!(get(addr, "/healthz").await.0, 200);
                worst = worst.max(started.elapsed());
            }
            worst
        }
    });

    // Every hostile SVG on every route that takes a logo: each a 400
    // naming what is refused, within 50 ms alone; then eight at a time
    // (four times the cores) while /healthz is asked.
    let mut requests = Vec::new();
    for (what, svg) in hostile_svgs() {
        for path in
            ["/badge/static/a-b-blue.png", "/badge/static/a-b-blue.svg", "/badge/build.png", "/badge/build.png?once&"]
        {
            let sep = if path.ends_with('&') { "" } else { "?" };
            requests.push((what, format!("{path}{sep}logo={}", url_logo(&svg))));
        }
    }
    let answer = |(what, path): &(&'static str, String)| {
        let (what, path) = (*what, path.clone());
        async move {
            let started = std::time::Instant::now();
            let (status, _, body) = get(addr, &path).await;
            (what, status, String::from_utf8_lossy(&body).to_string(), started.elapsed())
        }
    };
    for request in &requests {
        let (what, status, body, took) = answer(request).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            body.contains("not allowed") || body.contains("deeper than 32") || body.contains("once its references"),
            "{what}: {body}"
        );
        assert!(took < Duration::from_millis(50), "{what}: refused in {took:?}");
    }
    for batch in requests.chunks(8) {
        for (what, status, body, _) in futures_util::future::join_all(batch.iter().map(answer)).await {
            assert_eq!(status, 400, "{what}: {body}");
        }
    }
    // A 100,000-point path fits neither a request head (16 KiB) nor a
    // write's body; 10,001 segments fit a write and are refused by count.
    let path = |n| format!(r#"<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0{}"/></svg>"#, "h1".repeat(n));
    let write = |n| format!(r#"{{"logoSvg": "{}"}}"#, base64::engine::general_purpose::STANDARD.encode(path(n)));
    assert_eq!(put(addr, "build", &write(100_000)).await.0, 413);
    let (status, body) = put(addr, "build", &write(10_000)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("more than 10000 path segments"), "{body}");

    // The costliest allowed logos, new each time, as live badges at @2x (a
    // debug build draws one in about a second), as many as the render pool
    // takes at once (4, twice the cores): drawn, off the async threads.
    let costly: Vec<String> = (0..4)
        .map(|i| format!("/badge/build@2x.png?style=for-the-badge&logo={}", url_logo(&costly_logo::costly_svg(i))))
        .collect();
    assert!(costly[0].len() < 15_000, "{} bytes", costly[0].len());
    let viewers = futures_util::future::join_all(costly.iter().map(|path| async move {
        let started = std::time::Instant::now();
        let mut viewer = Viewer::connect(addr, path, "costly").await;
        assert!(viewer.read_parts(1, Duration::from_secs(10)).await, "a first frame");
        (viewer, started.elapsed())
    }))
    .await;
    for (viewer, took) in &viewers {
        let (w, _, _) = decode_png(&viewer.last().unwrap().body);
        assert!(w > 400, "{w} wide, first frame in {took:?}");
        eprintln!("the costliest allowed logo live at @2x: first frame in {took:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = health.await.unwrap();
    assert!(worst < Duration::from_millis(100), "/healthz took up to {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shields_style_logos_with_plus_and_full_hash_channels() {
    let _serial = common::serial();
    let server = Server::start(&format!(r#"{{"api_tokens": ["{TOKEN}"]}}"#));
    let addr = server.addr;
    // `>?` encodes with a `+`: sent raw, as shields' URLs do.
    let red = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><desc>>>?</desc><rect width="10" height="10" fill="#ff0000"/></svg>"##;
    let logo = url_logo(red);
    assert!(logo.contains('+') && logo.matches('+').count() > 1, "{logo}");
    let (w, h, px) = decode_png(&ok(addr, &format!("/badge/static/a-b-blue.png?logo={logo}")).await.1);
    let reds = px.chunks(4).filter(|p| p[0] > 240 && p[1] < 16 && p[2] < 16 && p[3] == 255).count();
    assert!(reds >= 14 * 14 - 4, "the red square logo: {reds} red pixels of {w}x{h}");

    // A URL logo's channel is named by the logo's full SHA-256: a viewer
    // joining it by name sends this very logo.
    assert_eq!(put(addr, "build", r#"{"message": "ok"}"#).await.0, 200);
    let blue = red.replace("ff0000", "0000ff");
    let _red = Viewer::connect(addr, &format!("/badge/build.png?logo={logo}"), "red").await;
    let _blue = Viewer::connect(addr, &format!("/badge/build.png?logo={}", url_logo(&blue)), "blue").await;
    let names: Vec<String> = common::api(addr, "/api/v1/channels").await["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for svg in [red, blue.as_str()] {
        let digest = ring::digest::digest(&ring::digest::SHA256, svg.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert!(names.contains(&format!("badge/build~svg-{hex}")), "{names:?}");
    }
}
