//! `cargo bench --bench upgrade`: a binary upgrade (SIGUSR2) under a held
//! audience. Starts the real server (release build) with `--pid-file`,
//! holds UPGRADE_VIEWERS (default 19,000) viewers of one room with the load
//! library (loopback only), then sends SIGUSR2. Once the pid file names the
//! new process (it has taken every stream and accepts; the old one accepts
//! no more) one more viewer joins, there. Prints:
//!
//! - the hand-over time: from SIGUSR2 until each held viewer received the
//!   picture with the new count, which only the new process draws (first,
//!   p50, p99 and last viewer);
//! - when the new process was named in the pid file and when the old one
//!   exited;
//! - the extra memory while both run (old + new RSS, at most, over the
//!   old process's RSS before);
//! - that no held viewer was disconnected.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use framecast_load::{Load, LoadConfig, percentiles, process_usage};

fn config(target: SocketAddr, viewers: usize, connect_rate: u32) -> LoadConfig {
    LoadConfig {
        target,
        path: "/online/held.png".into(),
        viewers,
        sources: 100,
        connect_rate,
        user_agent: "framecast-upgrade".into(),
    }
}

fn pid_in(file: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("UPGRADE_VIEWERS").ok().and_then(|v| v.parse().ok()).unwrap_or(19_000);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.json");
    let pid_file = dir.path().join("framecast.pid");
    let json = serde_json::json!({
        "database": dir.path().join("framecast.db"),
        "max_connections": 20_000,
        "max_connections_per_ip": 0,
        "rooms": { "held": {} }
    });
    std::fs::write(&config_path, json.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .arg("--pid-file")
        .arg(&pid_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr: SocketAddr = line.trim().rsplit("//").next().unwrap().parse().unwrap();
    let old_pid = child.id();

    let mut load = Load::start(config(addr, n, 4000)).unwrap();
    assert!(load.wait_connected(n, Duration::from_secs(180)).await, "only {} of {n} connected", load.connected());
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.latencies(0, Duration::ZERO).await;
    let (rss_before, _) = process_usage(old_pid).unwrap();
    println!("{n} viewers held by the old process: RSS {:.1} MiB", rss_before as f64 / (1 << 20) as f64);

    let t0 = SystemTime::now();
    let started = Instant::now();
    load.arm_trigger_at(t0);
    Command::new("kill").args(["-USR2", &old_pid.to_string()]).status().unwrap();
    // Once the new process is named it serves and the old one accepts no
    // more: a new viewer then joins there, and the picture with the new
    // count can only come from the new process.
    let mut joined = None;

    let mut new_named = None;
    let mut old_gone = None;
    let mut peak_both = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while (old_gone.is_none() || new_named.is_none()) && Instant::now() < deadline {
        let new_pid = pid_in(&pid_file).filter(|p| *p != old_pid);
        if new_named.is_none() && new_pid.is_some() {
            new_named = Some(started.elapsed());
            joined = Some(Load::start(config(addr, 1, 0)).unwrap());
        }
        let old = process_usage(old_pid).map_or(0, |u| u.0);
        let new = new_pid.and_then(process_usage).map_or(0, |u| u.0);
        peak_both = peak_both.max(old + new);
        if old_gone.is_none() && (!alive(old_pid) || child.try_wait().ok().flatten().is_some()) {
            old_gone = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut samples = load.latencies(n, Duration::from_secs(120)).await;
    let delivered = samples.len();
    samples.sort();
    let first = samples.first().copied().unwrap_or_default();
    let (p50, p99, last) = percentiles(&mut samples).unwrap_or_default();
    println!(
        "hand-over of {n} viewers (SIGUSR2 to the new count from the new process): first {first:.1?}, p50 {p50:.1?}, p99 {p99:.1?}, last {last:.1?} ({delivered} of {n} delivered)"
    );
    println!(
        "new process named in the pid file after {:.1?}; old process exited after {:.1?}",
        new_named.unwrap_or_default(),
        old_gone.unwrap_or_default()
    );
    println!(
        "extra memory while both ran: {:.1} MiB at most ({:.2} KiB per viewer)",
        peak_both.saturating_sub(rss_before) as f64 / (1 << 20) as f64,
        peak_both.saturating_sub(rss_before) as f64 / 1024.0 / n as f64
    );
    println!("held viewers still connected: {} of {n}", load.connected());
    if let Some(joined) = joined {
        joined.stop().await;
    }
    load.stop().await;
    if let Some(new_pid) = pid_in(&pid_file).filter(|p| *p != old_pid) {
        let _ = Command::new("kill").args(["-TERM", &new_pid.to_string()]).status();
    }
    let _ = child.kill();
    let _ = child.wait();
}
