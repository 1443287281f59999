//! Live reload (SIGHUP, `POST /api/v1/admin/reload`) against the running
//! binary, under load: 1,000 raw-TCP viewers on rooms, badges, cameras and
//! boards while one reload adds, changes and removes one of each kind and
//! rotates a signing key out. Pictures are checked decoded; "no extra part"
//! is the channel's frame number, which only a new picture moves.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use common::jpeg::{decoded, placeholder_kind};
use common::watched::{Watched, wait_until, watch};
use common::{Server, allow_open_files, api, decode_png, get, metric, request};

const TOKEN: &str = "reload-test-token-0123456789";
const K1: &str = "first-signing-key-0123456789";
const K2: &str = "second-signing-key-0123456789";

async fn frame_seq(addr: SocketAddr, channel: &str) -> u64 {
    let info = common::api_with_token(addr, &format!("/api/v1/channels/{channel}"), TOKEN).await;
    info["frame_seq"].as_u64().unwrap_or_else(|| panic!("{channel}: {info}"))
}

fn pattern(width: u32, height: u32) -> serde_json::Value {
    serde_json::json!({ "source": { "kind": "pattern", "width": width, "height": height, "fps": 4 } })
}

fn before() -> serde_json::Value {
    serde_json::json!({
        "api_tokens": [TOKEN],
        "url_signing_keys": [K1, K2],
        "resend_interval_ms": 1500,
        "max_connections_per_ip": 0,
        "rooms": { "lobby": {} },
        "badges": {
            "build": { "label": "build" },
            "gone": { "label": "gone" },
            "secret": { "label": "secret", "require_signature": true }
        },
        "cameras": { "door": pattern(160, 90), "old": pattern(160, 90) },
        "boards": {
            "ops": { "columns": 1, "tiles": [{ "text": "ops" }, { "room": "lobby" }] },
            "oldboard": { "tiles": [{ "text": "old" }] }
        }
    })
}

/// `before`, with one of each kind added, changed and removed, and K1 gone.
fn after() -> serde_json::Value {
    let mut config = before();
    config["url_signing_keys"] = serde_json::json!([K2]);
    let badges = config["badges"].as_object_mut().unwrap();
    badges.insert("build".into(), serde_json::json!({ "label": "deploy" }));
    badges.remove("gone");
    badges.insert("fresh".into(), serde_json::json!({ "label": "fresh" }));
    let cameras = config["cameras"].as_object_mut().unwrap();
    cameras.insert("door".into(), pattern(320, 180));
    cameras.remove("old");
    cameras.insert("new".into(), pattern(64, 36));
    let boards = config["boards"].as_object_mut().unwrap();
    boards.remove("oldboard");
    boards.insert("newboard".into(), serde_json::json!({ "tiles": [{ "text": "new" }] }));
    config
}

/// What a removed badge's last frame shows, drawn by `framecast render`.
fn removed_badge(name: &str) -> (u32, u32, Vec<u8>) {
    let label = format!("label={name}");
    common::expected_render("flat", &[&label, "message=removed", "color=lightgrey"])
}

fn signed(key: &str, path: &str) -> String {
    let config = serde_json::json!({ "url_signing_keys": [key] }).to_string();
    common::sign::sign(&config, path, 3600, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_changes_what_changed_and_nothing_else() {
    let _serial = common::serial();
    allow_open_files(4096);
    let server = Server::start(&before().to_string());
    let addr = server.addr;
    for missing in ["/camera/new.jpg", "/badge/fresh.png?once", "/board/newboard.png?once"] {
        assert_eq!(get(addr, missing).await.0, 404, "{missing} before the reload");
    }
    let mut tasks = tokio::task::JoinSet::new();
    let lobby = watch(&mut tasks, addr, "/online/lobby.png", 400).await;
    let ops = watch(&mut tasks, addr, "/board/ops.png", 200).await;
    let build = watch(&mut tasks, addr, "/badge/build.png", 150).await;
    let door = watch(&mut tasks, addr, "/camera/door.mjpg", 150).await;
    let gone = watch(&mut tasks, addr, "/badge/gone.png", 20).await;
    let old = watch(&mut tasks, addr, "/camera/old.mjpg", 20).await;
    let oldboard = watch(&mut tasks, addr, "/board/oldboard.png", 20).await;
    let by_k1 = watch(&mut tasks, addr, &signed(K1, "/badge/secret.png"), 20).await;
    let by_k2 = watch(&mut tasks, addr, &signed(K2, "/badge/secret.png"), 20).await;
    let everyone: Vec<&Arc<Watched>> =
        [&lobby, &ops, &build, &door, &gone, &old, &oldboard, &by_k1, &by_k2].into_iter().flatten().collect();
    assert_eq!(everyone.len(), 1000);
    wait_until("every viewer's first part", Duration::from_secs(30), || everyone.iter().all(|w| w.parts() > 0)).await;
    common::wait_for_viewers(addr, "lobby", 400, Duration::from_secs(20)).await;
    // The count settles on the room and the board showing it: then their
    // frame numbers move only with a new picture.
    let settled =
        |addr: SocketAddr| async move { (frame_seq(addr, "online/lobby").await, frame_seq(addr, "board/ops").await) };
    let mut seqs = settled(addr).await;
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = settled(addr).await;
        if now == seqs {
            break;
        }
        seqs = now;
    }
    let build_before = decode_png(&build[0].last());
    let door_size = |w: &Watched| {
        let frame = decoded(&w.last());
        (frame.width, frame.height)
    };
    assert_eq!(door_size(&door[0]), (160, 90));
    let parts_before: Vec<usize> = everyone.iter().map(|w| w.parts()).collect();

    server.rewrite_config(&after().to_string());
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(addr, "framecast_config_reloads_total{result=\"ok\"}").await != Some(1.0) {
        assert!(Instant::now() < deadline, "the reload was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Changed: the new look on the same stream.
    let (status, _, snapshot) = get(addr, "/badge/build.png?once").await;
    assert_eq!(status, 200);
    let build_now = decode_png(&snapshot);
    assert_ne!(build_now, build_before, "the label changed: so does the picture");
    wait_until("every build viewer shows the new label", Duration::from_secs(20), || {
        build.iter().all(|w| decode_png(&w.last()) == build_now)
    })
    .await;
    wait_until("every door viewer gets the new size", Duration::from_secs(20), || {
        door.iter().all(|w| door_size(w) == (320, 180))
    })
    .await;
    // Removed: a last frame that says so, then a clean end.
    wait_until("removed channels end", Duration::from_secs(20), || {
        [&gone, &old, &oldboard].into_iter().flatten().all(|w| w.closed())
    })
    .await;
    for w in [&gone, &old, &oldboard].into_iter().flatten() {
        assert!(w.clean.load(SeqCst), "a removed channel's stream ends with HTTP's last chunk");
    }
    assert_eq!(placeholder_kind(&old[0].last()), Some("offline"), "the camera's last frame: a red 'removed' card");
    assert_eq!(decode_png(&gone[0].last()), removed_badge("gone"), "the badge's last frame says it was removed");
    // Streams let in only by the removed key end; the others run on.
    wait_until("streams signed with the removed key end", Duration::from_secs(20), || by_k1.iter().all(|w| w.closed()))
        .await;
    // Added: served now.
    for added in ["/camera/new.jpg", "/badge/fresh.png?once", "/board/newboard.png?once"] {
        assert_eq!(get(addr, added).await.0, 200, "{added} after the reload");
    }
    for removed in ["/badge/gone.png?once", "/board/oldboard.png?once", "/camera/old.jpg"] {
        assert_eq!(get(addr, removed).await.0, 404, "{removed} after the reload");
    }

    // Unchanged: no extra picture, every viewer still there and served its
    // resends (every 1.5 s) after the reload.
    let stayed: Vec<(usize, &Arc<Watched>)> = everyone
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 600 || *i >= 980)
        .map(|(i, w)| (parts_before[i], *w))
        .collect();
    wait_until("every unchanged viewer gets its next resend", Duration::from_secs(20), || {
        stayed.iter().all(|(before, w)| w.parts() > *before)
    })
    .await;
    assert_eq!(settled(addr).await, seqs, "a reload that did not change the room or board draws no new frame");
    for (_, w) in &stayed {
        assert!(!w.closed(), "a viewer of an unchanged channel stays");
    }
    for w in &build {
        assert!(!w.closed(), "a viewer of a changed channel stays");
    }
    assert!(door.iter().all(|w| !w.closed()));
    let lobby_now = api(addr, "/api/v1/channels/online/lobby").await;
    assert_eq!(lobby_now["viewers"], 400, "{lobby_now}");
    tasks.abort_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_changes_nothing_and_says_why() {
    let config = serde_json::json!({
        "api_tokens": [TOKEN],
        "badges": { "build": { "label": "build" } },
        "rooms": { "lobby": {} }
    });
    let server = Server::start(&config.to_string());
    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    let viewers = watch(&mut tasks, addr, "/online/lobby.png", 3).await;
    common::wait_for_viewers(addr, "lobby", 3, Duration::from_secs(20)).await;

    // No token: refused, nothing read.
    let raw = "POST /api/v1/admin/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(request(addr, raw).await.0, 401);
    let with_token = format!(
        "POST /api/v1/admin/reload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let get_only = format!(
        "GET /api/v1/admin/reload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    let (status, head, _) = request(addr, &get_only).await;
    assert_eq!(status, 405);
    assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");

    // A file that `check-config` refuses: the same message, 422, and the
    // running config stays (the badge is still there, the stream too).
    let mut broken = config.clone();
    broken["badges"]["build"]["template"] = "no-such-template".into();
    server.rewrite_config(&broken.to_string());
    let (status, _, body) = request(addr, &with_token).await;
    assert_eq!(status, 422);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let message = answer["error"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, broken.to_string()).unwrap();
    let checked =
        std::process::Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&file).output().unwrap();
    assert_eq!(checked.status.code(), Some(2));
    let expected = String::from_utf8_lossy(&checked.stderr);
    let reason = |m: &str| m.split_once(": ").map(|(_, r)| r.trim().to_string()).unwrap();
    assert!(message.contains("badges.build.template: no template named \"no-such-template\""), "{message}");
    assert_eq!(reason(message), reason(expected.trim_start_matches("framecast: ")), "the same reason as check-config");
    // Not JSON at all, by signal.
    server.write_raw_config("{ not json");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(addr, "framecast_config_reloads_total{result=\"refused\"}").await != Some(2.0) {
        assert!(Instant::now() < deadline, "both refusals counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(addr, "/badge/build.png?once").await.0, 200);
    assert!(viewers.iter().all(|w| !w.closed()), "a refused reload ends nothing");
    assert_eq!(metric(addr, "framecast_config_reloads_total{result=\"ok\"}").await.unwrap_or(0.0), 0.0);

    // A good file again: applied, and the answer says what changed and
    // what waits for a restart.
    let mut good = config.clone();
    good["listen"] = "127.0.0.1:1".into();
    good["rooms"]["lobby"]["count"] = "addresses".into();
    good["max_connections"] = 77.into();
    server.rewrite_config(&good.to_string());
    let (status, _, body) = request(addr, &with_token).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["changes"]["restart_needed"], serde_json::json!(["max_connections"]), "{answer}");
    assert_eq!(answer["changes"]["rooms"]["changed"], serde_json::json!(["lobby"]), "{answer}");
    assert_eq!(answer["changes"]["badges"]["changed"], serde_json::json!([]), "{answer}");
    // `--listen` given at start wins over the file, as at start.
    assert!(viewers.iter().all(|w| !w.closed()));
    tasks.abort_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_made_private_ends_its_anonymous_streams_only() {
    let mut config = serde_json::json!({
        "api_tokens": [TOKEN],
        "url_signing_keys": [K1],
        "rooms": { "staff": {}, "lobby": {} }
    });
    let server = Server::start(&config.to_string());
    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    let anonymous = watch(&mut tasks, addr, "/online/staff.png", 3).await;
    let signed_in = watch(&mut tasks, addr, &signed(K1, "/online/staff.png"), 2).await;
    let lobby = watch(&mut tasks, addr, "/online/lobby.png", 2).await;
    common::wait_for_viewers(addr, "staff", 5, Duration::from_secs(20)).await;
    let names_staff = |addr| async move {
        let (_, _, body) = get(addr, "/metrics").await;
        String::from_utf8_lossy(&body).lines().any(|l| !l.starts_with('#') && l.contains("\"staff\""))
    };
    assert!(names_staff(addr).await, "a public room's series are on /metrics");
    config["rooms"]["staff"]["require_signature"] = true.into();
    server.rewrite_config(&config.to_string());
    server.signal("HUP");
    wait_until("anonymous viewers of the now-private room end", Duration::from_secs(20), || {
        anonymous.iter().all(|w| w.closed())
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::api_with_token(addr, "/api/v1/channels/online/staff", TOKEN).await["viewers"] != 2 {
        assert!(Instant::now() < deadline, "the signed viewers stay, counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(signed_in.iter().chain(&lobby).all(|w| !w.closed()));
    assert_eq!(get(addr, "/online/staff.png?once").await.0, 403, "now private");
    assert!(!names_staff(addr).await, "a room made private leaves /metrics at once, figures too");
    tasks.abort_all();
}
