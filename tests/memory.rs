//! Memory per held viewer, plain and TLS: the figures the capacity benches
//! report, guarded here so that a regression like an earlier round's (10 ->
//! 26 KiB, unnoticed until the bench ran) fails a test. Also checks that the
//! hyper and rustls patches (`tools/*-patched`) are the crates in use: a
//! version bump that silently dropped them would cost a plain viewer ~5 KiB
//! and a TLS viewer ~10 KiB.

mod common;

use std::time::Duration;

use common::{Server, allow_open_files, wait_for_viewers};
use framecast_load::settled_rss;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// Viewers measured (above a warm-up set): enough that the RSS reading's
/// page-granular noise is a small part of the figure.
const VIEWERS: usize = 4000;
const WARM: usize = 200;
/// The goal of issues 18 (plain) and 28 (TLS). This test runs the debug
/// build; see the figures at each test.
const MAX_BYTES_PER_VIEWER: u64 = 8 * 1024;

/// A held viewer's connection: plain, or TLS.
enum Held {
    Plain(#[allow(dead_code)] TcpStream),
    Tls(#[allow(dead_code)] Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// One streaming viewer from `source`, held after its response head; over
/// TLS (HTTP/1.1 by ALPN) when `tls` is given.
async fn hold(addr: std::net::SocketAddr, source: u8, tls: Option<tokio_rustls::TlsConnector>) -> Held {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("127.0.1.{source}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let request = b"GET /online/mem.png HTTP/1.1\r\nHost: t\r\n\r\n";
    let within = Duration::from_secs(20);
    let (head, held) = match tls {
        None => {
            let mut stream = stream;
            stream.write_all(request).await.unwrap();
            let head = tokio::time::timeout(within, framecast_load::read_head(&mut stream)).await;
            (head, Held::Plain(stream))
        }
        Some(tls) => {
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let mut stream = tls.connect(name, stream).await.expect("a TLS handshake");
            stream.write_all(request).await.unwrap();
            let head = tokio::time::timeout(within, framecast_load::read_head(&mut stream)).await;
            (head, Held::Tls(Box::new(stream)))
        }
    };
    let head = head.expect("a response head within 20 s").expect("a response head before the connection closed");
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    held
}

async fn hold_many(
    addr: std::net::SocketAddr,
    n: usize,
    offset: usize,
    tls: Option<&tokio_rustls::TlsConnector>,
    into: &mut Vec<Held>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        // Spread over 100 source addresses, as the capacity bench does.
        tasks.spawn(hold(addr, 2 + ((offset + i) % 100) as u8, tls.cloned()));
        if tasks.len() >= 200 {
            into.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(stream) = tasks.join_next().await {
        into.push(stream.unwrap());
    }
}

/// Server memory per held viewer, over the warm-up set's level; TLS viewers
/// (HTTP/1.1 by ALPN, TLS 1.3, default suites) when `tls` is set.
async fn bytes_per_held_viewer(tls: bool) -> u64 {
    allow_open_files((VIEWERS + WARM + 200) as u64);
    let dir = tempfile::tempdir().unwrap();
    let pair = common::tls::Pair::new(dir.path(), "mem");
    let listener = format!(
        r#", "tls": {{"listen": "127.0.0.1:0", "cert_file": {:?}, "key_file": {:?}}}"#,
        pair.cert.display().to_string(),
        pair.key.display().to_string()
    );
    let server = Server::start(&format!(
        r#"{{"state_file": null, "max_connections_per_ip": 0, "max_connections": 10000{}}}"#,
        if tls { listener.as_str() } else { "" }
    ));
    let (addr, target) = (server.addr, if tls { server.https.unwrap() } else { server.addr });
    let connector = tls.then(|| common::tls::connector(&pair.cert, &[b"http/1.1"], false));
    let mut held = Vec::new();
    // Warm-up: one-time growth (slabs, caches, the first render) is not per viewer.
    hold_many(target, WARM, 0, connector.as_ref(), &mut held).await;
    wait_for_viewers(addr, "mem", WARM as u64, Duration::from_secs(30)).await;
    let before = settled_rss(&[server.pid()]).await;
    hold_many(target, VIEWERS, WARM, connector.as_ref(), &mut held).await;
    wait_for_viewers(addr, "mem", (WARM + VIEWERS) as u64, Duration::from_secs(30)).await;
    let after = settled_rss(&[server.pid()]).await;
    let per_viewer = after.saturating_sub(before) / VIEWERS as u64;
    let kind = if tls { "TLS" } else { "plain" };
    eprintln!(
        "{VIEWERS} held {kind} viewers: +{:.1} MiB, {per_viewer} bytes per viewer",
        (after - before) as f64 / 1048576.0
    );
    drop(held);
    per_viewer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_viewer_costs_at_most_8_kib_of_server_memory() {
    let _serial = common::serial();
    let per_viewer = bytes_per_held_viewer(false).await;
    assert!(per_viewer <= MAX_BYTES_PER_VIEWER, "{per_viewer} bytes per held viewer");
}

/// Issue 28's goal. Without the rustls patch and the read gate
/// (src/server/tls_reads.rs) a TLS viewer keeps a 4 KiB receive buffer
/// for life: 11-16 KiB per viewer, well above this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_tls_viewer_costs_at_most_8_kib_of_server_memory() {
    let _serial = common::serial();
    let per_viewer = bytes_per_held_viewer(true).await;
    assert!(per_viewer <= MAX_BYTES_PER_VIEWER, "{per_viewer} bytes per held TLS viewer");
}

/// A vendored crate (`tools/NAME-patched/NAME`) is the one built, at
/// Cargo.lock's version, with every line its patch adds.
fn assert_patched(name: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    // A [patch.crates-io] entry whose version no longer matches is ignored
    // with only a warning; then Cargo.lock names crates.io as the source.
    let lock = std::fs::read_to_string(format!("{root}/Cargo.lock")).unwrap();
    let entry = lock.split("[[package]]").find(|p| p.contains(&format!("\nname = \"{name}\"\n"))).unwrap();
    assert!(!entry.contains("source = "), "{name} comes from a registry, not tools/{name}-patched:\n{entry}");
    let dir = format!("{root}/tools/{name}-patched");
    let vendored = std::fs::read_to_string(format!("{dir}/{name}/Cargo.toml")).unwrap();
    let version = entry.lines().find_map(|l| l.strip_prefix("version = ")).unwrap();
    assert!(vendored.contains(&format!("\nversion = {version}\n")), "vendored {name} is not {version}");
    let patch = std::fs::read_to_string(format!("{dir}/idle-buffers.patch")).unwrap();
    let mut file = String::new();
    let mut added = 0;
    for line in patch.lines() {
        if let Some(path) = line.strip_prefix("+++ b/") {
            let path = path.split('\t').next().unwrap();
            file = std::fs::read_to_string(format!("{dir}/{name}/{path}")).unwrap();
        } else if let Some(new) = line.strip_prefix('+') {
            assert!(file.contains(new), "{name}: the patch's line {new:?} is not applied");
            added += 1;
        }
    }
    assert!(added > 0, "{name}: an empty patch");
}

#[test]
fn the_patched_hyper_and_rustls_are_the_ones_built() {
    let _serial = common::serial();
    assert_patched("hyper");
    assert_patched("rustls");
}
