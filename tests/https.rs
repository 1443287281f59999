//! HTTPS built in: curl negotiates HTTP/2 and HTTP/1.1 by ALPN, h2c with
//! prior knowledge works on the plain port, the redirect listener sends
//! browsers to HTTPS. Certificates reload on SIGHUP and when their files
//! change, a bad new pair is refused while the old one keeps serving, and
//! open streams go on through a reload. A client that never finishes its
//! handshake is closed after the handshake timeout.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::{Pair, connect, served_cert};
use common::{Server, metric};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tls_config(pair: &Pair, extra: &str) -> String {
    format!(
        r#"{{"resend_interval_ms": 200, "tls": {{"listen": "127.0.0.1:0", "cert_file": {:?}, "key_file": {:?}, "reload_check_ms": 200 {extra}}}}}"#,
        pair.cert, pair.key
    )
}

/// curl's `%{http_version} %{http_code} %{redirect_url}` for `url`.
fn curl(args: &[&str], url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", "-w", "%{http_version} %{http_code} %{redirect_url}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn https_url(addr: SocketAddr, path: &str) -> (String, String) {
    (format!("localhost:{}:127.0.0.1", addr.port()), format!("https://localhost:{}{path}", addr.port()))
}

#[test]
fn curl_negotiates_h2_and_http1_over_tls_and_h2c_on_the_plain_port() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::new(dir.path(), "a");
    let redirect = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let server = Server::start(&tls_config(&pair, &format!(r#", "http_redirect_listen": "{redirect}""#)));
    let https = server.https.unwrap();
    let (resolve, url) = https_url(https, "/metrics");
    let cacert = pair.cert.to_str().unwrap();
    assert_eq!(curl(&["--http2", "--cacert", cacert, "--resolve", &resolve], &url), "2 200");
    assert_eq!(curl(&["--http1.1", "--cacert", cacert, "--resolve", &resolve], &url), "1.1 200");
    assert_eq!(curl(&["--http2-prior-knowledge"], &server.url("/metrics")), "2 200");
    assert_eq!(curl(&[], &server.url("/metrics")), "1.1 200");
    // The redirect listener: same host and path, the HTTPS port.
    let got = curl(&["-H", "Host: img.example.org"], &format!("http://{redirect}/online/x.png?max_fps=2"));
    assert_eq!(got, format!("1.1 308 https://img.example.org:{}/online/x.png?max_fps=2", https.port()));

    // A live image over HTTP/2 with TLS: parts keep coming.
    let (_, live) = https_url(https, "/online/tls.png");
    let out = Command::new("curl")
        .args(["-sN", "--http2", "--max-time", "2", "--cacert", cacert, "--resolve", &resolve, &live])
        .output()
        .unwrap();
    let body = out.stdout;
    let parts = body.windows(b"Content-Type: image/png".len()).filter(|w| w == b"Content-Type: image/png").count();
    assert!(parts >= 3, "{parts} parts in 2 s over h2 with a 200 ms resend");
}

/// Waits until the server presents `want`'s certificate to new connections.
async fn wait_served(https: SocketAddr, want: &Pair, all: &[&Pair], limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if served_cert(https, all).await == Some(want.der()) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "the new certificate was not served within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_on_sighup_and_on_change_and_a_bad_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let live = Pair::new(dir.path(), "live");
    let (a, b, c) = (Pair::new(dir.path(), "a"), Pair::new(dir.path(), "b"), Pair::new(dir.path(), "c"));
    a.install_as(&live);
    // Checks for changes every hour: only SIGHUP reloads in the first part.
    let server =
        Server::start(&tls_config(&live, "").replace(r#""reload_check_ms": 200"#, r#""reload_check_ms": 3600000"#));
    let https = server.https.unwrap();
    let all = [&a, &b, &c];
    assert_eq!(served_cert(https, &all).await, Some(a.der()));

    // An open stream over TLS, started with certificate a.
    let mut stream = connect(https, &a.cert, &[b"http/1.1"]).await.unwrap();
    stream.write_all(b"GET /online/reload.png HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    let parts = |seen: &[u8]| seen.windows(10).filter(|w| w == b"image/png\r").count();
    while parts(&seen) < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }

    b.install_as(&live);
    server.signal("HUP");
    let took = wait_served(https, &b, &all, Duration::from_secs(5)).await;
    eprintln!("SIGHUP: new connections got the new certificate within {took:?}");

    // The stream opened before goes on.
    let before = parts(&seen);
    while parts(&seen) < before + 3 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the open stream ended at the reload");
        seen.extend_from_slice(&buf[..n]);
    }

    // A bad pair (c's certificate, b's key) is refused; b keeps serving.
    std::fs::copy(&c.cert, &live.cert).unwrap();
    server.signal("HUP");
    let refused = "framecast_tls_reloads_total{reason=\"refused\"}";
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(server.addr, refused).await != Some(1.0) {
        assert!(Instant::now() < deadline, "the bad pair was not refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served_cert(https, &all).await, Some(b.der()), "the old pair keeps serving");
    drop(server);

    // File changes alone reload, within the check interval.
    b.install_as(&live);
    let server = Server::start(&tls_config(&live, ""));
    let https = server.https.unwrap();
    assert_eq!(served_cert(https, &all).await, Some(b.der()));
    c.install_as(&live);
    let took = wait_served(https, &c, &all, Duration::from_secs(5)).await;
    eprintln!("file change: the new certificate was served within {took:?} (checks every 200 ms)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_handshake_is_closed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::new(dir.path(), "a");
    let server = Server::start(&tls_config(&pair, r#", "handshake_timeout_ms": 500"#));
    let https = server.https.unwrap();
    let mut silent = tokio::net::TcpStream::connect(https).await.unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await.expect("closed").unwrap_or(0);
    let took = start.elapsed();
    assert_eq!(n, 0, "closed without an answer");
    assert!(took >= Duration::from_millis(450) && took < Duration::from_millis(2500), "closed after {took:?}");
    assert_eq!(metric(server.addr, "framecast_tls_handshake_failures_total{reason=\"timeout\"}").await, Some(1.0));
    // A real client is still served.
    assert!(connect(https, &pair.cert, &[b"h2"]).await.is_ok());
}

#[test]
fn a_bad_certificate_pair_stops_startup_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Pair::new(dir.path(), "a"), Pair::new(dir.path(), "b"));
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"database": null, "tls": {{"listen": "127.0.0.1:0", "cert_file": {:?}, "key_file": {:?}}}}}"#,
            a.cert, b.key
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not belong to"), "{err}");
}

/// A TLS viewer of `room` held after its response head.
async fn tls_viewer(
    https: SocketAddr,
    pair: &Pair,
    room: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut stream = connect(https, &pair.cert, &[b"http/1.1"]).await.unwrap();
    stream.write_all(format!("GET /online/{room}.png HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
    let head = framecast_load::read_head(&mut stream).await.expect("a response head");
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// The server reads a TLS connection only when its socket has bytes
/// (src/server/tls_reads.rs) and keeps no receive buffer between them: a
/// viewer that leaves, by close_notify or by a bare FIN, must still be seen
/// at once, and a connection's requests must still all be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_viewers_that_leave_are_uncounted_at_once_and_pipelined_requests_are_all_answered() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::new(dir.path(), "a");
    let server = Server::start(&tls_config(&pair, ""));
    let https = server.https.unwrap();
    // close_notify, then FIN (tokio-rustls' shutdown).
    let mut polite = tls_viewer(https, &pair, "leave").await;
    common::wait_for_viewers(server.addr, "leave", 1, Duration::from_secs(5)).await;
    polite.shutdown().await.unwrap();
    let took = common::wait_for_viewers(server.addr, "leave", 0, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(1), "a close_notify took {took:?} to uncount");
    // A bare FIN, no close_notify (a client that just closes its socket).
    let abrupt = tls_viewer(https, &pair, "leave").await;
    common::wait_for_viewers(server.addr, "leave", 1, Duration::from_secs(5)).await;
    let (mut tcp, _) = abrupt.into_inner();
    tcp.shutdown().await.unwrap();
    let took = common::wait_for_viewers(server.addr, "leave", 0, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(1), "a FIN took {took:?} to uncount");

    // Two requests in one write, then a third after the answers: all answered.
    let mut stream = connect(https, &pair.cert, &[b"http/1.1"]).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let count = |got: &[u8]| got.windows(12).filter(|w| w == b"HTTP/1.1 200").count();
    while count(&got) < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed after {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await.unwrap().ok();
    assert_eq!(count(&rest), 1, "{}", String::from_utf8_lossy(&rest));
}

/// Session tickets: a viewer that comes back resumes (no certificate, no
/// signature), including after many other clients came and went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_tls_client_resumes_its_session() {
    use rustls::HandshakeKind;
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::new(dir.path(), "a");
    let server = Server::start(&tls_config(&pair, ""));
    let https = server.https.unwrap();
    let returning = common::tls::connector(&pair.cert, &[b"http/1.1"], true);
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut kinds = Vec::new();
    for round in 0..2 {
        let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
        let mut stream = returning.connect(name.clone(), tcp).await.unwrap();
        // Tickets arrive after the handshake: read the answer to take them.
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
        kinds.push(stream.get_ref().1.handshake_kind());
        if round == 0 {
            // 300 other clients in between: more than a session cache of 256 would keep.
            for _ in 0..300 {
                drop(connect(https, &pair.cert, &[b"http/1.1"]).await.unwrap());
            }
        }
    }
    assert_eq!(kinds, [Some(HandshakeKind::Full), Some(HandshakeKind::Resumed)]);
}
