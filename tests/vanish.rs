//! A viewer that vanishes from the network (no FIN, no RST: its packets are
//! dropped) leaves the count within the TCP_USER_TIMEOUT bound. Runs inside a
//! private network namespace this test makes (`unshare --net`, as root), so
//! the host's own network is never touched.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, Viewer, expected_badge, wait_for_viewers};

const INSIDE: &str = "FRAMECAST_TEST_IN_NETNS";
const USER_TIMEOUT_MS: u64 = 2000;
const RESEND_MS: u64 = 500;

#[test]
fn a_vanished_peer_leaves_the_count() {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .args(["--net", "--"])
        .arg(exe)
        .args(["--exact", "vanish_inside_namespace", "--ignored", "--nocapture"])
        .env(INSIDE, "1")
        .status()
        .expect("unshare (util-linux) runs; the test command installs it");
    assert!(status.success(), "the namespaced part failed (needs root for unshare --net and nft)");
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}; the test command installs iproute2 and nftables"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: a_vanished_peer_leaves_the_count runs it inside its own network namespace"]
async fn vanish_inside_namespace() {
    assert_eq!(std::env::var(INSIDE).as_deref(), Ok("1"), "run through a_vanished_peer_leaves_the_count");
    run("ip", &["link", "set", "lo", "up"]);
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
    run("nft", &["add", "table", "inet", "framecast_test"]);
    run("nft", &["add", "chain", "inet", "framecast_test", "out", "{ type filter hook output priority 0 ; }"]);
    for direction in ["sport", "dport"] {
        let rule = ["add", "rule", "inet", "framecast_test", "out", "tcp", direction, &port, "drop"];
        run("nft", &rule);
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
