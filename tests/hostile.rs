//! What anyone on the internet can send: garbage, huge or broken requests,
//! traversal attempts, absurd queries, and a slowloris crowd. Each gets the
//! right 4xx (a panic would show as no status at all), none leaves a viewer
//! behind, and honest viewers keep getting in.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Viewer, api, get, wait_for_viewers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Sends raw bytes, returns the status code of the answer (0: none came).
async fn raw_status(addr: std::net::SocketAddr, bytes: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // The status line is enough; keep-alive answers leave the socket open.
    while !out.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_the_right_4xx() {
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
    const CROWD: usize = 2000;
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
    wait_for_viewers(addr, "honest", 20, Duration::from_secs(5)).await;
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
