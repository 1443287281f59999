//! Any source ffmpeg can read (RTSP/H.264 IP cameras, files, `lavfi` test
//! sources) through Debian's `ffmpeg`: it gets the configured input
//! arguments and framecast's own output arguments (MJPEG on stdout), and
//! frames are cut from its output at the JPEG end marker. Like every source
//! it runs only while watched; it is restarted with backoff when it exits
//! or stalls, its stderr goes to the log at debug, and when the source
//! stops its whole process group is killed.

use std::process::Stdio;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout_at};

use super::slot::{Latest, Slot};
use super::source::{FrameSource, NextFrame};
use crate::config::camera::FfmpegConfig;
use crate::render::jpeg::looks_complete;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest stderr line logged (ffmpeg's are short; this bounds a bad one).
const MAX_LOG_LINE: usize = 1000;

pub struct Ffmpeg {
    slot: Slot,
    task: JoinHandle<()>,
}

impl Ffmpeg {
    /// Starts the supervising task; it and ffmpeg stop when this is dropped.
    pub fn start(config: FfmpegConfig, quality: u8) -> Ffmpeg {
        let (tx, slot) = Slot::new();
        let task = tokio::spawn(run_forever(config, quality, tx));
        Ffmpeg { slot, task }
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        // Dropping the task's future kills ffmpeg's process group (`Group`).
        self.task.abort();
    }
}

impl FrameSource for Ffmpeg {
    fn next_frame(&mut self) -> NextFrame<'_> {
        self.slot.next_frame()
    }

    fn dropped(&self) -> u64 {
        self.slot.dropped()
    }
}

/// ffmpeg's process group, killed (SIGKILL) when this is dropped: on every
/// exit path of a session, including the task being aborted.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals that process group; the
        // group is ffmpeg's own (it was started as its leader).
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

/// ffmpeg's `-q:v` (2 best … 31 worst) for a JPEG quality of 1 to 100.
fn qscale(quality: u8) -> u32 {
    2 + (100 - u32::from(quality.clamp(1, 100))) * 29 / 99
}

/// The whole command: ours around the configured input arguments.
pub fn command_line(config: &FfmpegConfig, quality: u8) -> Vec<String> {
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "warning"].map(String::from).to_vec();
    args.extend(config.args.iter().cloned());
    args.extend(["-an", "-f", "mjpeg", "-q:v"].map(String::from));
    args.push(qscale(quality).to_string());
    args.push("pipe:1".into());
    args
}

async fn run_forever(config: FfmpegConfig, quality: u8, tx: watch::Sender<Latest>) {
    let mut backoff = FIRST_BACKOFF;
    let mut frames = 0u64;
    loop {
        let before = frames;
        let reason = match session(&config, quality, &tx, &mut frames).await {
            Ok(status) => format!("ffmpeg exited ({status})"),
            Err(e) => e,
        };
        if frames > before {
            backoff = FIRST_BACKOFF;
        }
        tracing::debug!(%reason, retry_ms = backoff.as_millis() as u64, "ffmpeg source down");
        tx.send_replace(Latest::Down(reason));
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One ffmpeg run, until it exits, fails or stalls.
async fn session(
    config: &FfmpegConfig,
    quality: u8,
    tx: &watch::Sender<Latest>,
    frames: &mut u64,
) -> Result<std::process::ExitStatus, String> {
    let mut command = Command::new(&config.program);
    // SAFETY: only prctl(2), async-signal-safe, between fork and exec: ffmpeg
    // dies with framecast even when framecast is killed and cannot kill it.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .args(command_line(config, quality))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", config.program))?;
    let _group = child.id().map(|pid| Group(pid as i32));
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(log_lines(stderr));
    }
    let limit = Duration::from_millis(config.timeout_ms);
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut deadline = Instant::now() + limit;
    loop {
        let read = timeout_at(deadline, stdout.read_buf(&mut buf)).await;
        match read {
            Err(_) => return Err(format!("no frame from ffmpeg for {} ms", config.timeout_ms)),
            Ok(Err(e)) => return Err(format!("reading ffmpeg's output: {e}")),
            Ok(Ok(0)) => return child.wait().await.map_err(|e| format!("ffmpeg: {e}")),
            Ok(Ok(_)) => {}
        }
        while let Some(frame) = cut_frame(&mut buf, config.max_frame_bytes)? {
            if looks_complete(&frame) {
                deadline = Instant::now() + limit;
                *frames += 1;
                tx.send_replace(Latest::Frame(*frames, frame));
            }
        }
    }
}

/// The next whole JPEG at the front of `buf` (bytes before its start
/// marker are skipped), or `None` until more arrives. ffmpeg's MJPEG output
/// has no embedded thumbnails, so the first end marker ends the frame.
fn cut_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, String> {
    let Some(start) = memchr::memmem::find(buf, &[0xff, 0xd8]) else {
        // Keep a trailing 0xff: it may begin the next start marker.
        let keep = usize::from(buf.last() == Some(&0xff));
        let _ = buf.split_to(buf.len() - keep);
        return Ok(None);
    };
    let _ = buf.split_to(start);
    match memchr::memmem::find(&buf[2..], &[0xff, 0xd9]) {
        Some(end) => Ok(Some(buf.split_to(end + 4).freeze())),
        None if buf.len() > max => Err(format!("a frame larger than max_frame_bytes ({max})")),
        None => Ok(None),
    }
}

/// ffmpeg's stderr, a line at a time at debug; always drained, so ffmpeg
/// never blocks on a full pipe, and each line is cut at `MAX_LOG_LINE`.
async fn log_lines(mut stderr: tokio::process::ChildStderr) {
    let mut chunk = [0u8; 4096];
    let mut line = Vec::with_capacity(MAX_LOG_LINE);
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                tracing::debug!(target: "framecast::ffmpeg", "{}", String::from_utf8_lossy(&line).trim_end());
                line.clear();
            } else if line.len() < MAX_LOG_LINE {
                line.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_markers() {
        let mut buf = BytesMut::from(&b"junk\xff\xd8abc\xff\xd9\xff\xd8de"[..]);
        assert_eq!(cut_frame(&mut buf, 100).unwrap().unwrap(), Bytes::from_static(b"\xff\xd8abc\xff\xd9"));
        assert_eq!(cut_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(b"f\xff\xd9");
        assert_eq!(cut_frame(&mut buf, 100).unwrap().unwrap(), Bytes::from_static(b"\xff\xd8def\xff\xd9"));
        let mut big = BytesMut::from(&[0xff, 0xd8, 1, 2, 3, 4][..]);
        assert!(cut_frame(&mut big, 4).is_err());
        assert_eq!((qscale(100), qscale(1)), (2, 31));
    }
}
