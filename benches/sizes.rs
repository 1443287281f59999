//! `cargo bench --bench sizes`: one 1280x720 30 fps camera (relayed from an
//! MJPEG upstream) to 1,000 viewers spread over 3 sizes (`?width=320`,
//! `640`, and the full 1280), against the same viewers all at one size
//! (`?width=640`). Sizes are encoded once per size per frame, so three
//! sizes should cost about three encodes per frame however many watch: the
//! figures are the server's CPU per second of video in each run, their
//! ratio, and encodes per source frame per size (from the channels API).
//! SIZES_VIEWERS (default 1000), SIZES_SECONDS (10).

#[path = "support/frames.rs"]
mod frames;
#[path = "support/relay.rs"]
#[allow(dead_code)]
mod relay;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use bytes::Bytes;
use relay::{FPS, measure, readers, upstream};

const WARM_UP: Duration = Duration::from_secs(3);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Run {
    cores: f64,
    /// (channel, encodes per source frame)
    per_size: Vec<(String, f64)>,
}

/// `viewers` spread evenly over `widths`; the server's CPU and encodes.
async fn run(up: std::net::SocketAddr, widths: &[u32], viewers: usize, seconds: u64) -> Run {
    let config = format!(
        r#"{{ "max_connections_per_ip": 0, "cameras": {{ "relay": {{ "source": {{ "kind": "mjpeg", "url": "http://{up}/" }},
            "sizes": [320, 640, 1280] }} }} }}"#
    );
    let framecast = server::ServerProcess::start(&config);
    let mut counters = Vec::new();
    for (i, width) in widths.iter().enumerate() {
        let share = viewers / widths.len() + usize::from(i < viewers % widths.len());
        counters.push(readers(framecast.addr, &format!("/camera/relay.mjpg?width={width}"), share).await);
    }
    tokio::time::sleep(WARM_UP).await;
    let channels: Vec<String> = widths.iter().map(|w| format!("camera/relay@w{w}")).collect();
    let rendered = |v: &serde_json::Value| v["frames_rendered"].as_u64().unwrap_or(0);
    let source0 = rendered(&server::get_json(framecast.addr, "/api/v1/channels/camera/relay").await);
    let mut before = Vec::new();
    for c in &channels {
        before.push(rendered(&server::get_json(framecast.addr, &format!("/api/v1/channels/{c}")).await));
    }
    let total = std::sync::atomic::AtomicU64::new(0);
    let m = measure(framecast.pid(), &total, seconds).await;
    let source1 = rendered(&server::get_json(framecast.addr, "/api/v1/channels/camera/relay").await);
    let frames = (source1 - source0).max(1) as f64;
    let mut per_size = Vec::new();
    for (c, b) in channels.iter().zip(before) {
        let after = rendered(&server::get_json(framecast.addr, &format!("/api/v1/channels/{c}")).await);
        per_size.push((c.clone(), (after - b) as f64 / frames));
    }
    drop(counters);
    Run { cores: m.cpu_cores, per_size }
}

#[tokio::main]
async fn main() {
    let viewers = env_or("SIZES_VIEWERS", 1000) as usize;
    let seconds = env_or("SIZES_SECONDS", 10);
    let frames: Vec<Bytes> = frames::camera_jpegs(FPS).into_iter().map(Bytes::from).collect();
    println!("{viewers} viewers of a 1280x720 {FPS} fps camera, {seconds} s per run:");
    let up = upstream(frames).await;
    let one = run(up, &[640], viewers, seconds).await;
    let three = run(up, &[320, 640, 1280], viewers, seconds).await;
    for (label, r) in [("one size (640)", &one), ("three sizes (320, 640, 1280)", &three)] {
        let sizes: Vec<String> = r.per_size.iter().map(|(c, e)| format!("{c}: {e:.2}")).collect();
        println!(
            "  {label:<30}: {:.2} server cores (CPU-s per s of video); frames made per source frame: {}",
            r.cores,
            sizes.join(", ")
        );
    }
    println!("  three sizes cost {:.2}x one size", three.cores / one.cores.max(0.001));
}
