//! Binary upgrade (SIGUSR2) against the running binary: 1,000 raw-TCP
//! viewers on a room, a camera, a badge and a board move to the new process
//! at a part boundary. None disconnects, each gets its next part from the
//! new process (framing checked byte for byte by the readers), the count is
//! exact at every 50 ms sample through the switch, and a value written
//! after it reaches every viewer. A new binary that cannot start changes
//! nothing.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::watched::{Watched, wait_until, watch};
use common::{Server, Viewer, allow_open_files, decode_png, get, request};

const TOKEN: &str = "upgrade-test-token-0123456789";
/// The room's sessions started today.
const SESSIONS: &str = "framecast_room_sessions_today{room=\"lobby\"}";

fn config() -> serde_json::Value {
    serde_json::json!({
        "api_tokens": [TOKEN],
        "resend_interval_ms": 1000,
        "max_connections_per_ip": 0,
        "rooms": { "lobby": {} },
        "badges": { "build": { "label": "build" } },
        "cameras": { "door": { "source": { "kind": "pattern", "width": 160, "height": 90, "fps": 4 } } },
        "boards": { "ops": { "columns": 1, "tiles": [{ "text": "ops" }, { "room": "lobby" }] } }
    })
}

/// Kills a process by id when dropped (the new process is not the test's
/// child), also when the test fails.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
    }
}

fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

async fn lobby_viewers(addr: SocketAddr) -> Option<u64> {
    let (status, _, body) = get(addr, "/api/v1/channels/online/lobby").await;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    (status == 200).then(|| json["viewers"].as_u64()).flatten()
}

/// A TLS HTTP/1.1 connection that asked for `path`.
async fn tls_get(https: SocketAddr, cert: &Path, path: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut stream = common::tls::connect(https, cert, &[b"http/1.1"]).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The lobby's count every 50 ms, until the task is aborted.
type Samples = Arc<Mutex<Vec<Option<u64>>>>;

fn sample_lobby(addr: SocketAddr) -> (Samples, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let kept = samples.clone();
    let sampling = tokio::spawn(async move {
        loop {
            let seen = lobby_viewers(addr).await;
            kept.lock().unwrap().push(seen);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (samples, sampling)
}

async fn write_build(addr: SocketAddr, message: &str) -> u16 {
    let body = serde_json::json!({ "message": message }).to_string();
    let raw = format!(
        "PUT /api/v1/badges/build HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    request(addr, &raw).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_moves_every_plain_stream_and_the_count_stays_exact() {
    let _serial = common::serial();
    allow_open_files(4096);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("framecast.pid");
    let mut server = Server::start_args(&config().to_string(), &["--pid-file", pid_file.to_str().unwrap()]);
    let addr = server.addr;
    let old_pid = server.pid();
    // Written once it serves (just after the line the harness read).
    wait_until("the pid file", Duration::from_secs(10), || pid_in(&pid_file) == Some(old_pid)).await;
    let mut tasks = tokio::task::JoinSet::new();
    let lobby = watch(&mut tasks, addr, "/online/lobby.png", 600).await;
    let door = watch(&mut tasks, addr, "/camera/door.mjpg", 200).await;
    let build = watch(&mut tasks, addr, "/badge/build.png", 100).await;
    let ops = watch(&mut tasks, addr, "/board/ops.png", 100).await;
    let everyone: Vec<&Arc<Watched>> = [&lobby, &door, &build, &ops].into_iter().flatten().collect();
    assert_eq!(everyone.len(), 1000);
    wait_until("every viewer's first part", Duration::from_secs(30), || everyone.iter().all(|w| w.parts() > 0)).await;
    common::wait_for_viewers(addr, "lobby", 600, Duration::from_secs(20)).await;

    // The count, every 50 ms, through the switch.
    let (samples, sampling) = sample_lobby(addr);
    let parts_before: Vec<usize> = everyone.iter().map(|w| w.parts()).collect();
    assert_eq!(common::metric(addr, SESSIONS).await, Some(600.0));
    let started = Instant::now();
    server.signal("USR2");
    let deadline = Instant::now() + Duration::from_secs(60);
    let new_pid = loop {
        match pid_in(&pid_file) {
            Some(pid) if pid != old_pid => break pid,
            _ => assert!(Instant::now() < deadline, "the new process never wrote the pid file"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _new = KillOnDrop(new_pid);
    let status = server.wait_exit(Duration::from_secs(30)).expect("the old process exits once its streams moved");
    assert!(status.success(), "the old process exits cleanly: {status}");
    let switched = started.elapsed();
    // Every viewer gets parts from the new process and none left.
    wait_until("every viewer's next part from the new process", Duration::from_secs(20), || {
        everyone.iter().zip(&parts_before).all(|(w, before)| w.parts() > *before)
    })
    .await;
    assert!(everyone.iter().all(|w| !w.closed()), "no viewer was disconnected");
    tokio::time::sleep(Duration::from_millis(200)).await;
    sampling.abort();
    let samples = samples.lock().unwrap().clone();
    eprintln!("upgrade: old process gone {switched:?} after SIGUSR2; {} samples", samples.len());
    assert!(samples.len() >= 5, "{samples:?}");
    assert!(samples.iter().all(|s| *s == Some(600)), "the count at every sample through the switch: {samples:?}");

    // A value written after the upgrade reaches every viewer.
    assert_eq!(write_build(addr, "deployed").await, 200);
    let (status, _, now) = get(addr, "/badge/build.png?once").await;
    assert_eq!(status, 200);
    let want = decode_png(&now);
    wait_until("the new value on every build viewer", Duration::from_secs(20), || {
        build.iter().all(|w| decode_png(&w.last()) == want)
    })
    .await;
    // A moved viewer's room session goes on: none started, none ended.
    assert_eq!(common::metric(addr, SESSIONS).await, Some(600.0), "a moved viewer is no new session");
    // The new process answers new viewers too, counted with the moved ones.
    let _late = Viewer::connect(addr, "/online/lobby.png", "late").await;
    common::wait_for_viewers(addr, "lobby", 601, Duration::from_secs(20)).await;

    // A second upgrade moves the moved streams on again.
    let parts_before: Vec<usize> = everyone.iter().map(|w| w.parts()).collect();
    std::process::Command::new("kill").args(["-USR2", &new_pid.to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let third_pid = loop {
        match pid_in(&pid_file) {
            Some(pid) if pid != new_pid => break pid,
            _ => assert!(Instant::now() < deadline, "the third process never wrote the pid file"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _third = KillOnDrop(third_pid);
    let proc_dir = format!("/proc/{new_pid}");
    wait_until("the second process exits", Duration::from_secs(30), || {
        std::fs::read_to_string(format!("{proc_dir}/stat")).map_or(true, |stat| stat.contains(") Z "))
    })
    .await;
    wait_until("every viewer's next part from the third process", Duration::from_secs(20), || {
        everyone.iter().zip(&parts_before).all(|(w, before)| w.parts() > *before)
    })
    .await;
    assert!(everyone.iter().all(|w| !w.closed()), "no viewer was disconnected by the second upgrade");
    assert_eq!(lobby_viewers(addr).await, Some(601));
    assert_eq!(common::metric(addr, SESSIONS).await, Some(601.0), "a moved viewer is no new session");
    tasks.abort_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_binary_that_cannot_start_changes_nothing() {
    let _serial = common::serial();
    let server = Server::start(&config().to_string());
    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    let lobby = watch(&mut tasks, addr, "/online/lobby.png", 20).await;
    let door = watch(&mut tasks, addr, "/camera/door.mjpg", 5).await;
    common::wait_for_viewers(addr, "lobby", 20, Duration::from_secs(20)).await;
    // The new process reads the same config file: made unreadable, it exits at start.
    server.write_raw_config("{ not json");
    let parts_before: Vec<usize> = lobby.iter().chain(&door).map(|w| w.parts()).collect();
    server.signal("USR2");
    // The old process notices, serves on, and takes writes again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while write_build(addr, "still here").await != 200 {
        assert!(Instant::now() < deadline, "writes never came back after the failed upgrade");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until("every viewer's next part, from the same process", Duration::from_secs(20), || {
        lobby.iter().chain(&door).zip(&parts_before).all(|(w, before)| w.parts() > *before)
    })
    .await;
    assert!(lobby.iter().chain(&door).all(|w| !w.closed()), "no viewer was disconnected");
    assert_eq!(lobby_viewers(addr).await, Some(20));
    // It still accepts.
    let _late = Viewer::connect(addr, "/online/lobby.png", "late").await;
    common::wait_for_viewers(addr, "lobby", 21, Duration::from_secs(20)).await;
    tasks.abort_all();
}

/// The new process's child pid, once the old one started it.
fn child_of(pid: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let children = std::fs::read_to_string(task.path().join("children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    })
}

/// How many sockets a process holds.
fn sockets_of(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
        .count()
}

/// A new process killed half-way through the move (it took 100 of 300
/// streams, then stopped reading: the `failpoints` feature) costs no
/// viewer: the old process kept every socket until the new one would have
/// said it took them, so each stream goes on there with its next part, the
/// count never moves, and the old process accepts and takes writes again.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_killed_half_way_leaves_every_stream_served() {
    let _serial = common::serial();
    allow_open_files(2048);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_framecast"));
    // The new process's reader takes its first report and 100 streams, then stops.
    command.env("FAILPOINTS", "upgrade-receive=101*off->pause");
    let server = Server::start_with(command, &config().to_string());
    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    let lobby = watch(&mut tasks, addr, "/online/lobby.png", 250).await;
    let door = watch(&mut tasks, addr, "/camera/door.mjpg", 50).await;
    let everyone: Vec<&Arc<Watched>> = lobby.iter().chain(&door).collect();
    wait_until("every viewer's first part", Duration::from_secs(30), || everyone.iter().all(|w| w.parts() > 0)).await;
    common::wait_for_viewers(addr, "lobby", 250, Duration::from_secs(20)).await;
    let (samples, sampling) = sample_lobby(addr);

    server.signal("USR2");
    let mut new_pid = None;
    wait_until("the new process", Duration::from_secs(30), || {
        new_pid = child_of(server.pid());
        new_pid.is_some()
    })
    .await;
    let new_pid = new_pid.unwrap();
    let _new = KillOnDrop(new_pid);
    // Half-way: it holds the first 100 streams' sockets and reads no more.
    wait_until("100 streams in the new process", Duration::from_secs(30), || sockets_of(new_pid) >= 100).await;
    assert!(sockets_of(new_pid) < 250, "the move stopped half-way");
    let parts_before: Vec<usize> = everyone.iter().map(|w| w.parts()).collect();
    std::process::Command::new("kill").args(["-KILL", &new_pid.to_string()]).status().unwrap();

    // Every stream goes on in the old process: the next part, same framing.
    wait_until("every viewer's next part, from the old process", Duration::from_secs(30), || {
        everyone.iter().zip(&parts_before).all(|(w, before)| w.parts() > *before)
    })
    .await;
    assert!(everyone.iter().all(|w| !w.closed()), "no viewer was disconnected");
    // It accepts again and takes writes again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while write_build(addr, "still here").await != 200 {
        assert!(Instant::now() < deadline, "writes never came back after the new process died");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _late = Viewer::connect(addr, "/online/lobby.png", "late").await;
    common::wait_for_viewers(addr, "lobby", 251, Duration::from_secs(20)).await;
    sampling.abort();
    let samples = samples.lock().unwrap().clone();
    let before_late: Vec<_> = samples.iter().filter(|s| **s != Some(251)).collect();
    assert!(before_late.len() >= 3, "{samples:?}");
    assert!(before_late.iter().all(|s| **s == Some(250)), "the count at every sample: {samples:?}");
    assert!(everyone.iter().all(|w| !w.closed()), "no viewer was disconnected");
    tasks.abort_all();
}

/// Streams that cannot move (TLS, HTTP/2) stay with the old process, which
/// serves them until they end; meanwhile each process counts the other's
/// viewers, so the count is the whole audience's wherever it is read. The
/// old process exits once its last stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_cannot_move_stay_with_the_old_process_and_are_counted() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use tokio::io::AsyncReadExt;
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let pair = common::tls::Pair::new(dir.path(), "cert");
    let mut json = config();
    json["tls"] = serde_json::json!({ "listen": "127.0.0.1:0", "cert_file": pair.cert, "key_file": pair.key });
    // Short, so that a process that stopped serving what stayed would show.
    json["shutdown_timeout_ms"] = 1000.into();
    let pid_file = dir.path().join("framecast.pid");
    let mut server = Server::start_args(&json.to_string(), &["--pid-file", pid_file.to_str().unwrap()]);
    let (addr, https) = (server.addr, server.https.unwrap());
    let mut plain_tasks = tokio::task::JoinSet::new();
    let plain = watch(&mut plain_tasks, addr, "/online/lobby.png", 5).await;
    let mut staying = tokio::task::JoinSet::new();
    // Ten TLS HTTP/1.1 viewers and ten HTTP/2 (h2c) streams, as the issue asks: bytes and parts counted.
    let tls_bytes: Vec<Arc<AtomicUsize>> = (0..10).map(|_| Arc::default()).collect();
    for counter in &tls_bytes {
        let mut stream = tls_get(https, &pair.cert, "/online/lobby.png").await;
        let counter = counter.clone();
        staying.spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                counter.fetch_add(n, SeqCst);
            }
        });
    }
    // And one of each on a badge: what stays shows the new process's frames.
    let tls_badge = Arc::new(Mutex::new(Vec::new()));
    {
        let mut stream = tls_get(https, &pair.cert, "/badge/build.png").await;
        let last = tls_badge.clone();
        staying.spawn(async move {
            let (mut raw, mut head_done) = (Vec::new(), false);
            let mut dechunker = common::chunked::Dechunker::default();
            let mut parts = framecast::multipart::PartReader::new(framecast::push::part::BOUNDARY, 64 << 20);
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                raw.extend_from_slice(&buf[..n]);
                if !head_done {
                    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    raw.drain(..end + 4);
                    head_done = true;
                }
                let body = dechunker.push(&raw).expect("chunked framing");
                raw.clear();
                parts.push(&body);
                while let Some(part) = parts.next_part() {
                    *last.lock().unwrap() = part.body.to_vec();
                }
            }
        });
    }
    let conn = common::h2client::connect(addr, "127.0.0.1", 6 << 20).await;
    let h2_badge = Arc::new(Mutex::new(Vec::new()));
    {
        let (status, viewer) = conn.get("/badge/build.png").await;
        assert_eq!(status, 200);
        let (mut viewer, last) = (viewer.unwrap(), h2_badge.clone());
        staying.spawn(async move {
            loop {
                viewer.read_for(Duration::from_millis(100)).await;
                if let Some(part) = &viewer.last {
                    *last.lock().unwrap() = part.to_vec();
                }
            }
        });
    }
    let h2_parts: Vec<Arc<AtomicUsize>> = (0..10).map(|_| Arc::default()).collect();
    for counter in &h2_parts {
        let (status, viewer) = conn.get("/online/lobby.png").await;
        assert_eq!(status, 200);
        let (mut viewer, counter) = (viewer.unwrap(), counter.clone());
        staying.spawn(async move {
            loop {
                counter.fetch_add(viewer.read_for(Duration::from_millis(200)).await, SeqCst);
            }
        });
    }
    common::wait_for_viewers(addr, "lobby", 25, Duration::from_secs(20)).await;

    let old_pid = server.pid();
    wait_until("the pid file", Duration::from_secs(10), || pid_in(&pid_file) == Some(old_pid)).await;
    server.signal("USR2");
    let deadline = Instant::now() + Duration::from_secs(60);
    let new_pid = loop {
        match pid_in(&pid_file) {
            Some(pid) if pid != old_pid => break pid,
            _ => assert!(Instant::now() < deadline, "the new process never wrote the pid file"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _new = KillOnDrop(new_pid);
    // The new process answers now, counting the twenty that stayed.
    for _ in 0..10 {
        assert_eq!(lobby_viewers(addr).await, Some(25), "the whole audience, counted by the new process");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The relay that draws for what stayed is no session.
    assert_eq!(common::metric(addr, SESSIONS).await, Some(25.0));
    // Well past `shutdown_timeout_ms`: the old process still serves what stayed.
    assert!(server.wait_exit(Duration::from_secs(3)).is_none(), "the old process still serves what stayed");
    // What stayed goes on (resends every second).
    let tls_before: Vec<usize> = tls_bytes.iter().map(|c| c.load(SeqCst)).collect();
    let h2_before: Vec<usize> = h2_parts.iter().map(|c| c.load(SeqCst)).collect();
    wait_until("parts on the streams that stayed", Duration::from_secs(20), || {
        tls_bytes.iter().zip(&tls_before).all(|(c, b)| c.load(SeqCst) > *b)
            && h2_parts.iter().zip(&h2_before).all(|(c, b)| c.load(SeqCst) > *b)
    })
    .await;
    assert!(plain.iter().all(|w| !w.closed()));
    // A value written to the new process reaches the badge streams that
    // stayed with the old one: the new process's frame, relayed.
    assert_eq!(write_build(addr, "relayed").await, 200);
    let (status, _, now) = get(addr, "/badge/build.png?once").await;
    assert_eq!(status, 200);
    let want = decode_png(&now);
    wait_until("the new value on the badge streams that stayed", Duration::from_secs(20), || {
        let (tls, h2) = (tls_badge.lock().unwrap().clone(), h2_badge.lock().unwrap().clone());
        !tls.is_empty() && !h2.is_empty() && decode_png(&tls) == want && decode_png(&h2) == want
    })
    .await;
    // They end: the old process exits, and the count follows.
    staying.abort_all();
    drop(conn);
    let status = server.wait_exit(Duration::from_secs(30)).expect("the old process exits after its last stream");
    assert!(status.success(), "{status}");
    common::wait_for_viewers(addr, "lobby", 5, Duration::from_secs(20)).await;
    plain_tasks.abort_all();
}
