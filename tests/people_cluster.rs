//! A people room (`count: "people"`) across two instances and a real
//! `redis-server` (started here on a free loopback port, killed when the
//! test ends): a member with tabs on both instances is one member, an
//! address watching through both is one guest, hidden members stay
//! unnamed, the counts come back after Redis restarts empty, and a killed
//! instance's people leave once its lease runs out.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::watched::poll_until;
use common::{Server, Viewer, api_with_token, connect_from};

const KEY: &str = "people-cluster-signing-key-0123456789";
const TOKEN: &str = "people-cluster-api-token-0123456789";

fn config(redis: &Redis) -> String {
    let mut json: serde_json::Value = serde_json::from_str(&redis.config(1500)).unwrap();
    json["url_signing_keys"] = serde_json::json!([KEY]);
    json["api_tokens"] = serde_json::json!([TOKEN]);
    json["rooms"] = serde_json::json!({ "forum": { "count": "people" } });
    json.to_string()
}

fn signed(query: &str) -> String {
    let keys = serde_json::json!({ "url_signing_keys": [KEY] }).to_string();
    common::sign::sign(&keys, &format!("/online/forum.png?{query}"), 3600, &[])
}

async fn open(addr: SocketAddr, source: &str, path: &str) -> Viewer {
    Viewer::start(connect_from(source, addr).await, path, "Mozilla/5.0 (people cluster test)").await
}

/// `(members, guests, hidden, names)` as the instance at `addr` says them.
async fn people(addr: SocketAddr) -> (u64, u64, u64, serde_json::Value) {
    let json = api_with_token(addr, "/api/v1/channels/online/forum", TOKEN).await;
    let n = |key: &str| json[key].as_u64().unwrap_or(u64::MAX);
    (n("members"), n("guests"), n("hidden"), json["member_names"].clone())
}

/// Waits until every instance says `want`; returns how long it took.
async fn wait_people(instances: &[SocketAddr], want: (u64, u64, u64, serde_json::Value)) -> Duration {
    let start = Instant::now();
    poll_until(&format!("{want:?} on every instance"), Duration::from_secs(10), || async {
        let mut seen = Vec::new();
        for addr in instances {
            seen.push(people(*addr).await);
        }
        if seen.iter().all(|s| *s == want) { Ok(()) } else { Err(format!("{seen:?}")) }
    })
    .await;
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_guests_count_once_across_instances() {
    let _serial = common::serial();
    let redis = Redis::start();
    let a = Server::start(&config(&redis));
    let b = Server::start(&config(&redis));
    let both = [a.addr, b.addr];
    let alice = signed("member=alice&name=Alice");
    // Alice: two tabs on A, one on B. Bob on B; Carol, hidden, on A.
    let mut alice_on_a = vec![open(a.addr, "127.0.0.1", &alice).await, open(a.addr, "127.0.0.1", &alice).await];
    wait_people(&both, (1, 0, 0, serde_json::json!(["Alice"]))).await;
    let mut alice_on_b = open(b.addr, "127.0.0.1", &alice).await;
    let _bob = open(b.addr, "127.0.0.1", &signed("member=bob&name=Bob")).await;
    let _carol = open(a.addr, "127.0.0.1", &signed("member=carol&name=Carol&hidden=1")).await;
    // Guests: 127.0.0.2 through both instances, 127.0.0.3 through B.
    let _guest_2_on_a = open(a.addr, "127.0.0.2", "/online/forum.png").await;
    let mut guest_2_on_b = Some(open(b.addr, "127.0.0.2", "/online/forum.png").await);
    let _guest_3_on_b = open(b.addr, "127.0.0.3", "/online/forum.png").await;

    let names = serde_json::json!(["Alice", "Bob"]);
    let took = wait_people(&both, (3, 2, 1, names.clone())).await;
    eprintln!("both instances agree on 3 members and 2 guests {took:?} after the last join");
    // Carol opens a visible tab on B: hidden on any instance is hidden.
    // The guest who joins after her on B shows that B's changes arrived.
    let carol_on_b = open(b.addr, "127.0.0.1", &signed("member=carol&name=Carol")).await;
    let guest_5_on_b = open(b.addr, "127.0.0.5", "/online/forum.png").await;
    wait_people(&both, (3, 3, 1, names.clone())).await;
    drop((carol_on_b, guest_5_on_b));
    wait_people(&both, (3, 2, 1, names.clone())).await;
    // The picture on each instance is the renderer's for the cluster's numbers.
    let want = common::expected_people(3, 2);
    alice_on_a[0].wait_for_image(&want, Duration::from_secs(10)).await;
    alice_on_b.wait_for_image(&want, Duration::from_secs(10)).await;

    // Alice closes her tabs on A and stays (her tab on B is open).
    alice_on_a.clear();
    poll_until("A's two tabs closed (6 streams left)", Duration::from_secs(10), || async {
        let json = api_with_token(a.addr, "/api/v1/channels/online/forum", TOKEN).await;
        if json["viewers"] == 6 { Ok(()) } else { Err(json["viewers"].to_string()) }
    })
    .await;
    wait_people(&both, (3, 2, 1, names)).await;
    // ... and leaves once her last tab, on B, closes.
    drop(alice_on_b);
    let took = wait_people(&both, (2, 2, 1, serde_json::json!(["Bob"]))).await;
    eprintln!("alice's last tab closed on B: both instances knew within {took:?}");
    // 127.0.0.2 still watches through A: still one guest.
    guest_2_on_b.take();
    wait_people(&both, (2, 2, 1, serde_json::json!(["Bob"]))).await;

    // Redis restarts empty: each instance registers again and sends all
    // it has, and the counts come back the same.
    let port = redis.port;
    drop(redis);
    let _redis = Redis::start_on(port, tempfile::tempdir().unwrap());
    // A new guest on B counts beside A's, so both sent theirs again.
    let _guest_4_on_b = open(b.addr, "127.0.0.4", "/online/forum.png").await;
    let took = wait_people(&both, (2, 3, 1, serde_json::json!(["Bob"]))).await;
    eprintln!("Redis restarted empty: the counts were back within {took:?}");

    // B is killed: its people leave once its lease (1.5 s) runs out. A
    // keeps Carol (hidden) and the guest 127.0.0.2.
    let start = Instant::now();
    drop(b);
    wait_people(&[a.addr], (1, 1, 1, serde_json::json!([]))).await;
    eprintln!("SIGKILL: B's people left A's count after {:?} (lease 1.5 s)", start.elapsed());
    alice_on_a.push(open(a.addr, "127.0.0.3", "/online/forum.png").await);
    alice_on_a[0].wait_for_image(&common::expected_people(1, 2), Duration::from_secs(10)).await;
}
