//! `cargo bench --bench throughput`: a 720p 30 fps camera (~50 KB JPEGs)
//! relayed by framecast from an MJPEG upstream to 1,000 viewers, against the
//! ceiling: a minimal writer process that sends the same bytes at the same
//! pace to the same number of sockets with no HTTP (a latest-frame slot and
//! `write_all` per socket). Both are measured in the same run as delivered
//! bytes per server CPU-second; the ratio is the figure (goal >= 0.7).
//!
//! Readers are identical for both (read and count, no parsing) and share the
//! 2 cores with the server, so absolute rates are the machine's; the ratio
//! is what travels. THROUGHPUT_VIEWERS (default 1000), THROUGHPUT_SECONDS (10).

#[path = "support/frames.rs"]
mod frames;
#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use framecast_load::process_usage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const FPS: u64 = 30;
const WARM_UP: Duration = Duration::from_secs(3);
const CEILING_ENV: &str = "FRAMECAST_CEILING_WRITER";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Publishes `frames` into a latest-frame slot at 30 fps, cycling.
fn ticker(frames: Vec<Bytes>) -> watch::Receiver<Bytes> {
    let (tx, rx) = watch::channel(frames[0].clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
        for frame in frames.iter().cycle() {
            tick.tick().await;
            tx.send_replace(frame.clone());
        }
    });
    rx
}

async fn read_request(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

/// The upstream camera framecast relays: parts with Content-Length at 30 fps.
async fn upstream(frames: Vec<Bytes>) -> SocketAddr {
    let parts: Vec<Bytes> = frames
        .iter()
        .map(|f| {
            let mut p = format!("--up\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", f.len()).into_bytes();
            p.extend_from_slice(f);
            p.extend_from_slice(b"\r\n");
            Bytes::from(p)
        })
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let latest = ticker(parts);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut latest = latest.clone();
            tokio::spawn(async move {
                read_request(&mut s).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=up\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                while latest.changed().await.is_ok() {
                    let part = latest.borrow_and_update().clone();
                    if s.write_all(&part).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The ceiling, run as its own process: no HTTP, no framing, the same bytes.
async fn ceiling_writer() {
    let frames: Vec<Bytes> = frames::camera_jpegs(FPS).into_iter().map(Bytes::from).collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    let latest = ticker(frames);
    while let Ok((mut s, _)) = listener.accept().await {
        let _ = s.set_nodelay(true);
        let mut latest = latest.clone();
        tokio::spawn(async move {
            read_request(&mut s).await;
            loop {
                let frame = latest.borrow_and_update().clone();
                if s.write_all(&frame).await.is_err() || latest.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// `n` readers on `path`: each sends a GET and counts every byte it reads.
async fn readers(addr: SocketAddr, path: &str, n: usize) -> Arc<AtomicU64> {
    let bytes = Arc::new(AtomicU64::new(0));
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: throughput-bench\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let bytes = bytes.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                bytes.fetch_add(n as u64, Relaxed);
            }
        });
    }
    bytes
}

struct Measured {
    bytes_per_cpu_s: f64,
    gb_per_s: f64,
    cpu_cores: f64,
}

/// Delivered bytes and the server's CPU over `seconds`.
async fn measure(pid: u32, bytes: &AtomicU64, seconds: u64) -> Measured {
    let (b0, (_, c0)) = (bytes.load(Relaxed), process_usage(pid).unwrap());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (b1, (_, c1)) = (bytes.load(Relaxed), process_usage(pid).unwrap());
    let delivered = (b1 - b0) as f64;
    Measured {
        bytes_per_cpu_s: delivered / (c1 - c0).max(0.01),
        gb_per_s: delivered / seconds as f64 / 1e9,
        cpu_cores: (c1 - c0) / seconds as f64,
    }
}

#[tokio::main]
async fn main() {
    if std::env::var_os(CEILING_ENV).is_some() {
        return ceiling_writer().await;
    }
    let viewers = env_or("THROUGHPUT_VIEWERS", 1000) as usize;
    let seconds = env_or("THROUGHPUT_SECONDS", 10);
    let frames: Vec<Bytes> = frames::camera_jpegs(FPS).into_iter().map(Bytes::from).collect();
    let mean_frame = frames.iter().map(|f| f.len()).sum::<usize>() / frames.len();
    println!("{viewers} viewers of a 1280x720 {FPS} fps stream, frames ~{} KB:", mean_frame / 1000);

    // framecast relaying the upstream camera.
    let up = upstream(frames).await;
    let config = format!(
        r#"{{ "max_connections_per_ip": 0, "cameras": {{ "relay": {{ "source": {{ "kind": "mjpeg", "url": "http://{up}/" }} }} }} }}"#
    );
    let framecast = server::ServerProcess::start(&config);
    let bytes = readers(framecast.addr, "/camera/relay.mjpg", viewers).await;
    tokio::time::sleep(WARM_UP).await;
    let before = server::get_json(framecast.addr, "/api/v1/channels/camera/relay").await;
    let fc = measure(framecast.pid(), &bytes, seconds).await;
    let after = server::get_json(framecast.addr, "/api/v1/channels/camera/relay").await;
    let delta = |key: &str| after[key].as_u64().unwrap_or(0).saturating_sub(before[key].as_u64().unwrap_or(0));
    let (parts, skipped, published) = (delta("parts_sent"), delta("frames_skipped"), delta("frames_rendered"));
    drop(framecast);

    // The ceiling: this binary again, as a bare writer.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CEILING_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let ceiling_addr: SocketAddr = line.trim().parse().unwrap();
    let bytes = readers(ceiling_addr, "/", viewers).await;
    tokio::time::sleep(WARM_UP).await;
    let ceiling = measure(child.id(), &bytes, seconds).await;
    let _ = child.kill();
    let _ = child.wait();

    let gib = |m: &Measured| m.bytes_per_cpu_s / (1u64 << 30) as f64;
    println!(
        "  framecast relay : {:>5.2} GB/s delivered, {:>4.2} cores, {:>5.2} GiB per CPU-second ({:.2} CPU-s per GiB)",
        fc.gb_per_s,
        fc.cpu_cores,
        gib(&fc),
        1.0 / gib(&fc)
    );
    println!(
        "  minimal writer  : {:>5.2} GB/s delivered, {:>4.2} cores, {:>5.2} GiB per CPU-second",
        ceiling.gb_per_s,
        ceiling.cpu_cores,
        gib(&ceiling)
    );
    println!(
        "  ratio to the ceiling (bytes per CPU-second): {:.2}   (goal >= 0.7)",
        fc.bytes_per_cpu_s / ceiling.bytes_per_cpu_s
    );
    let offered = published * viewers as u64;
    println!(
        "  framecast over {seconds} s: {published} frames published, {parts} parts sent of {offered} offered, {skipped} skipped by slow viewers ({:.0} %)",
        skipped as f64 / offered.max(1) as f64 * 100.0
    );
}
