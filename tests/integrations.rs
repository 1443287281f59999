//! `docs/integrations.md` works as written: every framecast URL on the
//! page (`https://framecast.example.org/…`, also percent-encoded inside
//! shields' URL) is asked of a running server, and answers with the
//! content type the tool it is given to expects. The shields endpoint and
//! µStreamer's `/state` carry the keys those tools read.

mod common;

use std::collections::BTreeSet;

use common::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BASE: &str = "https://framecast.example.org";
const TOKEN: &str = "integrations-test-token-0123456789";

/// Every path the page gives for framecast.
fn documented_paths() -> BTreeSet<String> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/integrations.md")).unwrap();
    let decoded = page.replace("%3A", ":").replace("%2F", "/");
    let mut paths = BTreeSet::new();
    for piece in decoded.split(BASE).skip(1) {
        let path: String = piece.chars().take_while(|c| !c.is_whitespace() && !"\"')`,".contains(*c)).collect();
        // The bare base ("replace ... with your server") names no URL.
        if path.starts_with('/') {
            paths.insert(path);
        }
    }
    paths
}

/// The status, Content-Type and the first bytes of the body of `path`
/// (a stream is read only that far).
async fn head(addr: std::net::SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let raw = format!(
        "GET {path} HTTP/1.1\r\nHost: framecast.example.org\r\nUser-Agent: Mozilla/5.0 (integrations test)\r\n\r\n"
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() < 64 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let text = String::from_utf8_lossy(&got[..end]).to_string();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    (status, content_type, got[end..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_url_on_the_integrations_page_answers_as_its_tool_expects() {
    let server = Server::start(&serde_json::json!({ "api_tokens": [TOKEN] }).to_string());
    let addr = server.addr;
    // The badge the README example shows.
    let body = r#"{"label": "build", "message": "passing", "color": "green", "namedLogo": "github"}"#;
    let put = format!(
        "PUT /api/v1/badges/build HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(common::request(addr, &put).await.0, 200);

    let paths = documented_paths();
    assert!(paths.len() >= 6, "{paths:?}");
    for path in &paths {
        let expected = match path.as_str() {
            p if p.ends_with(".mjpg") || p.ends_with(".png") => "multipart/x-mixed-replace",
            p if p.ends_with(".jpg") => "image/jpeg",
            "/healthz" => "text/plain",
            p if p.ends_with("/shields") || p == "/state" => "application/json",
            other => panic!("docs/integrations.md has a URL this test does not know: {other}"),
        };
        let (status, content_type, _) = head(addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(content_type.starts_with(expected), "{path}: {content_type}, not {expected}");
    }

    // shields' endpoint schema, with only its keys.
    let (_, _, body) =
        common::request(addr, "GET /api/v1/badges/build/shields HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["schemaVersion"], 1);
    assert_eq!(
        (json["label"].as_str(), json["message"].as_str(), json["color"].as_str()),
        (Some("build"), Some("passing"), Some("green"))
    );
    assert_eq!(json["namedLogo"], "github");
    let allowed = [
        "schemaVersion",
        "label",
        "message",
        "color",
        "labelColor",
        "isError",
        "namedLogo",
        "logoSvg",
        "logoColor",
        "style",
        "cacheSeconds",
    ];
    for key in json.as_object().unwrap().keys() {
        assert!(allowed.contains(&key.as_str()), "{key} is not a key of shields' schema");
    }
    // A badge nobody wrote: still the schema, marked an error.
    let (status, _, body) =
        common::request(addr, "GET /api/v1/badges/nope/shields HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, json["isError"].as_bool()), (404, Some(true)));

    // µStreamer's /state, with a viewer on the default camera.
    let _viewer = common::Viewer::connect(addr, "/camera/demo.mjpg", "integrations test").await;
    let state = common::watched::poll_until("a client in /state", std::time::Duration::from_secs(10), || async {
        let (_, _, body) = common::request(addr, "GET /state HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if json["result"]["stream"]["clients"] == 1 && json["result"]["source"]["online"] == true {
            Ok(json)
        } else {
            Err(json.to_string())
        }
    })
    .await;
    assert_eq!(state["ok"], true);
    let resolution = &state["result"]["source"]["resolution"];
    assert!(resolution["width"].as_u64().unwrap() > 0 && resolution["height"].as_u64().unwrap() > 0, "{state}");
    assert!(state["result"]["source"]["captured_fps"].is_u64());
    assert_eq!(state["result"]["stream"]["clients_stat"].as_object().unwrap().len(), 1);
}
