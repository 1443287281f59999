//! `cargo bench --bench polled`: what polled sources cost the server. 1,000
//! badges, each polling a local upstream every second (`always_on`), for
//! 10 s: the server's CPU share, its RSS, and the polls the upstream saw.
//! The upstream answers a changing number every few polls, so some polls
//! also write (store, history) and push. Loopback only.

#[path = "support/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use framecast_load::process_usage;
use server::ServerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BADGES: usize = 1000;
const SECONDS: u64 = 10;

#[tokio::main]
async fn main() {
    rlimit::increase_nofile_limit(20_000).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            let n = counter.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                // A value that changes every ~5,000 polls (about every 5 s).
                let body = format!(r#"{{"count": {}}}"#, n / 5000);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    let badges: Vec<String> = (0..BADGES)
        .map(|i| {
            format!(
                r#""b{i}": {{"source": {{"kind": "json", "url": "http://{upstream}/v{i}", "query": "$.count",
                    "interval_ms": 1000, "always_on": true}}}}"#
            )
        })
        .collect();
    let json =
        format!(r#"{{"allowed_fetch_hosts": ["{upstream}"], "max_badges": 2000, "badges": {{{}}}}}"#, badges.join(","));
    let server = ServerProcess::start(&json);
    // Let the pollers start and spread out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, cpu_start) = process_usage(server.pid()).unwrap();
    let hits_start = hits.load(Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    let (rss, cpu_end) = process_usage(server.pid()).unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let polls = hits.load(Relaxed) - hits_start;
    println!("{BADGES} polled badges, 1 s interval, {SECONDS} s:");
    println!("  polls answered         {:>10.0}/s (expected {BADGES}/s)", polls as f64 / elapsed);
    println!("  server CPU             {:>10.1} % of one core", 100.0 * (cpu_end - cpu_start) / elapsed);
    println!("  server CPU per poll    {:>10.1} µs", 1e6 * (cpu_end - cpu_start) / polls.max(1) as f64);
    println!("  server RSS             {:>10.1} MiB", rss as f64 / (1 << 20) as f64);
}
