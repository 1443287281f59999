//! One load-test viewer: connects from a given loopback source, requests the
//! live image, and counts parts and bytes as they arrive; after a trigger,
//! records how long its next new frame took.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;

use super::chunked::Dechunker;
use super::{LoadConfig, Shared};
use crate::multipart::{PartReader, boundary_from_content_type};

const MAX_HEAD: usize = 16 * 1024;

pub(super) async fn run(config: &LoadConfig, from: IpAddr, shared: &Shared) -> Result<(), String> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    socket.bind(SocketAddr::new(from, 0)).map_err(|e| e.to_string())?;
    let mut stream = socket.connect(config.target).await.map_err(|e| e.to_string())?;
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n\r\n", config.path, config.target, config.user_agent);
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;

    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    let split = loop {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 || head.len() > MAX_HEAD {
            return Err("no response head".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let text = String::from_utf8_lossy(&head[..split]).to_ascii_lowercase();
    if !text.starts_with("http/1.1 200") {
        return Err(text.lines().next().unwrap_or("").to_string());
    }
    let header = |name: &str| text.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
    let boundary = header("content-type:").and_then(|ct| boundary_from_content_type(&ct)).ok_or("not multipart")?;
    let mut chunks = header("transfer-encoding:").filter(|te| te.contains("chunked")).map(|_| Dechunker::default());
    let mut parts = PartReader::new(&boundary, 16 << 20);

    shared.connected.fetch_add(1, Relaxed);
    let mut state = Frames::default();
    let mut data = head[split + 4..].to_vec();
    let result = loop {
        let payload = match chunks.as_mut() {
            Some(d) => match d.push(&data) {
                Ok(p) => p,
                Err(e) => break Err(e),
            },
            None => std::mem::take(&mut data),
        };
        parts.push(&payload);
        while let Some(part) = parts.next_part() {
            state.arrived(&part.body, shared);
        }
        match stream.read(&mut buf).await {
            Ok(0) => break Err("closed by the server".into()),
            Ok(n) => data = buf[..n].to_vec(),
            Err(e) => break Err(e.to_string()),
        }
    };
    shared.connected.fetch_sub(1, Relaxed);
    result
}

/// What this viewer has seen: the last frame's hash, the last trigger timed.
#[derive(Default)]
struct Frames {
    last_hash: u64,
    timed_trigger: u64,
}

impl Frames {
    fn arrived(&mut self, body: &[u8], shared: &Shared) {
        shared.parts.fetch_add(1, Relaxed);
        shared.bytes.fetch_add(body.len() as u64, Relaxed);
        let mut h = DefaultHasher::new();
        body.hash(&mut h);
        let hash = h.finish();
        if hash == self.last_hash {
            return; // a resend, not a new frame
        }
        self.last_hash = hash;
        let trigger = *shared.trigger.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, at)) = trigger.filter(|(id, _)| *id > self.timed_trigger) {
            self.timed_trigger = id;
            shared.samples.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now() - at);
        }
    }
}
