//! What the camera benches share: an upstream MJPEG camera at 30 fps (a
//! latest-frame slot the upstream and the ceiling writer both read),
//! readers that count bytes, and the server's CPU over a window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use framecast_load::process_usage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const FPS: u64 = 30;

/// Publishes `frames` into a latest-frame slot at 30 fps, cycling.
pub fn ticker(frames: Vec<Bytes>) -> watch::Receiver<Bytes> {
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

/// The upstream camera framecast relays: parts with Content-Length at 30 fps.
pub async fn upstream(frames: Vec<Bytes>) -> SocketAddr {
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
                framecast_load::read_head(&mut s).await;
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

/// `n` readers on `path`: each sends a GET and counts every byte it reads.
pub async fn readers(addr: SocketAddr, path: &str, n: usize) -> Arc<AtomicU64> {
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

pub struct Measured {
    pub bytes_per_cpu_s: f64,
    pub gb_per_s: f64,
    pub cpu_cores: f64,
}

/// Delivered bytes and the server's CPU over `seconds`.
pub async fn measure(pid: u32, bytes: &AtomicU64, seconds: u64) -> Measured {
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
