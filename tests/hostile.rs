//! What anyone on the internet can send: garbage, huge or broken requests,
//! traversal attempts, absurd queries, and a slowloris crowd. Each gets the
//! right 4xx (a panic would show as no status at all), none leaves a viewer
//! behind, and honest viewers keep getting in.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Viewer, allow_open_files, api, get, metric, request, wait_for_viewers};
use framecast_load::process_usage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Sends raw bytes, returns the status code of the answer (0: none came).
async fn raw_status(addr: std::net::SocketAddr, bytes: &[u8]) -> u16 {
    raw_answer(addr, bytes).await.0
}

/// Sends raw bytes; returns the status code (0: none came) and what came
/// with it in the first read(s): the head and, for short answers, the body.
async fn raw_answer(addr: std::net::SocketAddr, bytes: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // The head, then a body of known length (an error message); a stream's
    // body never ends, so for it the head is enough.
    let mut want = None;
    loop {
        if want.is_none()
            && let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| l.strip_prefix("content-length:")?.trim().parse::<usize>().ok());
            want = Some(end + 4 + length.unwrap_or(0));
        }
        if want.is_some_and(|n| out.len() >= n) {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&out).to_string();
    (text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_the_right_4xx() {
    let _serial = common::serial();
    let server = Server::start(r#"{"state_file": null}"#);
    let addr = server.addr;
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000));
    let many_headers = format!("GET /online.png HTTP/1.1\r\nHost: t\r\n{}\r\n", "X-A: b\r\n".repeat(200));
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("garbage", b"\x00\x01\x02\xff hello\r\n\r\n".to_vec(), &[400]),
        ("no version", b"GET /online.png\r\n\r\n".to_vec(), &[400]),
        ("bad method on a live image", b"BREW /online.png HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[405]),
        ("traversal", b"GET /online/../../etc/passwd.png HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("encoded traversal", b"GET /online/%2e%2e%2fetc.png HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("invalid UTF-8 path", b"GET /online/\xff\xfe.png HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("huge path", long_path.into_bytes(), &[414, 431]),
        ("too many headers", many_headers.into_bytes(), &[431]),
        ("negative scale", b"GET /badge/static/a-b-red.png?scale=-1 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("huge scale", b"GET /badge/static/a-b-red.png?scale=1e308 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("NaN scale", b"GET /badge/static/a-b-red.png?scale=NaN HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("bad framing", b"GET /online.png?framing=%00 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("bad badge suffix", b"GET /badge/x@99999999999999999999x.png HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        (
            "static text over the limit",
            format!("GET /badge/static/{}-b-red.png HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(300)).into_bytes(),
            &[400],
        ),
        ("badge API bad name", b"GET /api/v1/badges/..%2f HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400]),
        ("channel API unknown", b"GET /api/v1/channels/../../x HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[404]),
        (
            "body on a write with no token",
            b"PUT /api/v1/badges/x HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999999\r\n\r\n".to_vec(),
            &[403],
        ),
        (
            "conflicting lengths",
            b"PUT /api/v1/badges/x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
            &[400],
        ),
    ];
    for (name, bytes, want) in cases {
        let status = raw_status(addr, &bytes).await;
        assert!(want.contains(&status), "{name}: got {status}, want one of {want:?}");
    }
    // Still serving, and nobody was left counted.
    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(api(addr, "/api/v1/channels").await["viewers"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_crowd_does_not_keep_viewers_out() {
    let _serial = common::serial();
    const CROWD: usize = 2000;
    allow_open_files(CROWD as u64 + 200);
    let server = Server::start(r#"{"state_file": null, "header_read_timeout_ms": 2000}"#);
    let addr = server.addr;
    // Half-sent requests from 100 addresses (past the per-address cap).
    let mut crowd = Vec::with_capacity(CROWD);
    for i in 0..CROWD {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("127.0.1.{}:0", 1 + i % 100).parse().unwrap()).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        s.write_all(b"GET /online/slow.png HTTP/1.1\r\nHost: t\r\nX-Slow: ").await.unwrap();
        crowd.push(s);
    }
    // Honest viewers get in and are counted at once.
    let start = Instant::now();
    let mut honest = Vec::new();
    for _ in 0..20 {
        honest.push(Viewer::connect(addr, "/online/honest.png", "t").await);
    }
    // Milliseconds in docs/counting.md; 1 s allows for a loaded machine.
    wait_for_viewers(addr, "honest", 20, Duration::from_secs(1)).await;
    eprintln!("20 honest viewers in and counted {:?} after a {CROWD}-connection slowloris", start.elapsed());
    for v in &mut honest {
        assert!(v.read_parts(1, Duration::from_secs(5)).await);
    }
    // The crowd is cut off by the header-read timeout, and never counted.
    let mut closed = 0;
    for s in &mut crowd {
        let mut buf = [0u8; 512];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, CROWD, "half-sent requests still open after the header timeout");
    assert_eq!(api(addr, "/api/v1/channels/online/slow").await["viewers"], 0);
}

/// The documented range of each number a stream URL takes, as an oracle
/// independent of the server's parsing code.
fn valid(param: &str, value: &str) -> bool {
    let float = value.parse::<f64>().ok().filter(|f| f.is_finite());
    let whole = value.parse::<u64>().ok();
    match param {
        "max_fps" => float.is_some_and(|f| (0.01..=1000.0).contains(&f)),
        "max_duration" => whole.is_some_and(|n| (1..=30 * 86_400).contains(&n)),
        "max_bytes" => whole.is_some_and(|n| (1..=1 << 50).contains(&n)),
        "scale" => float.is_some_and(|f| (1.0..=4.0).contains(&f)),
        "max_delay" => whole.is_some_and(|n| n <= 100),
        "framing" => value == "browser" || value == "reader",
        _ => unreachable!("{param}"),
    }
}

/// Which parameters each kind of URL reads (the rest it ignores).
fn reads(path: &str, param: &str) -> bool {
    let stream_limits = ["max_fps", "max_duration", "max_bytes", "framing"].contains(&param);
    if path.starts_with("/badge/static/") {
        param == "scale"
    } else if path.starts_with("/badge/") {
        stream_limits || param == "scale"
    } else if path.ends_with(".jpg") {
        param == "max_delay"
    } else {
        stream_limits
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_number_of_every_stream_kind_is_bounded_with_an_exact_status() {
    let _serial = common::serial();
    let server = Server::start(
        r#"{"state_file": null, "snapshot_max_delay_ms": 100, "camera_start_wait_ms": 100,
            "max_connections_per_ip": 0, "badges": {"b": {}}}"#,
    );
    let addr = server.addr;
    let paths = [
        "/online.png",
        "/online/r.png",
        "/badge/b.png",
        "/badge/b@2x.png",
        "/badge/static/a-b-red.png",
        "/camera/demo.mjpg",
        "/camera/demo.jpg",
    ];
    let params = ["max_fps", "max_duration", "max_bytes", "scale", "max_delay", "framing"];
    let values = [
        "",
        "0",
        "-1",
        "1",
        "2",
        "1.5",
        "4.01",
        "0.001",
        "1e-20",
        "1e-19",
        "1e-300",
        "1e308",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        "18446744073709551615",
        "18446744073709551616",
        "2592000",
        "2592001",
        "1125899906842624",
        "1125899906842625",
        "99999999999999999999999",
        "0x10",
        "%00",
        "abc",
        "browser",
        "reader",
        "100",
        "101",
    ];
    let mut checked = 0;
    for path in paths {
        for param in params {
            for value in values {
                let want = if reads(path, param) && !valid(param, value) { 400 } else { 200 };
                let raw = format!("GET {path}?{param}={value} HTTP/1.1\r\nHost: t\r\nUser-Agent: t\r\n\r\n");
                let (status, answer) = raw_answer(addr, raw.as_bytes()).await;
                assert_eq!(status, want, "{path}?{param}={value}: {answer}");
                if want == 400 {
                    assert!(answer.contains(param) || answer.contains("@Nx"), "{path}?{param}={value}: {answer}");
                }
                checked += 1;
            }
        }
    }
    // `@Nx` suffixes are numbers from the URL too.
    for (suffix, want) in [("@2x", 200), ("@1.5x", 200), ("@3.3x", 200), ("@1e-20x", 400), ("@NaNx", 400), ("@0x", 400)]
    {
        let raw = format!("GET /badge/b{suffix}.png?once HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(raw_status(addr, raw.as_bytes()).await, want, "{suffix}");
    }
    eprintln!("{checked} parameter values checked");
    // Nothing panicked, nothing is left counted.
    assert_eq!(metric(addr, r#"framecast_panics_total{where="handler"}"#).await, None);
    assert_eq!(metric(addr, r#"framecast_panics_total{where="connection"}"#).await, None);
    wait_for_viewers(addr, "r", 0, Duration::from_secs(5)).await;
    assert_eq!(api(addr, "/api/v1/channels").await["viewers"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_renders_are_bounded_in_size_memory_and_concurrency() {
    let _serial = common::serial();
    let server = Server::start(r#"{"state_file": null, "max_connections_per_ip": 0}"#);
    let addr = server.addr;
    // Far past the size limit: named, refused before anything is drawn.
    let wide = format!("/badge/static/{}-b-blue.png?scale=4", "‱".repeat(200));
    let (status, _, body) = get(addr, &wide).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("the limit is 4096 a side"), "{}", String::from_utf8_lossy(&body));
    // Warm up (fonts, templates, allocator), then measure.
    for i in 0..20 {
        get(addr, &format!("/badge/static/warm{i}-b-blue.png")).await;
    }
    let (before, _) = process_usage(server.pid()).unwrap();
    let styles = ["flat", "flat-square", "plastic", "for-the-badge", "counter", "sparkline", "online"];
    let scales = ["1", "1.5", "2", "3", "4", "2.7"];
    let exotic = ["‱", "漢", "ß", "𝔘", "ﷺ", "é", "W", "Ω", "🙂"];
    let mut statuses = std::collections::BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000usize {
        let (style, scale) = (styles[i % styles.len()], scales[(i / styles.len()) % scales.len()]);
        // 8 to 200 characters per field: some fit at every scale, some do not.
        let len = 8 + (i * 37) % 193;
        let text: String = (0..len).map(|k| exotic[(i + k) % exotic.len()]).collect();
        let path = format!("/badge/static/{i}{text}-{text}-blue.png?style={style}&scale={scale}");
        let path = path.replace(' ', "_");
        tasks.spawn(async move { get(addr, &path).await.0 });
        if tasks.len() >= 16 {
            *statuses.entry(tasks.join_next().await.unwrap().unwrap()).or_insert(0) += 1;
        }
    }
    while let Some(status) = tasks.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    assert!(statuses.keys().all(|s| [200, 400, 503].contains(s)), "{statuses:?}");
    assert!(statuses.get(&200).is_some_and(|n| *n >= 100), "too few drawn: {statuses:?}");
    assert!(statuses.get(&400).is_some_and(|n| *n >= 100), "too few refused as too large: {statuses:?}");
    // Freed render buffers go back to the system within about a second (the
    // allocator's decay, main.rs); what stays is the bounded caches. Just
    // after a fast (release) burst the freed pages may still be counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let growth = loop {
        let (after, _) = process_usage(server.pid()).unwrap();
        let growth = after.saturating_sub(before);
        if growth < 64 << 20 || Instant::now() > deadline {
            break growth;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("1,000 anonymous renders: statuses {statuses:?}, RSS +{:.1} MiB", growth as f64 / (1 << 20) as f64);
    assert!(growth < 64 << 20, "RSS grew {growth} bytes and stayed");
    assert_eq!(get(addr, "/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_render_pool_answers_503_with_retry_after() {
    let _serial = common::serial();
    // One slot and no queue: of many renders at once, some must be told to come back.
    let server = Server::start(
        r#"{"state_file": null, "max_connections_per_ip": 0, "max_concurrent_renders": 1, "render_queue_ms": 0}"#,
    );
    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let path = format!("/badge/static/{}-{i}-blue.png?scale=4&style=plastic", "W".repeat(60));
        tasks.spawn(async move { get(addr, &path).await });
    }
    let (mut ok, mut busy) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (status, head, _) = done.unwrap();
        match status {
            200 => ok += 1,
            503 => {
                assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
                busy += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    eprintln!("64 renders at once with 1 slot: {ok} drawn, {busy} told to retry");
    assert!(ok >= 1 && busy >= 1, "{ok} drawn, {busy} busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_answered_counted_and_leaks_nothing() {
    let _serial = common::serial();
    let server = Server::start(r#"{"state_file": null, "debug_endpoints": true, "camera_idle_stop_ms": 60000}"#);
    let addr = server.addr;
    // A viewer of the demo camera, whose producer will panic.
    let mut camera = Viewer::connect(addr, "/camera/demo.mjpg", "t").await;
    assert!(camera.read_parts(2, Duration::from_secs(10)).await);
    for _ in 0..20 {
        let (status, _, body) = get(addr, "/debug/panic").await;
        assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(get(addr, "/debug/panic/camera/demo").await.0, 200);
    // The producer is restarted; its viewer stays connected and gets frames again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(addr, r#"framecast_panics_total{where="producer"}"#).await != Some(1.0) {
        assert!(Instant::now() < deadline, "the producer's panic was not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = camera.received.len();
    assert!(camera.read_parts(seen + 3, Duration::from_secs(10)).await, "no frames after the producer restarted");
    assert_eq!(api(addr, "/api/v1/channels/camera/demo").await["viewers"], 1);
    assert_eq!(metric(addr, r#"framecast_panics_total{where="handler"}"#).await, Some(20.0));
    // Open connections: the camera viewer and the scrape itself, nothing leaked.
    assert_eq!(metric(addr, "framecast_connections_open").await, Some(2.0));
    drop(camera);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(addr, "framecast_connections_open").await != Some(1.0) {
        assert!(Instant::now() < deadline, "connections_open did not return to the scrape alone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Without debug_endpoints the hooks do not exist.
    let plain = Server::start(r#"{"state_file": null}"#);
    assert_eq!(get(plain.addr, "/debug/panic").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_whose_clients_left_are_durable_and_in_order_across_sigkill() {
    let _serial = common::serial();
    const TOKEN: &str = "test-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"api_tokens": ["{TOKEN}"], "database": {:?}, "history_len": 1000}}"#,
        dir.path().join("framecast.db")
    );
    let put = |value: u32, close: &'static str| {
        let body = format!(r#"{{"value": {value}}}"#);
        format!(
            "PUT /api/v1/badges/order HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: {close}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut server = Server::start(&config);
    let addr = server.addr;
    let mut acknowledged = Vec::new();
    for i in 1..=200u32 {
        if i % 4 == 0 {
            let (status, _, body) = request(addr, &put(i, "close")).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            acknowledged.push(f64::from(i));
        } else {
            // The whole request, then gone before the answer.
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(put(i, "keep-alive").as_bytes()).await.unwrap();
            drop(s);
        }
    }
    let history = |state: &serde_json::Value| -> Vec<f64> {
        state["state"]["history"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
    };
    let before = history(&api(addr, "/api/v1/badges/order").await);
    // SIGKILL: no chance to flush anything.
    let listen = server.addr;
    drop(server);
    server = Server::start_on(listen, &config);
    let after = history(&api(server.addr, "/api/v1/badges/order").await);
    // Everything shown before the kill is on disk, in the same order ...
    assert_eq!(&after[..before.len()], &before[..], "a published write was lost or reordered");
    // ... every acknowledged write is there, in acknowledgement order ...
    let mut rest = after.iter();
    for value in &acknowledged {
        assert!(rest.any(|v| v == value), "acknowledged write {value} missing or out of order in {after:?}");
    }
    // ... and nothing was applied twice.
    let mut unique = after.clone();
    unique.sort_by(f64::total_cmp);
    unique.dedup();
    assert_eq!(unique.len(), after.len(), "{after:?}");
    eprintln!("{} acknowledged, {} applied in all", acknowledged.len(), after.len());
}
