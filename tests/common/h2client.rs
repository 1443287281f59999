//! A raw HTTP/2 client (the `h2` crate) holding live images as streams on
//! one connection, with control over flow control: a stream that is not
//! read does not give its window back, as a frozen client would.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use framecast::multipart::{PartReader, boundary_from_content_type};
use h2::RecvStream;
use h2::client::SendRequest;
use tokio::net::{TcpSocket, TcpStream};

pub struct H2Connection {
    pub send: SendRequest<Bytes>,
    pub driver: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

impl Drop for H2Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// An h2c (prior knowledge) connection from `source` (an address on lo),
/// with Chromium's windows: 6 MB per stream, 15 MB per connection, unless
/// `stream_window` says otherwise.
pub async fn connect(addr: SocketAddr, source: &str, stream_window: u32) -> H2Connection {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp: TcpStream = socket.connect(addr).await.unwrap();
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(stream_window)
        .initial_connection_window_size(15 << 20)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("h2 handshake");
    H2Connection { send, driver: tokio::spawn(conn) }
}

pub struct H2Viewer {
    pub body: RecvStream,
    parts: PartReader,
    pub parts_received: usize,
    /// The newest part's body.
    pub last: Option<Bytes>,
}

impl H2Connection {
    /// Opens `path`; the response status and, for a 200, the viewer.
    pub async fn get(&self, path: &str) -> (u16, Option<H2Viewer>) {
        let mut send = self.send.clone().ready().await.expect("connection ready");
        let req = hyper::Request::get(format!("http://test{path}"))
            .header("user-agent", "Mozilla/5.0 framecast-test")
            .body(())
            .unwrap();
        let (response, _) = send.send_request(req, true).expect("request sent");
        let response = tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("response head within 10 s")
            .expect("response");
        let status = response.status().as_u16();
        if status != 200 {
            return (status, None);
        }
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        let boundary = boundary_from_content_type(&content_type).expect("a multipart response");
        let viewer = H2Viewer {
            body: response.into_body(),
            parts: PartReader::new(&boundary, 64 << 20),
            parts_received: 0,
            last: None,
        };
        (status, Some(viewer))
    }
}

impl H2Viewer {
    /// Reads (and gives the window back) until `count` parts in all, or
    /// `limit`; whether they arrived.
    pub async fn read_parts(&mut self, count: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.parts_received < count {
            match tokio::time::timeout_at(deadline, self.body.data()).await {
                Ok(Some(Ok(data))) => self.feed(&data),
                _ => return false,
            }
        }
        true
    }

    /// Reads whatever arrives for `span`; the parts received in it.
    pub async fn read_for(&mut self, span: Duration) -> usize {
        let before = self.parts_received;
        let deadline = tokio::time::Instant::now() + span;
        while let Ok(Some(Ok(data))) = tokio::time::timeout_at(deadline, self.body.data()).await {
            self.feed(&data);
        }
        self.parts_received - before
    }

    /// Waits until the server ends this stream (a reset or an end); the
    /// reset's reason if it was one.
    pub async fn ended(&mut self, limit: Duration) -> Option<Result<Option<h2::Reason>, ()>> {
        // Without reading, a reset still surfaces through `data()`, after
        // what was buffered: drain without giving the window back.
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.body.data()).await {
                Err(_) => return None,
                Ok(None) => return Some(Ok(None)),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Some(e.reason().map(Some).ok_or(())),
            }
        }
    }

    fn feed(&mut self, data: &Bytes) {
        let _ = self.body.flow_control().release_capacity(data.len());
        self.parts.push(data);
        while let Some(part) = self.parts.next_part() {
            self.parts_received += 1;
            self.last = Some(part.body);
        }
    }
}
