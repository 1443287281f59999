//! Load generation for framecast, on this machine only: many live-image
//! viewers over loopback, each socket bound to its own 127.0.0.x source so
//! ephemeral ports never run out, each stream read through hyper's client
//! and parsed incrementally with framecast's multipart reader. Used by the
//! `framecast-load` tool and the benchmarks; not part of the server. Refuses
//! any target that is not a loopback address.

mod viewer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: SocketAddr,
    /// Path and query of the live image, e.g. `/online/load.png`.
    pub path: String,
    pub viewers: usize,
    /// Loopback source addresses to spread sockets over (127.0.0.1 up).
    pub sources: usize,
    /// New connections per second; 0 connects all at once.
    pub connect_rate: u32,
    pub user_agent: String,
}

/// Counters shared by every viewer task.
#[derive(Default)]
pub struct Shared {
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub parts: AtomicU64,
    pub bytes: AtomicU64,
    /// The armed trigger: its number and when it fired.
    trigger: Mutex<Option<(u64, Instant)>>,
    /// Per trigger fired, each viewer's delay to its next new frame.
    samples: Mutex<Vec<Duration>>,
}

pub struct Load {
    pub shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    triggers: u64,
}

/// `Err` unless `addr` is a loopback address: load goes nowhere else.
pub fn ensure_loopback(addr: &SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!("{addr} is not a loopback address; framecast-load only targets this machine"))
    }
}

/// The `i`-th source address: 127.0.0.1 to 127.0.0.N (IPv6: ::1 only).
fn source(target: &SocketAddr, i: usize, sources: usize) -> IpAddr {
    match target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % sources.clamp(1, 250)) as u8)),
        v6 => v6,
    }
}

impl Load {
    /// Starts connecting `config.viewers` viewers (paced by `connect_rate`)
    /// and returns at once; viewers run until `stop`.
    pub fn start(config: LoadConfig) -> Result<Load, String> {
        ensure_loopback(&config.target)?;
        let shared = Arc::new(Shared::default());
        let config = Arc::new(config);
        let started = Instant::now();
        let tasks = (0..config.viewers)
            .map(|i| {
                let (shared, config) = (shared.clone(), config.clone());
                let delay = match config.connect_rate {
                    0 => Duration::ZERO,
                    rate => Duration::from_secs_f64(i as f64 / rate as f64),
                };
                tokio::spawn(async move {
                    tokio::time::sleep_until(started + delay).await;
                    let from = source(&config.target, i, config.sources);
                    if viewer::run(&config, from, &shared).await.is_err() {
                        shared.failed.fetch_add(1, Relaxed);
                    }
                })
            })
            .collect();
        Ok(Load { shared, tasks, triggers: 0 })
    }

    pub fn connected(&self) -> usize {
        self.shared.connected.load(Relaxed)
    }

    /// Waits until `n` viewers hold a stream; `false` after `limit`.
    pub async fn wait_connected(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.connected() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Marks now as a trigger (a value write, a new viewer): each viewer's
    /// next new frame is timed from here. Call just before triggering.
    pub fn arm_trigger(&mut self) {
        self.arm_trigger_at(std::time::SystemTime::now());
    }

    /// `arm_trigger` for a trigger fired at wall-clock time `at`, possibly
    /// by another process on this machine (they share the clock).
    pub fn arm_trigger_at(&mut self, at: std::time::SystemTime) {
        self.triggers += 1;
        let ago = std::time::SystemTime::now().duration_since(at).unwrap_or_default();
        let when = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
        *self.shared.trigger.lock().unwrap_or_else(|e| e.into_inner()) = Some((self.triggers, when));
    }

    /// The delays recorded so far, after waiting until there are `want` or
    /// `limit` passes.
    pub async fn latencies(&self, want: usize, limit: Duration) -> Vec<Duration> {
        let deadline = Instant::now() + limit;
        loop {
            let n = self.shared.samples.lock().unwrap_or_else(|e| e.into_inner()).len();
            if n >= want || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        std::mem::take(&mut *self.shared.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Closes every viewer (FIN).
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// p50, p99 and max of `samples` (sorted here).
pub fn percentiles(samples: &mut [Duration]) -> Option<(Duration, Duration, Duration)> {
    if samples.is_empty() {
        return None;
    }
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Some((at(0.50), at(0.99), samples[samples.len() - 1]))
}

/// An HTTP/1.1 message head read off `stream` through its blank line (with
/// whatever arrived after it in the same reads); `None` if the peer closed or
/// failed first. For the small servers and raw clients of benches and tests.
pub async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => head.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
    Some(head)
}

/// The summed RSS of `pids` once it stops falling: what is held, not freed
/// memory the allocator is about to return (framecast's jemalloc purges
/// within about a second). Sampled every 250 ms until a sample is no lower
/// than the one before, for 10 s at most; the lower of the last two.
pub async fn settled_rss(pids: &[u32]) -> u64 {
    let rss = || pids.iter().filter_map(|&pid| process_usage(pid)).map(|(rss, _)| rss).sum::<u64>();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = rss();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let now = rss();
        if now >= last || tokio::time::Instant::now() > deadline {
            return now.min(last);
        }
        last = now;
    }
}

/// Resident memory and CPU seconds (user + system) of process `pid`, from /proc.
pub fn process_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((rss_kib * 1024, ticks / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_anything_but_loopback() {
        assert!(ensure_loopback(&"127.0.0.1:80".parse().unwrap()).is_ok());
        assert!(ensure_loopback(&"127.5.6.7:80".parse().unwrap()).is_ok());
        assert!(ensure_loopback(&"[::1]:80".parse().unwrap()).is_ok());
        assert!(ensure_loopback(&"10.0.0.1:80".parse().unwrap()).is_err());
        assert!(ensure_loopback(&"192.168.1.1:80".parse().unwrap()).is_err());
        assert!(ensure_loopback(&"8.8.8.8:80".parse().unwrap()).is_err());
        let cfg = LoadConfig {
            target: "10.1.2.3:80".parse().unwrap(),
            path: "/".into(),
            viewers: 1,
            sources: 1,
            connect_rate: 0,
            user_agent: "x".into(),
        };
        assert!(Load::start(cfg).is_err());
    }

    #[test]
    fn sources_spread_over_loopback() {
        let t: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(source(&t, 0, 50), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(source(&t, 51, 50), "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(source(&"[::1]:80".parse().unwrap(), 7, 50), "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn percentiles_of_samples() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let (p50, p99, max) = percentiles(&mut s).unwrap();
        assert_eq!((p50, p99, max), (Duration::from_millis(51), Duration::from_millis(99), Duration::from_millis(100)));
        assert!(percentiles(&mut []).is_none());
    }

    #[test]
    fn reads_own_process_usage() {
        let (rss, cpu) = process_usage(std::process::id()).unwrap();
        assert!(rss > 1 << 20 && cpu >= 0.0);
    }
}
