//! `cargo bench --bench fanout`: a value write reaching every viewer.
//! Starts the real server, holds N viewers of one badge over loopback TCP,
//! then writes new values and measures, per write, the time until each
//! viewer has received the new frame: p50, p99 and max over all
//! (viewer, write) pairs. Bounded: N viewers (default 1000, FANOUT_VIEWERS),
//! 20 writes, loopback only.

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use framecast::multipart::{PartReader, boundary_from_content_type};
use server::ServerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

const WRITES: usize = 20;
const TOKEN: &str = "bench-token-0123456789";

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

/// One viewer: HTTP/1.0, so the body is close-delimited (no chunking).
/// Records when each part arrives.
async fn viewer(addr: SocketAddr, arrivals: Arc<Mutex<Vec<Vec<Instant>>>>, id: usize) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /badge/bench.png HTTP/1.0\r\nUser-Agent: bench\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    let (mut reader, rest) = loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..i]).to_string();
            let ct = text
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()));
            let boundary = boundary_from_content_type(&ct.unwrap()).unwrap();
            break (PartReader::new(&boundary, 1 << 20), head[i + 4..].to_vec());
        }
    };
    let feed = |data: &[u8], reader: &mut PartReader, times: &mut Vec<Instant>| {
        reader.push(data);
        while reader.next_part().is_some() {
            times.push(Instant::now());
        }
    };
    let mut times = Vec::with_capacity(WRITES + 2);
    feed(&rest, &mut reader, &mut times);
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
        feed(&buf[..n], &mut reader, &mut times);
        if times.len() > WRITES {
            break;
        }
    }
    arrivals.lock().await[id] = times;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("FANOUT_VIEWERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    // No state file: this measures the push path, not the disk's fsync. All
    // viewers come from 127.0.0.1: no per-address cap.
    let json = format!(
        r#"{{"api_tokens": ["{TOKEN}"], "state_file": null, "resend_interval_ms": 600000, "min_frame_interval_ms": 1, "max_connections_per_ip": 0}}"#
    );
    let server = ServerProcess::start(&json);
    let addr = server.addr;

    put(addr, r#"{"label": "bench", "value": 0}"#).await;
    let arrivals = Arc::new(Mutex::new(vec![Vec::new(); n]));
    let tasks: Vec<_> = (0..n).map(|id| tokio::spawn(viewer(addr, arrivals.clone(), id))).collect();
    // Everyone is counted (so has its first frame) before the first write.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server::get_json(addr, "/api/v1/channels/badge/bench").await["viewers"] != n {
        assert!(Instant::now() < deadline, "{n} viewers never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut writes = Vec::with_capacity(WRITES);
    for i in 1..=WRITES {
        tokio::time::sleep(Duration::from_millis(150)).await;
        writes.push(Instant::now());
        put(addr, &format!(r#"{{"value": {i}}}"#)).await;
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t).await.expect("all viewers got every frame").unwrap();
    }
    let arrivals = arrivals.lock().await;
    let mut latencies: Vec<Duration> = Vec::with_capacity(n * WRITES);
    for times in arrivals.iter() {
        // times[0] is the first frame on connect; times[k] answers write k.
        for (k, write) in writes.iter().enumerate() {
            latencies.push(times[k + 1].saturating_duration_since(*write));
        }
    }
    latencies.sort();
    drop(server);
    println!("fan-out of a badge write to {n} viewers ({WRITES} writes, {} deliveries):", latencies.len());
    println!("  p50 {:>10.2?}", percentile(&latencies, 0.50));
    println!("  p99 {:>10.2?}", percentile(&latencies, 0.99));
    println!("  max {:>10.2?}", latencies.last().unwrap());
}
