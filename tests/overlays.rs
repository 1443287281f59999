//! Picture overlays through the running binary: a privacy mask, a PNG
//! watermark and a live badge on a still camera picture change their own
//! boxes and nothing else (within JPEG's blur at box edges), and the badge
//! shows its current value.

mod common;

use std::time::{Duration, Instant};

use common::{Server, get, request};
use framecast::render::jpeg::{Rgb, decode, encode_rgb};

const TOKEN: &str = "overlay-test-token-0123456789";
const W: usize = 640;
const H: usize = 360;

fn grey_jpeg() -> Vec<u8> {
    encode_rgb(&Rgb { width: W, height: H, pixels: vec![128; W * H * 3] }, 95)
}

fn red_png() -> Vec<u8> {
    let mut p = tiny_skia::Pixmap::new(64, 32).unwrap();
    p.fill(tiny_skia::Color::from_rgba8(255, 0, 0, 255));
    framecast::render::png::encode_png(&p)
}

/// Whether (x, y) is within `pad` pixels of the box (x0, y0, w, h).
fn near(x: usize, y: usize, (x0, y0, w, h): (usize, usize, usize, usize), pad: usize) -> bool {
    x + pad >= x0 && x < x0 + w + pad && y + pad >= y0 && y < y0 + h + pad
}

fn px(image: &Rgb, x: usize, y: usize) -> [u8; 3] {
    let i = (y * image.width + x) * 3;
    [image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masks_watermarks_and_badges_change_only_their_boxes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("still.jpg"), grey_jpeg()).unwrap();
    std::fs::write(dir.path().join("logo.png"), red_png()).unwrap();
    let config = serde_json::json!({
        "api_tokens": [TOKEN],
        "cameras": { "cam": {
            "source": { "kind": "file", "path": dir.path().join("still.jpg") },
            "quality": 95,
            "overlays": [
                { "mask": [[0, 0, 96, 48]], "color": "#000000" },
                { "png": dir.path().join("logo.png"), "position": "bottom-right", "margin": 8 },
                { "badge": "build", "position": "top-right", "margin": 8 }
            ]
        } }
    });
    let server = Server::start(&config.to_string());
    let body = r#"{"label": "build", "message": "passing", "color": "brightgreen"}"#;
    let raw = format!(
        "PUT /api/v1/badges/build HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(request(server.addr, &raw).await.0, 200);
    let badge = framecast::render::template::Templates::builtin().get("flat").unwrap();
    let values = framecast::render::format::MapValues {
        text: [("label", "build"), ("message", "passing"), ("color", "brightgreen")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let drawn = badge.draw(&values, 1.0).unwrap();
    let (bw, bh) = (drawn.width() as usize, drawn.height() as usize);

    // The badge was written after the camera started: wait for a frame with it.
    let badge_box = (W - 8 - bw, 8, bw, bh);
    let deadline = Instant::now() + Duration::from_secs(10);
    let frame = loop {
        let (status, _, jpeg) = get(server.addr, "/camera/cam.jpg?max_delay=500").await;
        assert_eq!(status, 200);
        let frame = decode(&jpeg).unwrap();
        // The badge's green message section, left of its right edge.
        let [r, g, b] = px(&frame, W - 8 - 10, 8 + bh / 2);
        if g > 150 && r < 120 && b < 80 {
            break frame;
        }
        assert!(Instant::now() < deadline, "the badge never showed on the frame");
    };
    let source = decode(&grey_jpeg()).unwrap();
    let mask_box = (0, 0, 96, 48);
    let logo_box = (W - 8 - 64, H - 8 - 32, 64, 32);
    // Outside every box (and JPEG's 16 px blocks around them): untouched.
    let mut outside = 0;
    for y in 0..H {
        for x in 0..W {
            if [mask_box, logo_box, badge_box].iter().any(|b| near(x, y, *b, 16)) {
                continue;
            }
            let (a, b) = (px(&frame, x, y), px(&source, x, y));
            assert!(a.iter().zip(b).all(|(p, q)| p.abs_diff(q) <= 4), "changed at {x},{y}: {a:?} vs {b:?}");
            outside += 1;
        }
    }
    assert!(outside > W * H / 2);
    // Inside: the mask is black, the watermark red.
    let [r, g, b] = px(&frame, 40, 20);
    assert!(r < 20 && g < 20 && b < 20, "mask {r},{g},{b}");
    let [r, g, b] = px(&frame, W - 8 - 32, H - 8 - 16);
    assert!(r > 230 && g < 30 && b < 30, "watermark {r},{g},{b}");
}

/// The overlay's placeholders for other channels (`{badge:NAME}`,
/// `{viewers:CHANNEL}`, `{peak_today:ROOM}`) show their live values: a
/// camera with them draws exactly what a camera with those values written
/// out as plain text draws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_placeholders_show_other_channels_live() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("still.jpg"), grey_jpeg()).unwrap();
    let camera = |text: &str| {
        serde_json::json!({
            "source": { "kind": "file", "path": dir.path().join("still.jpg") },
            "overlay": { "text": text, "position": "top-left", "size": 20 }
        })
    };
    let config = serde_json::json!({
        "api_tokens": [TOKEN],
        "cameras": {
            "live": camera("{badge:build} | {viewers:online/lobby} | {peak_today:lobby}"),
            "fixed": camera("7 | 1 | 1")
        }
    });
    let server = Server::start(&config.to_string());
    let snapshot = |name: &'static str| async move {
        let (status, _, jpeg) = get(server.addr, &format!("/camera/{name}.jpg?max_delay=500")).await;
        assert_eq!(status, 200);
        decode(&jpeg).unwrap().pixels
    };
    let want = snapshot("fixed").await;
    assert_ne!(snapshot("live").await, want, "before the write and the join the values differ");

    let body = r#"{"value": 7}"#;
    let raw = format!(
        "PUT /api/v1/badges/build HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(request(server.addr, &raw).await.0, 200);
    let _viewer = common::Viewer::connect(server.addr, "/online/lobby.png", "t").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshot("live").await != want {
        assert!(Instant::now() < deadline, "the overlay never showed the badge, the viewers and the peak");
    }
}
