//! Camera streams end to end against the real binary: on-demand sources,
//! snapshots, the file source, overlays, identical-frame skipping and
//! per-client limits. Frames are decoded as JPEG, never taken on trust.

mod common;

use std::time::{Duration, Instant};

use common::jpeg::{decoded, mean, near, pixel, placeholder_kind, solid_jpeg};
use common::{Server, Viewer, api, api_with_token, get};

const READER: &str = "Lavf/59.27.100";
const TOKEN: &str = "camera-test-token-0123";

fn pattern_camera(name: &str, fps: u32, extra: &str) -> String {
    format!(r#""{name}": {{ "source": {{ "kind": "pattern", "width": 160, "height": 90, "fps": {fps} }} {extra} }}"#)
}

async fn camera_state(server: &Server, name: &str) -> String {
    api(server.addr, &format!("/api/v1/cameras/{name}")).await["state"].as_str().unwrap().to_string()
}

async fn wait_state(server: &Server, name: &str, want: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let state = camera_state(server, name).await;
        if state == want {
            return;
        }
        assert!(start.elapsed() < limit, "camera {name} is {state}, expected {want} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_camera_runs_only_while_watched_and_the_first_frame_is_live() {
    let _serial = common::serial();
    let config = format!(r#"{{ "camera_idle_stop_ms": 300, "cameras": {{ {} }} }}"#, pattern_camera("cam", 20, ""));
    let server = Server::start(&config);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(camera_state(&server, "cam").await, "idle", "nobody watches: the source is closed");

    let mut viewer = Viewer::connect(server.addr, "/camera/cam.mjpg", READER).await;
    assert!(viewer.head.contains("multipart/x-mixed-replace"), "{}", viewer.head);
    assert!(viewer.read_parts(5, Duration::from_secs(5)).await);
    let first = &viewer.received[0];
    assert_eq!(first.header("content-type"), Some("image/jpeg"));
    assert_eq!(placeholder_kind(&first.body), None, "the first frame is a real one, not 'connecting'");
    assert_eq!(decoded(&first.body).width, 160);
    let info = api(server.addr, "/api/v1/cameras/cam").await;
    assert_eq!(info["state"], "live");
    assert_eq!(info["channel"]["viewers"], 1);

    drop(viewer);
    wait_state(&server, "cam", "idle", Duration::from_secs(3)).await;
    assert_eq!(api(server.addr, "/api/v1/channels/camera/cam").await["viewers"], 0);
}

#[tokio::test]
async fn snapshots_start_the_source_and_max_delay_waits_for_a_fresh_frame() {
    let _serial = common::serial();
    let config = format!(
        r#"{{ "camera_idle_stop_ms": 2000, "api_tokens": ["{TOKEN}"], "cameras": {{ {}, "dead": {{ "source": {{ "kind": "mjpeg", "url": "http://127.0.0.1:9/x", "timeout_ms": 300 }} }} }} }}"#,
        pattern_camera("cam", 2, "")
    );
    let server = Server::start(&config);
    let (status, head, first) = get(server.addr, "/camera/cam.jpg").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: image/jpeg"), "{head}");
    assert_eq!(placeholder_kind(&first), None, "a snapshot of an idle camera waits for its first real frame");
    let (status, _, fresh) = get(server.addr, "/camera/cam.jpg?max_delay=3000").await;
    assert_eq!(status, 200);
    assert_ne!(fresh, first, "max_delay returned a newer frame");

    for bad in ["max_delay=abc", "max_delay=-1", "max_delay=999999"] {
        let (status, _, body) = get(server.addr, &format!("/camera/cam.jpg?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(get(server.addr, "/camera/nope.jpg").await.0, 404);
    assert_eq!(get(server.addr, "/camera/bad%20name.mjpg").await.0, 400);
    assert_eq!(get(server.addr, "/camera/cam.gif").await.0, 404);

    // A camera whose source is down answers 503 with the placeholder, so an <img> still shows why.
    let (status, head, body) = get(server.addr, "/camera/dead.jpg").await;
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 5\r\n"), "{head}");
    assert_eq!(placeholder_kind(&body), Some("offline"));
    // Why is for token holders: an anonymous caller sees only that it failed.
    let info = api(server.addr, "/api/v1/cameras/dead").await;
    assert_eq!((&info["state"], &info["reason"]), (&"offline".into(), &"error".into()), "{info}");
    let info = api_with_token(server.addr, "/api/v1/cameras/dead", TOKEN).await;
    assert_eq!(info["state"], "offline");
    assert!(info["reason"].as_str().unwrap().contains("connect"), "{info}");
}

#[tokio::test]
async fn replacing_the_file_pushes_the_new_picture_to_every_viewer() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cam.jpg");
    std::fs::write(&path, solid_jpeg([200, 30, 30], 64, 48)).unwrap();
    let config = serde_json::json!({
        "resend_interval_ms": 60000,
        "cameras": { "file": { "source": { "kind": "file", "path": path, "poll_ms": 50 } } }
    });
    let server = Server::start(&config.to_string());
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let mut v = Viewer::connect(server.addr, "/camera/file.mjpg", READER).await;
        assert!(v.read_parts(1, Duration::from_secs(5)).await);
        assert!(near(mean(&v.last().unwrap().body), [200, 30, 30], 8));
        viewers.push(v);
    }
    // Passthrough: without an overlay the served image is the file, byte for byte.
    assert_eq!(&viewers[0].last().unwrap().body[..], &std::fs::read(&path).unwrap()[..]);

    // Atomic replace, as a capture script does it.
    let tmp = dir.path().join("cam.jpg.tmp");
    std::fs::write(&tmp, solid_jpeg([30, 30, 200], 64, 48)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    for v in &mut viewers {
        assert!(v.read_parts(2, Duration::from_secs(5)).await, "the replaced file reached every viewer");
        assert!(near(mean(&v.last().unwrap().body), [30, 30, 200], 8));
    }

    // Rewritten in place with the same bytes: nothing is pushed, the skip is counted.
    let seq = api(server.addr, "/api/v1/channels/camera/file").await["frame_seq"].as_u64().unwrap();
    std::fs::write(&path, solid_jpeg([30, 30, 200], 64, 48)).unwrap();
    let start = Instant::now();
    while api(server.addr, "/api/v1/channels/camera/file").await["frames_unchanged"] == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "the identical rewrite was never looked at");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(api(server.addr, "/api/v1/channels/camera/file").await["frame_seq"].as_u64().unwrap(), seq);

    // Rewritten in place as a PNG: converted, since MJPEG readers refuse PNG parts.
    let mut pixmap = tiny_skia::Pixmap::new(64, 48).unwrap();
    pixmap.fill(tiny_skia::Color::from_rgba8(40, 180, 40, 255));
    std::fs::write(&path, framecast::render::png::encode_png(&pixmap)).unwrap();
    for v in &mut viewers {
        assert!(v.read_parts(3, Duration::from_secs(5)).await);
        let part = v.last().unwrap();
        assert_eq!(part.header("content-type"), Some("image/jpeg"));
        assert!(near(mean(&part.body), [40, 180, 40], 8));
        assert_eq!(v.received.len(), 3, "the identical rewrite pushed nothing");
    }

    // The file disappears: viewers stay and see the placeholder.
    std::fs::remove_file(&path).unwrap();
    for v in &mut viewers {
        assert!(v.read_parts(4, Duration::from_secs(5)).await);
        assert_eq!(placeholder_kind(&v.last().unwrap().body), Some("offline"));
    }
    assert_eq!(api(server.addr, "/api/v1/channels/camera/file").await["viewers"], 3);
}

#[tokio::test]
async fn the_overlay_changes_its_box_and_nothing_else() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grey.jpg");
    std::fs::write(&path, solid_jpeg([120, 120, 120], 320, 180)).unwrap();
    let file = serde_json::json!({ "kind": "file", "path": path });
    let config = serde_json::json!({ "cameras": {
        "plain": { "source": file },
        "stats": { "source": file, "overlay": { "text": "{viewers} watching\n{time} UTC", "position": "top-left" } }
    }});
    let server = Server::start(&config.to_string());
    let (status, _, plain) = get(server.addr, "/camera/plain.jpg").await;
    assert_eq!(status, 200);
    assert_eq!(plain, std::fs::read(&path).unwrap(), "no overlay: byte-for-byte passthrough");
    let (status, _, stats) = get(server.addr, "/camera/stats.jpg").await;
    assert_eq!(status, 200);
    let (a, b) = (decoded(&plain), decoded(&stats));
    assert_eq!((b.width, b.height), (320, 180));
    let (mut x0, mut y0, mut x1, mut y1, mut changed) = (usize::MAX, usize::MAX, 0, 0, 0);
    for y in 0..180 {
        for x in 0..320 {
            if !near(pixel(&a, x, y), pixel(&b, x, y), 24) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                changed += 1;
            }
        }
    }
    assert!(changed > 1000, "the box and its text were drawn ({changed} pixels changed)");
    assert!((6..=12).contains(&x0) && (6..=12).contains(&y0), "the box starts at the margin: {x0},{y0}");
    assert!(x1 < 200 && y1 < 80, "the box stays top-left: ends at {x1},{y1}");
    // Outside the box the picture is the source's (JPEG noise aside).
    for y in 0..180 {
        for x in 0..320 {
            if x > x1 + 8 || y > y1 + 8 {
                assert!(near(pixel(&a, x, y), pixel(&b, x, y), 10), "pixel {x},{y} changed outside the box");
            }
        }
    }
}

#[tokio::test]
async fn per_client_limits_end_or_pace_streams_cleanly() {
    let _serial = common::serial();
    let config = format!(
        r#"{{ "max_connections_per_ip": 0, "cameras": {{ {}, {} }} }}"#,
        pattern_camera("fast", 20, ""),
        pattern_camera("capped", 20, r#", "limits": { "max_fps": 2 }"#)
    );
    let server = Server::start(&config);

    let mut duration = Viewer::connect(server.addr, "/camera/fast.mjpg?max_duration=1", READER).await;
    let start = Instant::now();
    assert!(duration.read_until_ended(Duration::from_secs(10)).await, "ended with HTTP's last chunk");
    assert!(start.elapsed() >= Duration::from_millis(900), "ended early: {:?}", start.elapsed());
    // A 20 fps stream is checked every 50 ms; the rest is a loaded machine's slack.
    assert!(start.elapsed() <= Duration::from_millis(2500), "max_duration=1 ended after {:?}", start.elapsed());

    let mut bytes = Viewer::connect(server.addr, "/camera/fast.mjpg?max_bytes=30000", READER).await;
    assert!(bytes.read_until_ended(Duration::from_secs(20)).await, "ended with HTTP's last chunk");
    assert!(bytes.raw.len() <= 30000, "{} bytes sent past max_bytes", bytes.raw.len());
    assert!(bytes.received.len() >= 3, "frames were sent up to the budget");

    // Paced to 2 fps by the URL; by the config (a URL cannot loosen it).
    for path in ["/camera/fast.mjpg?max_fps=2", "/camera/capped.mjpg?max_fps=50"] {
        let mut paced = Viewer::connect(server.addr, path, READER).await;
        paced.read_for(Duration::from_millis(3000)).await;
        let n = paced.received.len();
        // ~3 s at 2 fps is 7 frames; at the source's 20 fps it would be ~60.
        assert!((4..=9).contains(&n), "{path}: {n} frames in 3 s");
    }
    let (status, _, body) = get(server.addr, "/camera/fast.mjpg?max_fps=fast").await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // Limits apply to badge streams as well.
    let mut badge = Viewer::connect(server.addr, "/online/limits.png?max_duration=1", READER).await;
    assert!(badge.read_until_ended(Duration::from_secs(10)).await);
    let metrics = String::from_utf8(get(server.addr, "/metrics").await.2).unwrap();
    assert!(metrics.contains(r#"framecast_limits_reached_total{reason="max_duration"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"framecast_limits_reached_total{reason="max_bytes"} 1"#), "{metrics}");
    assert_eq!(api(server.addr, "/api/v1/channels/camera/fast").await["viewers"], 0);
}

/// The server-wide `client_limits` hold for every stream without limits of
/// its own (a room here), and a URL may only tighten them.
#[tokio::test]
async fn server_wide_client_limits_apply_to_every_stream() {
    let _serial = common::serial();
    let server = Server::start(r#"{ "client_limits": { "max_duration_s": 1, "max_fps": 2 } }"#);
    for path in ["/online/limited.png", "/online/limited.png?max_duration=60"] {
        let mut viewer = Viewer::connect(server.addr, path, READER).await;
        let start = Instant::now();
        assert!(viewer.read_until_ended(Duration::from_secs(10)).await, "{path}: ended with HTTP's last chunk");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took <= Duration::from_millis(2500),
            "{path}: ended after {took:?}"
        );
    }
    let (status, _, body) = get(server.addr, "/online/limited.png?max_fps=0.001").await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn an_always_on_camera_runs_with_nobody_watching() {
    let _serial = common::serial();
    let config = format!(
        r#"{{ "camera_idle_stop_ms": 200, "cameras": {{ {}, {} }} }}"#,
        pattern_camera("always", 20, r#", "always_on": true"#),
        pattern_camera("lazy", 20, "")
    );
    let server = Server::start(&config);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let always = loop {
        let always = api(server.addr, "/api/v1/cameras/always").await;
        if always["channel"]["frame_seq"].as_u64().unwrap() > 5 || std::time::Instant::now() > deadline {
            break always;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(always["state"], "live", "{always}");
    assert!(always["channel"]["frame_seq"].as_u64().unwrap() > 5, "frames flow unwatched: {always}");
    assert_eq!(always["channel"]["viewers"], 0);
    assert_eq!(camera_state(&server, "lazy").await, "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_in_the_making_survive_viewers_coming_and_going() {
    let _serial = common::serial();
    // A large pattern frame takes a while to draw and encode (tens of ms in
    // a debug build); viewers joining and leaving every few ms must not
    // throw that work away, or the camera would never finish a frame.
    let config = r#"{ "max_connections_per_ip": 0, "cameras": { "big": { "source":
        { "kind": "pattern", "width": 640, "height": 360, "fps": 10 } } } }"#;
    let server = Server::start(config);
    let addr = server.addr;
    let mut steady = Viewer::connect(addr, "/camera/big.mjpg", READER).await;
    assert!(steady.read_parts(1, Duration::from_secs(10)).await);
    // What this machine, loaded as it is now, makes without churn.
    let before = steady.received.len();
    steady.read_for(Duration::from_secs(3)).await;
    let calm = steady.received.len() - before;
    // A join or leave every 3 ms: far quicker than one frame is drawn.
    let churn = tokio::spawn(async move {
        let start = Instant::now();
        let mut joins = 0;
        let mut pace = tokio::time::interval(Duration::from_millis(3));
        while start.elapsed() < Duration::from_secs(3) {
            pace.tick().await;
            let v = Viewer::connect(addr, "/camera/big.mjpg", READER).await;
            v.reset();
            joins += 1;
        }
        joins
    });
    let before = steady.received.len();
    let start = Instant::now();
    steady.read_for(Duration::from_secs(3)).await;
    let got = steady.received.len() - before;
    let joins = churn.await.unwrap();
    eprintln!("{got} frames in {:?} while {joins} viewers came and went; {calm} without", start.elapsed());
    // A camera that threw away its frame in the making at every join would
    // make none; one that keeps it makes about what it makes without churn
    // (the churn's own CPU aside).
    assert!(joins >= 200, "the churn was too slow to test anything: {joins}");
    assert!(got >= 3 && got * 3 >= calm, "only {got} frames in 3 s while viewers churned ({calm} without)");
}
