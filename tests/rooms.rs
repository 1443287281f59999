//! Room figures through the running binary: viewers from distinct loopback
//! source addresses (127.0.0.x), a trusted proxy's `X-Forwarded-For` and
//! `Forwarded` honoured, an untrusted peer's ignored; peaks, distinct
//! viewers and sessions in the JSON, `/metrics` and a template; figures
//! surviving a restart (the day's key too, so a returning viewer is not
//! counted twice); the 24 h sparkline; `count: "addresses"`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, Viewer, api, decode_png, get, metric};
use framecast::render::online::{RoomValues, render_room_png};
use framecast::render::template::Template;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PROXY: &str = "127.0.0.9";

/// The custom room template: every figure in one badge.
const TEMPLATE: &str = r##"{"kind": "badge", "label": "lobby", "message": "{viewers}/{peak_today}/{unique_today}/{sessions_today}",
  "label_color": "#555", "color": "blue", "height": 20, "font_size": 11, "padding": 6, "radius": 3}"##;

async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.parse().unwrap(), 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// A live viewer of `room` from `source`, with an extra header line; the
/// stream is left open until dropped.
async fn watch(server: SocketAddr, source: &str, room: &str, header: &str) -> TcpStream {
    let mut s = connect_from(source, server).await;
    let req = format!("GET /online/{room}.png HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\n{header}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await.expect("head in 10 s").unwrap();
        assert_eq!(n, 1, "closed before the head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    s
}

async fn room(addr: SocketAddr, room: &str) -> Value {
    api(addr, &format!("/api/v1/channels/online/{room}")).await
}

/// Polls the room's JSON until `ok` holds for it.
async fn wait_room(addr: SocketAddr, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = room(addr, name).await;
        if ok(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "room {name}: {what} not reached: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stat(r: &Value, key: &str) -> u64 {
    r["stats"][key].as_u64().unwrap_or_else(|| panic!("stats.{key} in {r}"))
}

fn config(db: &std::path::Path, templates: &std::path::Path) -> String {
    serde_json::json!({
        "database": db, "state_file": null, "trusted_proxies": [PROXY], "room_sample_ms": 1000,
        "template_dir": templates, "max_connections_per_ip": 0
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peaks_uniques_and_sessions_count_addresses_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("online.json"), TEMPLATE).unwrap();
    let db = dir.path().join("stats.db");
    let mut server = Server::start(&config(&db, &templates));
    let addr = server.addr;

    // Six streams from five addresses: .2 twice, .3, a client behind the
    // trusted proxy (twice, once per header form, two clients) and an
    // untrusted peer whose header names the first proxied client.
    let mut streams = vec![
        watch(addr, "127.0.0.2", "lobby", "").await,
        watch(addr, "127.0.0.2", "lobby", "").await,
        watch(addr, "127.0.0.3", "lobby", "").await,
        watch(addr, PROXY, "lobby", "X-Forwarded-For: 198.51.100.7, 127.0.0.9\r\n").await,
        watch(addr, PROXY, "lobby", "Forwarded: for=\"198.51.100.8:4711\";proto=https\r\n").await,
        watch(addr, "127.0.0.4", "lobby", "X-Forwarded-For: 198.51.100.7\r\n").await,
    ];
    let r = wait_room(addr, "lobby", "6 viewers", |r| r["viewers"] == 6).await;
    // .2, .3, 198.51.100.7, 198.51.100.8 and .4 (its header ignored).
    let (peak, unique, sessions) = (stat(&r, "peak_today"), stat(&r, "unique_today"), stat(&r, "sessions_today"));
    assert_eq!((peak, unique, sessions), (6, 5, 6), "{r}");
    assert_eq!(stat(&r, "peak_all_time"), 6);
    assert!(r["stats"]["peak_today_at"].as_u64().is_some(), "{r}");
    assert_eq!(metric(addr, "framecast_room_unique_today{room=\"lobby\"}").await, Some(5.0));
    assert_eq!(metric(addr, "framecast_room_peak_today{room=\"lobby\"}").await, Some(6.0));

    // The template reads the figures: the served picture is the renderer's.
    let template = Template::parse(TEMPLATE).unwrap();
    let figures = |count: u64, peak: u64, unique: u64, sessions: u64| RoomValues {
        count,
        figures: vec![
            ("peak_today", peak as f64),
            ("peak_all_time", peak as f64),
            ("unique_today", unique as f64),
            ("sessions_today", sessions as f64),
        ],
    };
    let want = decode_png(&render_room_png(&template, &figures(6, 6, 5, 6)));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, png) = get(addr, "/online/lobby.png?once").await;
        assert_eq!(status, 200);
        if decode_png(&png) == want {
            break;
        }
        assert!(Instant::now() < deadline, "the room's picture never showed 6/6/5/6");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Two sessions end: the mean length is theirs.
    streams.truncate(4);
    let r = wait_room(addr, "lobby", "2 ended sessions", |r| {
        r["viewers"] == 4 && r["stats"]["mean_session_s"].as_f64() > Some(0.0)
    })
    .await;
    assert_eq!(stat(&r, "peak_today"), 6, "the peak stays: {r}");

    // A minute's sample (every second here) reaches the 24 h history.
    let r = wait_room(addr, "lobby", "a history sample", |r| {
        r["history"].as_array().and_then(|h| h.last()) == Some(&4.into())
    })
    .await;
    assert_eq!(r["history"].as_array().unwrap().len(), 1440);
    let (status, _, png) = get(addr, "/online/lobby.png?style=sparkline").await;
    assert_eq!(status, 200);
    let (w, h, _) = decode_png(&png);
    assert_eq!((w, h), (200, 48));
    assert_eq!(stat(&room(addr, "lobby").await, "sessions_today"), 6, "the sparkline is not a session");

    // Restart: SIGTERM saves; the new process loads the same figures.
    drop(streams);
    assert!(server.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let server = Server::start(&config(&db, &templates));
    let r = room(server.addr, "lobby").await;
    assert_eq!(
        (stat(&r, "peak_today"), stat(&r, "peak_all_time"), stat(&r, "unique_today"), stat(&r, "sessions_today")),
        (6, 6, 5, 6),
        "after a restart: {r}"
    );
    assert!(r["history"].as_array().unwrap().iter().any(|v| v.as_u64() == Some(4)), "history kept: {r}");
    // A returning address is recognised (the day's key was kept).
    let _again = watch(server.addr, "127.0.0.2", "lobby", "").await;
    let r = wait_room(server.addr, "lobby", "a 7th session", |r| r["stats"]["sessions_today"] == 7).await;
    assert_eq!(stat(&r, "unique_today"), 5, "{r}");

    // The database holds hashes, never an address.
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT hex(hash) FROM room_visitors; SELECT * FROM room_days;")
        .output()
        .expect("sqlite3 (the test command installs it)");
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && dump.lines().count() >= 6, "{dump}");
    for addr in ["127.0.0.2", "198.51.100.7", "7F000002"] {
        assert!(!dump.contains(addr), "an address in the database: {dump}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_addresses_shows_five_tabs_as_one() {
    let server = Server::start(r#"{"rooms": {"desk": {"count": "addresses"}}, "max_connections_per_ip": 0}"#);
    let addr = server.addr;
    let mut tabs = Vec::new();
    for _ in 0..5 {
        let stream = connect_from("127.0.0.5", addr).await;
        tabs.push(Viewer::start(stream, "/online/desk.png", "test").await);
    }
    wait_room(addr, "desk", "5 streams", |r| r["viewers"] == 5 && r["shown"] == 1).await;
    tabs[0].wait_for_image(&common::expected_badge(1), Duration::from_secs(5)).await;
    let other = Viewer::start(connect_from("127.0.0.6", addr).await, "/online/desk.png", "test").await;
    wait_room(addr, "desk", "a second address", |r| r["viewers"] == 6 && r["shown"] == 2).await;
    tabs[0].wait_for_image(&common::expected_badge(2), Duration::from_secs(5)).await;
    // Four of the five tabs close: that address still counts once.
    tabs.truncate(1);
    wait_room(addr, "desk", "two streams left", |r| r["viewers"] == 2 && r["shown"] == 2).await;
    drop(other);
    wait_room(addr, "desk", "one address left", |r| r["viewers"] == 1 && r["shown"] == 1).await;
    tabs[0].wait_for_image(&common::expected_badge(1), Duration::from_secs(5)).await;
    let figures = room(addr, "desk").await;
    assert_eq!(
        (stat(&figures, "peak_today"), stat(&figures, "unique_today")),
        (2, 2),
        "peaks count addresses: {figures}"
    );
}
