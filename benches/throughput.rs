//! `cargo bench --bench throughput`: a 720p 30 fps camera (~50 KB JPEGs)
//! relayed by framecast from an MJPEG upstream to 1,000 viewers, against the
//! ceiling: a minimal writer process that sends the same bytes at the same
//! pace to the same number of sockets with no HTTP (a latest-frame slot and
//! `write_all` per socket). Both are measured in the same run as delivered
//! bytes per server CPU-second; the ratio is the figure (goal >= 0.7).
//!
//! Readers are identical for both (read and count, no parsing) and share the
//! 2 cores with the server, so absolute rates are the machine's; the ratio
//! is what travels. THROUGHPUT_VIEWERS (default 1000), THROUGHPUT_SECONDS (10).

#[path = "support/frames.rs"]
mod frames;
#[path = "support/relay.rs"]
mod relay;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use bytes::Bytes;
use relay::{Measured, measure, readers, ticker, upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use relay::FPS;
const WARM_UP: Duration = Duration::from_secs(3);
const CEILING_ENV: &str = "FRAMECAST_CEILING_WRITER";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The ceiling, run as its own process: no HTTP, no framing, the same bytes.
async fn ceiling_writer() {
    let frames: Vec<Bytes> = frames::camera_jpegs(FPS).into_iter().map(Bytes::from).collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    let latest = ticker(frames);
    while let Ok((mut s, _)) = listener.accept().await {
        let _ = s.set_nodelay(true);
        let mut latest = latest.clone();
        tokio::spawn(async move {
            framecast_load::read_head(&mut s).await;
            loop {
                let frame = latest.borrow_and_update().clone();
                if s.write_all(&frame).await.is_err() || latest.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::main]
async fn main() {
    if std::env::var_os(CEILING_ENV).is_some() {
        return ceiling_writer().await;
    }
    let viewers = env_or("THROUGHPUT_VIEWERS", 1000) as usize;
    let seconds = env_or("THROUGHPUT_SECONDS", 10);
    let frames: Vec<Bytes> = frames::camera_jpegs(FPS).into_iter().map(Bytes::from).collect();
    let mean_frame = frames.iter().map(|f| f.len()).sum::<usize>() / frames.len();
    println!("{viewers} viewers of a 1280x720 {FPS} fps stream, frames ~{} KB:", mean_frame / 1000);

    // framecast relaying the upstream camera.
    let up = upstream(frames).await;
    let config = format!(
        r#"{{ "max_connections_per_ip": 0, "cameras": {{ "relay": {{ "source": {{ "kind": "mjpeg", "url": "http://{up}/" }} }} }} }}"#
    );
    let framecast = server::ServerProcess::start(&config);
    let bytes = readers(framecast.addr, "/camera/relay.mjpg", viewers).await;
    tokio::time::sleep(WARM_UP).await;
    let before = server::get_json(framecast.addr, "/api/v1/channels/camera/relay").await;
    let fc = measure(framecast.pid(), &bytes, seconds).await;
    let after = server::get_json(framecast.addr, "/api/v1/channels/camera/relay").await;
    let delta = |key: &str| after[key].as_u64().unwrap_or(0).saturating_sub(before[key].as_u64().unwrap_or(0));
    let (parts, skipped, published) = (delta("parts_sent"), delta("frames_skipped"), delta("frames_rendered"));
    drop(framecast);

    // The ceiling: this binary again, as a bare writer.
    let (mut child, ceiling_addr) = server::spawn_ceiling(CEILING_ENV);
    let bytes = readers(ceiling_addr, "/", viewers).await;
    tokio::time::sleep(WARM_UP).await;
    let ceiling = measure(child.id(), &bytes, seconds).await;
    let _ = child.kill();
    let _ = child.wait();

    let gib = |m: &Measured| m.bytes_per_cpu_s / (1u64 << 30) as f64;
    println!(
        "  framecast relay : {:>5.2} GB/s delivered, {:>4.2} cores, {:>5.2} GiB per CPU-second ({:.2} CPU-s per GiB)",
        fc.gb_per_s,
        fc.cpu_cores,
        gib(&fc),
        1.0 / gib(&fc)
    );
    println!(
        "  minimal writer  : {:>5.2} GB/s delivered, {:>4.2} cores, {:>5.2} GiB per CPU-second",
        ceiling.gb_per_s,
        ceiling.cpu_cores,
        gib(&ceiling)
    );
    println!(
        "  ratio to the ceiling (bytes per CPU-second): {:.2}   (goal >= 0.7)",
        fc.bytes_per_cpu_s / ceiling.bytes_per_cpu_s
    );
    let offered = published * viewers as u64;
    println!(
        "  framecast over {seconds} s: {published} frames published, {parts} parts sent of {offered} offered, {skipped} skipped by slow viewers ({:.0} %)",
        skipped as f64 / offered.max(1) as f64 * 100.0
    );
}
