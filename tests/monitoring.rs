//! The Grafana dashboard and the Prometheus alerts read the real metrics:
//! a server with every part the panels show (a camera, a room, badges,
//! TLS certificate files, cluster mode on a real `redis-server`, a caught
//! panic, a refused connection, a failed write) is scraped, and every
//! metric name and label that `deploy/grafana/framecast.json` and
//! `deploy/prometheus/alerts.yml` use must be in its `/metrics`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use common::redis::Redis;
use common::tls::Pair;
use common::watched::poll_until;
use common::{Server, Viewer, get};

const TOKEN: &str = "monitoring-test-token-0123456789";

/// The queries: every `expr` of the dashboard's panels and of the alerts.
fn queries() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("grafana/framecast.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push((format!("panel {:?}", panel["title"]), target["expr"].as_str().unwrap().to_string()));
        }
    }
    let alerts = std::fs::read_to_string(root.join("prometheus/alerts.yml")).unwrap();
    let mut alert = String::new();
    for line in alerts.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            alert = name.to_string();
        } else if let Some(expr) = line.strip_prefix("expr: ") {
            out.push((format!("alert {alert}"), expr.to_string()));
        }
    }
    out
}

/// The `framecast_*` metrics a query reads, and the labels it names
/// (in selectors and `by (...)`), Prometheus' own (`instance`, `job`, `le`) aside.
fn used(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("framecast_") {
        let name: String = rest[i..].chars().take_while(|c| word(*c)).collect();
        rest = &rest[i + name.len()..];
        metrics.insert(name);
    }
    for part in expr.split(['{', '(']).skip(1) {
        let inner = part.split(['}', ')']).next().unwrap_or("");
        for item in inner.split(',') {
            let label: String = item.trim().chars().take_while(|c| word(*c)).collect();
            let is_label = item.contains('=') || expr.contains(&format!("by ({inner})"));
            if is_label && !label.is_empty() && !["instance", "job", "le"].contains(&label.as_str()) {
                labels.insert(label);
            }
        }
    }
    (metrics, labels)
}

/// `/metrics` as metric name → the label names its series carry.
fn scraped(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let labels = out.entry(name.clone()).or_default();
        if let Some(inner) = line[name.len()..].strip_prefix('{').and_then(|r| r.split('}').next()) {
            for pair in inner.split(',') {
                if let Some((label, _)) = pair.split_once('=') {
                    labels.insert(label.to_string());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_is_served() {
    let _serial = common::serial();
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let pair = Pair::new(dir.path(), "cert");
    let mut config: serde_json::Value = serde_json::from_str(&redis.config(1500)).unwrap();
    let extra = serde_json::json!({
        "api_tokens": [TOKEN],
        "debug_endpoints": true,
        "max_badges": 1,
        "max_connections_per_ip": 2,
        "rooms": { "lobby": {} },
        "tls": { "listen": "127.0.0.1:0", "cert_file": pair.cert, "key_file": pair.key },
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    let server = Server::start(&config.to_string());
    let addr = server.addr;
    let viewer = |source: &'static str, path: &'static str| async move {
        Viewer::start(common::connect_from(source, addr).await, path, "monitoring test").await
    };
    // Viewers of a room and of the demo camera, frames going out.
    let mut room = viewer("127.0.0.2", "/online/lobby.png").await;
    let mut camera = viewer("127.0.0.3", "/camera/demo.mjpg").await;
    assert!(camera.read_parts(3, Duration::from_secs(20)).await, "camera frames");
    // A write that the store refuses (max_badges 1), and one that lands.
    let write = |name: &str| {
        format!(
            "PUT /api/v1/badges/{name} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{{\"value\":1}}"
        )
    };
    assert_eq!(common::request(addr, &write("one")).await.0, 200);
    assert_eq!(common::request(addr, &write("two")).await.0, 507);
    // A panic caught in a handler.
    let _ = get(addr, "/debug/panic").await;
    // A connection refused at accept: the third from one address.
    let _held = (common::connect_from("127.0.0.5", addr).await, common::connect_from("127.0.0.5", addr).await);
    let _refused = common::connect_from("127.0.0.5", addr).await;
    // A new frame reaching a viewer who had one (the fan-out delay).
    let before = room.received.len();
    let _second = viewer("127.0.0.4", "/online/lobby.png").await;
    assert!(room.read_parts(before + 1, Duration::from_secs(10)).await);

    let text = poll_until("every series", Duration::from_secs(10), || async {
        let (_, _, body) = common::request(
            addr,
            &format!("GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        let text = String::from_utf8_lossy(&body).into_owned();
        let ready = ["framecast_connections_refused_total", "framecast_panics_total", "framecast_camera_fps{"]
            .iter()
            .all(|m| text.contains(m));
        if ready { Ok(text) } else { Err("not all there yet".to_string()) }
    })
    .await;
    let served = scraped(&text);
    let mut missing = Vec::new();
    for (place, expr) in queries() {
        let (metrics, labels) = used(&expr);
        for metric in &metrics {
            match served.get(metric) {
                None => missing.push(format!("{place}: metric {metric} is not in /metrics")),
                Some(have) => {
                    for label in labels.iter().filter(|l| !have.contains(*l)) {
                        let in_another = metrics.iter().any(|m| served.get(m).is_some_and(|h| h.contains(label)));
                        if !in_another {
                            missing.push(format!("{place}: label {label} of {metric} is not in /metrics"));
                        }
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}\n\n/metrics:\n{text}", missing.join("\n"));
    // The check can fail: a made-up name is caught.
    let (metrics, _) = used("rate(framecast_no_such_metric_total[5m])");
    assert!(metrics.iter().any(|m| !served.contains_key(m)));
}
