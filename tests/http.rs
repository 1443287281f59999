//! HTTP behaviour of the live badge over real TCP: headers, framing per
//! client, single images, errors and status codes, referer policy, caps,
//! config errors, and `framecast render` matching what is served.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, Viewer, api, decode_png, expected_badge, get, metric, request, sample, wait_for_viewers};
use framecast::push::part::BOUNDARY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
const FFMPEG: &str = "Lavf/59.27.100";

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn stream_headers_are_proxy_and_cache_safe() {
    let server = Server::start("{}");
    let v = Viewer::connect(server.addr, "/online.png", CHROME).await;
    let h = &v.head;
    assert_eq!(header(h, "content-type"), Some(format!("multipart/x-mixed-replace; boundary={BOUNDARY}").as_str()));
    assert_eq!(header(h, "cache-control"), Some("no-store, no-cache, must-revalidate, max-age=0"));
    assert_eq!(header(h, "pragma"), Some("no-cache"));
    assert_eq!(header(h, "expires"), Some("0"));
    assert_eq!(header(h, "x-accel-buffering"), Some("no"));
    assert_eq!(header(h, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(h, "content-encoding"), None);
    assert_eq!(header(h, "content-length"), None);
}

#[tokio::test]
async fn browsers_get_the_next_header_block_at_once_and_readers_get_lengths() {
    let server = Server::start(r#"{"min_frame_interval_ms": 1}"#);
    let addr = server.addr;
    let next_header = format!("--{BOUNDARY}\r\nContent-Type: image/png\r\n\r\n");

    // A browser: its first frame is complete (next header block already
    // sent), with nothing more needed from the server to display it.
    let mut browser = Viewer::connect(addr, "/online/framing.png", CHROME).await;
    browser.read_parts(1, Duration::from_secs(5)).await;
    let mut reader = Viewer::connect(addr, "/online/framing.png", FFMPEG).await;
    assert!(reader.read_parts(1, Duration::from_secs(5)).await);
    browser.wait_for_image(&expected_badge(2), Duration::from_secs(5)).await;
    assert!(browser.raw.ends_with(next_header.as_bytes()), "browser stream must end with the next part's headers");
    assert!(browser.received[0].header("content-length").is_some(), "first part carries its length");
    for p in &browser.received {
        decode_png(&p.body);
    }

    // A reader (ffmpeg's User-Agent): every part complete by its length,
    // nothing sent ahead.
    reader.wait_for_image(&expected_badge(2), Duration::from_secs(5)).await;
    assert!(reader.raw.ends_with(b"\r\n") && !reader.raw.ends_with(next_header.as_bytes()));
    for p in &reader.received {
        assert_eq!(p.header("content-length"), Some(p.body.len().to_string().as_str()));
        decode_png(&p.body);
    }

    // The query overrides the User-Agent.
    let overridden = Viewer::connect(addr, "/online/framing.png?framing=reader", CHROME).await;
    let mut overridden = overridden;
    overridden.wait_for_image(&expected_badge(3), Duration::from_secs(5)).await;
    assert!(!overridden.raw.ends_with(next_header.as_bytes()));
}

#[tokio::test]
async fn single_images_are_plain_uncacheable_and_not_counted() {
    let server = Server::start("{}");
    let addr = server.addr;
    let _a = Viewer::connect(addr, "/online/once.png", "t").await;
    let _b = Viewer::connect(addr, "/online/once.png", "t").await;
    wait_for_viewers(addr, "once", 2, Duration::from_secs(5)).await;
    // The count is exact at once; the picture of "2" lands a render later.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (status, head, body) = loop {
        let (status, head, body) = get(addr, "/online/once.png?once").await;
        if decode_png(&body) == expected_badge(2) || Instant::now() > deadline {
            break (status, head, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("image/png"));
    assert_eq!(header(&head, "cache-control"), Some("no-store, no-cache, must-revalidate, max-age=0"));
    assert_eq!(decode_png(&body), expected_badge(2));

    // Image proxies that cannot stream get the same single image.
    let camo =
        "GET /online/once.png HTTP/1.1\r\nHost: t\r\nUser-Agent: github-camo (876de43e)\r\nConnection: close\r\n\r\n";
    let (status, head, body) = request(addr, camo).await;
    assert_eq!((status, header(&head, "content-type")), (200, Some("image/png")));
    assert_eq!(decode_png(&body), expected_badge(2));

    // An empty room's single image shows 0 and creates nothing.
    let (_, _, body) = get(addr, "/online/nobody.png?once").await;
    assert_eq!(decode_png(&body), expected_badge(0));
    let channels = api(addr, "/api/v1/channels").await;
    let rooms =
        channels["channels"].as_array().unwrap().iter().filter(|c| c["name"].as_str().unwrap().starts_with("online/"));
    assert_eq!(rooms.count(), 1, "{channels}");

    // HEAD: the stream's headers, no body, no viewer.
    let (status, head, body) =
        request(addr, "HEAD /online/once.png HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(header(&head, "content-type").unwrap().starts_with("multipart/x-mixed-replace"));
    assert!(body.is_empty());
    assert_eq!(common::viewers(addr, "once").await, 2);
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let server = Server::start("{}");
    let addr = server.addr;
    let (status, _, body) = get(addr, "/nope").await;
    assert_eq!((status, String::from_utf8_lossy(&body).trim()), (404, "not found"));

    let (status, head, _) =
        request(addr, "POST /online.png HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    assert_eq!((status, header(&head, "allow")), (405, Some("GET, HEAD")));

    for path in ["/online/a.b.png", "/online/%2e%2e.png", "/online/.png", &format!("/online/{}.png", "x".repeat(65))] {
        let (status, _, body) = get(addr, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("invalid room name"), "{path}");
    }
    let (status, _, body) = get(addr, "/online.png?framing=fast").await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("framing"));

    let (status, _, body) = get(addr, "/api/v1/channels/camera/none").await;
    assert_eq!(status, 404);
    assert!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["error"].is_string());
    let empty = api(addr, "/api/v1/channels/online/empty-room").await;
    assert_eq!((empty["viewers"].as_u64(), empty["live"].as_bool()), (Some(0), Some(false)));

    // Oversized request heads are refused, not buffered without bound.
    let huge =
        format!("GET /online.png HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(64 * 1024));
    let (status, _, _) = request(addr, &huge).await;
    assert_eq!(status, 431);

    // None of this left a viewer behind.
    assert_eq!(api(addr, "/api/v1/channels").await["viewers"], 0);
}

#[tokio::test]
async fn referer_policy() {
    let server = Server::start(r#"{"allowed_referers": ["https://forum.example.org"]}"#);
    let addr = server.addr;
    let req = |referer: &str| format!("GET /online.png?once HTTP/1.1\r\nHost: t\r\n{referer}Connection: close\r\n\r\n");
    assert_eq!(request(addr, &req("Referer: https://forum.example.org/t/42\r\n")).await.0, 200);
    assert_eq!(request(addr, &req("Referer: https://FORUM.example.org:443/\r\n")).await.0, 200);
    assert_eq!(request(addr, &req("Referer: https://evil.example/\r\n")).await.0, 403);
    assert_eq!(request(addr, &req("")).await.0, 200, "no Referer is allowed unless required");

    let strict = Server::start(r#"{"allowed_referers": ["https://forum.example.org"], "require_referer": true}"#);
    assert_eq!(request(strict.addr, &req("")).await.0, 403);
    assert_eq!(request(strict.addr, &req("Referer: https://forum.example.org/\r\n")).await.0, 200);
}

#[tokio::test]
async fn caps_refuse_clearly_and_existing_rooms_keep_working() {
    let server = Server::start(r#"{"max_rooms": 2, "max_connections": 4, "rooms": {"hall": {}}}"#);
    let addr = server.addr;
    let _a = Viewer::connect(addr, "/online/a.png", "t").await;
    let _b = Viewer::connect(addr, "/online/b.png", "t").await;
    let (status, head, body) = get(addr, "/online/c.png").await;
    assert_eq!(status, 503);
    assert!(header(&head, "retry-after").is_some());
    assert!(String::from_utf8_lossy(&body).contains("too many live rooms"));
    // A room listed in the config is not locked out by invented ones.
    let mut hall = Viewer::connect(addr, "/online/hall.png", "t").await;
    assert!(hall.read_parts(1, Duration::from_secs(5)).await, "the configured room streams past max_rooms");
    drop(hall);
    wait_for_viewers(addr, "hall", 0, Duration::from_secs(5)).await;
    // That request's connection frees its slot once the server has closed
    // it: open are the two viewers and the scrape asking.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(addr, "framecast_connections_open").await != Some(3.0) {
        assert!(Instant::now() < deadline, "the refused request's connection was never released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut again = Viewer::connect(addr, "/online/a.png", "t").await;
    assert!(again.read_parts(1, Duration::from_secs(5)).await);

    // Three streams are open; one more connection fits, the next is refused.
    let _d = Viewer::connect(addr, "/online/b.png", "t").await;
    let (status, head, _) = get(addr, "/online/a.png?once").await;
    assert_eq!(status, 503);
    assert!(header(&head, "retry-after").is_some());
}

#[tokio::test]
async fn render_command_writes_exactly_the_served_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("one.png");
    let status = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["render", "online", "--count", "1", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let server = Server::start("{}");
    let mut v = Viewer::connect(server.addr, "/online/render.png", "t").await;
    assert!(v.read_parts(1, Duration::from_secs(5)).await);
    assert_eq!(&v.received[0].body[..], &std::fs::read(&out).unwrap()[..]);
}

/// `framecast render ARGS -o FILE`; the bytes it wrote.
fn rendered(args: &[&str], file: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(file);
    let status = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("render").args(args).arg("-o").arg(&out).status();
    assert!(status.unwrap().success(), "render {args:?}");
    std::fs::read(&out).unwrap()
}

/// The documented forms of `framecast render` (a logo, a scale, `.svg`) and
/// of the room SVGs write exactly what the server serves.
#[tokio::test]
async fn render_logo_scale_and_svg_match_the_served_bytes() {
    let server = Server::start("{}");
    let png = rendered(
        &[
            "flat",
            "--set",
            "label=build",
            "--set",
            "message=ok",
            "--set",
            "color=blue",
            "--logo",
            "github",
            "--scale",
            "2",
        ],
        "b.png",
    );
    let (status, head, served) = get(server.addr, "/badge/static/build-ok-blue.png?logo=github&scale=2").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(served, png, "render --logo --scale 2 equals the served static badge");
    let svg = rendered(&["flat", "--set", "label=build", "--set", "message=ok", "--set", "color=blue"], "b.svg");
    assert!(svg.starts_with(b"<svg"), "a .svg output is SVG");
    assert_eq!(get(server.addr, "/badge/static/build-ok-blue.svg").await.2, svg);

    // /online.svg and /online/ROOM.svg: one SVG of the count now, counting nobody.
    let _viewer = Viewer::connect(server.addr, "/online/svgroom.png", "t").await;
    wait_for_viewers(server.addr, "svgroom", 1, Duration::from_secs(5)).await;
    let (status, head, body) = get(server.addr, "/online/svgroom.svg").await;
    assert_eq!(status, 200, "{head}");
    assert!(header(&head, "content-type").is_some_and(|t| t.starts_with("image/svg+xml")), "{head}");
    assert_eq!(body, rendered(&["online", "--count", "1"], "one.svg"));
    assert_eq!(get(server.addr, "/online.svg").await.2, rendered(&["online", "--count", "0"], "zero.svg"));
    assert_eq!(common::viewers(server.addr, "svgroom").await, 1, "an SVG is not a viewer");
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, r#"{"resend_interval_ms": 1000, "max_romos": 3}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_romos") && stderr.contains("bad.json"), "{stderr}");
}

#[test]
fn version_names_the_features() {
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let features = if cfg!(feature = "device") { "device" } else { "none" };
    assert_eq!(text.trim(), format!("framecast {} (features: {features})", env!("CARGO_PKG_VERSION")));
}

/// Starts the binary with stderr piped (not a terminal), stops it with
/// SIGTERM, and returns what it logged.
fn logs_of_a_run(extra: &[&str]) -> String {
    let server = common::LoggedServer::start(r#"{"state_file": null, "database": null}"#, &[], extra);
    let (status, logs) = server.stop("TERM");
    assert!(status.success());
    logs
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal_and_json_on_request() {
    let text = logs_of_a_run(&[]);
    assert!(text.contains("INFO") && text.contains("shutting down"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in a log that is not a terminal: {text:?}");
    let json = logs_of_a_run(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> =
        json.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["fields"]["message"].as_str().unwrap().contains("shutting down")),
        "{json}"
    );
}

#[test]
fn an_invalid_template_stops_startup_with_file_field_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    let flat = std::fs::read_to_string("templates/badges/flat.json").unwrap();
    std::fs::write(templates.join("mine.json"), flat.replace("\"radius\": 3", "\"radius\": 300")).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, format!(r#"{{"template_dir": {templates:?}, "state_file": null, "database": null}}"#))
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mine.json: radius: 300 is out of range"), "{stderr}");
}

#[test]
fn check_config_validates_without_serving() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{"listen": "0.0.0.0:9000", "state_file": null}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (listen 0.0.0.0:9000"));

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"badges": {"ci": {"template": "shiny"}}, "state_file": null}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("badges.ci.template: no template named \"shiny\""));
}

#[tokio::test]
async fn health_and_per_address_caps() {
    let server = Server::start(r#"{"max_connections_per_ip": 2, "state_file": null}"#);
    let addr = server.addr;
    // From another address: a closed connection holds its place until the
    // server has finished with it, a moment after the client saw the end.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut health = socket.connect(addr).await.unwrap();
    health.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    health.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\nok\n"), "{answer}");

    // Two streams from 127.0.0.1 fill its share; a third is refused...
    let _a = Viewer::connect(addr, "/online/ip.png", "t").await;
    let _b = Viewer::connect(addr, "/online/ip.png", "t").await;
    let (status, head, _) = get(addr, "/online/ip.png?once").await;
    assert_eq!(status, 503);
    assert!(header(&head, "retry-after").is_some());
    // ...while another address still gets in.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = Viewer::start(socket.connect(addr).await.unwrap(), "/online/ip.png", "t").await;
    // (127.0.0.1 is full, so the count is read off the other viewer's frames.)
    other.wait_for_image(&expected_badge(3), Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_viewers_departures_and_responses() {
    let server = Server::start(r#"{"state_file": null}"#);
    let addr = server.addr;
    let mut a = Viewer::connect(addr, "/online/metrics.png", "t").await;
    let b = Viewer::connect(addr, "/online/metrics.png", "t").await;
    wait_for_viewers(addr, "metrics", 2, Duration::from_secs(5)).await;
    a.wait_for_image(&expected_badge(2), Duration::from_secs(5)).await;
    b.reset();
    wait_for_viewers(addr, "metrics", 1, Duration::from_secs(5)).await;
    assert_eq!(get(addr, "/nope").await.0, 404);

    let (status, head, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(header(&head, "content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).unwrap();
    assert_eq!(sample(&text, r#"framecast_viewers{channel="online/metrics"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, "framecast_viewer_joins_total"), Some(2.0));
    assert_eq!(sample(&text, "framecast_viewer_leaves_total"), Some(1.0));
    assert_eq!(sample(&text, r#"framecast_connections_closed_total{reason="reset"}"#), Some(1.0), "{text}");
    assert!(sample(&text, r#"framecast_http_responses_total{status="404"}"#) >= Some(1.0));
    assert!(sample(&text, "framecast_frames_rendered_total") >= Some(2.0));
    assert!(sample(&text, "framecast_parts_sent_total") >= Some(3.0));
    assert!(sample(&text, "framecast_render_seconds_count") >= Some(2.0));
}
