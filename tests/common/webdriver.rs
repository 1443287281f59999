//! WebDriver sessions in Firefox (geckodriver, headless) and WebKit
//! (WebKitWebDriver driving MiniBrowser under Xvfb). The driver runs in a
//! process group of its own; dropped, also when a test panics, the whole
//! group (driver, browser, Xvfb) is killed.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

pub struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Browser {
    Firefox,
    WebKit,
}

const MINIBROWSER: &str = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

impl Browser {
    fn driver(self, port: u16) -> Command {
        match self {
            Browser::Firefox => {
                // `cargo install geckodriver` puts it in ~/.cargo/bin.
                let cargo_bin = std::env::var("CARGO_HOME")
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|_| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"))
                    .join("bin/geckodriver");
                let exe = if cargo_bin.exists() { cargo_bin } else { "geckodriver".into() };
                let mut c = Command::new(exe);
                c.args(["--port", &port.to_string(), "--log", "fatal"]);
                c
            }
            Browser::WebKit => {
                let mut c = Command::new("xvfb-run");
                c.args(["-a", "WebKitWebDriver", &format!("--port={port}")]);
                c
            }
        }
    }

    fn capabilities(self) -> Value {
        match self {
            Browser::Firefox => json!({
                "browserName": "firefox",
                "acceptInsecureCerts": true,
                "pageLoadStrategy": "eager",
                "moz:firefoxOptions": {
                    "binary": "/usr/bin/firefox-esr",
                    "args": ["-headless"],
                    // No calls home from a closed network.
                    "prefs": {
                        "network.captive-portal-service.enabled": false,
                        "network.connectivity-service.enabled": false,
                        "app.update.auto": false,
                        "browser.safebrowsing.malware.enabled": false,
                        "browser.safebrowsing.phishing.enabled": false,
                        "datareporting.policy.dataSubmissionEnabled": false,
                        "toolkit.telemetry.enabled": false,
                        "network.dns.disablePrefetch": true,
                    }
                }
            }),
            Browser::WebKit => json!({
                "browserName": "MiniBrowser",
                "acceptInsecureCerts": true,
                "pageLoadStrategy": "none",
                "webkitgtk:browserOptions": { "binary": MINIBROWSER, "args": ["--automation"] }
            }),
        }
    }

    /// Starts the driver and a browser session.
    pub async fn start(self) -> (Driver, Client) {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = self
            .driver(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{self:?}'s WebDriver (the test command installs it): {e}"));
        let driver = Driver { child };
        let Value::Object(caps) = self.capabilities() else { unreachable!() };
        let client = connect(port, caps, Duration::from_secs(60), &format!("{self:?}")).await;
        (driver, client)
    }
}

/// A WebDriver session on the driver listening on `port`, asked until it
/// answers (it takes a moment to start), for at most `limit`.
pub async fn connect(port: u16, caps: serde_json::Map<String, Value>, limit: Duration, what: &str) -> Client {
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = Instant::now() + limit;
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return client,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("cannot start {what} through WebDriver: {e}"),
        }
    }
}

/// Reads an image's displayed pixels the way the screen shows them:
/// `createImageBitmap`, never `drawImage` of the element (Firefox returns
/// a frame seconds old that way; see the field notes).
pub const GRAB: &str = r#"
    window.__grab = async (img) => {
        const bm = await createImageBitmap(img);
        const c = document.createElement('canvas');
        c.width = bm.width; c.height = bm.height;
        const g = c.getContext('2d'); g.drawImage(bm, 0, 0);
        return g.getImageData(0, 0, c.width, c.height).data;
    };
"#;

/// Stores the pixels of `png` under `name`, decoded by the browser itself.
pub async fn prepare_expected(client: &Client, name: &str, png: &[u8]) {
    use base64::Engine;
    let url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
    let script = format!(
        "{GRAB}{}",
        r#"
        const [name, url] = arguments; const done = arguments[arguments.length - 1];
        const im = new Image();
        im.onload = async () => {
            window.__want = window.__want || {};
            window.__want[name] = { w: im.naturalWidth, h: im.naturalHeight, px: await window.__grab(im) };
            done(true);
        };
        im.onerror = () => done(false);
        im.src = url;
    "#
    );
    let ok = client.execute_async(&script, vec![json!(name), json!(url)]).await.unwrap();
    assert_eq!(ok, json!(true));
}

/// Polls the `<img id=IMG>` until it shows what was stored under `name`;
/// `{ok, ms}` or `{ok: false}` after `timeout_ms`.
pub async fn wait_until_shows(client: &Client, img: &str, name: &str, timeout_ms: u64) -> Value {
    let script = format!(
        "{GRAB}{}",
        r#"
        const [id, name, timeoutMs] = arguments; const done = arguments[arguments.length - 1];
        const want = window.__want[name]; const t0 = performance.now();
        (async function poll() {
            const img = document.getElementById(id);
            if (img && img.naturalWidth === want.w && img.naturalHeight === want.h) {
                try {
                    const got = await window.__grab(img);
                    let diff = 0;
                    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - want.px[i]));
                    if (diff <= 2) return done({ ok: true, ms: performance.now() - t0 });
                } catch (e) {}
            }
            if (performance.now() - t0 > timeoutMs) return done({ ok: false, width: img ? img.naturalWidth : -1 });
            setTimeout(poll, 2);
        })();
    "#
    );
    client.execute_async(&script, vec![json!(img), json!(name), json!(timeout_ms)]).await.unwrap()
}
