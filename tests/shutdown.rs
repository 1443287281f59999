//! SIGTERM: every stream ends cleanly (HTTP's last chunk, then close; never
//! a closing multipart boundary), the process exits 0 within its bound, and
//! values written before it are there after a restart.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Viewer, request, wait_for_viewers};
use tokio::io::AsyncWriteExt;

const TOKEN: &str = "test-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_cleanly_and_keeps_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(r#"{{"api_tokens": ["{TOKEN}"], "database": {:?}}}"#, dir.path().join("framecast.db"));
    let mut server = Server::start(&config);
    let addr = server.addr;
    let body = r#"{"label": "release", "message": "v1.2", "color": "blue"}"#;
    let put = format!(
        "PUT /api/v1/badges/rel HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(request(addr, &put).await.0, 200);

    let mut viewers = vec![
        Viewer::connect(addr, "/online/bye.png", "framecast-test").await,
        Viewer::connect(addr, "/online/bye.png", "Mozilla/5.0 Chrome/156").await,
        Viewer::connect(addr, "/badge/rel.png", "framecast-test").await,
    ];
    wait_for_viewers(addr, "bye", 2, Duration::from_secs(5)).await;
    for v in &mut viewers {
        assert!(v.read_parts(1, Duration::from_secs(5)).await);
    }

    let start = Instant::now();
    // Streams end at once: docs/deployment.md's figure is milliseconds; allow a loaded machine 1 s.
    let status = server.terminate(Duration::from_secs(1)).expect("exits within 1 s");
    eprintln!("exited {status} after {:?}", start.elapsed());
    assert!(status.success(), "{status}");
    for v in &mut viewers {
        assert!(v.read_until_closed(Duration::from_secs(5)).await, "a stream was cut instead of ended");
        assert!(!v.raw.ends_with(b"--\r\n"), "a closing boundary was sent");
    }

    let restarted = Server::start(&config);
    let (status, _, body) = common::get(restarted.addr, "/api/v1/badges/rel").await;
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(state["state"]["message"], "v1.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let mut server =
        Server::start(r#"{"state_file": null, "shutdown_timeout_ms": 60000, "api_tokens": ["test-token-0123456789"]}"#);
    let addr = server.addr;
    // A write whose body never finishes keeps a request in flight, which a
    // graceful shutdown waits for (up to the minute configured).
    let mut stuck = tokio::net::TcpStream::connect(addr).await.unwrap();
    stuck
        .write_all(
            b"PUT /api/v1/badges/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer test-token-0123456789\r\n\
              Content-Length: 100\r\n\r\n{\"val",
        )
        .await
        .unwrap();
    wait_for_connections(addr, 2).await;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_millis(500)).is_none(), "exited while a request was in flight");
    let start = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(1)).expect("a second signal exits within 1 s");
    eprintln!("second SIGTERM: exited {status} after {:?}", start.elapsed());
    assert_eq!(status.code(), Some(130));
    drop(stuck);
}

/// Waits until the server counts `want` open connections (this scrape included).
async fn wait_for_connections(addr: std::net::SocketAddr, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::metric(addr, "framecast_connections_open").await != Some(want as f64) {
        assert!(Instant::now() < deadline, "never {want} open connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
