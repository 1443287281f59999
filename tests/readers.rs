//! Real MJPEG readers against a framecast camera: ffmpeg (`-f mpjpeg`) and
//! OpenCV (`cv2.VideoCapture`). Each frame must arrive without waiting for
//! the next: a still camera's single frame is read long before the resend
//! that would otherwise be needed to complete it. `tests/run.sh` installs
//! ffmpeg (apt) and OpenCV (pip, into target/pyenv).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;
use common::jpeg::{decoded, mean};

/// A pattern camera and a still (file) camera whose next part would only
/// come with the resend, a minute later.
fn server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.jpg");
    std::fs::write(&still, still_jpeg()).unwrap();
    let config = serde_json::json!({
        "resend_interval_ms": 60000,
        "cameras": {
            "pattern": { "source": { "kind": "pattern", "width": 320, "height": 180, "fps": 15 } },
            "still": { "source": { "kind": "file", "path": still } }
        }
    });
    (Server::start(&config.to_string()), dir)
}

/// A textured 320x180 still. (OpenCV probes the input format on 2 KB of
/// data first: a tiny solid-colour JPEG of a few hundred bytes, sent once,
/// would stall that probe in any server.)
fn still_jpeg() -> Vec<u8> {
    let pixmap = framecast::render::pattern::draw_pattern(320, 180, 1.0, 7, std::time::SystemTime::UNIX_EPOCH);
    framecast::render::jpeg::encode_pixmap(&pixmap, 90)
}

/// Runs `command`, killing it after `limit`; returns its output and how long it took.
fn run(mut command: Command, limit: Duration) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (tests/run.sh installs it)"));
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{command:?} did not finish within {limit:?}: a frame waited for the next part");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

#[test]
fn ffmpeg_reads_frames_as_they_come() {
    let (server, _dir) = server();
    let out = tempfile::tempdir().unwrap();
    let ffmpeg = |path: &str, frames: &str, output: &std::path::Path| {
        let mut ffmpeg = Command::new("ffmpeg");
        ffmpeg.args(["-nostdin", "-loglevel", "error", "-f", "mpjpeg", "-i", &server.url(path)]);
        ffmpeg.args(["-frames:v", frames, "-c", "copy", "-y"]).arg(output);
        let (result, took) = run(ffmpeg, Duration::from_secs(20));
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        took
    };
    ffmpeg("/camera/pattern.mjpg", "5", &out.path().join("p%d.jpg"));
    for i in 1..=5 {
        let image = decoded(&std::fs::read(out.path().join(format!("p{i}.jpg"))).unwrap());
        assert_eq!((image.width, image.height), (320, 180));
    }

    // One still frame: done at once, not after the resend a minute later.
    let still = out.path().join("still.jpg");
    let took = ffmpeg("/camera/still.mjpg", "1", &still);
    assert_eq!(std::fs::read(&still).unwrap(), still_jpeg(), "the still frame, byte for byte");
    eprintln!("ffmpeg read the still camera's only frame in {took:?}");
}

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python3");
    assert!(python.exists(), "{} is missing: tests/run.sh creates it with OpenCV", python.display());
    python
}

const OPENCV_READ: &str = r#"
import sys, cv2
cap = cv2.VideoCapture(sys.argv[1])
assert cap.isOpened(), "VideoCapture did not open " + sys.argv[1]
for i in range(int(sys.argv[2])):
    ok, frame = cap.read()
    assert ok, "frame %d not read" % i
    h, w, _ = frame.shape
    b, g, r = [int(c) for c in frame.mean(axis=(0, 1))]
    print(w, h, r, g, b)
"#;

#[test]
fn opencv_reads_frames_as_they_come() {
    let (server, _dir) = server();
    let read = |path: &str, frames: &str| {
        let mut cmd = Command::new(python());
        cmd.args(["-c", OPENCV_READ, &server.url(path), frames]);
        let (output, took) = run(cmd, Duration::from_secs(30));
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        (String::from_utf8(output.stdout).unwrap(), took)
    };
    let (lines, _) = read("/camera/pattern.mjpg", "5");
    assert_eq!(lines.lines().count(), 5);
    assert!(lines.lines().all(|l| l.starts_with("320 180 ")), "{lines}");
    let (line, took) = read("/camera/still.mjpg", "1");
    let v: Vec<i64> = line.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(&v[..2], &[320, 180], "{line}");
    // The mean colour OpenCV saw matches the still's.
    let want = mean(&still_jpeg());
    assert!((0..3).all(|c| (v[2 + c] - want[c] as i64).abs() <= 4), "{line} vs {want:?}");
    eprintln!("OpenCV read the still camera's only frame in {took:?}");
}
