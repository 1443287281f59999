//! Presence over real TCP: the count is exact as viewers arrive and leave by
//! FIN, RST, or stop reading and close; renders coalesce under a burst and no
//! viewer ever gets an older frame than one it has.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Server, Viewer, api, decode_png, expected_badge, unsent_to, viewers, wait_for_viewers};
use framecast::render::online::{builtin_online, render_online_png};

// Every test viewer connects from 127.0.0.1: no per-address cap here.
const CONFIG: &str = r#"{"min_frame_interval_ms": 20, "resend_interval_ms": 1000, "max_connections_per_ip": 0}"#;
const AGENT: &str = "framecast-test";

async fn connect_many(addr: std::net::SocketAddr, path: &str, n: usize) -> Vec<Viewer> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let path = path.to_string();
            tokio::spawn(async move { Viewer::connect(addr, &path, AGENT).await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Reads every viewer, concurrently, until its latest frame shows `count`.
async fn assert_all_show(viewers: Vec<Viewer>, count: u64) -> Vec<Viewer> {
    let want = std::sync::Arc::new(expected_badge(count));
    let tasks: Vec<_> = viewers
        .into_iter()
        .map(|mut v| {
            let want = want.clone();
            tokio::spawn(async move {
                v.wait_for_image(&want, Duration::from_secs(5)).await;
                v
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_is_exact_through_fin_rst_and_stopped_readers() {
    let _serial = common::serial();
    // Resends every 50 ms and small buffers, so readers that stop really
    // fill their buffers before they close.
    let server = Server::start(
        r#"{"min_frame_interval_ms": 20, "resend_interval_ms": 50, "max_connections_per_ip": 0,
            "send_buffer_bytes": 16384}"#,
    );
    let addr = server.addr;
    let mut all = connect_many(addr, "/online/lobby.png", 150).await;
    for _ in 0..50 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        all.push(Viewer::start(socket.connect(addr).await.unwrap(), "/online/lobby.png", AGENT).await);
    }

    wait_for_viewers(addr, "lobby", 200, Duration::from_secs(10)).await;
    let mut all = assert_all_show(all, 200).await;

    let mut stopped = all.split_off(150); // 50 that stop reading, then close
    let reset = all.split_off(100); // 50 that leave with RST
    let fin = all.split_off(50); // 50 that leave with FIN
    let stay = all; // 50 that stay

    for v in fin {
        drop(v.stream); // close(): FIN
    }
    for v in reset {
        v.reset();
    }
    // Stopped readers: resends pile up unread until both their receive
    // buffer and the server's send buffer are full (the server has bytes
    // it cannot send); then they close, as a frozen tab being killed does.
    let deadline = Instant::now() + Duration::from_secs(20);
    while stopped.iter().any(|v| unsent_to(addr.port(), v.local_port()) == 0) {
        assert!(Instant::now() < deadline, "stopped readers' buffers never filled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for v in stopped.drain(..) {
        drop(v);
    }

    // Milliseconds in docs/counting.md; 1 s allows for a loaded machine.
    let took = wait_for_viewers(addr, "lobby", 50, Duration::from_secs(1)).await;
    eprintln!("150 departures reflected within {took:?}");
    // And it stays exact: nothing leaves twice, no ghost stays.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(viewers(addr, "lobby").await, 50);
    let stay = assert_all_show(stay, 50).await;

    let info = api(addr, "/api/v1/channels/online/lobby").await;
    assert_eq!(info["connects"], 200);
    assert_eq!(info["disconnects"], 150);

    // Every part served to the viewers that stayed decodes as a PNG.
    let mut parts = 0;
    for v in &stay {
        for p in &v.received {
            assert_eq!(p.header("content-type"), Some("image/png"));
            assert_eq!(p.header("content-length"), Some(p.body.len().to_string().as_str()));
            decode_png(&p.body);
            parts += 1;
        }
    }
    assert!(parts >= 100, "each viewer got several frames ({parts} in all)");

    drop(stay);
    wait_for_viewers(addr, "lobby", 0, Duration::from_secs(5)).await;
    // The idle room is forgotten, not kept as an empty channel.
    let deadline = Instant::now() + Duration::from_secs(2);
    while api(addr, "/api/v1/channels/online/lobby").await.get("live") != Some(&serde_json::json!(false)) {
        assert!(Instant::now() < deadline, "the empty room was never forgotten");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A FIN or an RST is noticed by reading, not by a failed write: with no
/// resend for a minute and no other change, nothing is written to anyone
/// until the departure itself is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fin_and_rst_leave_at_once_with_nothing_written() {
    let _serial = common::serial();
    let server = Server::start(r#"{"resend_interval_ms": 60000, "max_connections_per_ip": 0}"#);
    let addr = server.addr;
    let all = connect_many(addr, "/online/quiet.png", 12).await;
    wait_for_viewers(addr, "quiet", 12, Duration::from_secs(10)).await;
    let mut all = assert_all_show(all, 12).await;

    drop(all.pop().unwrap().stream); // FIN
    // Milliseconds in docs/counting.md; 500 ms allows for a loaded machine.
    let took = wait_for_viewers(addr, "quiet", 11, Duration::from_millis(500)).await;
    eprintln!("a FIN left the count in {took:?}");

    all.pop().unwrap().reset(); // RST
    let took = wait_for_viewers(addr, "quiet", 10, Duration::from_millis(500)).await;
    eprintln!("an RST left the count in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connects_coalesces_renders_and_frames_never_go_back() {
    let _serial = common::serial();
    const N: usize = 1000;
    let server = Server::start(CONFIG);
    let addr = server.addr;
    let start = Instant::now();
    let burst = connect_many(addr, "/online/burst.png", N).await;
    let connect_time = start.elapsed();
    wait_for_viewers(addr, "burst", N as u64, Duration::from_secs(10)).await;
    let burst = assert_all_show(burst, N as u64).await;

    // While the count keeps changing, renders back off (20 ms doubling up
    // to max_frame_interval, 1 s): ~7 renders in the first 1.3 s, then one
    // a second. Twice that allows a reset or two on a loaded machine; without
    // the back-off it would be one per 20 ms (2 + elapsed / 20).
    let info = api(addr, "/api/v1/channels/online/burst").await;
    let rendered = info["frames_rendered"].as_u64().unwrap();
    let bound = 2 * (7 + (start.elapsed().as_millis() / 1000) as u64);
    eprintln!("{N} connects in {connect_time:?}: {rendered} frames rendered");
    assert!(rendered <= bound && rendered < N as u64 / 4, "{rendered} renders for {N} connects");

    // Map each served frame to the count it shows; no viewer ever goes back.
    let layout = builtin_online();
    let by_bytes: HashMap<Vec<u8>, u64> = (1..=N as u64).map(|n| (render_online_png(&layout, n), n)).collect();
    for (i, v) in burst.iter().enumerate() {
        let counts: Vec<u64> = v.received.iter().map(|p| by_bytes[&p.body[..]]).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "viewer {i} went back: {counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_dropped_after_the_stall_timeout() {
    let _serial = common::serial();
    // Resend every 10 ms and small buffers: the frozen viewer's queue fills
    // in a fraction of a second, then the stall timeout runs.
    let server =
        // TCP_USER_TIMEOUT far away: only the stall guard can drop the viewer
        // within the bound below.
        Server::start(
            r#"{"resend_interval_ms": 10, "write_stall_timeout_ms": 1000, "send_buffer_bytes": 16384,
                "tcp_user_timeout_ms": 600000}"#,
        );
    let addr = server.addr;
    let mut healthy = Viewer::connect(addr, "/online/stall.png", AGENT).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let frozen = Viewer::start(socket.connect(addr).await.unwrap(), "/online/stall.png", AGENT).await;
    wait_for_viewers(addr, "stall", 2, Duration::from_secs(5)).await;

    // The frozen viewer never reads again and never closes.
    let start = Instant::now();
    let before = healthy.received.len();
    let reader = tokio::spawn(async move {
        healthy.read_parts(usize::MAX, Duration::from_secs(3)).await;
        healthy
    });
    let took = wait_for_viewers(addr, "stall", 1, Duration::from_secs(10)).await;
    eprintln!("frozen viewer dropped after {took:?} (stall timeout 1 s)");
    assert!(took >= Duration::from_millis(1000), "dropped before the stall timeout: {took:?}");
    // The queue fills within a fraction of a second, then the 1 s timeout runs.
    assert!(took <= Duration::from_millis(3000), "the stall guard took {took:?} for a 1 s timeout");
    let healthy = reader.await.unwrap();
    let got = healthy.received.len() - before;
    let elapsed = start.elapsed().as_millis() as usize;
    // Meanwhile the healthy viewer kept its frame rate (a resend per 10 ms).
    eprintln!("healthy viewer got {got} parts in {elapsed} ms");
    assert!(got * 10 * 2 >= elapsed, "healthy viewer starved: {got} parts in {elapsed} ms");
    drop(frozen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_holds_viewers_the_server_counts() {
    let _serial = common::serial();
    use framecast_load::{Load, LoadConfig};
    let server = Server::start(CONFIG);
    let addr = server.addr;
    let config = LoadConfig {
        target: addr,
        path: "/online/load.png".into(),
        viewers: 300,
        sources: 10,
        connect_rate: 0,
        user_agent: AGENT.into(),
    };
    let mut load = Load::start(config).unwrap();
    assert!(load.wait_connected(300, Duration::from_secs(20)).await, "only {} connected", load.connected());
    wait_for_viewers(addr, "load", 300, Duration::from_secs(5)).await;
    // A trigger (one more viewer) reaches every held viewer as a new frame.
    load.arm_trigger();
    let extra = Viewer::connect(addr, "/online/load.png", AGENT).await;
    let samples = load.latencies(300, Duration::from_secs(10)).await;
    assert_eq!(samples.len(), 300, "every viewer saw the new count");
    drop(extra);
    load.stop().await;
    wait_for_viewers(addr, "load", 0, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_viewers_alone_get_the_latest_frame_again_sooner() {
    let _serial = common::serial();
    // Firefox lets a left page's stream go only when data arrives: its
    // viewers get the latest frame every departure_resend_interval_ms.
    let server = Server::start(r#"{"resend_interval_ms": 60000, "departure_resend_interval_ms": 200}"#);
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
    let chromium = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
    let mut ff = Viewer::connect(server.addr, "/online/resend.png", firefox).await;
    let mut cr = Viewer::connect(server.addr, "/online/resend.png", chromium).await;
    common::wait_for_viewers(server.addr, "resend", 2, Duration::from_secs(5)).await;
    // Both have the frame for 2 viewers; from here nothing changes. (Only
    // the Chromium viewer goes quiet: the Firefox one never does.)
    cr.drain(Duration::from_millis(300)).await;
    // What Firefox's socket holds from the wait above, then 1 s counted:
    // about five early resends (every 200 ms).
    ff.read_parts(usize::MAX, Duration::from_millis(100)).await;
    let (ff_before, cr_before) = (ff.received.len(), cr.received.len());
    ff.read_parts(usize::MAX, Duration::from_millis(1000)).await;
    let resent = ff.received.len() - ff_before;
    eprintln!("{resent} early resends reached the Firefox viewer in 1 s (every 200 ms)");
    assert!((3..=6).contains(&resent), "{resent} resends in 1 s at 200 ms");
    cr.drain(Duration::from_millis(200)).await;
    assert_eq!(cr.received.len(), cr_before, "Chromium got parts with nothing changed");
    // The resent parts are the same picture.
    let last = ff.received.len() - 1;
    assert_eq!(ff.received[last].body, ff.received[last - 1].body);
}
