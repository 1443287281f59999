//! A viewer that vanishes from the network (no FIN, no RST: its packets are
//! dropped) leaves the count within the TCP_USER_TIMEOUT bound. Runs inside a
//! private network namespace this test makes (`unshare --net`, as root), so
//! the host's own network is never touched.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Viewer, expected_badge, netns, wait_for_viewers};

const USER_TIMEOUT_MS: u64 = 2000;
const RESEND_MS: u64 = 500;

#[test]
fn a_vanished_peer_leaves_the_count() {
    let _serial = common::serial();
    netns::run_inside("vanish_inside_namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: a_vanished_peer_leaves_the_count runs it inside its own network namespace"]
async fn vanish_inside_namespace() {
    netns::enter();
    let server = Server::start(&format!(
        r#"{{"resend_interval_ms": {RESEND_MS}, "tcp_user_timeout_ms": {USER_TIMEOUT_MS},
            "tcp_keepalive_idle_ms": 1000, "tcp_keepalive_interval_ms": 1000, "tcp_keepalive_retries": 2}}"#
    ));
    let addr = server.addr;
    let mut healthy = Viewer::connect(addr, "/online/vanish.png", "framecast-test").await;
    let ghost = Viewer::connect(addr, "/online/vanish.png", "framecast-test").await;
    wait_for_viewers(addr, "vanish", 2, Duration::from_secs(5)).await;

    // The ghost's machine drops off the network: nothing it sends arrives,
    // nothing sent to it is acknowledged, and its socket stays open.
    let port = ghost.local_port().to_string();
    for direction in ["sport", "dport"] {
        netns::drop_packets(&["tcp", direction, &port]);
    }

    let start = Instant::now();
    let took = wait_for_viewers(addr, "vanish", 1, Duration::from_secs(30)).await;
    let bound = Duration::from_millis(USER_TIMEOUT_MS + RESEND_MS) + Duration::from_secs(3);
    eprintln!("vanished viewer left the count after {took:?} (user timeout {USER_TIMEOUT_MS} ms, bound {bound:?})");
    assert!(took <= bound, "left after {took:?}, bound {bound:?}");
    assert!(start.elapsed() >= Duration::from_millis(USER_TIMEOUT_MS / 2), "left before the timeout could fire");

    // The healthy viewer is unaffected and now sees itself alone.
    healthy.wait_for_image(&expected_badge(1), Duration::from_secs(5)).await;
    drop(ghost);
}
