//! Polled badge sources against a local upstream started by the test: the
//! badge shows the fetched value and follows a change within the interval;
//! a failing upstream turns it to its error look after the grace period and
//! it recovers; redirects to unlisted hosts and oversized answers are
//! refused; a relative redirect keeps its base path and one to another
//! origin carries no configured header; an unwatched badge does not poll;
//! `check-config` refuses a host that is not allowed.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::upstream::{Answer, Upstream};
use common::{Server, Viewer, api, api_with_token, decode_png};
use framecast::render::format::MapValues;
use framecast::render::template::Templates;

const INTERVAL_MS: u64 = 300;
const TOKEN: &str = "polled-test-token-0123";

/// The flat badge as framecast draws it for these texts.
fn flat(label: &str, message: &str, color: &str) -> (u32, u32, Vec<u8>) {
    let values = MapValues {
        text: [("label", label), ("message", message), ("color", color)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        history: vec![],
        logo: None,
    };
    let png = Templates::builtin().get("flat").unwrap().render_png(&values, 1.0).unwrap();
    decode_png(&png)
}

fn config(upstream: &Upstream, extra: &str) -> String {
    format!(
        r#"{{"allowed_fetch_hosts": ["127.0.0.1:{port}"], "api_tokens": ["{TOKEN}"], "badges": {{"queue": {{"label": "queue", "source": {{
            "kind": "json", "url": "{url}", "query": "$.data.count", "interval_ms": {INTERVAL_MS},
            "suffix": " jobs", "error_after_ms": 1000, "timeout_ms": 1000,
            "color": [[">=", 100, "red"], [">=", 10, "yellow"], ["else", "green"]] {extra} }}}}}}}}"#,
        port = upstream.addr.port(),
        url = upstream.url("/stats")
    )
}

/// The source's status as a token holder sees it (its URL and error text).
async fn source_status(server: &Server) -> serde_json::Value {
    api_with_token(server.addr, "/api/v1/badges/queue", TOKEN).await["source"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_badge_follows_its_upstream_and_shows_failures() {
    let _serial = common::serial();
    let mut upstream = Upstream::start().await;
    upstream.set("/stats", Answer::ok(r#"{"data": {"count": 5}}"#));
    let server = Server::start(&config(&upstream, ""));

    let mut viewer = Viewer::connect(server.addr, "/badge/queue.png", "framecast-test").await;
    viewer.wait_for_image(&flat("queue", "5 jobs", "green"), Duration::from_secs(5)).await;

    // A change upstream reaches the open image within one interval (plus
    // the fetch, the store and the render).
    upstream.set("/stats", Answer::ok(r#"{"data": {"count": 42}}"#));
    let changed = Instant::now();
    viewer.wait_for_image(&flat("queue", "42 jobs", "yellow"), Duration::from_secs(5)).await;
    let took = changed.elapsed();
    eprintln!("an upstream change was shown {took:?} after it happened (interval {INTERVAL_MS} ms)");
    assert!(took <= Duration::from_millis(INTERVAL_MS + 100), "shown after {took:?}");
    let state = api(server.addr, "/api/v1/badges/queue").await;
    assert_eq!(state["state"]["value"], 42.0, "the number is kept for history: {state}");
    assert!(state["source"]["last_success_ms"].as_u64().is_some(), "{state}");

    // Down: after error_after_ms the badge shows its error look.
    upstream.stop();
    let down = Instant::now();
    viewer.wait_for_image(&flat("queue", "unavailable", "critical"), Duration::from_secs(10)).await;
    let took = down.elapsed();
    eprintln!("upstream down: error look after {took:?} (error_after_ms 1000)");
    assert!(took >= Duration::from_millis(1000), "error look before the grace period: {took:?}");
    let status = source_status(&server).await;
    assert!(status["last_error"].as_str().unwrap().contains("connecting"), "{status}");
    assert!(status["failures_in_a_row"].as_u64().unwrap() >= 2, "{status}");

    // Back: the value returns (the backoff is at most a minute; here a few
    // intervals).
    upstream.restart().await;
    viewer.wait_for_image(&flat("queue", "42 jobs", "yellow"), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_unlisted_hosts_and_oversized_answers_are_refused() {
    let _serial = common::serial();
    let upstream = Upstream::start().await;
    // 127.0.0.2 is this machine too, but not listed.
    let elsewhere = format!("http://127.0.0.2:{}/stats", upstream.addr.port());
    upstream.set("/stats", Answer::redirect(&elsewhere));
    let server = Server::start(&config(&upstream, r#", "always_on": true, "max_bytes": 1000"#));
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        if let Some(e) = source_status(&server).await["last_error"].as_str() {
            break e.to_string();
        }
        assert!(Instant::now() < deadline, "no error reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(error.contains("127.0.0.2") && error.contains("allowed_fetch_hosts"), "{error}");

    // A redirect within the allowed host is followed.
    upstream.set("/stats", Answer::redirect("/real"));
    upstream.set("/real", Answer::ok(r#"{"data": {"count": 7}}"#));
    let deadline = Instant::now() + Duration::from_secs(10);
    while api(server.addr, "/api/v1/badges/queue").await["state"]["value"] != 7.0 {
        assert!(Instant::now() < deadline, "the allowed redirect was not followed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Oversized: refused, whatever it says.
    let big = format!(r#"{{"data": {{"count": 9}}, "pad": "{}"}}"#, "x".repeat(2000));
    upstream.set("/real", Answer::ok(big));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = source_status(&server).await;
        if status["last_error"].as_str().is_some_and(|e| e.contains("larger than 1000 bytes")) {
            break;
        }
        assert!(Instant::now() < deadline, "an oversized answer was not refused: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api(server.addr, "/api/v1/badges/queue").await["state"]["value"], 7.0, "the old value stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_keep_the_base_path_and_carry_no_token_to_another_origin() {
    let _serial = common::serial();
    // Two upstreams on loopback, different ports: two origins, both allowed.
    let home = Upstream::start().await;
    let other = Upstream::start().await;
    let config = format!(
        r#"{{"allowed_fetch_hosts": ["127.0.0.1"], "badges": {{"queue": {{"label": "queue", "source": {{
            "kind": "json", "url": "{url}", "query": "$.data.count", "interval_ms": {INTERVAL_MS},
            "always_on": true, "headers": {{"Authorization": "Bearer s3cret-token"}} }}}}}}}}"#,
        url = home.url("/api/v1/stats")
    );
    let value = |v: &serde_json::Value| v["state"]["value"].as_f64();
    // A relative Location is joined to the path it came from: `next` from
    // `/api/v1/stats` is `/api/v1/next`, on the same origin (token kept).
    home.set("/api/v1/stats", Answer::redirect("next"));
    home.set("/api/v1/next", Answer::ok(r#"{"data": {"count": 3}}"#));
    let server = Server::start(&config);
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&api(server.addr, "/api/v1/badges/queue").await) != Some(3.0) {
        assert!(Instant::now() < deadline, "the relative redirect was not followed to /api/v1/next");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(home.hits("/next"), 0, "the base path was lost");
    let head = home.last_head("/api/v1/next").unwrap();
    assert!(head.contains("s3cret-token"), "the same origin lost the configured header:\n{head}");

    // Another origin (another port): followed, without the configured header.
    home.set("/api/v1/stats", Answer::redirect(&other.url("/elsewhere")));
    other.set("/elsewhere", Answer::ok(r#"{"data": {"count": 4}}"#));
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&api(server.addr, "/api/v1/badges/queue").await) != Some(4.0) {
        assert!(Instant::now() < deadline, "the redirect to another origin was not followed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let head = other.last_head("/elsewhere").unwrap();
    assert!(!head.to_ascii_lowercase().contains("authorization"), "the token went to another origin:\n{head}");
    assert!(!head.contains("s3cret-token"), "{head}");
    let head = home.last_head("/api/v1/stats").unwrap();
    assert!(head.contains("Bearer s3cret-token"), "the configured origin got no header:\n{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwatched_badge_costs_its_upstream_nothing() {
    let _serial = common::serial();
    let upstream = Upstream::start().await;
    upstream.set("/stats", Answer::ok(r#"{"data": {"count": 1}}"#));
    let server = Server::start(&config(&upstream, ""));
    // Nobody watches: no poll at all, for several intervals.
    tokio::time::sleep(Duration::from_millis(4 * INTERVAL_MS)).await;
    assert_eq!(upstream.hits("/stats"), 0, "polled with nobody watching");
    assert_eq!(source_status(&server).await["polling"], false);

    // A viewer arrives: the poller wakes at once.
    let mut viewer = Viewer::connect(server.addr, "/badge/queue.png", "framecast-test").await;
    let joined = Instant::now();
    viewer.wait_for_image(&flat("queue", "1 jobs", "green"), Duration::from_secs(5)).await;
    eprintln!("first value shown {:?} after the first viewer joined", joined.elapsed());
    assert!(joined.elapsed() < Duration::from_millis(INTERVAL_MS + 500));
    drop(viewer);
    // Gone: polling stops once the badge's channel is forgotten.
    let deadline = Instant::now() + Duration::from_secs(10);
    while source_status(&server).await["polling"] != false {
        assert!(Instant::now() < deadline, "still polling with nobody watching");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = upstream.hits("/stats");
    tokio::time::sleep(Duration::from_millis(4 * INTERVAL_MS)).await;
    assert_eq!(upstream.hits("/stats"), hits, "polled after the last viewer left");
}

#[test]
fn check_config_refuses_a_host_not_allowed() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let config = r#"{"database": null, "allowed_fetch_hosts": ["stats.example.org"], "badges": {"q": {"source":
        {"kind": "json", "url": "http://169.254.169.254/latest/meta-data", "query": "$.v"}}}}"#;
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("badges.q.source.url") && err.contains("allowed_fetch_hosts"), "{err}");
}

/// A real Prometheus (Debian's), scraping framecast every second, killed on drop.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badge_follows_a_prometheus_query_over_framecasts_own_metrics() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Server::start(&format!(
        r#"{{"allowed_fetch_hosts": ["127.0.0.1:{port}"], "api_tokens": ["{TOKEN}"], "badges": {{"readers": {{"label": "readers", "source": {{
            "kind": "prometheus", "url": "http://127.0.0.1:{port}",
            "query": "sum(framecast_viewers{{channel=\"online/prom\"}}) or vector(0)",
            "interval_ms": 500, "always_on": true }}}}}}}}"#
    ));
    let scrape = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: framecast\n    static_configs:\n      - targets: ['{}']\n",
        server.addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), scrape).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus (Debian's package; the test command installs it)");
    let _prometheus = Prometheus(child);

    // Nobody in the room yet: Prometheus answers 0.
    let value = |state: &serde_json::Value| state["state"]["value"].as_f64();
    let deadline = Instant::now() + Duration::from_secs(60);
    while value(&api(server.addr, "/api/v1/badges/readers").await) != Some(0.0) {
        assert!(Instant::now() < deadline, "the badge never read 0 through Prometheus");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two viewers join: after a scrape and a poll, the badge says 2.
    let _a = Viewer::connect(server.addr, "/online/prom.png", "framecast-test").await;
    let _b = Viewer::connect(server.addr, "/online/prom.png", "framecast-test").await;
    let joined = Instant::now();
    while value(&api(server.addr, "/api/v1/badges/readers").await) != Some(2.0) {
        assert!(joined.elapsed() < Duration::from_secs(30), "the badge never read 2 through Prometheus");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("Prometheus: the badge showed the new count {:?} after the viewers joined", joined.elapsed());
    let png = common::get(server.addr, "/badge/readers.png?once").await.2;
    assert_eq!(decode_png(&png), flat("readers", "2", "blue"));
}

/// The `yaml` and `text` kinds against a local upstream, and configured
/// headers (a token) shown nowhere: not in the API (even to a token
/// holder), not in the logs at debug level, also when the poll fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_and_text_sources_and_headers_never_shown() {
    let _serial = common::serial();
    let upstream = Upstream::start().await;
    upstream.set("/metrics.yaml", Answer::ok("data:\n  count: 12\n"));
    upstream.set("/status.txt", Answer::ok("uptime ok\nqueue=34 jobs\n"));
    let config = serde_json::json!({
        "state_file": null, "database": null, "api_tokens": [TOKEN],
        "allowed_fetch_hosts": [format!("127.0.0.1:{}", upstream.addr.port())],
        "badges": {
            "y": { "source": { "kind": "yaml", "url": upstream.url("/metrics.yaml"), "query": "$.data.count",
                   "interval_ms": INTERVAL_MS, "always_on": true,
                   "headers": { "Authorization": "Bearer s3cret-yaml-token" } } },
            "t": { "source": { "kind": "text", "url": upstream.url("/status.txt"), "query": "queue=(\\d+)",
                   "interval_ms": INTERVAL_MS, "always_on": true } }
        }
    });
    let server = common::LoggedServer::start(&config.to_string(), &[("RUST_LOG", "debug")], &[]);
    let addr = server.addr;
    let value = |v: serde_json::Value| v["state"]["value"].as_f64();
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(api(addr, "/api/v1/badges/y").await) != Some(12.0)
        || value(api(addr, "/api/v1/badges/t").await) != Some(34.0)
    {
        assert!(Instant::now() < deadline, "the yaml and text sources were not read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(upstream.last_head("/metrics.yaml").unwrap().contains("s3cret-yaml-token"), "the header was sent");
    // A failing poll: its error is shown (to a token) and logged, the header is not.
    upstream.set("/metrics.yaml", Answer::ok("data: [unclosed"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = api_with_token(addr, "/api/v1/badges/y", TOKEN).await;
        assert!(!seen.to_string().contains("s3cret"), "{seen}");
        if seen["source"]["last_error"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "the failing poll was never reported: {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, logs) = server.stop("KILL");
    assert!(logs.contains("poll failed"), "the failing poll was logged at debug level");
    assert!(!logs.contains("s3cret"), "a configured header reached the logs");
}
