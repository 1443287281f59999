//! A real browser: headless Chromium (Debian's package, via chromedriver)
//! loads the demo page, shows the live badge, and displays a new count
//! within 200 ms of a second viewer arriving, checked on pixels against the
//! renderer `framecast render online` uses. Closing the page leaves the count.
//! The demo camera plays live, and so does the image-pull page. Over
//! HTTP/2 (HTTPS) one page shows 12 distinct live images; over HTTP/1.1
//! only 6 ever load (Chromium's connections per host). A config reload
//! and a binary upgrade leave the page live.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::chromium::start_chromium;
use common::{Server, Viewer, wait_for_viewers};
use fantoccini::Client;
use framecast::render::online::{builtin_online, render_online_png};
use serde_json::{Value, json};

/// Stores the pixels of the badge for `count` in the page, decoded by the
/// browser itself, so the timed check compares like with like.
async fn prepare_expected(client: &Client, count: u64) {
    let png = render_online_png(&builtin_online(), count);
    let url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
    let script = r#"
        const [name, url] = arguments; const done = arguments[arguments.length - 1];
        window.__pixels = (im) => {
            const c = document.createElement('canvas');
            c.width = im.naturalWidth; c.height = im.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(im, 0, 0);
            return g.getImageData(0, 0, c.width, c.height).data;
        };
        const im = new Image();
        im.onload = () => { window.__want = window.__want || {}; window.__want[name] = { w: im.naturalWidth, h: im.naturalHeight, px: window.__pixels(im) }; done(true); };
        im.onerror = () => done(false);
        im.src = url;
    "#;
    let ok = client.execute_async(script, vec![json!(count.to_string()), json!(url)]).await.unwrap();
    assert_eq!(ok, json!(true));
}

/// Polls the live `<img>` in the page until it shows the badge for `count`;
/// returns whether it did within `timeout_ms`.
async fn wait_until_shows(client: &Client, count: u64, timeout_ms: u64) -> Value {
    let script = r#"
        const [name, timeoutMs] = arguments; const done = arguments[arguments.length - 1];
        const want = window.__want[name]; const t0 = performance.now();
        (function poll() {
            const img = document.getElementById('online');
            if (img && img.naturalWidth === want.w && img.naturalHeight === want.h) {
                const got = window.__pixels(img);
                let diff = 0;
                for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - want.px[i]));
                if (diff <= 2) return done({ ok: true, ms: performance.now() - t0 });
            }
            if (performance.now() - t0 > timeoutMs) return done({ ok: false, width: img ? img.naturalWidth : -1 });
            setTimeout(poll, 2);
        })();
    "#;
    client.execute_async(script, vec![json!(count.to_string()), json!(timeout_ms)]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_live_count_at_once() {
    let _serial = common::serial();
    // Default timings: the 10 s resend cannot be what delivers the change.
    let server = Server::start("{}");
    let (_driver, client) = start_chromium().await;
    client.goto(&server.url("/")).await.unwrap();
    for n in [1, 2] {
        prepare_expected(&client, n).await;
    }

    let shown = wait_until_shows(&client, 1, 10_000).await;
    assert_eq!(shown["ok"], json!(true), "the page never showed 1 viewer: {shown}");
    wait_for_viewers(server.addr, "default", 1, Duration::from_secs(5)).await;

    // A second viewer arrives; the browser must display 2 within 200 ms.
    let start = Instant::now();
    let second = Viewer::connect(server.addr, "/online.png", "framecast-test").await;
    let shown = wait_until_shows(&client, 2, 2_000).await;
    let took = start.elapsed();
    eprintln!("Chromium displayed the new count {took:?} after the second viewer connected ({shown})");
    assert_eq!(shown["ok"], json!(true), "Chromium never displayed 2: {shown}");
    assert!(took <= Duration::from_millis(200), "displayed after {took:?}");

    // The second viewer leaves: back to 1, again without a reload.
    drop(second);
    let shown = wait_until_shows(&client, 1, 2_000).await;
    assert_eq!(shown["ok"], json!(true), "Chromium never displayed 1 again: {shown}");

    // Leaving the page closes the stream: the count drops to 0. (The demo
    // page is `no-store`; otherwise Chromium's back/forward cache keeps a
    // left page's images loading for up to 60 s.)
    client.goto("about:blank").await.unwrap();
    // ~1 ms in docs/counting.md; 500 ms allows for a loaded machine.
    let took = wait_for_viewers(server.addr, "default", 0, Duration::from_millis(500)).await;
    eprintln!("navigating away left the count after {took:?}");
    client.close().await.unwrap();
}

/// Waits for the first `<img>` whose src contains `needle` to load, takes a
/// fingerprint of its pixels, then polls until the picture differs from it.
/// Returns its size and how long the change took, or `changed: false` after
/// `limit_ms`.
const CAMERA_CHANGES: &str = r#"
    const [needle, limitMs, done] = arguments;
    const t0 = performance.now();
    const print = (img) => {
        const c = document.createElement("canvas");
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext("2d");
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let sum = 0;
        for (let i = 0; i < d.length; i += 97) sum = (sum * 31 + d[i]) % 1000000007;
        return sum;
    };
    let first = null;
    (function poll() {
        const img = [...document.images].find(i => i.src.includes(needle));
        if (img && img.naturalWidth > 0) {
            const now = print(img);
            if (first === null) first = now;
            else if (now !== first) return done({ w: img.naturalWidth, h: img.naturalHeight, changed: true, ms: performance.now() - t0 });
        }
        if (performance.now() - t0 > limitMs) return done({ changed: false, loaded: first !== null });
        setTimeout(poll, 20);
    })();
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_demo_camera_live_and_the_pull_page_updates() {
    let _serial = common::serial();
    let server = Server::start(r#"{"camera_idle_stop_ms": 300}"#);
    let (_driver, client) = start_chromium().await;
    client.goto(&server.url("/")).await.unwrap();
    // 10 fps with a clock: a change is due every 100 ms; a loaded debug
    // build is allowed far longer.
    let shown = client.execute_async(CAMERA_CHANGES, vec![json!("/camera/demo.mjpg"), json!(15_000)]).await.unwrap();
    assert_eq!(shown["changed"], json!(true), "the demo camera's picture never changed in the browser: {shown}");
    assert_eq!((shown["w"].clone(), shown["h"].clone()), (json!(640), json!(360)), "{shown}");
    let camera = common::api(server.addr, "/api/v1/cameras/demo").await;
    assert_eq!((camera["state"].clone(), camera["channel"]["viewers"].clone()), (json!("live"), json!(1)), "{camera}");

    // The image-pull page: snapshots fetched in a loop, also changing.
    client.goto(&server.url("/camera/demo.html")).await.unwrap();
    let shown = client.execute_async(CAMERA_CHANGES, vec![json!("blob:"), json!(15_000)]).await.unwrap();
    assert_eq!(shown["changed"], json!(true), "the pull page's picture never changed: {shown}");
    assert_eq!(shown["w"], json!(640), "{shown}");
    assert_eq!(
        common::api(server.addr, "/api/v1/channels/camera/demo").await["viewers"],
        0,
        "snapshots are not viewers"
    );
    client.close().await.unwrap();
}

/// A config reload (SIGHUP) and a binary upgrade (SIGUSR2) leave the page
/// live: the badge's stream and the camera's go on, and a count that
/// changes after each is displayed on the same stream (the page's own
/// viewer still counted, once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_stays_live_through_a_reload_and_an_upgrade() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("framecast.pid");
    let mut server =
        Server::start_args(r#"{"badges": {"build": {"label": "build"}}}"#, &["--pid-file", pid_file.to_str().unwrap()]);
    let (_driver, client) = start_chromium().await;
    client.goto(&server.url("/")).await.unwrap();
    for n in [1, 2, 3] {
        prepare_expected(&client, n).await;
    }
    let shown = wait_until_shows(&client, 1, 10_000).await;
    assert_eq!(shown["ok"], json!(true), "the page never showed 1 viewer: {shown}");
    wait_for_viewers(server.addr, "default", 1, Duration::from_secs(5)).await;
    let shown = client.execute_async(CAMERA_CHANGES, vec![json!("/camera/demo.mjpg"), json!(15_000)]).await.unwrap();
    assert_eq!(shown["changed"], json!(true), "the camera never played: {shown}");

    server.rewrite_config(r#"{"badges": {"build": {"label": "deploy"}, "more": {}}}"#);
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::metric(server.addr, "framecast_config_reloads_total{result=\"ok\"}").await != Some(1.0) {
        assert!(Instant::now() < deadline, "the reload was not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let _second = Viewer::connect(server.addr, "/online.png", "framecast-test").await;
    let shown = wait_until_shows(&client, 2, 5_000).await;
    assert_eq!(shown["ok"], json!(true), "after the reload the page never displayed 2: {shown}");
    let shown = client.execute_async(CAMERA_CHANGES, vec![json!("/camera/demo.mjpg"), json!(15_000)]).await.unwrap();
    assert_eq!(shown["changed"], json!(true), "the camera stopped playing after the reload: {shown}");
    let room = common::api(server.addr, "/api/v1/channels/online/default").await;
    assert_eq!(room["viewers"], json!(2), "the page's own stream is still counted: {room}");

    // A binary upgrade: the page's streams move to the new process.
    let old_pid = server.pid().to_string();
    server.signal("USR2");
    let deadline = Instant::now() + Duration::from_secs(60);
    let new_pid = loop {
        let named = std::fs::read_to_string(&pid_file).unwrap_or_default().trim().to_string();
        if !named.is_empty() && named != old_pid {
            break named;
        }
        assert!(Instant::now() < deadline, "the new process never took over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Not the test's child: killed by id, however the test ends.
    struct KillPid(String);
    impl Drop for KillPid {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0]).status();
        }
    }
    let _new = KillPid(new_pid);
    assert!(server.wait_exit(Duration::from_secs(30)).is_some(), "the old process exits");
    let _third = Viewer::connect(server.addr, "/online.png", "framecast-test").await;
    let shown = wait_until_shows(&client, 3, 5_000).await;
    assert_eq!(shown["ok"], json!(true), "after the upgrade the page never displayed 3: {shown}");
    let shown = client.execute_async(CAMERA_CHANGES, vec![json!("/camera/demo.mjpg"), json!(15_000)]).await.unwrap();
    assert_eq!(shown["changed"], json!(true), "the camera stopped playing after the upgrade: {shown}");
    let room = common::api(server.addr, "/api/v1/channels/online/default").await;
    assert_eq!(room["viewers"], json!(3), "the page's stream moved, counted once: {room}");
    client.close().await.unwrap();
}

/// Puts `n` distinct live images of room `twelve` into the page.
const TWELVE_IMAGES: &str = r#"
    const [n] = arguments;
    document.body.innerHTML = "";
    for (let i = 0; i < n; i++) {
        const img = document.createElement("img");
        img.src = "/online/twelve.png?n=" + i;
        document.body.appendChild(img);
    }
"#;

async fn loaded_images(client: &Client) -> u64 {
    let n = client.execute("return [...document.images].filter(i => i.naturalWidth > 0).length", vec![]).await.unwrap();
    n.as_u64().unwrap()
}

/// Opens `page` in a new tab with 12 live images; returns once `want`
/// viewers are counted, with the tab's handle.
async fn twelve_in_a_tab(client: &Client, server: &Server, page: &str, want: u64) -> fantoccini::wd::WindowHandle {
    let tab = client.new_window(true).await.unwrap().handle;
    client.switch_to_window(tab.clone()).await.unwrap();
    client.goto(page).await.unwrap();
    client.execute(TWELVE_IMAGES, vec![json!(12)]).await.unwrap();
    let took = wait_for_viewers(server.addr, "twelve", want, Duration::from_secs(20)).await;
    eprintln!("{page}: {want} live images counted after {took:?}");
    tab
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_over_h2_shows_12_live_images_on_one_page_and_http1_only_6() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let pair = common::tls::Pair::new(dir.path(), "localhost");
    let server = Server::start(&format!(
        r#"{{"tls": {{"listen": "127.0.0.1:0", "cert_file": {:?}, "key_file": {:?}}}}}"#,
        pair.cert, pair.key
    ));
    let https = server.https.unwrap();
    let (_driver, client) = start_chromium().await;
    let first = client.window().await.unwrap();

    // HTTPS: HTTP/2, one connection, all 12 load and count.
    let page = format!("https://localhost:{}/metrics", https.port());
    let tab = twelve_in_a_tab(&client, &server, &page, 12).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while loaded_images(&client).await < 12 {
        assert!(Instant::now() < deadline, "not all 12 images showed over HTTP/2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let version =
        client.execute("return performance.getEntriesByType('navigation')[0].nextHopProtocol", vec![]).await.unwrap();
    assert_eq!(version, json!("h2"), "the page came over HTTP/2");
    // Closing the tab ends all 12 streams (RST_STREAM each, or the connection).
    client.close_window().await.unwrap();
    client.switch_to_window(first.clone()).await.unwrap();
    let took = wait_for_viewers(server.addr, "twelve", 0, Duration::from_secs(2)).await;
    eprintln!("closing the HTTP/2 tab left all 12 in {took:?}");
    drop(tab);

    // Plain HTTP/1.1: six connections per host, so six images, never more.
    let page = server.url("/metrics");
    twelve_in_a_tab(&client, &server, &page, 6).await;
    // What is asserted is an absence: the seventh never comes in 2 s.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(common::viewers(server.addr, "twelve").await, 6, "over HTTP/1.1 a 7th image loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(loaded_images(&client).await, 6);
    client.close_window().await.unwrap();
    client.switch_to_window(first).await.unwrap();
    wait_for_viewers(server.addr, "twelve", 0, Duration::from_secs(2)).await;
    client.close().await.unwrap();
}
