//! Test harness: the real `framecast` binary on a free loopback port, raw TCP
//! viewers that parse the multipart stream, PNG decoding, API polling.
#![allow(dead_code)] // each test binary uses its own subset

pub mod chromium;
pub mod chunked;
pub mod h2client;
pub mod jpeg;
pub mod netns;
pub mod redis;
pub mod sign;
pub mod tls;
pub mod upstream;
pub mod watched;
pub mod webdriver;

use std::io::{BufRead, BufReader, Cursor};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use chunked::Dechunker;
use framecast::multipart::{Part, PartReader, boundary_from_content_type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTPS listener's address, when the config has `tls`.
    pub https: Option<SocketAddr>,
    _dir: tempfile::TempDir,
    /// Kept open: lines the test did not read stay in the pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// Starts `framecast` with `config` (JSON overrides) on 127.0.0.1:0.
    pub fn start(config: &str) -> Server {
        Self::start_with(Command::new(env!("CARGO_BIN_EXE_framecast")), config)
    }

    /// Starts on a given address (to restart a server where it was).
    pub fn start_on(listen: SocketAddr, config: &str) -> Server {
        Self::start_listening(Command::new(env!("CARGO_BIN_EXE_framecast")), &listen.to_string(), config, &[])
    }

    /// Starts through a wrapper command (e.g. inside a namespace).
    pub fn start_with(command: Command, config: &str) -> Server {
        Self::start_listening(command, "127.0.0.1:0", config, &[])
    }

    /// Starts with more `serve` options (`--pid-file FILE`).
    pub fn start_args(config: &str, extra: &[&str]) -> Server {
        Self::start_listening(Command::new(env!("CARGO_BIN_EXE_framecast")), "127.0.0.1:0", config, extra)
    }

    fn start_listening(mut command: Command, listen: &str, config: &str, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let json = write_config(dir.path(), config);
        let mut child = command
            .args(["serve", "--listen", listen, "--config"])
            .arg(&path)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start framecast");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("framecast listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let mut https = None;
        if json.get("tls").is_some_and(|tls| !tls.is_null()) {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            let found = line.trim().strip_prefix("framecast listening on https://");
            https = Some(found.unwrap_or_else(|| panic!("unexpected second line {line:?}")).parse().unwrap());
        }
        Server { child, addr, https, _dir: dir, _stdout: stdout }
    }

    /// Replaces the server's config file (for a reload), with the same
    /// database and state file defaults as at start.
    pub fn rewrite_config(&self, config: &str) {
        write_config(self._dir.path(), config);
    }

    /// Writes `text` as the config file as it is, valid or not.
    pub fn write_raw_config(&self, text: &str) {
        std::fs::write(self._dir.path().join("config.json"), text).unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        self.wait_exit(limit)
    }

    /// Sends a signal (`TERM`, `INT`, ...) without waiting.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Writes `config.json` in `dir`. Unless the test names one, each server
/// gets its own database in its own temp dir (never one in the checkout),
/// and no state file.
fn write_config(dir: &std::path::Path, config: &str) -> serde_json::Value {
    let mut json: serde_json::Value = serde_json::from_str(config).expect("test config is JSON");
    if let Some(map) = json.as_object_mut() {
        map.entry("database").or_insert_with(|| dir.join("framecast.db").to_string_lossy().into());
        // The default `state_file` is relative to the working directory
        // (the checkout): a file left there must never leak into a test.
        map.entry("state_file").or_insert(serde_json::Value::Null);
    }
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
    json
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request on its own connection that tolerates a dying server: whether
/// it was answered `200` (false on any error, for writers racing a kill).
pub async fn answered_ok(addr: SocketAddr, raw: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else { return false };
    if s.write_all(raw.as_bytes()).await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out.starts_with(b"HTTP/1.1 200")
}

/// A plain request on its own connection; returns status, head and body.
pub async fn request(addr: SocketAddr, raw: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all))
        .await
        .expect("response within 10 s")
        .unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, all[split + 4..].to_vec())
}

pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")).await
}

pub async fn api(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, _, body) = get(addr, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// A `200` JSON answer to a GET carrying `Authorization: Bearer TOKEN`
/// (what API token holders see: diagnostics, private resources).
pub async fn api_with_token(addr: SocketAddr, path: &str, token: &str) -> serde_json::Value {
    let raw =
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    let (status, _, body) = request(addr, &raw).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The value of one sample line in a Prometheus text exposition.
pub fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A `framecast` on a free loopback port with its logs (stderr) captured,
/// for tests that read what it logged. The config lives in `dir`, which
/// is also the working directory.
pub struct LoggedServer {
    pub child: Child,
    pub addr: SocketAddr,
    logs: Option<std::thread::JoinHandle<String>>,
    _dir: tempfile::TempDir,
}

impl LoggedServer {
    pub fn start(config: &str, env: &[(&str, &str)], extra: &[&str]) -> LoggedServer {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
            .args(["--listen", "127.0.0.1:0", "--config", "config.json"])
            .args(extra)
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start framecast");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("framecast listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let logs = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        LoggedServer { child, addr, logs: Some(logs), _dir: dir }
    }

    /// Everything it logged, once it has exited (`signal` ends it: `TERM`,
    /// `KILL`); its exit status.
    pub fn stop(mut self, signal: &str) -> (std::process::ExitStatus, String) {
        Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        (status, self.logs.take().unwrap().join().unwrap())
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tests whose bounds depend on timing, or that load the machine (hundreds
/// of sockets, browsers, several servers), take this first and hold it to
/// their end. libtest runs two tests of a binary at once, and on two cores
/// a heavy test beside a timed one makes the timed one flaky. A file lock,
/// so it also holds between test binaries run at once; tests re-run inside
/// a namespace (ignored, run by their outer test) must not take it.
pub fn serial() -> std::fs::File {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("framecast-serial.lock");
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock().expect("the serial test lock");
    file
}

/// One sample of the server's `/metrics` now.
pub async fn metric(addr: SocketAddr, name_and_labels: &str) -> Option<f64> {
    let (status, _, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    sample(&String::from_utf8_lossy(&body), name_and_labels)
}

/// Lets this test process open `want` sockets: raises the soft open-file
/// limit (the common default is 1,024) toward the hard limit.
pub fn allow_open_files(want: u64) {
    let got = rlimit::increase_nofile_limit(want).expect("raise the open-file limit");
    assert!(got >= want, "open-file limit {got} is below the {want} this test needs");
}

/// The kernel's (send, receive) queue of the TCP socket from `local_port`
/// to `remote_port` (`/proc/net/tcp` of this network namespace).
pub fn tcp_queues(local_port: u16, remote_port: u16) -> (u64, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next().unwrap_or(""), 16).ok();
    let hex = |v: &str| u64::from_str_radix(v, 16).ok();
    table
        .lines()
        .skip(1)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if port(f.get(1)?) != Some(local_port) || port(f.get(2)?) != Some(remote_port) {
                return None;
            }
            let (tx, rx) = f.get(4)?.split_once(':')?;
            Some((hex(tx)?, hex(rx)?))
        })
        .unwrap_or((0, 0))
}

/// Bytes the server has queued for the client at `client_port` and could
/// not send (the client's receive window is closed): proof that a stopped
/// reader's buffers are really full.
pub fn unsent_to(server_port: u16, client_port: u16) -> u64 {
    tcp_queues(server_port, client_port).0
}

pub async fn viewers(addr: SocketAddr, room: &str) -> u64 {
    api(addr, &format!("/api/v1/channels/online/{room}")).await["viewers"].as_u64().unwrap()
}

/// Polls the API until `room` has `want` viewers; returns how long it took.
pub async fn wait_for_viewers(addr: SocketAddr, room: &str, want: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let n = viewers(addr, room).await;
        if n == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "room {room}: {n} viewers, expected {want} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TCP connection to `server` from the loopback address `source` (127.0.0.x).
pub async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.parse().unwrap(), 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// A live viewer of `room` from `source`, with an extra header line; the
/// stream is left open until dropped.
pub async fn watch(server: SocketAddr, source: &str, room: &str, header: &str) -> TcpStream {
    let mut s = connect_from(source, server).await;
    let req = format!("GET /online/{room}.png HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\n{header}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await.expect("head in 10 s").unwrap();
        assert_eq!(n, 1, "closed before the head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    s
}

/// A live-image viewer over raw TCP.
pub struct Viewer {
    pub stream: TcpStream,
    pub head: String,
    chunks: Dechunker,
    parts: PartReader,
    /// Every part received so far, in order.
    pub received: Vec<Part>,
    /// The de-chunked body bytes so far, to check framing byte for byte.
    pub raw: Vec<u8>,
}

impl Viewer {
    pub async fn connect(addr: SocketAddr, path: &str, user_agent: &str) -> Viewer {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::start(stream, path, user_agent).await
    }

    pub async fn start(mut stream: TcpStream, path: &str, user_agent: &str) -> Viewer {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: {user_agent}\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = BytesMut::new();
        let split = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(&mut buf))
                .await
                .expect("response head within 10 s")
                .unwrap();
            assert!(n > 0, "connection closed before the response head");
        };
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        buf.advance(split + 4);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let content_type = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
            .unwrap();
        let boundary = boundary_from_content_type(&content_type).expect("a boundary");
        let mut viewer = Viewer {
            stream,
            head,
            chunks: Dechunker::default(),
            parts: PartReader::new(&boundary, 64 << 20),
            received: Vec::new(),
            raw: Vec::new(),
        };
        viewer.feed(&buf);
        viewer
    }

    fn feed(&mut self, raw: &[u8]) {
        let data = self.chunks.push(raw).expect("valid chunked coding");
        self.raw.extend_from_slice(&data);
        self.parts.push(&data);
        while let Some(part) = self.parts.next_part() {
            self.received.push(part);
        }
    }

    /// Reads until `count` parts have been received in all, or `limit` passes.
    pub async fn read_parts(&mut self, count: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        while self.received.len() < count {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.feed(&buf[..n]),
                _ => return false,
            }
        }
        true
    }

    /// Reads until the latest frame decodes to `want` (RGBA, as from
    /// `decode_png`); panics after `limit`.
    pub async fn wait_for_image(&mut self, want: &(u32, u32, Vec<u8>), limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.last().is_none_or(|p| decode_png(&p.body) != *want) {
            assert!(Instant::now() < deadline, "the expected picture never arrived");
            let have = self.received.len();
            self.read_parts(have + 1, Duration::from_millis(500)).await;
        }
    }

    /// Reads whatever arrives until the stream is quiet for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(quiet, self.stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            self.feed(&buf[..n]);
        }
    }

    /// Reads until the server closes the connection (or `limit`); whether
    /// the body ended cleanly with HTTP's last chunk before that.
    pub async fn read_until_closed(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.feed(&buf[..n]),
                Ok(_) => return self.chunks.ended,
                Err(_) => panic!("the server did not close the stream within {limit:?}"),
            }
        }
    }

    /// Reads whatever arrives for `period`.
    pub async fn read_for(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            self.feed(&buf[..n]);
        }
    }

    /// Reads until the response body ends (HTTP's last chunk; the connection
    /// may stay open for another request). Whether it ended within `limit`.
    pub async fn read_until_ended(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        while !self.chunks.ended {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.feed(&buf[..n]),
                _ => return false,
            }
        }
        true
    }

    /// One read of up to `limit`: `Some(true)` data came, `Some(false)`
    /// the server closed the connection, `None` nothing came.
    pub async fn read_some(&mut self, limit: Duration) -> Option<bool> {
        let mut buf = vec![0u8; 64 * 1024];
        match tokio::time::timeout(limit, self.stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                self.feed(&buf[..n]);
                Some(true)
            }
            Ok(_) => Some(false),
            Err(_) => None,
        }
    }

    /// Whether the body ended with HTTP's last chunk (a clean end).
    pub fn ended_cleanly(&self) -> bool {
        self.chunks.ended
    }

    pub fn last(&self) -> Option<&Part> {
        self.received.last()
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }

    /// Closes with RST instead of FIN (SO_LINGER 0).
    pub fn reset(self) {
        socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO)).unwrap();
        drop(self.stream);
    }
}

/// RGBA pixels of a PNG; panics if it does not decode.
/// Runs a tool the test command installs; its stdout, or a panic with
/// everything it printed when it fails.
pub fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?} (tests/run.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("valid PNG data");
    buf.truncate(info.buffer_size());
    assert_eq!(info.color_type, png::ColorType::Rgba);
    (info.width, info.height, buf)
}

/// The pixels the users-online badge shows for `count`, from the renderer
/// that `framecast render online` uses.
pub fn expected_badge(count: u64) -> (u32, u32, Vec<u8>) {
    let layout = framecast::render::online::builtin_online();
    decode_png(&framecast::render::online::render_online_png(&layout, count))
}

/// `framecast render people` with these numbers: the picture a people room shows.
pub fn expected_people(members: u64, guests: u64) -> (u32, u32, Vec<u8>) {
    let (members, guests) = (format!("members={members}"), format!("guests={guests}"));
    expected_render("people", &[&members, &guests])
}

/// `framecast render TEMPLATE --set KEY=VALUE...`, decoded.
pub fn expected_render(template: &str, sets: &[&str]) -> (u32, u32, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_framecast"));
    command.args(["render", template]);
    for set in sets {
        command.args(["--set", set]);
    }
    assert!(command.arg("-o").arg(&out).status().unwrap().success());
    decode_png(&std::fs::read(&out).unwrap())
}
