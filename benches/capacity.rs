//! `cargo bench --bench capacity`: what one framecast process holds.
//! Starts the real server, then with the load library (loopback only):
//! 1. holds 1,000 and then ~19,000 viewers: server RSS per viewer, and CPU
//!    while they idle (the default 10 s resend still runs);
//! 2. one change (a viewer joins) reaching every viewer: p50/p99/max at each
//!    size;
//! 3. 10,000 viewers connecting in a burst to a fresh room: frames rendered
//!    and parts sent;
//! 4. connections accepted per second with and without a slowloris of 5,000
//!    half-sent requests held open (ratio in one run).
//!
//! 5. the ceiling for 2.: a minimal writer process (no HTTP framework: a
//!    fixed response head, then one ~2 KB part to every socket per trigger,
//!    a latest-part slot and `write_all` per socket) held by the same load
//!    generator at the large size: its p50/p99, and framecast's as a ratio.
//!
//! Sizes: CAPACITY_VIEWERS (default 19000) bounds the large run; the machine's
//! limit is 20,000 open files per process. CAPACITY_ONLY=ramp runs 3. alone.

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use framecast_load::{Load, LoadConfig, percentiles, process_usage};
use server::ServerProcess;
use tokio::io::AsyncWriteExt;

fn config(target: SocketAddr, room: &str, viewers: usize, connect_rate: u32) -> LoadConfig {
    LoadConfig {
        target,
        path: format!("/online/{room}.png"),
        viewers,
        sources: 100,
        connect_rate,
        user_agent: "framecast-capacity".into(),
    }
}

/// Holds `n` viewers; prints memory, idle CPU and fan-out (p50, p99, max).
async fn held(addr: SocketAddr, pid: u32, n: usize, baseline_rss: u64) -> (Duration, Duration, Duration) {
    let mut load = Load::start(config(addr, &format!("held{n}"), n, 4000)).unwrap();
    assert!(load.wait_connected(n, Duration::from_secs(120)).await, "only {} of {n} connected", load.connected());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, cpu0) = process_usage(pid).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_, cpu1) = process_usage(pid).unwrap();
    let per_viewer = (rss.saturating_sub(baseline_rss)) as f64 / n as f64;
    println!(
        "{n:>6} viewers held: server RSS {:>6.1} MiB, {:>5.2} KiB per viewer; idle CPU {:>5.1} % of one core",
        rss as f64 / (1 << 20) as f64,
        per_viewer / 1024.0,
        (cpu1 - cpu0) / 10.0 * 100.0
    );
    let mut samples = Vec::new();
    // Changes 1 s apart: each is isolated (outside the coalescing window),
    // so this measures delivery, not waiting to coalesce.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        load.arm_trigger();
        let joined = Load::start(config(addr, &format!("held{n}"), 1, 0)).unwrap();
        samples.extend(load.latencies(n, Duration::from_secs(20)).await);
        joined.stop().await;
        // Let the departure's frame pass before the next trigger.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        load.latencies(0, Duration::ZERO).await;
    }
    let count = samples.len();
    let (p50, p99, max) = percentiles(&mut samples).unwrap();
    println!(
        "{n:>6} viewers, one change to all (10 changes, {count} deliveries): p50 {p50:.1?}  p99 {p99:.1?}  max {max:.1?}"
    );
    load.stop().await;
    (p50, p99, max)
}

const CEILING_ENV: &str = "FRAMECAST_CAPACITY_CEILING";

/// A ~2 KB part whose body differs with `seq` (viewers time new bodies).
fn ceiling_part(seq: u64) -> bytes::Bytes {
    let mut body = format!("{seq:020}").into_bytes();
    body.resize(2000, b'.');
    let mut part = format!("--frame\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    part.extend_from_slice(&body);
    part.extend_from_slice(b"\r\n");
    part.into()
}

/// The ceiling, as its own process: every connection gets a fixed head and
/// the latest part; `GET /trigger` makes a new part, written to all.
async fn ceiling_writer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::watch::channel(ceiling_part(0));
    let tx = std::sync::Arc::new(tx);
    let seq = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    while let Ok((mut s, _)) = listener.accept().await {
        let (tx, mut rx, seq) = (tx.clone(), rx.clone(), seq.clone());
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let Some(head) = framecast_load::read_head(&mut s).await else { return };
            if head.starts_with(b"GET /trigger") {
                let next = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                tx.send_replace(ceiling_part(next));
                return;
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nConnection: close\r\n\r\n";
            let first = rx.borrow_and_update().clone();
            if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&first).await.is_err() {
                return;
            }
            while rx.changed().await.is_ok() {
                let part = rx.borrow_and_update().clone();
                if s.write_all(&part).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The ceiling's fan-out to `n` viewers (same load generator, 10 triggers
/// 1 s apart): p50, p99, max.
async fn ceiling(n: usize) -> (Duration, Duration, Duration) {
    let (mut child, addr) = server::spawn_ceiling(CEILING_ENV);
    let mut load = Load::start(LoadConfig { path: "/".into(), ..config(addr, "ceiling", n, 4000) }).unwrap();
    assert!(
        load.wait_connected(n, Duration::from_secs(120)).await,
        "ceiling: only {} of {n} connected",
        load.connected()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut samples = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        load.arm_trigger();
        let mut t = tokio::net::TcpStream::connect(addr).await.unwrap();
        t.write_all(b"GET /trigger HTTP/1.1\r\nHost: b\r\n\r\n").await.unwrap();
        samples.extend(load.latencies(n, Duration::from_secs(20)).await);
    }
    let count = samples.len();
    let (p50, p99, max) = percentiles(&mut samples).unwrap();
    println!(
        "{n:>6} viewers of the minimal writer (the ceiling), one part to all (10 triggers, {count} deliveries): p50 {p50:.1?}  p99 {p99:.1?}  max {max:.1?}"
    );
    load.stop().await;
    let _ = child.kill();
    let _ = child.wait();
    (p50, p99, max)
}

#[tokio::main]
async fn main() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if std::env::var_os(CEILING_ENV).is_some() {
        return ceiling_writer().await;
    }
    let large: usize = std::env::var("CAPACITY_VIEWERS").ok().and_then(|v| v.parse().ok()).unwrap_or(19_000);
    let server = ServerProcess::start(r#"{"state_file": null, "max_connections": 19900}"#);
    let (addr, pid) = (server.addr, server.pid());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (baseline, _) = process_usage(pid).unwrap();
    println!("server baseline RSS {:.1} MiB", baseline as f64 / (1 << 20) as f64);

    // CAPACITY_ONLY=ramp runs the burst alone.
    let only_ramp = std::env::var("CAPACITY_ONLY").is_ok_and(|v| v == "ramp");
    let mut fanout = None;
    for n in [1000, large] {
        if only_ramp {
            break;
        }
        fanout = Some(held(addr, pid, n, baseline).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // A burst of 10,000 connects to a fresh room.
    let burst = 10_000.min(large);
    let start = tokio::time::Instant::now();
    let load = Load::start(config(addr, "ramp", burst, 0)).unwrap();
    assert!(load.wait_connected(burst, Duration::from_secs(120)).await, "ramp: only {} connected", load.connected());
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = server::get_json(addr, "/api/v1/channels/online/ramp").await;
    println!(
        "ramp: {burst} viewers connected in a burst in {took:.2?}: {} frames rendered, {} parts sent ({:.2} per viewer)",
        info["frames_rendered"],
        info["parts_sent"],
        info["parts_sent"].as_f64().unwrap_or(0.0) / burst as f64
    );
    load.stop().await;

    if !only_ramp {
        slowloris(addr).await;
    }
    drop(server);
    if let Some((p50, p99, _)) = fanout {
        let (c50, c99, _) = ceiling(large).await;
        println!(
            "{large:>6} viewers, framecast against the ceiling: p50 {:.2}x, p99 {:.2}x",
            p50.as_secs_f64() / c50.as_secs_f64(),
            p99.as_secs_f64() / c99.as_secs_f64()
        );
    }
}

/// Viewers connected per second in a 2,000 burst, before and during a
/// 5,000-connection slowloris (half-sent requests from 127.0.4.x).
async fn slowloris(addr: SocketAddr) {
    async fn burst_rate(addr: SocketAddr, room: &str) -> f64 {
        let start = tokio::time::Instant::now();
        let load = Load::start(config(addr, room, 2000, 0)).unwrap();
        assert!(load.wait_connected(2000, Duration::from_secs(60)).await, "burst: {} connected", load.connected());
        let rate = 2000.0 / start.elapsed().as_secs_f64();
        load.stop().await;
        rate
    }
    let clean = burst_rate(addr, "clean").await;
    let mut crowd = Vec::with_capacity(5000);
    for i in 0..5000 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("127.0.4.{}:0", 1 + i % 250).parse().unwrap()).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        s.write_all(b"GET /online/slow.png HTTP/1.1\r\nHost: b\r\nX-Slow: ").await.unwrap();
        crowd.push(s);
    }
    let attacked = burst_rate(addr, "attacked").await;
    println!(
        "viewers accepted per second in a 2,000 burst: {clean:.0} alone, {attacked:.0} while 5,000 slowloris connections are held ({:.2}x)",
        attacked / clean
    );
    drop(crowd);
}
