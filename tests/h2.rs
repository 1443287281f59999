//! HTTP/2 live images keep HTTP/1.1's guarantees, per stream: a raw h2
//! client (the `h2` crate, h2c with prior knowledge on the plain port)
//! holds several live images on one connection. Cancelling one stream
//! uncounts exactly that viewer; a frozen stream never slows its siblings
//! and is reset after the stall timeout; each stream takes a place in the
//! per-address cap; a peer that vanishes leaves within the PING bound.

mod common;

use std::time::{Duration, Instant};

use common::h2client::{self, H2Viewer};
use common::{Server, api, netns, wait_for_viewers};

async fn camera_viewers(server: &Server, name: &str) -> u64 {
    api(server.addr, &format!("/api/v1/channels/camera/{name}")).await["viewers"].as_u64().unwrap()
}

async fn frame_seq(server: &Server, name: &str) -> u64 {
    api(server.addr, &format!("/api/v1/channels/camera/{name}")).await["frame_seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_uncounts_only_its_viewer_and_the_connection_stays() {
    let _serial = common::serial();
    let server = Server::start(r#"{"resend_interval_ms": 200}"#);
    let conn = h2client::connect(server.addr, "127.0.0.1", 6 << 20).await;
    let mut viewers: Vec<H2Viewer> = Vec::new();
    for _ in 0..3 {
        let (status, viewer) = conn.get("/online/h2room.png").await;
        assert_eq!(status, 200);
        viewers.push(viewer.unwrap());
    }
    wait_for_viewers(server.addr, "h2room", 3, Duration::from_secs(5)).await;
    // Dropping a stream's handles sends RST_STREAM(CANCEL).
    drop(viewers.pop());
    let took = wait_for_viewers(server.addr, "h2room", 2, Duration::from_secs(2)).await;
    eprintln!("a cancelled HTTP/2 stream left the count in {took:?}");
    for viewer in &mut viewers {
        let have = viewer.parts_received;
        assert!(viewer.read_parts(have + 2, Duration::from_secs(5)).await, "a sibling stream stopped");
    }
    // The same connection still opens streams.
    let (status, viewer) = conn.get("/online/h2room.png").await;
    assert_eq!(status, 200);
    wait_for_viewers(server.addr, "h2room", 3, Duration::from_secs(5)).await;
    drop(viewer);
    drop(viewers);
    // A closed connection ends every stream on it.
    let (_, mut last) = conn.get("/online/h2room.png").await;
    assert!(last.as_mut().unwrap().read_parts(1, Duration::from_secs(5)).await);
    drop(conn);
    wait_for_viewers(server.addr, "h2room", 0, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_stream_never_slows_its_siblings_and_is_reset_after_the_stall_timeout() {
    let _serial = common::serial();
    let server = Server::start(
        r#"{"write_stall_timeout_ms": 1500, "min_frame_interval_ms": 0,
            "cameras": {"cam": {"source": {"kind": "pattern", "width": 320, "height": 180, "fps": 20}}}}"#,
    );
    // Small stream windows (64 KiB, a few frames), a large connection
    // window: the frozen stream's window fills, the connection's does not.
    let conn = h2client::connect(server.addr, "127.0.0.1", 65_535).await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        readers.push(conn.get("/camera/cam.mjpg").await.1.unwrap());
    }
    let mut frozen = conn.get("/camera/cam.mjpg").await.1.unwrap();
    assert!(frozen.read_parts(1, Duration::from_secs(10)).await, "the frozen stream's first frame");
    let frozen_at = Instant::now();
    for reader in &mut readers {
        assert!(reader.read_parts(1, Duration::from_secs(10)).await);
    }
    assert_eq!(camera_viewers(&server, "cam").await, 3);

    // While one stream takes nothing, the other two keep the camera's pace.
    let seq_before = frame_seq(&server, "cam").await;
    let span = Duration::from_millis(1000);
    let (a, b) = readers.split_at_mut(1);
    let (got_a, got_b) = tokio::join!(a[0].read_for(span), b[0].read_for(span));
    let produced = frame_seq(&server, "cam").await - seq_before;
    eprintln!("while one stream was frozen, its siblings got {got_a} and {got_b} of {produced} frames in {span:?}");
    assert!(produced >= 5, "the camera produced {produced} frames in {span:?}");
    for got in [got_a, got_b] {
        assert!(got as u64 * 10 >= produced * 7, "a sibling got {got} of {produced} frames");
    }

    // The frozen stream is reset (and uncounted) once it has taken nothing
    // for the stall timeout; the siblings stay.
    let ended = frozen.ended(Duration::from_secs(10)).await;
    let after = frozen_at.elapsed();
    eprintln!("the frozen stream was reset {after:?} after its last read: {ended:?}");
    assert_eq!(ended, Some(Ok(Some(h2::Reason::CANCEL))), "the frozen stream was reset");
    assert!(after >= Duration::from_millis(1500), "reset before the stall timeout: {after:?}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while camera_viewers(&server, "cam").await != 2 {
        assert!(Instant::now() < deadline, "the frozen viewer was not uncounted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stalled = common::metric(server.addr, "framecast_streams_stalled_total").await;
    assert_eq!(stalled, Some(1.0));
    for reader in &mut readers {
        let have = reader.parts_received;
        assert!(reader.read_parts(have + 3, Duration::from_secs(5)).await, "a sibling stopped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stream_takes_a_place_in_the_per_address_cap() {
    let _serial = common::serial();
    let server = Server::start(r#"{"max_connections_per_ip": 4}"#);
    // Its own address: the test's API calls come from 127.0.0.1.
    let conn = h2client::connect(server.addr, "127.0.0.7", 6 << 20).await;
    // The connection holds one place; three streams take the other three.
    let mut held = Vec::new();
    for _ in 0..3 {
        let (status, viewer) = conn.get("/online/capped.png").await;
        assert_eq!(status, 200);
        held.push(viewer);
    }
    let (status, _) = conn.get("/online/capped.png").await;
    assert_eq!(status, 503, "a fourth stream from the same address is over the cap");
    wait_for_viewers(server.addr, "capped", 3, Duration::from_secs(5)).await;
    // A place comes back when its stream ends.
    held.pop();
    wait_for_viewers(server.addr, "capped", 2, Duration::from_secs(2)).await;
    let (status, _viewer) = conn.get("/online/capped.png").await;
    assert_eq!(status, 200);
}

/// One HTTP/2 frame: (type, flags, stream id, payload).
type Frame = (u8, u8, u32, Vec<u8>);

async fn read_frame(tcp: &mut tokio::net::TcpStream) -> Frame {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 9];
    tcp.read_exact(&mut head).await.expect("a frame header");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.expect("a frame payload");
    (head[3], head[4], u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff, payload)
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Past `max_streams_per_connection`, HTTP/2 itself refuses the stream
/// (`RST_STREAM` with `REFUSED_STREAM`, so a client may retry it) and the
/// streams within the limit are served. Raw frames: the `h2` crate would
/// never send more streams than the server allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_per_connection_limit_are_refused() {
    let _serial = common::serial();
    use tokio::io::AsyncWriteExt;
    const HEADERS: u8 = 1;
    const RST_STREAM: u8 = 3;
    const SETTINGS: u8 = 4;
    const REFUSED_STREAM: u32 = 7;
    let server = Server::start(r#"{"max_streams_per_connection": 2, "max_connections_per_ip": 0}"#);
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    // HPACK: :method GET (static 2), :scheme http (6), then :path (4) and
    // :authority (1) as literals without indexing.
    let path = b"/online/h2limit.png";
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path);
    block.extend_from_slice(&[0x01, 1, b't']);
    for stream in [1, 3, 5] {
        out.extend(frame(HEADERS, 0x5, stream, &block)); // END_STREAM | END_HEADERS
    }
    tcp.write_all(&out).await.unwrap();
    let (mut answered, mut refused) = (Vec::new(), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.len() < 2 || refused.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (kind, flags, stream, payload) =
            tokio::time::timeout(left, read_frame(&mut tcp)).await.expect("the server answered every stream");
        match kind {
            SETTINGS if flags & 1 == 0 => tcp.write_all(&frame(SETTINGS, 1, 0, &[])).await.unwrap(),
            HEADERS => answered.push(stream),
            RST_STREAM => refused = Some((stream, u32::from_be_bytes(payload[..4].try_into().unwrap()))),
            _ => {}
        }
    }
    answered.sort_unstable(); // the server may answer them in either order
    assert_eq!(answered, [1, 3], "the streams within the limit are served");
    assert_eq!(refused, Some((5, REFUSED_STREAM)), "the third stream is refused, retryable");
    wait_for_viewers(server.addr, "h2limit", 2, Duration::from_secs(5)).await;
}

#[test]
fn a_vanished_peer_leaves_with_all_its_streams_within_the_ping_bound() {
    let _serial = common::serial();
    netns::run_inside("vanished_h2_peer_inside_namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: a_vanished_peer_leaves_with_all_its_streams_within_the_ping_bound runs it in a network namespace"]
async fn vanished_h2_peer_inside_namespace() {
    netns::enter();
    // PINGs every second, a second to answer. Everything else that could
    // notice first is set far out, so the bound measured is the PINGs'.
    let server = Server::start(
        r#"{"http2_keepalive_interval_ms": 1000, "http2_keepalive_timeout_ms": 1000,
            "resend_interval_ms": 60000, "tcp_user_timeout_ms": 60000, "write_stall_timeout_ms": 60000,
            "tcp_keepalive_idle_ms": 60000}"#,
    );
    let conn = h2client::connect(server.addr, "127.0.0.9", 6 << 20).await;
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(conn.get("/online/gone.png").await.1.unwrap());
    }
    wait_for_viewers(server.addr, "gone", 3, Duration::from_secs(5)).await;
    let start = Instant::now();
    netns::drop_packets(&["ip", "saddr", "127.0.0.9"]);
    netns::drop_packets(&["ip", "daddr", "127.0.0.9"]);
    // The promise: a PING within the interval of silence, the connection
    // closed when it is not answered within the timeout.
    let took = wait_for_viewers(server.addr, "gone", 0, Duration::from_secs(10)).await;
    eprintln!("a vanished HTTP/2 peer's 3 streams left in {took:?} (PING interval 1 s + timeout 1 s)");
    assert!(start.elapsed() <= Duration::from_millis(2000 + 1000), "left after {:?}", start.elapsed());
    drop(viewers);
}
