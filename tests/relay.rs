//! The MJPEG relay against real upstreams: a second framecast that is killed
//! and restarted (viewers stay, see the placeholder, then resume; one
//! upstream connection however many watch), and a hostile upstream whose
//! malformed stream must never crash the relay.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::jpeg::{mean, near, placeholder_kind, solid_jpeg};
use common::{Server, Viewer, api, api_with_token};

const READER: &str = "Lavf/59.27.100";
/// API token: a camera's failure text shows only to token holders.
const TOKEN: &str = "relay-test-token-0123";

fn relay_config(url: &str) -> String {
    format!(
        r#"{{ "max_connections_per_ip": 0, "camera_idle_stop_ms": 300, "api_tokens": ["{TOKEN}"], "cameras": {{
            "relay": {{ "source": {{ "kind": "mjpeg", "url": "{url}", "timeout_ms": 1000 }} }} }} }}"#
    )
}

/// Reads until the latest part satisfies `done`, or panics after `limit`.
async fn read_until(viewer: &mut Viewer, limit: Duration, what: &str, done: impl Fn(&[u8]) -> bool) {
    let deadline = Instant::now() + limit;
    while viewer.last().is_none_or(|p| !done(&p.body)) {
        assert!(Instant::now() < deadline, "{what}: not seen within {limit:?}");
        let have = viewer.received.len();
        viewer.read_parts(have + 1, Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn viewers_ride_out_an_upstream_restart_over_one_upstream_connection() {
    let upstream_config =
        r#"{ "cameras": { "up": { "source": { "kind": "pattern", "width": 160, "height": 90, "fps": 10 } } } }"#;
    let upstream = Server::start(upstream_config);
    let upstream_addr = upstream.addr;
    let relay = Server::start(&relay_config(&upstream.url("/camera/up.mjpg")));

    let mut viewers = Vec::new();
    for _ in 0..20 {
        viewers.push(Viewer::connect(relay.addr, "/camera/relay.mjpg", READER).await);
    }
    for v in &mut viewers {
        assert!(v.read_parts(3, Duration::from_secs(10)).await);
        assert_eq!(placeholder_kind(&v.last().unwrap().body), None, "live frames are relayed");
    }
    let up = api(upstream.addr, "/api/v1/channels/camera/up").await;
    assert_eq!(up["viewers"], 1, "20 relay viewers share one upstream connection");

    drop(upstream); // killed
    for v in &mut viewers {
        read_until(v, Duration::from_secs(10), "the offline placeholder", |b| placeholder_kind(b) == Some("offline"))
            .await;
    }
    assert_eq!(api(relay.addr, "/api/v1/cameras/relay").await["state"], "offline");
    assert_eq!(api(relay.addr, "/api/v1/channels/camera/relay").await["viewers"], 20, "nobody was dropped");

    let upstream = Server::start_on(upstream_addr, upstream_config);
    for v in &mut viewers {
        read_until(v, Duration::from_secs(20), "live frames again", |b| placeholder_kind(b).is_none()).await;
    }
    assert_eq!(api(relay.addr, "/api/v1/cameras/relay").await["state"], "live");
    assert_eq!(api(upstream.addr, "/api/v1/channels/camera/up").await["viewers"], 1);

    // Nobody watches: the relay closes its upstream connection too.
    drop(viewers);
    let start = Instant::now();
    while api(upstream.addr, "/api/v1/channels/camera/up").await["viewers"] != 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "the idle relay kept its upstream connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a hostile or broken camera sends, one script per connection.
fn hostile_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let good = solid_jpeg([20, 200, 20], 32, 24);
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            let mut write = |bytes: &[u8]| s.write_all(bytes).is_ok();
            match i {
                // Not HTTP at all.
                0 => {
                    write(b"\x00\xff garbage \r\n\r\n not http");
                }
                // A 200 that is not multipart.
                1 => {
                    write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello");
                }
                // Multipart with no boundary parameter, junk, a truncated part,
                // a non-JPEG part, LF-only lines and a part without a length;
                // then good frames forever (until the relay hangs up).
                _ => {
                    let mut stream =
                        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace\r\nConnection: close\r\n\r\n"
                            .to_vec();
                    stream.extend_from_slice(b"junk before the first boundary\r\n--cam\r\nContent-Type: image/jpeg\r\nContent-Length: 50000\r\n\r\n");
                    stream.extend_from_slice(&good[..good.len() / 2]);
                    stream.extend_from_slice(b"\r\n--cam\r\nContent-Type: text/plain\r\n\r\nnot an image\r\n");
                    stream.extend_from_slice(b"--cam\nContent-Type: image/jpeg\n\n\xff\xd8 truncated jpeg\n");
                    stream.extend_from_slice(&[0x5a; 70_000]);
                    if !write(&stream) {
                        continue;
                    }
                    loop {
                        let mut part = b"\r\n--cam\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
                        part.extend_from_slice(&good);
                        if !write(&part) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_malformed_upstream_never_crashes_the_relay() {
    let upstream = hostile_upstream();
    let relay = Server::start(&relay_config(&format!("http://{upstream}/stream")));
    let mut viewer = Viewer::connect(relay.addr, "/camera/relay.mjpg", READER).await;
    // Two bad connections first (shown as offline), then the good frames get through.
    read_until(&mut viewer, Duration::from_secs(20), "the upstream's good frame", |b| {
        placeholder_kind(b).is_none() && near(mean(b), [20, 200, 20], 10)
    })
    .await;
    let info = api(relay.addr, "/api/v1/cameras/relay").await;
    assert_eq!(info["state"], "live", "{info}");
    // Every part the relay served decodes as JPEG; the truncated one never reached viewers.
    for part in &viewer.received {
        common::jpeg::decoded(&part.body);
    }
    assert_eq!(common::get(relay.addr, "/healthz").await.0, 200);
}

/// An upstream that wants HTTP basic auth (`user` / `pa:ss`) and sends one
/// frame a second to whoever passes.
fn guarded_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if std::io::Read::read(&mut s, &mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                // base64("user:pa:ss")
                if !String::from_utf8_lossy(&head).contains("Authorization: Basic dXNlcjpwYTpzcw==\r\n") {
                    let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                let _ =
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=\"q\"\r\n\r\n");
                let frame = solid_jpeg([200, 200, 30], 32, 24);
                loop {
                    let mut part =
                        format!("--q\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", frame.len())
                            .into_bytes();
                    part.extend_from_slice(&frame);
                    part.extend_from_slice(b"\r\n");
                    if s.write_all(&part).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn basic_auth_reaches_the_upstream_and_a_refusal_is_reported() {
    let upstream = guarded_upstream();
    let config = serde_json::json!({ "camera_idle_stop_ms": 300, "api_tokens": [TOKEN], "cameras": {
        "ok": { "source": { "kind": "mjpeg", "url": format!("http://{upstream}/cam"), "username": "user", "password": "pa:ss" } },
        "denied": { "source": { "kind": "mjpeg", "url": format!("http://{upstream}/cam") } }
    }});
    let relay = Server::start(&config.to_string());
    let mut viewer = Viewer::connect(relay.addr, "/camera/ok.mjpg", READER).await;
    read_until(&mut viewer, Duration::from_secs(10), "the guarded upstream's frame", |b| {
        placeholder_kind(b).is_none() && near(mean(b), [200, 200, 30], 10)
    })
    .await;
    let (status, _, body) = common::get(relay.addr, "/camera/denied.jpg").await;
    assert_eq!(status, 503);
    assert_eq!(placeholder_kind(&body), Some("offline"));
    let info = api_with_token(relay.addr, "/api/v1/cameras/denied", TOKEN).await;
    assert!(info["reason"].as_str().unwrap().contains("401"), "{info}");
    // The password never shows in the API.
    let all = String::from_utf8(common::get(relay.addr, "/api/v1/cameras").await.2).unwrap();
    assert!(!all.contains("pa:ss"), "{all}");

    // The upstream repeats one picture: identical frames are skipped and
    // counted, and skipping them must not keep an unwatched source running.
    let start = std::time::Instant::now();
    while api(relay.addr, "/api/v1/channels/camera/ok").await["frames_unchanged"] == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "the repeated picture was not counted as unchanged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(viewer);
    let start = std::time::Instant::now();
    while api(relay.addr, "/api/v1/cameras/ok").await["state"] != "idle" {
        assert!(start.elapsed() < Duration::from_secs(5), "a source of identical frames never went idle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Started by a snapshot, whose demand simply expires (no viewer leaves to wake the producer).
    assert_eq!(common::get(relay.addr, "/camera/ok.jpg").await.0, 200);
    let start = std::time::Instant::now();
    while api(relay.addr, "/api/v1/cameras/ok").await["state"] != "idle" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "a snapshot-started source of identical frames never went idle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_ipv6_literal_upstream_is_relayed() {
    let upstream_config =
        r#"{ "cameras": { "up": { "source": { "kind": "pattern", "width": 160, "height": 90, "fps": 10 } } } }"#;
    let upstream = Server::start_on("[::1]:0".parse().unwrap(), upstream_config);
    let url = format!("http://{}/camera/up.mjpg", upstream.addr);
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let relay = Server::start(&relay_config(&url));
    let mut viewer = Viewer::connect(relay.addr, "/camera/relay.mjpg", READER).await;
    read_until(&mut viewer, Duration::from_secs(10), "a relayed frame", |b| placeholder_kind(b).is_none()).await;
    assert_eq!(api(relay.addr, "/api/v1/cameras/relay").await["state"], "live");
}

/// An upstream that sends one good frame, then trickles a second one a byte
/// at a time, never finishing it: bytes flow, frames do not.
fn trickling_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let frame = solid_jpeg([30, 200, 30], 32, 24);
                let mut out =
                    b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=t\r\n\r\n".to_vec();
                out.extend_from_slice(
                    format!("--t\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", frame.len()).as_bytes(),
                );
                out.extend_from_slice(&frame);
                out.extend_from_slice(b"\r\n--t\r\nContent-Type: image/jpeg\r\nContent-Length: 999999\r\n\r\n");
                if s.write_all(&out).is_err() {
                    return;
                }
                // One byte per 50 ms (the relay's silence timeout is 1 s).
                while s.write_all(&[0xAB]).is_ok() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_upstream_that_trickles_bytes_but_no_frames_is_reported_frozen() {
    let upstream = trickling_upstream();
    let relay = Server::start(&relay_config(&format!("http://{upstream}/cam")));
    let mut viewer = Viewer::connect(relay.addr, "/camera/relay.mjpg", READER).await;
    read_until(&mut viewer, Duration::from_secs(10), "the one good frame", |b| {
        placeholder_kind(b).is_none() && near(mean(b), [30, 200, 30], 10)
    })
    .await;
    // Bytes keep coming, but no frame completes within the 1 s timeout.
    read_until(&mut viewer, Duration::from_secs(10), "the offline placeholder", |b| {
        placeholder_kind(b) == Some("offline")
    })
    .await;
    let info = api_with_token(relay.addr, "/api/v1/cameras/relay", TOKEN).await;
    assert_eq!(info["state"], "offline", "{info}");
    assert!(info["reason"].as_str().unwrap().contains("no complete frame for 1000 ms"), "{info}");
}

/// An upstream whose every other frame is larger than the relay's
/// `max_frame_bytes`: red and large, then green and small.
fn oversized_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        // Two shades of small green, so each is a new picture (an unchanged
        // frame is not published again).
        let large = solid_jpeg([220, 20, 20], 1024, 768);
        let (small, other) = (solid_jpeg([20, 200, 20], 32, 24), solid_jpeg([20, 180, 20], 32, 24));
        assert!(large.len() > 4096 && small.len() < 4096, "{} / {} bytes", large.len(), small.len());
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=cam\r\n\r\n";
            if s.write_all(head).is_err() {
                continue;
            }
            for frame in [&large, &small, &large, &other].into_iter().cycle() {
                let mut part = format!("--cam\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", frame.len())
                    .into_bytes();
                part.extend_from_slice(frame);
                part.extend_from_slice(b"\r\n");
                if s.write_all(&part).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    addr
}

#[tokio::test]
async fn parts_over_max_frame_bytes_are_dropped_and_the_rest_relayed() {
    let upstream = oversized_upstream();
    let config = format!(
        r#"{{ "cameras": {{ "relay": {{ "source": {{ "kind": "mjpeg", "url": "http://{upstream}/",
            "max_frame_bytes": 4096 }} }} }} }}"#
    );
    let relay = Server::start(&config);
    let mut viewer = Viewer::connect(relay.addr, "/camera/relay.mjpg", READER).await;
    read_until(&mut viewer, Duration::from_secs(20), "a small upstream frame", |b| {
        placeholder_kind(b).is_none() && near(mean(b), [20, 200, 20], 10)
    })
    .await;
    let seen = viewer.received.len();
    assert!(viewer.read_parts(seen + 6, Duration::from_secs(10)).await, "small frames keep coming");
    for part in &viewer.received {
        assert!(part.body.len() <= 4096 || placeholder_kind(&part.body).is_some(), "a part over max_frame_bytes");
        assert!(!near(mean(&part.body), [220, 20, 20], 30), "a large upstream frame reached a viewer");
    }
}
