//! `framecast-load`: hold N live-image viewers against a framecast on this
//! machine, report viewers, parts/s and bytes/s every second, and time
//! triggers (a new viewer joining, or a badge value write) to every viewer's
//! receipt. Bounded by --viewers and --duration; loopback targets only.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use framecast_load::{Load, LoadConfig, ensure_loopback, percentiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(name = "framecast-load", about = "Load a framecast on this machine with live-image viewers")]
struct Args {
    /// The live image, e.g. http://127.0.0.1:8080/online/load.png
    url: String,
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// New connections per second (0: all at once).
    #[arg(long, default_value_t = 0)]
    connect_rate: u32,
    /// Loopback source addresses to spread connections over.
    #[arg(long, default_value_t = 50)]
    sources: usize,
    #[arg(long, default_value = "framecast-load")]
    user_agent: String,
    /// What to time once everyone is connected.
    #[arg(long, value_enum, default_value_t = Trigger::None)]
    trigger: Trigger,
    /// How many triggers, spaced by --trigger-interval-ms.
    #[arg(long, default_value_t = 10)]
    triggers: usize,
    #[arg(long, default_value_t = 500)]
    trigger_interval_ms: u64,
    /// For --trigger write: the badge API URL and a token.
    #[arg(long)]
    write_url: Option<String>,
    #[arg(long)]
    token: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Trigger {
    None,
    /// One more viewer joins (an online room's count changes).
    Join,
    /// A value is written to a badge.
    Write,
}

/// host:port and path of an http:// URL on this machine.
fn parse_url(url: &str) -> Result<(SocketAddr, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url}: only http:// URLs"));
    }
    let host = uri.host().ok_or(format!("{url}: no host"))?.trim_matches(['[', ']']);
    let addr = (host, uri.port_u16().unwrap_or(80))
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .find(|a| a.ip().is_loopback())
        .ok_or(format!("{url}: not a loopback address; framecast-load only targets this machine"))?;
    ensure_loopback(&addr)?;
    let path = uri.path_and_query().map_or("/".to_string(), |p| p.to_string());
    Ok((addr, path))
}

async fn write_value(url: &str, token: &str, value: usize) -> Result<(), String> {
    let (addr, path) = parse_url(url)?;
    let body = format!(r#"{{"value": {value}}}"#);
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    if out.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out).lines().next().unwrap_or("").into())
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let (target, path) = parse_url(&args.url)?;
    if args.trigger == Trigger::Write && (args.write_url.is_none() || args.token.is_none()) {
        return Err("--trigger write needs --write-url and --token".into());
    }
    // Each viewer is a socket.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let config = LoadConfig {
        target,
        path: path.clone(),
        viewers: args.viewers,
        sources: args.sources,
        connect_rate: args.connect_rate,
        user_agent: args.user_agent.clone(),
    };
    let mut load = Load::start(config)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.duration);
    let shared = load.shared.clone();
    let reporter = tokio::spawn(async move {
        let (mut parts, mut bytes) = (0, 0);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (p, b) = (shared.parts.load(Relaxed), shared.bytes.load(Relaxed));
            eprintln!(
                "viewers {:>6}  failed {:>5}  parts/s {:>8}  MB/s {:>8.2}",
                shared.connected.load(Relaxed),
                shared.failed.load(Relaxed),
                p - parts,
                (b - bytes) as f64 / 1e6
            );
            (parts, bytes) = (p, b);
        }
    });

    let connected = load.wait_connected(args.viewers, Duration::from_secs(args.duration)).await;
    let mut latency = None;
    if connected && args.trigger != Trigger::None {
        let mut samples = Vec::new();
        for i in 0..args.triggers {
            tokio::time::sleep(Duration::from_millis(args.trigger_interval_ms)).await;
            load.arm_trigger();
            match args.trigger {
                Trigger::Join => {
                    let extra = LoadConfig { viewers: 1, sources: 1, ..load_config(&args, target, &path) };
                    let joined = Load::start(extra)?;
                    samples.extend(load.latencies(args.viewers, Duration::from_secs(10)).await);
                    joined.stop().await;
                }
                Trigger::Write => {
                    write_value(args.write_url.as_deref().unwrap_or(""), args.token.as_deref().unwrap_or(""), i + 1)
                        .await?;
                    samples.extend(load.latencies(args.viewers, Duration::from_secs(10)).await);
                }
                Trigger::None => {}
            }
        }
        latency = percentiles(&mut samples).map(|p| (p, samples.len()));
    }
    tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + Duration::from_secs(1))).await;
    reporter.abort();
    let summary = serde_json::json!({
        "viewers_connected": load.connected(),
        "viewers_failed": load.shared.failed.load(Relaxed),
        "parts": load.shared.parts.load(Relaxed),
        "bytes": load.shared.bytes.load(Relaxed),
        "latency": latency.map(|((p50, p99, max), n)| serde_json::json!({
            "samples": n, "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3, "max_ms": max.as_secs_f64() * 1e3,
        })),
    });
    println!("{summary}");
    load.stop().await;
    if connected {
        Ok(())
    } else {
        Err(format!("only {} of {} viewers connected", summary["viewers_connected"], args.viewers))
    }
}

fn load_config(args: &Args, target: SocketAddr, path: &str) -> LoadConfig {
    LoadConfig {
        target,
        path: path.to_string(),
        viewers: args.viewers,
        sources: args.sources,
        connect_rate: 0,
        user_agent: args.user_agent.clone(),
    }
}
