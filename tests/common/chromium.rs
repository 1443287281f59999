//! Headless Chromium (Debian's package) through chromedriver, for tests
//! that drive a real browser; killed with its whole process tree when
//! dropped, also when the test fails.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::Client;
use serde_json::{Value, json};

/// chromedriver and every browser process it started. Dropped, also when a
/// test panics, it kills the whole tree: chromedriver's process group, and
/// any Chromium process still using this test's profile directory.
pub struct Driver {
    child: Child,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
        let profile = self.profile.path().display().to_string();
        let _ = Command::new("pkill").args(["-KILL", "-f", &profile]).status();
    }
}

pub async fn start_chromium() -> (Driver, Client) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so the whole tree can be killed at once.
        .process_group(0)
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; the test command installs it)");
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "browserName": "chrome",
        // The page never finishes loading while a stream is open in it.
        "pageLoadStrategy": "eager",
        // The HTTPS test's self-signed certificate.
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let Value::Object(caps) = caps else { unreachable!() };
    let driver = Driver { child, profile };
    let client = super::webdriver::connect(port, caps, Duration::from_secs(20), "Chromium").await;
    (driver, client)
}
