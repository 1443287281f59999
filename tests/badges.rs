//! Value badges over real TCP: the write API and its statuses, a live viewer
//! seeing a PUT, values surviving a killed server, dedupe, static shields
//! URLs, other channels' viewer counts, styles and scale, all checked on
//! decoded pixels against the renderer `framecast render` uses.

mod common;

use std::time::Duration;

use common::{Server, Viewer, api, decode_png, get, request, wait_for_viewers};
use framecast::render::format::MapValues;
use framecast::render::template::Templates;
use serde_json::Value;

const TOKEN: &str = "test-token-0123456789";

fn config(state: &std::path::Path, extra: &str) -> String {
    format!(
        r#"{{"api_tokens": ["{TOKEN}"], "database": {:?}, "resend_interval_ms": 60000 {extra}}}"#,
        state.join("framecast.db")
    )
}

async fn send(addr: std::net::SocketAddr, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
    let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = request(addr, &raw).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn put(addr: std::net::SocketAddr, name: &str, body: &str) -> (u16, Value) {
    send(addr, "PUT", &format!("/api/v1/badges/{name}"), Some(TOKEN), body).await
}

/// Pixels of `template` for these placeholder values, as `framecast render` draws them.
fn expected(template: &str, pairs: &[(&str, &str)], scale: f32) -> (u32, u32, Vec<u8>) {
    let values = MapValues {
        text: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        history: vec![],
        logo: None,
    };
    decode_png(&Templates::builtin().get(template).unwrap().render_png(&values, scale).unwrap())
}

#[tokio::test]
async fn write_api_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), r#", "max_body_bytes": 1024"#));
    let addr = server.addr;

    let (status, body) = put(addr, "build", r#"{"label": "build", "message": "passing", "color": "green"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["message"], "passing");
    let (status, body) = send(addr, "GET", "/api/v1/badges/build", None, "").await;
    assert_eq!((status, body["state"]["color"].as_str()), (200, Some("green")));

    let (status, body) = put(addr, "build", r#"{"message": "passing""#).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid JSON"), "{body}");
    let (status, body) = put(addr, "build", r#"{"message": "x", "namedLogo": "nosuchbrandxyz"}"#).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().starts_with("logo \"nosuchbrandxyz\" is not"), "{body}");
    let (status, body) = put(addr, "build", r#"{"message": "x", "colour": "red"}"#).await;
    assert!(status == 400 && body["error"].as_str().unwrap().contains("colour"), "{body}");

    assert_eq!(send(addr, "PUT", "/api/v1/badges/build", None, r#"{"value": 1}"#).await.0, 401);
    assert_eq!(
        send(addr, "PUT", "/api/v1/badges/build", Some("wrong-token-0123456789"), r#"{"value": 1}"#).await.0,
        401
    );
    // The scheme is case-insensitive (RFC 9110): `bearer` is `Bearer`.
    let body = r#"{"message": "lower"}"#;
    let raw = format!(
        "PUT /api/v1/badges/build HTTP/1.1\r\nHost: t\r\nAuthorization: bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(request(addr, &raw).await.0, 200, "lower-case scheme refused");
    assert_eq!(send(addr, "GET", "/api/v1/badges/nope", None, "").await.0, 404);
    assert_eq!(get(addr, "/badge/nope.png").await.0, 404);
    assert_eq!(send(addr, "PATCH", "/api/v1/badges/build", Some(TOKEN), "{}").await.0, 405);
    let big = format!(r#"{{"message": "{}"}}"#, "x".repeat(2000));
    assert_eq!(put(addr, "build", &big).await.0, 413);
    assert_eq!(put(addr, "bad.name", r#"{"value": 1}"#).await.0, 400);

    let (status, _) = send(addr, "DELETE", "/api/v1/badges/build", Some(TOKEN), "").await;
    assert_eq!(status, 200);
    assert_eq!(send(addr, "GET", "/api/v1/badges/build", None, "").await.0, 404);

    // Without any token configured, writes are refused with how to enable them.
    let open = Server::start(r#"{"state_file": null}"#);
    let (status, body) = send(open.addr, "PUT", "/api/v1/badges/x", Some(TOKEN), r#"{"value": 1}"#).await;
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("api_tokens"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_viewer_sees_each_write_and_identical_writes_push_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), ""));
    let addr = server.addr;
    assert_eq!(put(addr, "ci", r#"{"label": "build", "message": "running", "color": "yellow"}"#).await.0, 200);
    let mut viewer = Viewer::connect(addr, "/badge/ci.png", "t").await;
    let running = expected("flat", &[("label", "build"), ("message", "running"), ("color", "yellow")], 1.0);
    viewer.wait_for_image(&running, Duration::from_secs(5)).await;

    assert_eq!(put(addr, "ci", r#"{"message": "passing", "color": "brightgreen"}"#).await.0, 200);
    let passing = expected("flat", &[("label", "build"), ("message", "passing"), ("color", "brightgreen")], 1.0);
    viewer.wait_for_image(&passing, Duration::from_secs(5)).await;

    // The same write again (it succeeds) draws the same picture: nothing is
    // pushed. The next, different write is then the very next frame; writes
    // apply in order, so a frame for the identical one would come first.
    let before = api(addr, "/api/v1/channels/badge/ci").await["frames_rendered"].as_u64().unwrap();
    let parts = viewer.received.len();
    let (status, body) = put(addr, "ci", r#"{"message": "passing", "color": "brightgreen"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["message"], "passing", "{body}");

    // Numbers: {"value": N} shows N.
    assert_eq!(put(addr, "ci", r#"{"value": 1234}"#).await.0, 200);
    let number = expected("flat", &[("label", "build"), ("message", "1234"), ("color", "brightgreen")], 1.0);
    viewer.wait_for_image(&number, Duration::from_secs(5)).await;
    assert_eq!(viewer.received.len(), parts + 1, "an identical write pushed a frame");
    assert_eq!(api(addr, "/api/v1/channels/badge/ci").await["frames_rendered"].as_u64().unwrap(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_survive_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), ""));
    for v in [3, 5, 8] {
        assert_eq!(put(server.addr, "temp", &format!(r#"{{"label": "temp", "value": {v}}}"#)).await.0, 200);
    }
    drop(server); // SIGKILL: no shutdown hook runs

    let server = Server::start(&config(dir.path(), ""));
    let (status, body) = send(server.addr, "GET", "/api/v1/badges/temp", None, "").await;
    assert_eq!(status, 200);
    assert_eq!(body["state"]["value"], 8.0);
    assert_eq!(body["state"]["history"], serde_json::json!([3.0, 5.0, 8.0]));
    let (_, _, png) = get(server.addr, "/badge/temp.png?once").await;
    assert_eq!(decode_png(&png), expected("flat", &[("label", "temp"), ("message", "8"), ("color", "blue")], 1.0));
}

#[tokio::test]
async fn static_badges_in_the_shields_url_form() {
    let server = Server::start(r#"{"state_file": null}"#);
    let (status, head, png) = get(server.addr, "/badge/static/just--the-mess__age%20ok-green.png?style=plastic").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("cache-control: public, max-age=300"), "{head}");
    let want = expected("plastic", &[("label", "just-the"), ("message", "mess_age ok"), ("color", "green")], 1.0);
    assert_eq!(decode_png(&png), want);
    let (_, _, png) = get(server.addr, "/badge/static/only-blue.png?labelColor=red").await;
    assert_eq!(decode_png(&png), expected("flat", &[("message", "only"), ("color", "blue")], 1.0));
    // labelColor paints the label box: a badge that has one.
    let (_, _, png) = get(server.addr, "/badge/static/build-passing-blue.png?labelColor=red").await;
    let red =
        expected("flat", &[("label", "build"), ("message", "passing"), ("color", "blue"), ("label_color", "red")], 1.0);
    assert_eq!(decode_png(&png), red);
    let plain = expected("flat", &[("label", "build"), ("message", "passing"), ("color", "blue")], 1.0);
    assert_ne!(red, plain, "labelColor changed the label box");
    assert_eq!(get(server.addr, "/badge/static/a-b-notacolour.png").await.0, 400);
    assert_eq!(get(server.addr, "/badge/static/a-b-c-d-e.png").await.0, 400);
    assert_eq!(get(server.addr, "/badge/static/a-b-green.png?style=nope").await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badge_shows_another_channels_live_viewer_count() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    let flat = std::fs::read_to_string("templates/badges/flat.json").unwrap();
    std::fs::write(templates.join("reading.json"), flat.replace("{message}", "{viewers:online/lobby} reading"))
        .unwrap();
    let extra = format!(
        r#", "template_dir": {templates:?}, "badges": {{"thread": {{"template": "reading", "label": "thread"}}}}"#
    );
    let server = Server::start(&config(dir.path(), &extra));
    let addr = server.addr;

    // Declared in the config: live before any write.
    let mut badge = Viewer::connect(addr, "/badge/thread.png", "t").await;
    let reading = |n: &str| {
        let t = Templates::load(Some(&templates)).unwrap().get("reading").unwrap();
        let values = MapValues {
            text: [("label", "thread"), ("viewers:online/lobby", n)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            history: vec![],
            logo: None,
        };
        decode_png(&t.render_png(&values, 1.0).unwrap())
    };
    badge.wait_for_image(&reading("0"), Duration::from_secs(5)).await;
    let _a = Viewer::connect(addr, "/online/lobby.png", "t").await;
    let _b = Viewer::connect(addr, "/online/lobby.png", "t").await;
    wait_for_viewers(addr, "lobby", 2, Duration::from_secs(5)).await;
    badge.wait_for_image(&reading("2"), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn styles_and_scale_per_url() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), ""));
    put(server.addr, "v", r#"{"label": "version", "message": "1.2.3", "color": "blue"}"#).await;
    let pairs = [("label", "version"), ("message", "1.2.3"), ("color", "blue")];
    for (path, template, scale) in [
        ("/badge/v.png?once&style=for-the-badge", "for-the-badge", 1.0),
        ("/badge/v@2x.png?once", "flat", 2.0),
        ("/badge/v.png?once&style=plastic&scale=3", "plastic", 3.0),
    ] {
        let (status, _, png) = get(server.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(decode_png(&png), expected(template, &pairs, scale), "{path}");
    }
    let (w1, h1, _) = expected("flat", &pairs, 1.0);
    let (w2, h2, _) = expected("flat", &pairs, 2.0);
    // Heights double exactly; widths within a pixel (text widths round up).
    assert_eq!(h2, h1 * 2);
    assert!(w2.abs_diff(w1 * 2) <= 2, "{w1} -> {w2}");
    assert_eq!(get(server.addr, "/badge/v@9x.png").await.0, 400);
    assert_eq!(get(server.addr, "/badge/v.png?style=nosuchstyle").await.0, 400);
}

/// What docs/badges.md says of writes, end to end: shields' endpoint body
/// drawn with its labelColor and isError, a deleted badge's viewers shown
/// "no value", and `max_badges` answered with `507`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shields_bodies_deletes_and_the_badge_cap_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&config(dir.path(), r#", "max_badges": 2"#));
    let addr = server.addr;
    let body = r#"{"schemaVersion": 1, "label": "deploy", "message": "down", "labelColor": "black",
                   "isError": true, "cacheSeconds": 300}"#;
    let (status, answer) = send(addr, "POST", "/api/v1/badges/deploy", Some(TOKEN), body).await;
    assert_eq!(status, 200, "{answer}");
    let mut viewer = Viewer::connect(addr, "/badge/deploy.png", "t").await;
    // isError with no colour is red ("critical"); labelColor paints the label box.
    let error = expected(
        "flat",
        &[("label", "deploy"), ("message", "down"), ("color", "critical"), ("label_color", "black")],
        1.0,
    );
    viewer.wait_for_image(&error, Duration::from_secs(5)).await;
    let plain = expected("flat", &[("label", "deploy"), ("message", "down")], 1.0);
    assert_ne!(error, plain, "isError and labelColor change the picture");

    // Deleted: the live viewer is shown "no value" under the badge's name.
    assert_eq!(send(addr, "DELETE", "/api/v1/badges/deploy", Some(TOKEN), "").await.0, 200);
    let gone = expected("flat", &[("label", "deploy"), ("message", "no value")], 1.0);
    viewer.wait_for_image(&gone, Duration::from_secs(5)).await;

    // Two badges at most: a third name is refused with 507, an existing one still writes.
    assert_eq!(put(addr, "one", r#"{"value": 1}"#).await.0, 200);
    assert_eq!(put(addr, "two", r#"{"value": 2}"#).await.0, 200);
    let (status, body) = put(addr, "three", r#"{"value": 3}"#).await;
    assert_eq!(status, 507, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("max_badges"), "{body}");
    assert_eq!(put(addr, "two", r#"{"value": 5}"#).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_looks_fill_only_their_own_caps() {
    let dir = tempfile::tempdir().unwrap();
    let caps = r#", "max_rooms": 2, "max_badge_looks": 3, "max_looks_per_badge": 2,
        "badges": {"a": {"label": "a"}, "b": {"label": "b"}}"#;
    let server = Server::start(&config(dir.path(), caps));
    let addr = server.addr;
    // Looks chosen by the URL, each its own channel: two of `a` fill its
    // share, one of `b` the cap for all badges.
    let mut held = Vec::new();
    for path in ["/badge/a.png?style=plastic", "/badge/a@2x.png", "/badge/b.png?style=plastic"] {
        held.push(Viewer::connect(addr, path, "t").await);
    }
    let (status, head, body) = get(addr, "/badge/a@3x.png").await;
    let message = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("max_looks_per_badge = 2"), "{message}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 30"), "{head}");
    let (status, _, body) = get(addr, "/badge/b@2x.png").await;
    let message = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("max_badge_looks = 3"), "{message}");

    // Neither stops a new room, nor a badge's own look.
    let mut room = Viewer::connect(addr, "/online/fresh.png", "t").await;
    assert!(room.read_parts(1, Duration::from_secs(5)).await);
    let mut own = Viewer::connect(addr, "/badge/b.png", "t").await;
    assert!(own.read_parts(1, Duration::from_secs(5)).await);
    // Rooms have their cap too, and it names itself.
    let _second = Viewer::connect(addr, "/online/second.png", "t").await;
    let (status, _, body) = get(addr, "/online/third.png").await;
    assert!(status == 503 && String::from_utf8_lossy(&body).contains("max_rooms = 2"), "{status}");
}
