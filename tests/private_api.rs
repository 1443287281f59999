//! Private means private in every view, through the running binary: a
//! `require_signature` badge (with a written value), room (with a viewer)
//! and camera (with a viewer) never show in an anonymous JSON API answer,
//! list, `/metrics` or the demo page; a token, or the resource's own
//! signature (what `framecast sign` prints), shows them. A polled source's
//! URL and error text and a camera's failure show only to a token. A board
//! tiling a private badge must be private itself (`check-config` says so).
//! The JSON API sends CORS headers only to configured origins; live images
//! keep `*`.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, Viewer, api, api_with_token, get, request};

const KEY: &str = "private-api-signing-key-0123";
const TOKEN: &str = "private-api-token-0123456";
/// The written value of the private badge: it must never leak.
const SECRET: &str = "SECRET-4242";
const DASH: &str = "https://dash.example.org";

fn config() -> serde_json::Value {
    serde_json::json!({
        "url_signing_keys": [KEY],
        "api_tokens": [TOKEN],
        "cors_allow_origins": [DASH],
        "allowed_fetch_hosts": ["127.0.0.1:9"],
        "badges": {
            "payroll": { "require_signature": true },
            "queue": { "source": { "kind": "json", "url": "http://127.0.0.1:9/internal-stats", "query": "$.n",
                                   "interval_ms": 300, "timeout_ms": 300, "always_on": true } }
        },
        "rooms": { "staffroom": { "require_signature": true } },
        "cameras": {
            "vault": { "source": { "kind": "pattern", "width": 64, "height": 36, "fps": 5 }, "require_signature": true },
            "lobby": { "source": { "kind": "pattern", "width": 64, "height": 36, "fps": 5 } }
        },
        "boards": { "wall": { "tiles": [{ "badge": "payroll" }], "require_signature": true } }
    })
}

/// `framecast sign PATH` with the test's config: the signed path.
fn sign(path: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.json");
    std::fs::write(&file, config().to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["sign", path, "--ttl", "600", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `exp=…&sig=…` of a signed path.
fn signature(path: &str) -> String {
    sign(path).split_once('?').unwrap().1.to_string()
}

/// A GET with extra header lines; status, head, body as text.
async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n");
    let (status, head, body) = request(addr, &raw).await;
    (status, head.to_ascii_lowercase(), String::from_utf8_lossy(&body).into_owned())
}

/// Waits until the token holder sees `channel` with `want` viewers.
async fn wait_for_private_viewers(addr: SocketAddr, channel: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let path = format!("/api/v1/channels/{channel}");
    while api_with_token(addr, &path, TOKEN).await["viewers"] != want {
        assert!(Instant::now() < deadline, "{channel} never had {want} viewers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_resources_show_only_to_a_token_or_their_signature() {
    let server = Server::start(&config().to_string());
    let addr = server.addr;

    let put = format!(
        "PUT /api/v1/badges/payroll HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{\"message\": \"{SECRET}\"}}",
        SECRET.len() + 15
    );
    let (status, _, body) = request(addr, &put).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut room = Viewer::connect(addr, &sign("/online/staffroom.png"), "test").await;
    let mut camera = Viewer::connect(addr, &sign("/camera/vault.mjpg"), "test").await;
    assert!(room.read_parts(1, Duration::from_secs(10)).await && camera.read_parts(1, Duration::from_secs(10)).await);
    wait_for_private_viewers(addr, "online/staffroom", 1).await;
    wait_for_private_viewers(addr, "camera/vault", 1).await;

    // Lists, /metrics and the demo page: no private name, no private value.
    for path in ["/api/v1/badges", "/api/v1/channels", "/api/v1/cameras", "/metrics", "/"] {
        let (status, _, body) = get_with(addr, path, "").await;
        assert_eq!(status, 200, "{path}");
        // Rooms' own figure series (`framecast_room_*{room}`) are the room
        // figures' part (room_gauges), not this one's.
        let body: String = body.lines().filter(|l| !l.starts_with("framecast_room_")).collect::<Vec<_>>().join("\n");
        for private in [SECRET, "payroll", "staffroom", "vault"] {
            assert!(!body.contains(private), "anonymous {path} shows {private}: {body}");
        }
    }
    // Nor in the totals of unnamed rooms: with no other room watched, they
    // would be the private room's own figures.
    let metrics = get_with(addr, "/metrics", "").await.2;
    assert_eq!(common::sample(&metrics, "framecast_rooms_unlisted_sessions_today"), Some(0.0), "{metrics}");
    // What an anonymous caller may read still is there.
    assert!(get_with(addr, "/metrics", "").await.2.contains("channel=\"camera/lobby\""));
    // One resource: the very answer a name that does not exist gets.
    let missing_badge = get_with(addr, "/api/v1/badges/nosuch", "").await.2;
    assert_eq!(get_with(addr, "/api/v1/badges/payroll", "").await.2, missing_badge.replace("nosuch", "payroll"));
    // Its shields endpoint too; a token holder reads the value.
    let missing_shields = get_with(addr, "/api/v1/badges/nosuch/shields", "").await;
    let private_shields = get_with(addr, "/api/v1/badges/payroll/shields", "").await;
    assert_eq!((private_shields.0, missing_shields.0), (404, 404));
    assert_eq!(private_shields.2, missing_shields.2.replace("nosuch", "payroll"));
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    assert!(get_with(addr, "/api/v1/badges/payroll/shields", &auth).await.2.contains(SECRET));
    // A private room reads as a room nobody has watched (a valid room name
    // is never a 404), its name the only difference.
    let unseen = get_with(addr, "/api/v1/channels/online/neverseen", "").await;
    let hidden = get_with(addr, "/api/v1/channels/online/staffroom", "").await;
    assert_eq!((hidden.0, unseen.0), (200, 200));
    assert_eq!(hidden.2, unseen.2.replace("neverseen", "staffroom"), "a private room answers like an unseen one");
    for (private, missing) in [
        ("/api/v1/channels/online/staffroom/viewers", "/api/v1/channels/online/nobody/viewers"),
        ("/api/v1/channels/camera/vault", "/api/v1/channels/nothing/here"),
        ("/api/v1/channels/camera/vault/viewers", "/api/v1/channels/online/nobody/viewers"),
        ("/api/v1/channels/badge/payroll", "/api/v1/channels/nothing/here"),
        ("/api/v1/cameras/vault", "/api/v1/cameras/nosuch"),
    ] {
        let hidden = get_with(addr, private, "").await;
        assert_eq!(hidden.0, 404, "{private}: {}", hidden.2);
        assert_eq!(hidden.2, get_with(addr, missing, "").await.2, "{private} answers like {missing}");
    }
    // A signature for another resource does not open this one.
    let (status, _, _) =
        get_with(addr, &format!("/api/v1/badges/payroll?{}", signature("/online/staffroom.png")), "").await;
    assert_eq!(status, 404);

    // With a token: everything.
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    assert!(get_with(addr, "/api/v1/badges", &auth).await.2.contains(SECRET));
    assert_eq!(api_with_token(addr, "/api/v1/badges/payroll", TOKEN).await["state"]["message"], SECRET);
    let channels = get_with(addr, "/api/v1/channels", &auth).await.2;
    assert!(channels.contains("online/staffroom") && channels.contains("camera/vault"), "{channels}");
    let viewers = api_with_token(addr, "/api/v1/channels/camera/vault/viewers", TOKEN).await;
    assert_eq!(viewers["viewers"].as_array().unwrap().len(), 1, "{viewers}");
    assert!(get_with(addr, "/api/v1/cameras", &auth).await.2.contains("vault"));
    assert_eq!(api_with_token(addr, "/api/v1/cameras/vault", TOKEN).await["name"], "vault");
    let metrics = get_with(addr, "/metrics", &auth).await.2;
    assert!(metrics.contains("framecast_viewers{channel=\"camera/vault\"} 1"), "{metrics}");
    assert!(metrics.contains("framecast_viewers{channel=\"online/staffroom\"} 1"), "{metrics}");

    // With the resource's own signature: that resource.
    let badge = api(addr, &format!("/api/v1/badges/payroll?{}", signature("/badge/payroll.png"))).await;
    assert_eq!(badge["state"]["message"], SECRET);
    let room_sig = signature("/online/staffroom.png");
    assert_eq!(api(addr, &format!("/api/v1/channels/online/staffroom?{room_sig}")).await["viewers"], 1);
    let listed = api(addr, &format!("/api/v1/channels/online/staffroom/viewers?{room_sig}")).await;
    assert_eq!(listed["viewers"].as_array().unwrap().len(), 1, "{listed}");
    let vault = api(addr, &format!("/api/v1/cameras/vault?{}", signature("/camera/vault.jpg"))).await;
    assert_eq!(vault["name"], "vault");
    drop((room, camera));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_show_only_to_a_token() {
    let server = Server::start(&config().to_string());
    // The polled source (nothing listens on port 9) fails: the token holder
    // learns where and why, an anonymous caller only that it failed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let full = loop {
        let full = api_with_token(server.addr, "/api/v1/badges/queue", TOKEN).await;
        if full["source"]["last_error"].is_string() {
            break full;
        }
        assert!(Instant::now() < deadline, "the source never failed: {full}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(full["source"]["url"].as_str().unwrap().contains("internal-stats"), "{full}");
    assert_ne!(full["source"]["last_error"], "error", "{full}");
    let (status, _, anonymous) = get_with(server.addr, "/api/v1/badges/queue", "").await;
    assert_eq!(status, 200);
    assert!(!anonymous.contains("internal-stats") && !anonymous.contains("127.0.0.1"), "{anonymous}");
    let anonymous: serde_json::Value = serde_json::from_str(&anonymous).unwrap();
    assert_eq!(anonymous["source"]["last_error"], "error", "{anonymous}");
    assert_eq!(anonymous["source"]["failures_in_a_row"].as_u64().map(|n| n > 0), Some(true), "{anonymous}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_answers_cors_only_to_listed_origins() {
    let evil = "Origin: https://evil.example\r\n";
    // Default: no origin may read the API; live images stay readable by any.
    let plain = Server::start(r#"{"cameras": {}}"#);
    let (status, head, _) = get_with(plain.addr, "/api/v1/channels", evil).await;
    assert_eq!(status, 200);
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    // Every image keeps `*`: live, one-off and static badges.
    for image in ["/online/lobby.png?once", "/badge/static/docs-latest-blue.png", "/badge/static/a-b-green.svg"] {
        let (status, head, _) = get(plain.addr, image).await;
        assert_eq!(status, 200, "{image}");
        assert!(head.to_ascii_lowercase().contains("access-control-allow-origin: *"), "{image}: {head}");
    }

    let server = Server::start(&config().to_string());
    let (_, head, _) = get_with(server.addr, "/api/v1/badges", &format!("Origin: {DASH}\r\n")).await;
    assert!(head.contains(&format!("access-control-allow-origin: {DASH}")), "{head}");
    assert!(head.contains("vary: origin"), "{head}");
    let (_, head, _) = get_with(server.addr, "/api/v1/badges", evil).await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    // A browser's preflight before sending the token.
    let preflight = format!(
        "OPTIONS /api/v1/badges/payroll HTTP/1.1\r\nHost: test\r\nOrigin: {DASH}\r\n\
         Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n"
    );
    let (status, head, _) = request(server.addr, &preflight).await;
    let head = head.to_ascii_lowercase();
    assert_eq!(status, 204, "{head}");
    assert!(head.contains("access-control-allow-headers: authorization"), "{head}");
    assert!(head.contains(&format!("access-control-allow-origin: {DASH}")), "{head}");
}

#[test]
fn a_board_tiling_a_private_badge_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    let mut config = config();
    config["database"] = serde_json::Value::Null;
    config["boards"]["wall"]["require_signature"] = false.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("board \"wall\"") && err.contains("badge \"payroll\""), "{err}");
}

/// A public camera may not draw a private badge, and no template may show
/// one (any public badge can use any template): `check-config` and startup
/// refuse both, naming what would leak.
#[test]
fn nothing_public_may_draw_a_private_badge_or_room() {
    let dir = tempfile::tempdir().unwrap();
    let check = |config: &serde_json::Value| {
        let path = dir.path().join("c.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&path).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let mut overlay = config();
    overlay["database"] = serde_json::Value::Null;
    overlay["cameras"]["lobby"]["overlay"] = serde_json::json!({ "text": "paid: {badge:payroll}" });
    let (code, err) = check(&overlay);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cameras.lobby.overlay.text") && err.contains("badge/payroll"), "{err}");

    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("leak.json"),
        r##"{"kind": "badge", "label": "staff", "message": "{peak_today:staffroom}", "label_color": "#555",
            "color": "blue", "height": 20, "font_size": 11, "padding": 6, "radius": 3}"##,
    )
    .unwrap();
    let mut template = config();
    template["database"] = serde_json::Value::Null;
    template["template_dir"] = templates.to_string_lossy().into();
    let (code, err) = check(&template);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("template \"leak\"") && err.contains("online/staffroom"), "{err}");
}
