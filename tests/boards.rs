//! Boards: a grid of tiles (text, badges in any template, a room's viewer
//! count) as one live image. The picture matches `tests/golden/board.png`
//! (and `board@2x.png`); a change of one tile's input re-renders the board
//! once and every viewer gets that frame; the board's viewers are counted
//! in its own channel. Regenerate the goldens with `UPDATE_GOLDEN=1`.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Viewer, api, decode_png, get, request};

const TOKEN: &str = "board-test-token-0123456789";

const CONFIG: &str = r##"{"api_tokens": ["board-test-token-0123456789"],
    "badges": {"build": {"label": "build"}, "queue": {"label": "queue"}, "latency": {"label": "p99 ms"},
               "coverage": {"label": "coverage"}},
    "boards": {"status": {"columns": 2, "gap": 6, "background": "#f6f8fa", "tiles": [
        {"text": "Build farm"}, {"room": "lobby"},
        {"badge": "build"}, {"badge": "coverage", "template": "flat-square"},
        {"badge": "queue", "template": "counter"}, {"badge": "latency", "template": "sparkline"}]}}}"##;

async fn put(server: &Server, name: &str, body: &str) {
    let raw = format!(
        "PUT /api/v1/badges/{name} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = request(server.addr, &raw).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

fn check_golden(file: &str, png: &[u8]) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{file}.png"));
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, png).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ((gw, gh, gpx), (w, h, px)) = (decode_png(&golden), decode_png(png));
    assert_eq!((w, h), (gw, gh), "{file}: size");
    let worst = px.iter().zip(&gpx).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
    assert!(worst <= 3, "{file}: a channel differs by {worst}");
}

async fn fill(server: &Server) {
    put(server, "build", r#"{"message": "passing", "color": "brightgreen"}"#).await;
    put(server, "coverage", r#"{"message": "97%", "color": "yellow"}"#).await;
    put(server, "queue", r#"{"value": 1234}"#).await;
    for v in [120, 95, 130, 110, 90, 85, 100, 70, 65, 80] {
        put(server, "latency", &format!(r#"{{"value": {v}}}"#)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_matches_its_golden_image() {
    let server = Server::start(CONFIG);
    fill(&server).await;
    let (status, head, png) = get(server.addr, "/board/status.png?once").await;
    assert_eq!(status, 200, "{head}");
    check_golden("board", &png);
    let (status, _, png) = get(server.addr, "/board/status@2x.png?once").await;
    assert_eq!(status, 200);
    check_golden("board@2x", &png);
    // `?scale=2` is `@2x`.
    let (status, _, scaled) = get(server.addr, "/board/status.png?once&scale=2").await;
    assert_eq!(status, 200);
    assert_eq!(decode_png(&scaled), decode_png(&png), "?scale=2 draws what @2x does");
    // A forgotten UPDATE_GOLDEN=1 must not turn the checks into passing writes.
    assert!(
        !std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1"),
        "UPDATE_GOLDEN: board goldens rewritten; look at them, then run again without it"
    );
    let (status, _, body) = get(server.addr, "/board/nope.png").await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("boards: status"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_input_change_re_renders_the_board_once_for_every_viewer() {
    let server = Server::start(CONFIG);
    fill(&server).await;
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let mut v = Viewer::connect(server.addr, "/board/status.png", "framecast-test").await;
        assert!(v.read_parts(1, Duration::from_secs(5)).await);
        viewers.push(v);
    }
    assert_eq!(api(server.addr, "/api/v1/channels/board/status").await["viewers"], 3);
    // Let the joins' renders settle, then change one input.
    let settled = |seq: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = api(server.addr, "/api/v1/channels/board/status").await["frame_seq"].as_u64().unwrap();
            if now == seq || Instant::now() > deadline {
                return now;
            }
        }
    };
    let seq = api(server.addr, "/api/v1/channels/board/status").await["frame_seq"].as_u64().unwrap();
    let seq = settled(seq).await;
    put(&server, "build", r#"{"message": "failing", "color": "red"}"#).await;
    let (_, _, want) = get(server.addr, "/board/status.png?once").await;
    let want = decode_png(&want);
    for v in &mut viewers {
        v.wait_for_image(&want, Duration::from_secs(5)).await;
    }
    let after = settled(seq + 1).await;
    assert_eq!(after, seq + 1, "one change, one new frame");
    // A room tile follows the room's viewers: the board's viewers see the
    // picture with the new count (decoded), not merely some new part.
    let _reader = Viewer::connect(server.addr, "/online/lobby.png", "framecast-test").await;
    common::wait_for_viewers(server.addr, "lobby", 1, Duration::from_secs(5)).await;
    let (_, _, joined) = get(server.addr, "/board/status.png?once").await;
    let joined = decode_png(&joined);
    assert_ne!(joined, want, "the room tile shows the join");
    viewers[0].wait_for_image(&joined, Duration::from_secs(5)).await;
}
