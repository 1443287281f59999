//! One load-test viewer: connects from a given loopback source, requests the
//! live image through hyper's client, and counts parts and bytes as they
//! arrive; after a trigger, records how long its next new frame took.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use framecast::multipart::{PartReader, boundary_from_content_type};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tokio::time::Instant;

use super::{LoadConfig, Shared};

pub(super) async fn run(config: &LoadConfig, from: IpAddr, shared: &Shared) -> Result<(), String> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    // A socket bound to this viewer's own loopback source, handed to hyper.
    socket.bind(SocketAddr::new(from, 0)).map_err(|e| e.to_string())?;
    let stream = socket.connect(config.target).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    // Dropped with this viewer's task (abort): the connection closes (FIN).
    let driver = AbortOnDrop(tokio::spawn(connection));
    let request = hyper::Request::get(config.path.as_str())
        .header(HOST, config.target.to_string())
        .header(USER_AGENT, config.user_agent.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    if response.status() != hyper::StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = boundary_from_content_type(content_type).ok_or("not multipart")?;
    let mut parts = PartReader::new(&boundary, 16 << 20);
    let mut body = response.into_body();

    shared.connected.fetch_add(1, Relaxed);
    let mut state = Frames::default();
    let result = loop {
        match body.frame().await {
            None => break Err("closed by the server".to_string()),
            Some(Err(e)) => break Err(e.to_string()),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else { continue };
                parts.push(&data);
                while let Some(part) = parts.next_part() {
                    state.arrived(&part.body, shared);
                }
            }
        }
    };
    shared.connected.fetch_sub(1, Relaxed);
    drop(driver);
    result
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
