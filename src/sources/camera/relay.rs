//! An upstream MJPEG stream (an IP camera, another framecast) relayed to any
//! number of viewers over **one** upstream connection. A task reads the
//! upstream into a latest-frame slot; it reconnects with backoff, and the
//! lenient `multipart` reader copes with missing lengths, odd boundaries,
//! junk and truncated parts.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::slot::{Latest, Slot};
use super::source::{FrameSource, NextFrame};
use crate::config::camera::MjpegConfig;
use crate::multipart::{PartReader, boundary_from_content_type};
use crate::render::jpeg::looks_complete;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub struct Relay {
    slot: Slot,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts the reader task; it stops when the relay is dropped.
    pub fn start(config: MjpegConfig) -> Relay {
        let (tx, slot) = Slot::new();
        let task = tokio::spawn(read_forever(config, tx));
        Relay { slot, task }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Nobody watches: close the upstream connection too.
        self.task.abort();
    }
}

impl FrameSource for Relay {
    fn next_frame(&mut self) -> NextFrame<'_> {
        self.slot.next_frame()
    }

    fn dropped(&self) -> u64 {
        self.slot.dropped()
    }
}

async fn read_forever(config: MjpegConfig, tx: watch::Sender<Latest>) {
    let mut backoff = FIRST_BACKOFF;
    let mut frames = 0u64;
    loop {
        let before = frames;
        let reason = match session(&config, &tx, &mut frames).await {
            Ok(()) => "the upstream ended its stream".to_string(),
            Err(e) => e,
        };
        if frames > before {
            backoff = FIRST_BACKOFF;
        }
        // The producer logs the transition to offline once; retries are debug detail.
        tracing::debug!(url = %config.url, %reason, retry_ms = backoff.as_millis() as u64, "upstream camera down");
        tx.send_replace(Latest::Down(reason));
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One upstream connection, until it fails or ends.
async fn session(config: &MjpegConfig, tx: &watch::Sender<Latest>, frames: &mut u64) -> Result<(), String> {
    let url = &config.url;
    let limit = Duration::from_millis(config.timeout_ms);
    let stream = timeout(limit, TcpStream::connect((url.host(), url.port())))
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    // Title-case header names: some embedded camera servers match them case-sensitively.
    let (mut sender, connection) = http1::Builder::new()
        .title_case_headers(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(connection);
    let _stop_driver = AbortOnDrop(driver);
    let mut request = hyper::Request::get(url.path_and_query())
        .header(HOST, url.authority())
        // Asks a framecast upstream for per-part lengths.
        .header(USER_AGENT, concat!("framecast-relay/", env!("CARGO_PKG_VERSION"), " (reader)"));
    if let Some(user) = &config.username {
        let pair = format!("{user}:{}", config.password.as_deref().unwrap_or(""));
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        request = request.header(AUTHORIZATION, format!("Basic {encoded}"));
    }
    let request = request.body(Empty::<Bytes>::new()).map_err(|e| format!("bad request: {e}"))?;
    let response = timeout(limit, sender.send_request(request))
        .await
        .map_err(|_| "no response in time".to_string())?
        .map_err(|e| format!("request failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("upstream answered {}", response.status()));
    }
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return Err(format!("upstream sent {content_type:?}, not an MJPEG (multipart) stream"));
    }
    let mut body = response.into_body();
    let mut pending = Vec::new();
    // Cameras that omit the boundary parameter: take it from the first `--` line.
    let mut reader = boundary_from_content_type(&content_type).map(|b| PartReader::new(&b, config.max_frame_bytes));
    // Silence is measured in whole frames, not bytes: an upstream that
    // trickles bytes but never completes a frame is frozen, not live.
    let mut frame_deadline = Instant::now() + limit;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = sleep_until(frame_deadline) => {
                return Err(format!("no complete frame for {} ms", config.timeout_ms));
            }
        };
        let frame = match frame {
            None => return Ok(()),
            Some(Err(e)) => return Err(format!("stream broke: {e}")),
            Some(Ok(frame)) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        let reader = match &mut reader {
            Some(reader) => {
                reader.push(&data);
                reader
            }
            None => {
                pending.extend_from_slice(&data);
                let Some(boundary) = sniff_boundary(&pending) else {
                    if pending.len() > 64 * 1024 {
                        return Err("no multipart boundary found in the upstream stream".into());
                    }
                    continue;
                };
                let mut r = PartReader::new(&boundary, config.max_frame_bytes);
                r.push(&pending);
                pending = Vec::new();
                reader.insert(r)
            }
        };
        while let Some(part) = reader.next_part() {
            // Non-JPEG parts (PNG, text) cannot go into an MJPEG stream,
            // and a truncated JPEG would show as a broken picture.
            if looks_complete(&part.body) {
                frame_deadline = Instant::now() + limit;
                *frames += 1;
                tx.send_replace(Latest::Frame(*frames, part.body));
            }
        }
    }
}

/// The boundary of a stream whose Content-Type does not give it.
fn sniff_boundary(data: &[u8]) -> Option<String> {
    let text = &data[..data.len().min(8192)];
    let start = memchr::memmem::find(text, b"--")?;
    let line_end = memchr::memchr(b'\n', &text[start..])? + start;
    let line = std::str::from_utf8(&text[start + 2..line_end]).ok()?.trim();
    (!line.is_empty() && line.len() <= 200).then(|| line.to_string())
}

struct AbortOnDrop(JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_sniffing() {
        assert_eq!(sniff_boundary(b"\r\n--myboundary\r\nContent-Type: image/jpeg\r\n"), Some("myboundary".into()));
        assert_eq!(sniff_boundary(b"--x"), None);
    }
}
