//! `cargo bench --bench writes`: acknowledged badge writes per second and
//! write latency (p50/p99) over HTTP, with 1, 8 and 64 concurrent writers,
//! the database on disk (SQLite, WAL, synchronous=FULL: every answer follows
//! a durable commit). Each writer holds one keep-alive connection and sends
//! its next `PUT` when the last one is answered; writers spread over as many
//! badges as there are writers (`WRITES_BADGES=1` puts them all on one).
//! Bounded: 5 s per run (WRITES_SECONDS), loopback only.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use server::ServerProcess;
use tokio::time::Instant;

const TOKEN: &str = "bench-token-0123456789";

async fn writer(addr: std::net::SocketAddr, badge: String, until: Instant) -> Vec<Duration> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let body = format!(r#"{{"value": {n}}}"#);
        let request = hyper::Request::put(format!("/api/v1/badges/{badge}"))
            .header("host", "bench")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let start = Instant::now();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let _ = response.into_body().collect().await.unwrap();
        assert_eq!(status, 200, "write {n} of {badge}");
        latencies.push(start.elapsed());
    }
    latencies
}

fn main() {
    let seconds: u64 = std::env::var("WRITES_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let one_badge = std::env::var("WRITES_BADGES").is_ok_and(|v| v == "1");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // On the disk, not a tmpfs: fsync must cost what it costs.
    std::fs::create_dir_all("target").unwrap();
    println!("writes over HTTP, database on disk, {seconds} s per run");
    println!("{:>8} {:>12} {:>10} {:>10} {:>10}", "writers", "writes/s", "p50 ms", "p99 ms", "max ms");
    for writers in [1usize, 8, 64] {
        let dir = tempfile::tempdir_in("target").unwrap();
        let config = serde_json::json!({
            "api_tokens": [TOKEN], "database": dir.path().join("bench.db"), "state_file": null,
            "max_connections_per_ip": 0,
        });
        let server = ServerProcess::start(&config.to_string());
        let addr = server.addr;
        let (count, mut all) = runtime.block_on(async move {
            let until = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..writers)
                .map(|w| {
                    let badge = if one_badge { "b0".to_string() } else { format!("b{w}") };
                    tokio::spawn(writer(addr, badge, until))
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            (all.len(), all)
        });
        all.sort();
        let at = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
        println!(
            "{writers:>8} {:>12.0} {:>10.2} {:>10.2} {:>10.2}",
            count as f64 / seconds as f64,
            at(0.5),
            at(0.99),
            at(1.0)
        );
        drop(server);
    }
}
