//! Rooms that count people (`count: "people"`), against the running
//! binary: members are signed into the URL (`framecast sign`, the real
//! command), five tabs of one member are one, guests are distinct
//! addresses (127.0.0.2 and 127.0.0.3), an unsigned or tampered member is
//! refused and never counted, and the served picture shows members plus
//! guests, as the renderer draws that number.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::watched::poll_until;
use common::{Server, Viewer, api_with_token, connect_from, decode_png, get};

const KEY: &str = "people-test-signing-key-0123456789";
const TOKEN: &str = "people-test-api-token-0123456789";

fn config() -> String {
    serde_json::json!({
        "url_signing_keys": [KEY],
        "api_tokens": [TOKEN],
        "resend_interval_ms": 1000,
        "max_connections_per_ip": 0,
        "rooms": { "forum": { "count": "people" } }
    })
    .to_string()
}

fn signed(path: &str) -> String {
    common::sign::sign(&serde_json::json!({ "url_signing_keys": [KEY] }).to_string(), path, 3600, &[])
}

/// `(streams, shown)`: the room's open streams, and the count it shows.
async fn room(addr: SocketAddr) -> (u64, u64) {
    let (status, _, body) = get(addr, "/api/v1/channels/online/forum").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (json["viewers"].as_u64().unwrap(), json["shown"].as_u64().unwrap())
}

/// Waits until the room has `streams` open streams and shows `shown`.
async fn wait_for(addr: SocketAddr, streams: u64, shown: u64) {
    let what = format!("{streams} streams showing {shown}");
    poll_until(&what, Duration::from_secs(10), || async {
        let now = room(addr).await;
        if now == (streams, shown) { Ok(()) } else { Err(format!("{now:?}")) }
    })
    .await
}

async fn open(addr: SocketAddr, source: &str, path: &str) -> Viewer {
    Viewer::start(connect_from(source, addr).await, path, "Mozilla/5.0 (people test)").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_count_once_across_tabs_and_guests_once_per_address() {
    let _serial = common::serial();
    let server = Server::start(&config());
    let addr = server.addr;
    let alice = signed("/online/forum.png?member=alice&name=Alice");
    let bob = signed("/online/forum.png?member=bob&name=Bob");
    let mut alice_tabs = Vec::new();
    for _ in 0..3 {
        alice_tabs.push(open(addr, "127.0.0.1", &alice).await);
    }
    let _bob = open(addr, "127.0.0.1", &bob).await;
    // Hidden: counted, never named.
    let carol = signed("/online/forum.png?member=carol&name=Carol&hidden=1");
    let _carol = open(addr, "127.0.0.1", &carol).await;
    // Two guests on two addresses; the second opens two tabs.
    let _guest_a = open(addr, "127.0.0.2", "/online/forum.png").await;
    let _guest_b = open(addr, "127.0.0.3", "/online/forum.png").await;
    let _guest_b_again = open(addr, "127.0.0.3", "/online/forum.png").await;

    // A member nobody signed, or signed for someone else, is refused.
    let unsigned = get(addr, "/online/forum.png?member=eve").await;
    assert_eq!(unsigned.0, 403, "{}", String::from_utf8_lossy(&unsigned.2));
    let tampered = alice.replace("member=alice", "member=eve");
    assert_eq!(get(addr, &tampered).await.0, 403);
    let appended = format!("{alice}&member=eve");
    assert_eq!(get(addr, &appended).await.0, 403, "a member after the signature");

    // 8 streams: 3 members (alice's three tabs are one) and 2 guests.
    wait_for(addr, 8, 5).await;
    let json = api_with_token(addr, "/api/v1/channels/online/forum", TOKEN).await;
    assert_eq!(
        (json["members"].as_u64(), json["guests"].as_u64(), json["hidden"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(json["member_names"], serde_json::json!(["Alice", "Bob"]), "hidden members are never named");
    let (_, _, anonymous) = get(addr, "/api/v1/channels/online/forum").await;
    let anonymous: serde_json::Value = serde_json::from_slice(&anonymous).unwrap();
    assert_eq!(anonymous["members"], 3);
    assert!(anonymous.get("member_names").is_none(), "names only with a token: {anonymous}");
    // The picture every viewer gets is the renderer's for those numbers.
    let want = common::expected_people(3, 2);
    alice_tabs[0].wait_for_image(&want, Duration::from_secs(10)).await;
    // A crawler gets one plain picture and is never counted.
    let raw = "GET /online/forum.png HTTP/1.1\r\nHost: t\r\nUser-Agent: Mozilla/5.0 (compatible; YandexBot/3.0)\r\nConnection: close\r\n\r\n";
    let (status, head, body) = common::request(addr, raw).await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: image/png"), "{head}");
    assert_eq!(decode_png(&body), common::expected_people(3, 2));
    assert_eq!(room(addr).await, (8, 5), "the crawler is not counted");
    let (status, _, once) = get(addr, "/online/forum.png?once").await;
    assert_eq!(status, 200);
    assert_eq!(decode_png(&once), want);

    // Alice closes two tabs and stays; closes the last and leaves.
    alice_tabs.truncate(1);
    wait_for(addr, 6, 5).await;
    alice_tabs.clear();
    wait_for(addr, 5, 4).await;
    alice_tabs.push(open(addr, "127.0.0.2", "/online/forum.png").await);
    alice_tabs[0].wait_for_image(&common::expected_people(2, 2), Duration::from_secs(10)).await;
}

/// A member is one only while its signature verifies: a reload that drops
/// the key that signed it ends its stream (cleanly); a guest's goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_signing_key_ends_member_streams_and_keeps_guests() {
    let _serial = common::serial();
    let server = Server::start(&config());
    let addr = server.addr;
    let mut alice = open(addr, "127.0.0.1", &signed("/online/forum.png?member=alice")).await;
    let mut guest = open(addr, "127.0.0.2", "/online/forum.png").await;
    wait_for(addr, 2, 2).await;
    let mut changed: serde_json::Value = serde_json::from_str(&config()).unwrap();
    changed["url_signing_keys"] = serde_json::json!(["another-people-test-key-0123456789"]);
    server.rewrite_config(&changed.to_string());
    server.signal("HUP");
    assert!(alice.read_until_ended(Duration::from_secs(20)).await, "the member's stream ends with its key");
    wait_for(addr, 1, 1).await;
    let before = guest.received.len();
    assert!(guest.read_parts(before + 1, Duration::from_secs(10)).await, "the guest's stream goes on");
}

/// A room names its template: the built-in forum footer line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_draws_with_the_template_it_names() {
    let _serial = common::serial();
    let mut json: serde_json::Value = serde_json::from_str(&config()).unwrap();
    json["rooms"]["forum"]["template"] = "people-footer".into();
    let server = Server::start(&json.to_string());
    let addr = server.addr;
    let mut alice = open(addr, "127.0.0.1", &signed("/online/forum.png?member=alice")).await;
    let _guest = open(addr, "127.0.0.2", "/online/forum.png").await;
    wait_for(addr, 2, 2).await;
    let want = common::expected_render("people-footer", &["online=2", "members=1", "guests=1"]);
    alice.wait_for_image(&want, Duration::from_secs(10)).await;
    // A template nobody has is refused, with the ones there are.
    json["rooms"]["forum"]["template"] = "nope".into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, json.to_string()).unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("rooms.forum.template") && said.contains("people-footer"), "{said}");
}
