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
