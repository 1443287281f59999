//! `cargo bench --bench tls`: what serving over TLS costs, in one run, side
//! by side: plain HTTP/1.1, framecast's own TLS with HTTP/1.1 and with
//! HTTP/2 (100 streams per connection), and nginx terminating TLS with
//! HTTP/2 in front of framecast (plain HTTP/1.1 upstream). Per mode, a
//! fresh server: RSS per badge viewer (framecast plus nginx), the time one
//! badge write takes to reach every viewer (p50/p99 over 20 writes), and
//! CPU-seconds (framecast plus nginx) per GiB of camera stream delivered.
//! Bounded: BENCH_VIEWERS (default 1000) badge viewers, 50 camera viewers
//! for 5 s, loopback only.

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use framecast::multipart::{PartReader, boundary_from_content_type};
use framecast_load::process_usage;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use server::ServerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const TOKEN: &str = "bench-token-0123456789";
const WRITES: usize = 20;
const CAMERA_VIEWERS: usize = 50;
const CAMERA_SECONDS: u64 = 5;
const STREAMS_PER_CONNECTION: usize = 100;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    TlsH1,
    TlsH2,
    NginxH2,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Plain => "plain HTTP/1.1",
            Mode::TlsH1 => "framecast TLS, HTTP/1.1",
            Mode::TlsH2 => "framecast TLS, HTTP/2",
            Mode::NginxH2 => "nginx TLS HTTP/2 -> framecast",
        }
    }
    fn h2(self) -> bool {
        matches!(self, Mode::TlsH2 | Mode::NginxH2)
    }
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx (one process) with TLS and HTTP/2 in front of `upstream`, from
/// the documented deploy/nginx.conf.
fn start_nginx(dir: &Path, upstream: SocketAddr, cert: &Path, key: &Path) -> (Nginx, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let documented = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf")).unwrap();
    let site = documented.replace("server 127.0.0.1:8080;", &format!("server {upstream};")).replace(
        "listen 80;",
        &format!(
            "listen {listen} ssl http2;\n    http2_max_concurrent_streams 256;\n    ssl_certificate {};\n    ssl_certificate_key {};",
            cert.display(),
            key.display()
        ),
    );
    std::fs::write(dir.join("framecast.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         worker_rlimit_nofile 20000;\nevents {{ worker_connections 8192; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/framecast.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(std::time::Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Nginx(child), listen)
}

/// The client side of one mode: where to connect and how.
struct Client {
    mode: Mode,
    target: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
}

type Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

impl Client {
    fn new(mode: Mode, target: SocketAddr, ca: &Path) -> Client {
        let tls = (mode != Mode::Plain).then(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
            let mut config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            config.alpn_protocols = vec![if mode.h2() { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
            tokio_rustls::TlsConnector::from(Arc::new(config))
        });
        Client { mode, target, tls }
    }

    async fn tcp(&self, i: usize) -> TcpStream {
        // Sources spread over 127.0.0.x: ephemeral ports never run out.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("127.0.0.{}:0", 1 + i % 200).parse().unwrap()).unwrap();
        socket.connect(self.target).await.unwrap()
    }

    /// An HTTP/2 connection (TLS) for many streams.
    async fn h2(&self, i: usize) -> Sender {
        let tls = self.tls.as_ref().unwrap().connect(ServerName::try_from("localhost").unwrap(), self.tcp(i).await);
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(6 << 20)
            .initial_connection_window_size(15 << 20)
            .handshake(TokioIo::new(tls.await.unwrap()))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender
    }

    /// One HTTP/1.1 request on its own connection; the response.
    async fn h1(&self, i: usize, path: &str) -> hyper::Response<Incoming> {
        let tcp = self.tcp(i).await;
        let req = hyper::Request::get(path).header("host", "localhost").body(Empty::<Bytes>::new()).unwrap();
        macro_rules! send {
            ($io:expr) => {{
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new($io)).await.unwrap();
                tokio::spawn(conn);
                sender.send_request(req).await.unwrap()
            }};
        }
        match &self.tls {
            None => send!(tcp),
            Some(tls) => send!(tls.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()),
        }
    }

    /// Opens `n` live images of `path`; each task reads its stream and
    /// calls `on_part(viewer, bytes)` per part.
    async fn viewers<F>(&self, n: usize, path: &str, on_part: F) -> Vec<tokio::task::JoinHandle<()>>
    where
        F: Fn(usize, usize) + Send + Sync + 'static,
    {
        let on_part = Arc::new(on_part);
        let mut tasks = Vec::new();
        let mut h2: Option<Sender> = None;
        for i in 0..n {
            let response = if self.mode.h2() {
                if i % STREAMS_PER_CONNECTION == 0 {
                    h2 = Some(self.h2(i / STREAMS_PER_CONNECTION).await);
                }
                let sender = h2.as_mut().unwrap();
                sender.ready().await.unwrap();
                let uri = format!("https://localhost{path}");
                let req = hyper::Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
                sender.send_request(req).await.unwrap()
            } else {
                self.h1(i, path).await
            };
            assert_eq!(response.status(), 200);
            let ct = response.headers()["content-type"].to_str().unwrap().to_string();
            let mut reader = PartReader::new(&boundary_from_content_type(&ct).unwrap(), 16 << 20);
            let mut body = response.into_body();
            let on_part = on_part.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else { continue };
                    reader.push(&data);
                    while let Some(part) = reader.next_part() {
                        on_part(i, part.body.len());
                    }
                }
            }));
        }
        tasks
    }
}

async fn put(addr: SocketAddr, body: &str) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "PUT /api/v1/badges/bench HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert!(out.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
}

fn usage(pids: &[u32]) -> (u64, f64) {
    pids.iter().filter_map(|&pid| process_usage(pid)).fold((0, 0.0), |(r, c), (rss, cpu)| (r + rss, c + cpu))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Row {
    kib_per_viewer: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_gib: f64,
}

async fn run(mode: Mode, n: usize, dir: &Path, cert: &Path, key: &Path) -> Row {
    let tls = format!(
        r#", "tls": {{"listen": "127.0.0.1:0", "cert_file": {:?}, "key_file": {:?}}}"#,
        cert.display().to_string(),
        key.display().to_string()
    );
    let json = format!(
        r#"{{"api_tokens": ["{TOKEN}"], "resend_interval_ms": 600000, "min_frame_interval_ms": 1,
            "max_connections_per_ip": 0, "database": null, "state_file": null,
            "cameras": {{"cam": {{"source": {{"kind": "pattern", "width": 640, "height": 360, "fps": 10}}}}}}
            {}}}"#,
        if mode == Mode::TlsH1 || mode == Mode::TlsH2 { tls.as_str() } else { "" }
    );
    let server = ServerProcess::start(&json);
    let (nginx, target) = match mode {
        Mode::Plain => (None, server.addr),
        Mode::TlsH1 | Mode::TlsH2 => (None, server.https.unwrap()),
        Mode::NginxH2 => {
            let (nginx, addr) = start_nginx(dir, server.addr, cert, key);
            (Some(nginx), addr)
        }
    };
    let mut pids = vec![server.pid()];
    if let Some(nginx) = &nginx {
        pids.push(nginx.0.id());
    }
    let client = Client::new(mode, target, cert);
    put(server.addr, r#"{"label": "bench", "value": 0}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_before, _) = usage(&pids);

    // Badge viewers: arrivals per viewer, timed.
    let arrivals: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(vec![Vec::new(); n]));
    let first = Arc::new(AtomicUsize::new(0));
    let (a, f) = (arrivals.clone(), first.clone());
    let tasks = client
        .viewers(n, "/badge/bench.png", move |i, _| {
            let now = Instant::now();
            let mut all = a.lock().unwrap();
            if all[i].is_empty() {
                f.fetch_add(1, Relaxed);
            }
            all[i].push(now);
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.load(Relaxed) < n {
        assert!(Instant::now() < deadline, "{}: viewers never got their first frame", mode.label());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_after, _) = usage(&pids);
    let kib_per_viewer = (rss_after.saturating_sub(rss_before)) as f64 / 1024.0 / n as f64;

    let mut writes = Vec::new();
    for i in 1..=WRITES {
        tokio::time::sleep(Duration::from_millis(150)).await;
        writes.push(Instant::now());
        put(server.addr, &format!(r#"{{"value": {i}}}"#)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().iter().any(|t| t.len() <= WRITES) {
        assert!(Instant::now() < deadline, "{}: not every write reached every viewer", mode.label());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies = Vec::with_capacity(n * WRITES);
    for times in arrivals.lock().unwrap().iter() {
        for (k, write) in writes.iter().enumerate() {
            latencies.push(times[k + 1].saturating_duration_since(*write));
        }
    }
    latencies.sort();
    for task in tasks {
        task.abort();
    }

    // Camera: CPU per GiB delivered.
    let bytes = Arc::new(AtomicU64::new(0));
    let b = bytes.clone();
    let tasks = client.viewers(CAMERA_VIEWERS, "/camera/cam.mjpg", move |_, len| {
        b.fetch_add(len as u64, Relaxed);
    });
    let tasks = tasks.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, cpu_start) = usage(&pids);
    let bytes_start = bytes.load(Relaxed);
    tokio::time::sleep(Duration::from_secs(CAMERA_SECONDS)).await;
    let (_, cpu_end) = usage(&pids);
    let gib = (bytes.load(Relaxed) - bytes_start) as f64 / (1u64 << 30) as f64;
    for task in tasks {
        task.abort();
    }
    drop(nginx);
    drop(server);
    Row {
        kib_per_viewer,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        cpu_per_gib: (cpu_end - cpu_start) / gib,
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_VIEWERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    rlimit::increase_nofile_limit(20_000).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    println!(
        "TLS cost, {n} badge viewers (HTTP/2: {STREAMS_PER_CONNECTION} streams per connection), {WRITES} writes; camera 640x360 at 10 fps to {CAMERA_VIEWERS} viewers for {CAMERA_SECONDS} s"
    );
    println!("{:<32} {:>14} {:>10} {:>10} {:>14}", "mode", "KiB/viewer", "p50", "p99", "CPU-s/GiB");
    for mode in [Mode::Plain, Mode::TlsH1, Mode::TlsH2, Mode::NginxH2] {
        let row = run(mode, n, dir.path(), &cert, &key).await;
        println!(
            "{:<32} {:>14.1} {:>10.2?} {:>10.2?} {:>14.2}",
            mode.label(),
            row.kib_per_viewer,
            row.p50,
            row.p99,
            row.cpu_per_gib
        );
    }
}
