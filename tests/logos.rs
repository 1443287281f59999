//! Logos, the social style and SVG badges through the running binary:
//! `?logo=` on static and value badges matches the golden images; an
//! unknown slug is a `400` naming it; a `logoSvg` with an external
//! reference is refused and a clean one drawn; every `.svg` badge parses as
//! XML with the PNG's width and escaped text; logos written by the API are
//! kept across a restart.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use common::{Server, decode_png, get, request};
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
