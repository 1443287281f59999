//! A real nginx (Debian's package; its own prefix, config and loopback port,
//! never the system service) in front of framecast, running the documented
//! `deploy/nginx.conf`: frames arrive without buffering delay, a stream
//! outlives `proxy_read_timeout` thanks to the resend, a viewer who
//! leaves through nginx leaves the count, and a client's own `Forwarded`
//! or `X-Forwarded-For` does not change the address it is counted under.
//! A binary upgrade moves every stream through nginx to the new process.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, Viewer, api, expected_badge, wait_for_viewers, watch};

const READ_TIMEOUT_S: u64 = 2;
const RESEND_MS: u64 = 500;

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nginx(dir: &std::path::Path, upstream: SocketAddr) -> (Nginx, SocketAddr) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let documented = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf")).unwrap();
    let site = documented
        .replace("server 127.0.0.1:8080;", &format!("server {upstream};"))
        .replace("listen 80;", &format!("listen {listen};"))
        .replace("proxy_read_timeout 120s;", &format!("proxy_read_timeout {READ_TIMEOUT_S}s;"));
    assert!(site.contains(&format!("proxy_read_timeout {READ_TIMEOUT_S}s;")), "deploy/nginx.conf changed shape");
    std::fs::write(dir.join("framecast.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/framecast.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx (Debian's package; the test command installs it)");
    let nginx = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (nginx, listen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_frames_at_once_keeps_streams_and_departures() {
    let server = Server::start(&format!(r#"{{"resend_interval_ms": {RESEND_MS}, "state_file": null}}"#));
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, proxy) = start_nginx(dir.path(), server.addr);

    let mut direct = Viewer::connect(server.addr, "/online/nginx.png", "framecast-test").await;
    let mut proxied = Viewer::connect(proxy, "/online/nginx.png", "framecast-test").await;
    wait_for_viewers(server.addr, "nginx", 2, Duration::from_secs(5)).await;
    let two = expected_badge(2);
    direct.wait_for_image(&two, Duration::from_secs(5)).await;
    proxied.wait_for_image(&two, Duration::from_secs(5)).await;

    // A third viewer joins: the new frame reaches the proxied viewer about
    // when it reaches the direct one.
    let three = std::sync::Arc::new(expected_badge(3));
    let watch = |mut v: Viewer, want: std::sync::Arc<(u32, u32, Vec<u8>)>| {
        tokio::spawn(async move {
            v.wait_for_image(&want, Duration::from_secs(5)).await;
            (Instant::now(), v)
        })
    };
    let (d, p) = (watch(direct, three.clone()), watch(proxied, three.clone()));
    let third = Viewer::connect(server.addr, "/online/nginx.png", "framecast-test").await;
    let ((at_direct, _direct), (at_proxied, mut proxied)) = (d.await.unwrap(), p.await.unwrap());
    let added = at_proxied.saturating_duration_since(at_direct);
    eprintln!("nginx added {added:?} to a frame's delivery");
    assert!(added < Duration::from_millis(50), "nginx added {added:?}");

    // Nothing changes for 3 x proxy_read_timeout; the resend keeps the stream.
    let before = proxied.received.len();
    proxied.read_parts(usize::MAX, Duration::from_secs(3 * READ_TIMEOUT_S)).await;
    let resends = proxied.received.len() - before;
    assert!(resends as u64 >= 3 * READ_TIMEOUT_S * 1000 / RESEND_MS / 2, "only {resends} resends through nginx");
    let mut probe = [0u8; 1];
    let open = tokio::time::timeout(Duration::from_millis(RESEND_MS * 3), proxied.stream.peek(&mut probe)).await;
    assert!(matches!(open, Ok(Ok(1))), "nginx cut the stream: {open:?}");

    // Leaving through nginx leaves the count.
    drop(proxied);
    let took = wait_for_viewers(server.addr, "nginx", 2, Duration::from_secs(5)).await;
    eprintln!("a departure through nginx reached framecast after {took:?}");
    drop(third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_choose_its_counted_address_through_nginx() {
    let config = r#"{"trusted_proxies": ["127.0.0.1"], "max_connections_per_ip": 0, "state_file": null}"#;
    let server = Server::start(config);
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, proxy) = start_nginx(dir.path(), server.addr);
    // Two clients (127.0.0.5 and .6, as nginx sees them); the first sends
    // every header it likes, naming a different address each time.
    let forged = [
        "Forwarded: for=198.51.100.1\r\n",
        "Forwarded: for=198.51.100.2\r\nX-Forwarded-For: 198.51.100.3\r\n",
        "X-Forwarded-For: 198.51.100.4, 198.51.100.5\r\n",
    ];
    let mut streams = Vec::new();
    for header in forged {
        streams.push(watch(proxy, "127.0.0.5", "forged", header).await);
    }
    streams.push(watch(proxy, "127.0.0.6", "forged", "").await);
    wait_for_viewers(server.addr, "forged", 4, Duration::from_secs(5)).await;
    let room = api(server.addr, "/api/v1/channels/online/forged").await;
    assert_eq!(room["stats"]["unique_today"], 2, "{room}");
}

/// A binary upgrade with nginx in front: nginx's connections to framecast
/// are plain HTTP/1.1, so every stream through it moves to the new process
/// and goes on, counted once, with nothing for nginx to notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_through_nginx_move_in_an_upgrade() {
    use common::watched::{wait_until, watch as watch_all};
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("framecast.pid");
    let config =
        format!(r#"{{"resend_interval_ms": {RESEND_MS}, "max_connections_per_ip": 0, "rooms": {{"lobby": {{}}}}}}"#);
    let mut server = Server::start_args(&config, &["--pid-file", pid_file.to_str().unwrap()]);
    let (_nginx, front) = start_nginx(dir.path(), server.addr);
    let mut tasks = tokio::task::JoinSet::new();
    let viewers = watch_all(&mut tasks, front, "/online/lobby.png", 20).await;
    wait_for_viewers(server.addr, "lobby", 20, Duration::from_secs(20)).await;
    let old_pid = server.pid();
    let read_pid = || std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok());
    wait_until("the pid file", Duration::from_secs(10), || read_pid() == Some(old_pid)).await;
    server.signal("USR2");
    let deadline = Instant::now() + Duration::from_secs(60);
    let new_pid = loop {
        match read_pid() {
            Some(pid) if pid != old_pid => break pid,
            _ => assert!(Instant::now() < deadline, "the new process never took over"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    struct KillPid(u32);
    impl Drop for KillPid {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
        }
    }
    let _new = KillPid(new_pid);
    assert!(server.wait_exit(Duration::from_secs(30)).is_some(), "every stream through nginx moved");
    let before: Vec<usize> = viewers.iter().map(|w| w.parts()).collect();
    wait_until("parts from the new process through nginx", Duration::from_secs(20), || {
        viewers.iter().zip(&before).all(|(w, b)| w.parts() > *b)
    })
    .await;
    assert!(viewers.iter().all(|w| !w.closed()), "nginx kept every stream");
    assert_eq!(api(server.addr, "/api/v1/channels/online/lobby").await["viewers"], 20);
    tasks.abort_all();
}
