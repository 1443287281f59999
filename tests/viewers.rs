//! Who is watching, through the running binary: each viewer of a channel is
//! listed with its User-Agent, framing and counters (its address only for
//! token holders), and `DELETE /api/v1/viewers/{id}` with a token ends that
//! one stream cleanly while the others go on.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Server, Viewer, request, wait_for_viewers};
use serde_json::Value;

const TOKEN: &str = "viewers-test-token-0123456789";

async fn call(addr: SocketAddr, method: &str, path: &str, token: bool) -> (u16, Value) {
    let auth = if token { format!("Authorization: Bearer {TOKEN}\r\n") } else { String::new() };
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let (status, _, body) = request(addr, &raw).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_listed_and_one_can_be_ended() {
    let server = Server::start(&format!(r#"{{"api_tokens": ["{TOKEN}"]}}"#));
    let addr = server.addr;
    let mut browser = Viewer::connect(addr, "/online/hall.png", "Mozilla/5.0 (alpha)").await;
    let mut reader = Viewer::connect(addr, "/online/hall.png", "curl/8.0").await;
    wait_for_viewers(addr, "hall", 2, Duration::from_secs(5)).await;
    assert!(browser.read_parts(1, Duration::from_secs(5)).await && reader.read_parts(1, Duration::from_secs(5)).await);

    let (status, list) = call(addr, "GET", "/api/v1/channels/online/hall/viewers", false).await;
    assert_eq!(status, 200, "{list}");
    let viewers = list["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 2, "{list}");
    let alpha = viewers.iter().find(|v| v["user_agent"] == "Mozilla/5.0 (alpha)").expect("the browser");
    let curl = viewers.iter().find(|v| v["user_agent"] == "curl/8.0").expect("the reader");
    assert_eq!((alpha["framing"].as_str(), curl["framing"].as_str()), (Some("browser"), Some("reader")));
    assert!(alpha["parts"].as_u64() >= Some(1) && alpha["bytes"].as_u64() > Some(100), "{alpha}");
    assert!(alpha["connected_since"].as_u64() > Some(1_700_000_000));
    assert!(alpha.get("address").is_none(), "no address without a token: {alpha}");
    let (_, with_token) = call(addr, "GET", "/api/v1/channels/online/hall/viewers", true).await;
    assert!(with_token["viewers"].as_array().unwrap().iter().all(|v| v["address"] == "127.0.0.1"), "{with_token}");

    // Ending one viewer needs a token; then its stream ends cleanly.
    let id = alpha["id"].as_u64().unwrap();
    assert_eq!(call(addr, "DELETE", &format!("/api/v1/viewers/{id}"), false).await.0, 401);
    assert_eq!(call(addr, "DELETE", "/api/v1/viewers/x", true).await.0, 400);
    assert_eq!(call(addr, "GET", &format!("/api/v1/viewers/{id}"), true).await.0, 405);
    let (status, body) = call(addr, "DELETE", &format!("/api/v1/viewers/{id}"), true).await;
    assert_eq!(status, 200, "{body}");
    assert!(browser.read_until_ended(Duration::from_secs(5)).await, "the kicked stream ended with HTTP's last chunk");
    wait_for_viewers(addr, "hall", 1, Duration::from_secs(5)).await;
    let (_, list) = call(addr, "GET", "/api/v1/channels/online/hall/viewers", false).await;
    assert_eq!(list["viewers"].as_array().unwrap().len(), 1);
    assert_eq!(list["viewers"][0]["user_agent"], "curl/8.0");
    assert_eq!(call(addr, "DELETE", &format!("/api/v1/viewers/{id}"), true).await.0, 404);
    // The other stream goes on.
    let seen = reader.received.len();
    let _more = Viewer::connect(addr, "/online/hall.png", "t").await;
    assert!(reader.read_parts(seen + 1, Duration::from_secs(5)).await, "the reader still gets parts");
}
