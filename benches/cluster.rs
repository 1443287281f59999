//! `cargo bench --bench cluster`: cluster mode on this machine, with a real
//! `redis-server` on a free loopback port. Three framecast instances hold
//! CLUSTER_VIEWERS (default 3,000) viewers each of one room, spread over
//! 127.0.0.x sources:
//! 1. propagation: a viewer joins on instance A; time until each viewer
//!    held on instance C has the new frame (p50/p99/max over 10 joins);
//! 2. coalescing: 10,000 viewers connect at once to a fresh room on A;
//!    Redis calls per second made during the burst (from Redis's own
//!    `INFO commandstats`).
//!
//! 3. with CLUSTER_SCALE=1, the scale run instead: 5 instances × 19,000
//!    viewers (CLUSTER_SCALE_VIEWERS), each instance's viewers held by a
//!    load process of its own (the open-file limit is per process): the
//!    global count at rest on every instance, server RSS per viewer, one
//!    change reaching every viewer (p99, from each load process's arm time:
//!    an upper bound), and Redis's CPU.
//!
//! Bounded: loopback only, fixed counts, a few seconds per step.

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use framecast_load::{Load, LoadConfig, percentiles};
use server::ServerProcess;

/// redis-server, its port, and its temp dir (kept until it is killed).
struct Redis(Child, u16, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Redis(child, port, dir)
}

/// Script calls Redis has served so far (EVAL and EVALSHA).
fn script_calls(port: u16) -> u64 {
    let out = Command::new("redis-cli").args(["-p", &port.to_string(), "INFO", "commandstats"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

fn load(target: SocketAddr, room: &str, viewers: usize) -> LoadConfig {
    LoadConfig {
        target,
        path: format!("/online/{room}.png"),
        viewers,
        sources: 100,
        connect_rate: 3000,
        user_agent: "framecast-cluster-bench".into(),
    }
}

fn main() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if let Ok(spec) = std::env::var("CLUSTER_LOAD_WORKER") {
        return worker(&spec);
    }
    if std::env::var("CLUSTER_SCALE").is_ok() {
        return scale();
    }
    let per_instance: usize = std::env::var("CLUSTER_VIEWERS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let redis = redis();
    let config = format!(
        r#"{{"state_file": null, "database": null, "max_connections_per_ip": 0,
            "cluster": {{"redis_url": "redis://127.0.0.1:{}"}}}}"#,
        redis.1
    );
    let instances: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(&config)).collect();
    let addrs: Vec<SocketAddr> = instances.iter().map(|s| s.addr).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut held = Vec::new();
        for addr in &addrs {
            held.push(Load::start(load(*addr, "lobby", per_instance)).unwrap());
        }
        for l in &held {
            assert!(l.wait_connected(per_instance, Duration::from_secs(120)).await, "only {} connected", l.connected());
        }
        let mut samples = Vec::new();
        for _ in 0..10 {
            // A quiet spell first: rooms back off their renders while the
            // count keeps changing (up to max_frame_interval_ms), and this
            // measures propagation, not that pacing.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let _ = held[2].latencies(usize::MAX, Duration::ZERO).await; // the last leave's frame
            held[2].arm_trigger();
            let joined = Load::start(load(addrs[0], "lobby", 1)).unwrap();
            samples.extend(held[2].latencies(per_instance, Duration::from_secs(20)).await);
            joined.stop().await;
        }
        let n = samples.len();
        let (p50, p99, max) = percentiles(&mut samples).unwrap();
        println!(
            "3 instances x {per_instance} viewers: a join on A reached C's viewers: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({n} samples)",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
        for l in held {
            l.stop().await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;

        let before = script_calls(redis.1);
        let start = Instant::now();
        let mut burst = load(addrs[0], "burst", 10_000);
        burst.connect_rate = 0;
        let burst = Load::start(burst).unwrap();
        assert!(burst.wait_connected(10_000, Duration::from_secs(120)).await, "only {} connected", burst.connected());
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let calls = script_calls(redis.1) - before;
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "10,000 viewers in a burst on A ({:.1} s to connect): {calls} Redis calls from 3 instances in {seconds:.1} s, \
             {:.0} calls/s per instance (heartbeats and reaps included)",
            took.as_secs_f64(),
            calls as f64 / seconds / 3.0
        );
        burst.stop().await;
    });
}

/// A load process of the scale run: holds `n` viewers of `addr`, says
/// `ready`; then per `arm` line arms a trigger, says `armed`, and once its
/// viewers all have the next new frame prints `p50 p99 max samples` (ms).
fn worker(spec: &str) {
    use std::io::{BufRead, Write};
    let (addr, n) = spec.split_once(' ').expect("CLUSTER_LOAD_WORKER=addr n");
    let (addr, n): (SocketAddr, usize) = (addr.parse().unwrap(), n.parse().unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut held = runtime.block_on(async {
        let held = Load::start(load(addr, "scale", n)).unwrap();
        assert!(held.wait_connected(n, Duration::from_secs(300)).await, "only {} connected", held.connected());
        held
    });
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        if line.unwrap() != "arm" {
            continue;
        }
        let _ = runtime.block_on(held.latencies(usize::MAX, Duration::ZERO)); // anything earlier
        held.arm_trigger();
        writeln!(out, "armed").unwrap();
        out.flush().unwrap();
        let mut samples = runtime.block_on(held.latencies(n, Duration::from_secs(30)));
        let count = samples.len();
        let (p50, p99, max) = percentiles(&mut samples).unwrap_or_default();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(out, "{:.1} {:.1} {:.1} {count}", ms(p50), ms(p99), ms(max)).unwrap();
        out.flush().unwrap();
    }
    runtime.block_on(held.stop());
}

fn scale() {
    use framecast_load::process_usage;
    use std::io::{BufRead, BufReader, Write};
    let per: usize = std::env::var("CLUSTER_SCALE_VIEWERS").ok().and_then(|s| s.parse().ok()).unwrap_or(19_000);
    let redis = redis();
    let config = format!(
        r#"{{"state_file": null, "database": null, "max_connections_per_ip": 0, "max_connections": {},
            "cluster": {{"redis_url": "redis://127.0.0.1:{}"}}}}"#,
        per + 500,
        redis.1
    );
    let instances: Vec<ServerProcess> = (0..5).map(|_| ServerProcess::start(&config)).collect();
    let baseline: Vec<u64> = instances.iter().map(|s| process_usage(s.pid()).unwrap().0).collect();
    let (_, redis_cpu0) = process_usage(redis.0.id()).unwrap();
    let started = Instant::now();
    let mut workers: Vec<_> = instances
        .iter()
        .map(|s| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env("CLUSTER_LOAD_WORKER", format!("{} {per}", s.addr))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let lines = BufReader::new(child.stdout.take().unwrap()).lines();
            (child, lines)
        })
        .collect();
    for (_, lines) in &mut workers {
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
    }
    println!("5 x {per} viewers connected in {:.1} s", started.elapsed().as_secs_f64());
    let total = 5 * per as u64;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // At rest: every instance shows the whole count, exact.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut all = true;
            for s in &instances {
                let c = server::get_json(s.addr, "/api/v1/channels/online/scale").await;
                all &= c["viewers"].as_u64() == Some(total) && c["exact"] == true;
            }
            if all {
                break;
            }
            assert!(Instant::now() < deadline, "the instances never agreed on {total}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    println!("at rest: all 5 instances show {total} viewers, exact");
    for (s, base) in instances.iter().zip(&baseline) {
        let (rss, _) = process_usage(s.pid()).unwrap();
        println!(
            "  instance RSS {:.1} MiB, {:.2} KiB per viewer",
            rss as f64 / (1 << 20) as f64,
            rss.saturating_sub(*base) as f64 / per as f64 / 1024.0
        );
    }
    let mut worst = 0f64;
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(3000));
        for (child, lines) in &mut workers {
            writeln!(child.stdin.as_mut().unwrap(), "arm").unwrap();
            assert_eq!(lines.next().unwrap().unwrap(), "armed");
        }
        // One viewer joins instance 1: every viewer on every instance gets a new frame.
        let joined = runtime.block_on(async { Load::start(load(instances[0].addr, "scale", 1)).unwrap() });
        let mut p99s = Vec::new();
        for (_, lines) in &mut workers {
            let line = lines.next().unwrap().unwrap();
            let f: Vec<f64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            p99s.push((f[1], f[3] as usize));
        }
        runtime.block_on(joined.stop());
        let p99 = p99s.iter().map(|(p, _)| *p).fold(0.0, f64::max);
        let reached: usize = p99s.iter().map(|(_, n)| n).sum();
        worst = worst.max(p99);
        println!(
            "change {round}: reached {reached} viewers; p99 per instance (ms) {:?}",
            p99s.iter().map(|(p, _)| *p).collect::<Vec<_>>()
        );
    }
    let (_, redis_cpu1) = process_usage(redis.0.id()).unwrap();
    println!(
        "one change to {total} viewers: worst p99 over 5 changes {worst:.0} ms; Redis used {:.1} CPU-s over {:.0} s",
        redis_cpu1 - redis_cpu0,
        started.elapsed().as_secs_f64()
    );
    for (mut child, _) in workers {
        drop(child.stdin.take());
        let _ = child.wait();
    }
}
