//! The ffmpeg source and the drop-in URLs, with Debian's real `ffmpeg`: a
//! `lavfi` test source streams decodable frames; killing ffmpeg restarts
//! it and the stream goes on; with nobody watching no ffmpeg is left; and
//! ffmpeg itself reads `/?action=stream` (mjpg-streamer's URL) while
//! `/stream` and `/snapshot` (µStreamer's) serve the default camera.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, Viewer, get};

/// ffmpeg processes whose parent is `parent`.
fn ffmpeg_children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else { continue };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm.ends_with("(ffmpeg") && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config() -> String {
    serde_json::json!({
        "camera_idle_stop_ms": 300,
        "default_camera": "lav",
        "cameras": {
            "lav": { "source": { "kind": "ffmpeg", "timeout_ms": 5000,
                "args": ["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10"] } }
        }
    })
    .to_string()
}

fn size(jpeg: &[u8]) -> (usize, usize) {
    framecast::render::jpeg::dimensions(jpeg).expect("a JPEG")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lavfi_source_streams_restarts_after_a_kill_and_stops_unwatched() {
    let server = Server::start(&config());
    assert!(ffmpeg_children(server.pid()).is_empty(), "on demand: no ffmpeg before a viewer");
    let mut viewer = Viewer::connect(server.addr, "/camera/lav.mjpg", "test").await;
    // The first part may be the "connecting" placeholder; then ffmpeg's frames.
    assert!(viewer.read_parts(5, Duration::from_secs(20)).await, "frames from ffmpeg");
    assert_eq!(size(&viewer.last().unwrap().body), (320, 240));
    let first = ffmpeg_children(server.pid());
    assert_eq!(first.len(), 1, "one ffmpeg: {first:?}");

    // Killed: restarted with backoff, and the stream goes on.
    Command::new("kill").args(["-KILL", &first[0].to_string()]).status().unwrap();
    wait_until("a new ffmpeg", Duration::from_secs(10), || {
        let now = ffmpeg_children(server.pid());
        now.len() == 1 && now != first
    });
    let seen = viewer.received.len();
    assert!(viewer.read_parts(seen + 5, Duration::from_secs(20)).await, "frames after the restart");
    assert_eq!(size(&viewer.last().unwrap().body), (320, 240));

    // Nobody watches: ffmpeg (and its group) is gone.
    let last = ffmpeg_children(server.pid());
    drop(viewer);
    wait_until("ffmpeg stopped", Duration::from_secs(10), || ffmpeg_children(server.pid()).is_empty());
    for pid in last {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie(pid), "ffmpeg {pid} still runs");
    }
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_in_urls_serve_the_default_camera() {
    let server = Server::start(&config());
    let (status, head, jpeg) = get(server.addr, "/snapshot").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(size(&jpeg), (320, 240));
    let (status, _, jpeg) = get(server.addr, "/?action=snapshot").await;
    assert_eq!((status, size(&jpeg)), (200, (320, 240)));
    let mut stream = Viewer::connect(server.addr, "/stream", "test").await;
    assert!(stream.read_parts(2, Duration::from_secs(20)).await);
    drop(stream);
    // `/` without an action is still the demo page.
    let (status, head, _) = get(server.addr, "/").await;
    assert!(status == 200 && head.to_ascii_lowercase().contains("text/html"), "{head}");

    // ffmpeg reading mjpg-streamer's URL, as pages and recorders do.
    let out = tempfile::tempdir().unwrap();
    let frame = out.path().join("f%d.jpg");
    let url = server.url("/?action=stream");
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-f", "mpjpeg", "-i", &url, "-frames:v", "3", "-c", "copy", "-y"])
        .arg(&frame)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ffmpeg (the test command installs it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ffmpeg did not read 3 frames from /?action=stream in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    for i in 1..=3 {
        assert_eq!(size(&std::fs::read(out.path().join(format!("f{i}.jpg"))).unwrap()), (320, 240));
    }
}

/// framecast SIGKILLed (no chance to clean up): its ffmpeg goes with it
/// (`PR_SET_PDEATHSIG`), instead of running on unowned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_dies_with_a_killed_framecast() {
    let server = Server::start(&config());
    let mut viewer = Viewer::connect(server.addr, "/camera/lav.mjpg", "test").await;
    assert!(viewer.read_parts(3, Duration::from_secs(20)).await, "frames from ffmpeg");
    let children = ffmpeg_children(server.pid());
    assert_eq!(children.len(), 1, "one ffmpeg: {children:?}");
    server.signal("KILL");
    let gone = |pid: u32| !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie(pid);
    wait_until("ffmpeg gone after framecast was killed", Duration::from_secs(5), || gone(children[0]));
}
