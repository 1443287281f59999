//! Automatic certificates against a real ACME CA: Debian's `pebble` on
//! loopback, validating with TLS-ALPN-01 on framecast's own HTTPS port. A
//! certificate is issued and served; after a restart it is reused from the
//! cache (the CA is down by then); a cached certificate due for renewal is
//! renewed at startup and the new one served.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use common::tls::{Pair, connect};

/// A pebble process, killed on drop (also when the test fails).
struct Pebble {
    child: Child,
    management: SocketAddr,
    pub directory: String,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pebble {
    /// Starts pebble with its own HTTPS certificate `own`, validating
    /// TLS-ALPN-01 challenges on `tls_port`.
    /// Its directory is on `listen` (the same across restarts: the cache
    /// is keyed by the directory URL).
    fn start(dir: &Path, own: &Pair, listen: u16, tls_port: u16) -> Pebble {
        Pebble::start_issuing(dir, own, listen, tls_port, None)
    }

    /// `start`, with certificates valid for `validity_s` seconds when given
    /// (pebble's default is five years).
    fn start_issuing(dir: &Path, own: &Pair, listen: u16, tls_port: u16, validity_s: Option<u64>) -> Pebble {
        let management = free_port();
        let config = dir.join("pebble.json");
        let json = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": own.cert, "privateKey": own.key,
            "httpPort": free_port(), "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }});
        let mut json = json;
        if let Some(validity) = validity_s {
            json["pebble"]["certificateValidityPeriod"] = validity.into();
        }
        std::fs::write(&config, json.to_string()).unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config)
            // No random validation sleeps, no deliberate bad-nonce errors.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble (Debian's package; the test command installs it)");
        let pebble = Pebble {
            child,
            management: format!("127.0.0.1:{management}").parse().unwrap(),
            directory: format!("https://localhost:{listen}/dir"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !curl_ok(&own.cert, &pebble.directory) {
            assert!(Instant::now() < deadline, "pebble's directory did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        pebble
    }

    /// The root this pebble run issues under (a new one every launch).
    fn root(&self, own: &Pair, to: &Path) -> PathBuf {
        let url = format!("https://localhost:{}/roots/0", self.management.port());
        let out = Command::new("curl").args(["-sf", "--cacert"]).arg(&own.cert).arg(&url).output().unwrap();
        assert!(out.status.success(), "pebble's root");
        std::fs::write(to, out.stdout).unwrap();
        to.to_path_buf()
    }
}

fn curl_ok(cacert: &Path, url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "5", "--cacert"])
        .arg(cacert)
        .arg(url)
        .status()
        .is_ok_and(|s| s.success())
}

fn framecast_config(tls_port: u16, cache: &Path, pebble: &Pebble, own: &Pair) -> String {
    serde_json::json!({"tls": {
        "listen": format!("127.0.0.1:{tls_port}"),
        "acme": {
            "domains": ["localhost"], "contact": ["mailto:ops@example.org"],
            "cache_dir": cache, "directory": pebble.directory, "directory_ca_file": own.cert,
        },
    }})
    .to_string()
}

/// Waits until the HTTPS port serves a certificate that chains to `root`;
/// returns it (DER).
async fn wait_for_issued(https: SocketAddr, root: &Path, limit: Duration) -> Vec<u8> {
    let start = Instant::now();
    loop {
        if let Ok(stream) = connect(https, root, &[b"h2"]).await {
            let (_, session) = stream.get_ref();
            assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
            return session.peer_certificates().unwrap()[0].to_vec();
        }
        assert!(start.elapsed() < limit, "no certificate from the CA within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_issued_served_reused_after_restart_and_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let own = Pair::new(dir.path(), "pebble-own");
    let cache = dir.path().join("acme");
    let (tls_port, directory_port) = (free_port(), free_port());

    // Issued: framecast answers pebble's TLS-ALPN-01 validation on its
    // HTTPS port, then serves what pebble issued.
    let pebble = Pebble::start(dir.path(), &own, directory_port, tls_port);
    let root = pebble.root(&own, &dir.path().join("root-1.pem"));
    let server = Server::start(&framecast_config(tls_port, &cache, &pebble, &own));
    let https = server.https.unwrap();
    let start = Instant::now();
    let issued = wait_for_issued(https, &root, Duration::from_secs(60)).await;
    eprintln!("pebble issued a certificate, served {:?} after startup", start.elapsed());
    drop(server);

    // Reused: with the CA down, a restart serves the cached certificate.
    let down = Pebble::down(&pebble);
    drop(pebble);
    let server = Server::start(&framecast_config(tls_port, &cache, &down, &own));
    let https = server.https.unwrap();
    assert_eq!(wait_for_issued(https, &root, Duration::from_secs(10)).await, issued, "the cached certificate");
    drop(server);

    // Renewed: the cached certificate is replaced by one long expired
    // (what a cache looks like after months offline); at startup it is
    // served, found due, and replaced by a new one from the CA.
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("cached_cert_"))
        .collect();
    assert_eq!(cached.len(), 1, "one cached certificate: {cached:?}");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(1999, 1, 1);
    params.not_after = rcgen::date_time_ymd(2000, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let old = params.self_signed(&key).unwrap();
    std::fs::write(&cached[0], format!("{}\n{}", key.serialize_pem(), old.pem())).unwrap();
    let pebble = Pebble::start(dir.path(), &own, directory_port, tls_port);
    let root = pebble.root(&own, &dir.path().join("root-2.pem"));
    let server = Server::start(&framecast_config(tls_port, &cache, &pebble, &own));
    let https = server.https.unwrap();
    let start = Instant::now();
    let renewed = wait_for_issued(https, &root, Duration::from_secs(60)).await;
    eprintln!("the expired cached certificate was renewed, served {:?} after startup", start.elapsed());
    assert_ne!(renewed, old.der().to_vec());
    assert_ne!(renewed, issued);
    assert_ne!(std::fs::read(&cached[0]).unwrap(), format!("{}\n{}", key.serialize_pem(), old.pem()).into_bytes());
}

/// A running server renews its certificate once two thirds of its lifetime
/// have passed, not before, and serves the new one: with 30 s certificates,
/// about 20 s after the first was issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_certificate_is_renewed_at_two_thirds_of_its_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let own = Pair::new(dir.path(), "pebble-own");
    let cache = dir.path().join("acme");
    let (tls_port, directory_port) = (free_port(), free_port());
    let pebble = Pebble::start_issuing(dir.path(), &own, directory_port, tls_port, Some(30));
    let root = pebble.root(&own, &dir.path().join("root.pem"));
    let server = Server::start(&framecast_config(tls_port, &cache, &pebble, &own));
    let https = server.https.unwrap();
    let first = wait_for_issued(https, &root, Duration::from_secs(60)).await;
    let seen = Instant::now();
    let renewed = loop {
        let now = wait_for_issued(https, &root, Duration::from_secs(10)).await;
        if now != first {
            break seen.elapsed();
        }
        assert!(seen.elapsed() < Duration::from_secs(40), "the certificate was not renewed before it expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("a 30 s certificate was replaced {renewed:?} after it was first served");
    // Two thirds of 30 s is 20 s after issue; it was first served within a
    // moment of issue (16 s leaves room for a loaded machine; renewing at half
    // its lifetime would be 15 s), and the renewal itself takes a few seconds.
    assert!(renewed >= Duration::from_secs(16), "renewed before two thirds of its lifetime: {renewed:?}");
}

impl Pebble {
    /// `running`'s directory URL, for once it no longer answers.
    fn down(running: &Pebble) -> Pebble {
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        Pebble { child, management: running.management, directory: running.directory.clone() }
    }
}
