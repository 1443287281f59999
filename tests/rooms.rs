//! Room figures through the running binary: viewers from distinct loopback
//! source addresses (127.0.0.x), a trusted proxy's `X-Forwarded-For` and
//! `Forwarded` honoured, an untrusted peer's ignored; peaks, distinct
//! viewers and sessions in the JSON, `/metrics` and a template; figures
//! surviving a restart (the day's key too, so a returning viewer is not
//! counted twice); the 24 h sparkline; `count: "addresses"`; only the
//! `client_address_header` read, so a client's own other header changes
//! nothing; junk room names leaving configured rooms their figures and
//! `/metrics` its shape.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, Viewer, api, connect_from, decode_png, get, metric, watch};
use framecast::render::online::{RoomValues, render_room_png};
use framecast::render::template::Template;
use serde_json::Value;

const PROXY: &str = "127.0.0.9";

/// The custom room template: every figure in one badge.
const TEMPLATE: &str = r##"{"kind": "badge", "label": "lobby", "message": "{viewers}/{peak_today}/{unique_today}/{sessions_today}",
  "label_color": "#555", "color": "blue", "height": 20, "font_size": 11, "padding": 6, "radius": 3}"##;

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
        "template_dir": templates, "max_connections_per_ip": 0,
        // Listed, so `/metrics` names it.
        "rooms": {"lobby": {}}
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

    // Six streams from five addresses: .2 twice, .3, two clients behind the
    // trusted proxy (its X-Forwarded-For; the Forwarded form is read only
    // when configured, below) and an untrusted peer whose header names the
    // first proxied client.
    let mut streams = vec![
        watch(addr, "127.0.0.2", "lobby", "").await,
        watch(addr, "127.0.0.2", "lobby", "").await,
        watch(addr, "127.0.0.3", "lobby", "").await,
        watch(addr, PROXY, "lobby", "X-Forwarded-For: 198.51.100.7, 127.0.0.9\r\n").await,
        watch(addr, PROXY, "lobby", "X-Forwarded-For: 198.51.100.8\r\n").await,
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
        ..RoomValues::default()
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

/// Four streams through a "proxy" (this test, from 127.0.0.1) that sets
/// `set` to A, A, B, A while the client adds its own `other` header with
/// X, Y, X, Z: the room counts A and B, never X, Y or Z.
async fn counted_through_proxy(config: &str, set: &str, other: &str) -> Value {
    let server = Server::start(config);
    let addr = server.addr;
    let mut streams = Vec::new();
    for (ours, theirs) in [
        ("198.51.100.1", "203.0.113.1"),
        ("198.51.100.1", "203.0.113.2"),
        ("198.51.100.2", "203.0.113.1"),
        ("198.51.100.1", "203.0.113.3"),
    ] {
        let header = format!("{other}: {}\r\n{set}: {}\r\n", named(other, theirs), named(set, ours));
        streams.push(watch(addr, "127.0.0.1", "proxied", &header).await);
    }
    wait_room(addr, "proxied", "4 viewers", |r| r["viewers"] == 4).await
}

fn named(header: &str, ip: &str) -> String {
    if header == "Forwarded" { format!("for={ip}") } else { ip.to_string() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_client_address_header_is_read() {
    let base = r#""trusted_proxies": ["127.0.0.1"], "max_connections_per_ip": 0, "state_file": null"#;
    // The default: the proxy sets X-Forwarded-For; a client's Forwarded is its own say.
    let r = counted_through_proxy(&format!("{{{base}}}"), "X-Forwarded-For", "Forwarded").await;
    assert_eq!(stat(&r, "unique_today"), 2, "{r}");
    // `"forwarded"`: the reverse.
    let config = format!(r#"{{{base}, "client_address_header": "forwarded"}}"#);
    let r = counted_through_proxy(&config, "Forwarded", "X-Forwarded-For").await;
    assert_eq!(stat(&r, "unique_today"), 2, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_room_names_leave_configured_rooms_their_figures() {
    let server = Server::start(
        r#"{"rooms": {"desk": {"count": "addresses"}}, "max_connections_per_ip": 0, "state_file": null}"#,
    );
    let addr = server.addr;
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.parse::<u64>().ok()).unwrap()
    };
    let before = rss();
    let started = Instant::now();
    // 3,000 short streams to invented rooms, 16 at a time: open, close.
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            tokio::spawn(async move {
                for n in (t..3000).step_by(16) {
                    drop(watch(addr, "127.0.0.2", &format!("junk{n}"), "").await);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("3,000 junk rooms: {:?}, RSS {} kB -> {} kB", started.elapsed(), before, rss());

    // The configured room, first seen now, counts addresses and has figures.
    let _a = watch(addr, "127.0.0.3", "desk", "").await;
    let _b = watch(addr, "127.0.0.3", "desk", "").await;
    let _c = watch(addr, "127.0.0.4", "desk", "").await;
    let r = wait_room(addr, "desk", "3 streams from 2 addresses", |r| r["viewers"] == 3 && r["shown"] == 2).await;
    assert_eq!((stat(&r, "unique_today"), stat(&r, "sessions_today"), stat(&r, "peak_today")), (2, 3, 2), "{r}");

    // A new invented room still streams and counts, without figures.
    let _late = watch(addr, "127.0.0.2", "late", "").await;
    let r = wait_room(addr, "late", "its viewer", |r| r["viewers"] == 1).await;
    assert_eq!(stat(&r, "sessions_today"), 0, "every unconfigured slot is taken: {r}");

    // `/metrics`: the configured room by name, the junk only summed.
    let (_, _, body) = get(addr, "/metrics").await;
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("room=\"junk") && !text.contains("room=\"late"), "a series per junk room");
    assert_eq!(common::sample(&text, "framecast_room_sessions_today{room=\"desk\"}"), Some(3.0));
    assert_eq!(common::sample(&text, "framecast_rooms_unconfigured"), Some(1000.0));
    assert_eq!(common::sample(&text, "framecast_rooms_unlisted_sessions_today"), Some(1000.0));
}

/// The statistics day starts at `day_starts_at` (UTC), not at midnight:
/// with the figures' clock moved forward (`/debug/clock`, a test hook),
/// nothing resets before that time, and after it the day's figures start
/// over (viewers still watching count for the new day) while the all-time
/// peak stays. Distinct viewers stop at `max_unique_per_room`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_starts_at_day_starts_at_and_unique_viewers_stop_at_their_cap() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // The day starts in about two hours from now (to the minute, UTC).
    let start = (now / 60 + 120) % 1440;
    let config = serde_json::json!({
        "database": null, "state_file": null, "debug_endpoints": true, "max_connections_per_ip": 0,
        "day_starts_at": format!("{:02}:{:02}", start / 60, start % 60),
        "max_unique_per_room": 3, "rooms": {"hall": {}}
    });
    let server = Server::start(&config.to_string());
    let addr = server.addr;
    let mut held = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        held.push(watch(addr, source, "hall", "").await);
    }
    let r = wait_room(addr, "hall", "4 viewers, 3 of them distinct (the cap)", |r| {
        r["viewers"] == 4 && r["stats"]["unique_today"] == 3
    })
    .await;
    assert_eq!(r["stats"]["unique_today_capped"], true, "{r}");
    held.truncate(1); // 127.0.0.2 stays
    wait_room(addr, "hall", "one viewer left", |r| r["viewers"] == 1 && r["stats"]["peak_today"] == 4).await;

    // An hour on: still the same day.
    assert_eq!(get(addr, "/debug/clock?advance_s=3600").await.0, 200);
    let r = room(addr, "hall").await;
    assert_eq!((stat(&r, "unique_today"), stat(&r, "peak_today")), (3, 4), "reset before day_starts_at: {r}");
    // Past the day's start: a new day, counting the viewer still here.
    assert_eq!(get(addr, "/debug/clock?advance_s=3720").await.0, 200);
    let r = room(addr, "hall").await;
    assert_eq!(stat(&r, "unique_today"), 1, "the new day counts the viewer still watching: {r}");
    assert_eq!(stat(&r, "peak_all_time"), 4, "the all-time peak stays: {r}");
    assert!(stat(&r, "peak_today") <= 1, "the day's peak starts over: {r}");

    // The hook exists only with debug_endpoints.
    let plain = Server::start(r#"{"database": null, "state_file": null}"#);
    assert_eq!(get(plain.addr, "/debug/clock?advance_s=60").await.0, 404);
}
