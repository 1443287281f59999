//! Sizes per viewer through the running binary: `?width=` streams and
//! snapshots decode at the snapped width; viewers of one size share one
//! derived channel, encoded once per source frame however many watch;
//! three sizes are three encodes per frame; a size's channel stops with
//! its last viewer; a crowd of sized snapshots of one frame is scaled once,
//! in the bounded render pool, and every request is answered.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::jpeg::solid_jpeg;
use common::{Server, Viewer, api, get, metric};
use serde_json::Value;

fn size(jpeg: &[u8]) -> (usize, usize) {
    framecast::render::jpeg::dimensions(jpeg).expect("a JPEG")
}

async fn channel(addr: SocketAddr, name: &str) -> Option<Value> {
    let list = api(addr, "/api/v1/channels").await;
    list["channels"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned()
}

async fn rendered(addr: SocketAddr, name: &str) -> u64 {
    channel(addr, name).await.map_or(0, |c| c["frames_rendered"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_size_is_encoded_once_per_frame_for_all_its_viewers() {
    let _serial = common::serial();
    let server = Server::start(
        r#"{"camera_idle_stop_ms": 300, "cameras": {"cam": {"source": {"kind": "pattern", "width": 960, "height": 540, "fps": 10},
            "sizes": [160, 320, 640]}}}"#,
    );
    let addr = server.addr;

    // Snapped: 300 and 330 are both 320; a snapshot takes ?width= too.
    let mut a = Viewer::connect(addr, "/camera/cam.mjpg?width=300", "test").await;
    let mut b = Viewer::connect(addr, "/camera/cam.mjpg?width=330", "test").await;
    let mut c = Viewer::connect(addr, "/camera/cam.mjpg?width=320", "test").await;
    for v in [&mut a, &mut b, &mut c] {
        assert!(v.read_parts(3, Duration::from_secs(10)).await);
        assert_eq!(size(&v.last().unwrap().body), (320, 180));
    }
    let (status, _, jpeg) = get(addr, "/camera/cam.jpg?width=640").await;
    assert_eq!((status, size(&jpeg)), (200, (640, 360)));
    assert_eq!(get(addr, "/camera/cam.jpg?width=0").await.0, 400);
    let shared = channel(addr, "camera/cam@w320").await.expect("one channel for the size");
    assert_eq!(shared["viewers"], 3, "{shared}");

    // Three viewers of one size: at most one encode per source frame.
    let (main0, small0) = (rendered(addr, "camera/cam").await, rendered(addr, "camera/cam@w320").await);
    for v in [&mut a, &mut b, &mut c] {
        let seen = v.received.len();
        assert!(v.read_parts(seen + 10, Duration::from_secs(10)).await);
    }
    let (main1, small1) = (rendered(addr, "camera/cam").await, rendered(addr, "camera/cam@w320").await);
    let (frames, encodes) = (main1 - main0, small1 - small0);
    // Counters are read one after the other: a frame of skew either way.
    eprintln!("one size, 3 viewers: {encodes} encodes for {frames} source frames");
    assert!(frames >= 5, "{frames} source frames");
    assert!(encodes <= frames + 2, "{encodes} encodes for {frames} source frames and 3 viewers");

    // Three sizes: three encodes per frame, one per size.
    let mut d = Viewer::connect(addr, "/camera/cam.mjpg?width=160", "test").await;
    let mut e = Viewer::connect(addr, "/camera/cam.mjpg?width=640", "test").await;
    assert!(d.read_parts(2, Duration::from_secs(10)).await && e.read_parts(2, Duration::from_secs(10)).await);
    assert_eq!(size(&d.last().unwrap().body), (160, 90));
    assert_eq!(size(&e.last().unwrap().body), (640, 360));
    let names = ["camera/cam@w160", "camera/cam@w320", "camera/cam@w640"];
    let before: Vec<u64> = futures_util::future::join_all(names.map(|n| rendered(addr, n))).await;
    let main0 = rendered(addr, "camera/cam").await;
    let seen = d.received.len();
    assert!(d.read_parts(seen + 10, Duration::from_secs(10)).await);
    let main1 = rendered(addr, "camera/cam").await;
    let after: Vec<u64> = futures_util::future::join_all(names.map(|n| rendered(addr, n))).await;
    let frames = main1 - main0;
    for (i, name) in names.iter().enumerate() {
        let encodes = after[i] - before[i];
        eprintln!("{name}: {encodes} encodes for {frames} source frames");
        assert!(encodes <= frames + 2, "{name}: {encodes} encodes for {frames} frames");
    }

    // The last viewer of a size leaves: its channel stops.
    drop((a, b, c));
    let deadline = Instant::now() + Duration::from_secs(10);
    while channel(addr, "camera/cam@w320").await.is_some() {
        assert!(Instant::now() < deadline, "the 320 channel outlived its viewers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(channel(addr, "camera/cam@w160").await.is_some(), "other sizes go on");
    drop((d, e));
    let deadline = Instant::now() + Duration::from_secs(10);
    while api(addr, "/api/v1/cameras/cam").await["state"] != "idle" {
        assert!(Instant::now() < deadline, "the camera kept running with nobody watching");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_sized_snapshots_of_one_frame_scales_it_once() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frame.jpg");
    std::fs::write(&path, solid_jpeg([200, 40, 40], 1280, 720)).unwrap();
    let server = Server::start(&format!(
        r#"{{"max_connections_per_ip": 0, "camera_idle_stop_ms": 60000,
            "cameras": {{"door": {{"source": {{"kind": "file", "path": {path:?}}}, "sizes": [320, 640]}}}}}}"#
    ));
    let addr = server.addr;
    // The source is live and its frame does not change from here on.
    assert_eq!(get(addr, "/camera/door.jpg").await.0, 200);
    let before = metric(addr, "framecast_frames_scaled_total").await.unwrap_or(0.0);

    let crowd: Vec<_> = (0..200)
        .map(|_| {
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(30), get(addr, "/camera/door.jpg?width=320")).await
            })
        })
        .collect();
    let mut served = 0;
    for request in crowd {
        let (status, head, jpeg) = request.await.unwrap().expect("every sized snapshot is answered");
        match status {
            200 => {
                assert_eq!(size(&jpeg), (320, 180));
                served += 1;
            }
            503 => assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}"),
            other => panic!("status {other}: {head}"),
        }
    }
    let scaled = metric(addr, "framecast_frames_scaled_total").await.unwrap() - before;
    eprintln!("200 sized snapshots of one frame: {served} served, {scaled} scalings");
    assert!(served > 0, "none served");
    assert_eq!(scaled, 1.0, "one frame at one width was scaled {scaled} times");
}
