//! `cargo bench --bench soak`: server memory over a long churn. Viewers
//! arrive and leave continuously, in rounds, by FIN, by RST, and by stopping
//! reading and then closing. They watch a users-online room, a value badge
//! and a camera, beside 50 steady viewers. Prints RSS at the start, each
//! minute, at the peak and after the churn stops, plus the exact count at
//! the end. (Vanishing peers need a network namespace: `tests/churn.rs`.)
//! SOAK_SECONDS (default 600), SOAK_PER_ROUND (default 300).

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use framecast_load::process_usage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PATHS: [&str; 3] = ["/online/soak.png", "/badge/soak.png", "/camera/cam.mjpg"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn open(addr: SocketAddr, source: &str, path: &str) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    let mut s = socket.connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: soak\r\nUser-Agent: soak\r\n\r\n").as_bytes()).await.ok()?;
    let mut buf = [0u8; 4096];
    // The head and the first part, at least.
    tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.ok()?.ok()?;
    Some(s)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

#[tokio::main]
async fn main() {
    let seconds = env_or("SOAK_SECONDS", 600);
    let per_round = env_or("SOAK_PER_ROUND", 300) as usize;
    let config = r#"{ "max_connections_per_ip": 0, "state_file": null, "camera_idle_stop_ms": 1000, "badges": { "soak": {} },
        "cameras": { "cam": { "source": { "kind": "pattern", "width": 320, "height": 180, "fps": 10 } } } }"#;
    let server = server::ServerProcess::start(config);
    let addr = server.addr;
    // Steady viewers keep reading, as a healthy tab does.
    for i in 0..50 {
        let mut s = open(addr, "127.0.0.1", PATHS[i % 3]).await.expect("steady viewer");
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (start_rss, _) = process_usage(server.pid()).unwrap();
    println!("soak: {seconds} s of churn, {per_round} arrivals per round, 50 steady viewers");
    println!("  start: RSS {:.1} MiB", mib(start_rss));
    let began = Instant::now();
    let (mut peak, mut round, mut arrivals, mut next_report) = (start_rss, 0usize, 0u64, 60);
    while began.elapsed() < Duration::from_secs(seconds) {
        let mut batch = Vec::new();
        for i in 0..per_round {
            let source = format!("127.0.{}.{}", 10 + round % 100, 1 + i % 250);
            batch.extend(open(addr, &source, PATHS[i % 3]).await);
        }
        arrivals += batch.len() as u64;
        peak = peak.max(process_usage(server.pid()).unwrap().0);
        for (i, s) in batch.into_iter().enumerate() {
            match i % 3 {
                0 => drop(s),
                1 => {
                    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                    drop(s);
                }
                // Stops reading (the server's writes pile up), then closes later.
                _ => {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        drop(s);
                    });
                }
            }
        }
        round += 1;
        if began.elapsed() >= Duration::from_secs(next_report) {
            let (rss, cpu) = process_usage(server.pid()).unwrap();
            println!("  {:>4} s: RSS {:>5.1} MiB, {arrivals} arrivals so far, {cpu:.0} CPU-s", next_report, mib(rss));
            next_report += 60;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (end_rss, _) = process_usage(server.pid()).unwrap();
    let count = server::get_json(addr, "/api/v1/channels").await["viewers"].as_u64().unwrap_or(0);
    println!("  peak: RSS {:.1} MiB", mib(peak));
    println!(
        "  after: RSS {:.1} MiB ({:+.1} MiB vs start), {arrivals} arrivals in all; viewers now {count} (exactly the 50 steady: {})",
        mib(end_rss),
        mib(end_rss) - mib(start_rss),
        count == 50
    );
}
