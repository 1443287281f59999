//! Churn: rounds of hundreds of viewers arriving and leaving in every way a
//! viewer leaves (FIN, RST, close with unread data, vanish from the
//! network) while steady viewers stay. At the end the count is exactly the
//! steady viewers, and the server's memory is back where it started
//! (within 2 KiB per connect).
//! Runs in a private network namespace (vanishing needs dropped packets).

mod common;

use std::time::{Duration, Instant};

use common::{Server, Viewer, netns, tcp_queues, wait_for_viewers};
use framecast_load::process_usage;
use tokio::net::TcpSocket;

const ROUNDS: usize = 5;
const PER_MODE: usize = 100;
const STEADY: u64 = 50;

/// RSS once it stops falling (jemalloc hands freed pages back over a few
/// seconds): the lowest of readings taken until two in a row do not drop.
async fn settled_rss(pid: u32) -> (u64, f64) {
    let mut low = process_usage(pid).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut flat = 0;
    while flat < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = process_usage(pid).unwrap();
        if now.0 < low.0 {
            low = now;
            flat = 0
        } else {
            flat += 1
        }
    }
    low
}

async fn viewer_from(addr: std::net::SocketAddr, source: &str) -> Viewer {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    Viewer::start(socket.connect(addr).await.unwrap(), "/online/churn.png", "framecast-test").await
}

#[test]
fn churn_in_every_mode_leaves_the_exact_count_and_memory_returns() {
    let _serial = common::serial();
    netns::run_inside("churn_inside_namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: churn_in_every_mode_leaves_the_exact_count_and_memory_returns runs it in a network namespace"]
async fn churn_inside_namespace() {
    netns::enter();
    let server = Server::start(
        r#"{"state_file": null, "resend_interval_ms": 500, "tcp_user_timeout_ms": 2000,
            "tcp_keepalive_idle_ms": 1000, "tcp_keepalive_interval_ms": 1000, "tcp_keepalive_retries": 2}"#,
    );
    let addr = server.addr;
    let mut steady = Vec::new();
    for _ in 0..STEADY {
        steady.push(viewer_from(addr, "127.0.0.1").await);
    }
    wait_for_viewers(addr, "churn", STEADY, Duration::from_secs(5)).await;
    // Warm-up: a crowd as large as the rounds' peak arrives and vanishes
    // from the network before the baseline, so the baseline already holds
    // what the runtime and the allocator keep once they have served that
    // many (task slabs, arena fragmentation: about a fifth of the peak's
    // growth, and the same after every further crowd). What is left over
    // after the rounds below is then what they leaked.
    let mut crowd = Vec::new();
    for i in 0..(4 + ROUNDS) * PER_MODE {
        crowd.push(viewer_from(addr, &format!("127.0.4.{}", 1 + i % 200)).await);
    }
    wait_for_viewers(addr, "churn", STEADY + crowd.len() as u64, Duration::from_secs(10)).await;
    netns::drop_packets(&["ip", "saddr", "127.0.4.0/24"]);
    netns::drop_packets(&["ip", "daddr", "127.0.4.0/24"]);
    wait_for_viewers(addr, "churn", STEADY, Duration::from_secs(30)).await;
    drop(crowd);
    let (baseline, _) = settled_rss(server.pid()).await;

    // Vanishing viewers connect from 127.0.3.x; they go silent all at once
    // at the end, when their packets start being dropped.
    let mut vanishing = Vec::new();
    let mut peak = baseline;
    for round in 0..ROUNDS {
        let mut fin = Vec::new();
        let mut rst = Vec::new();
        let mut unread = Vec::new();
        for i in 0..PER_MODE {
            let source = format!("127.0.2.{}", 1 + (round * PER_MODE + i) % 200);
            fin.push(viewer_from(addr, &source).await);
            rst.push(viewer_from(addr, &source).await);
            unread.push(viewer_from(addr, &source).await);
            vanishing.push(viewer_from(addr, &format!("127.0.3.{}", 1 + (round * PER_MODE + i) % 200)).await);
        }
        let expected = STEADY + (4 * PER_MODE + round * PER_MODE) as u64;
        wait_for_viewers(addr, "churn", expected, Duration::from_secs(10)).await;
        peak = peak.max(process_usage(server.pid()).unwrap().0);
        drop(fin);
        for v in rst {
            v.reset();
        }
        // Closing with unread data: a resend or two sit unread (the kernel
        // then answers with RST). Readers that stop until their buffers are
        // really full are presence.rs's and under_load.rs's case.
        let deadline = Instant::now() + Duration::from_secs(10);
        while unread.iter().any(|v| tcp_queues(v.local_port(), addr.port()).1 == 0) {
            assert!(Instant::now() < deadline, "no resend arrived for the unread viewers");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(unread);
        let expected = STEADY + ((round + 1) * PER_MODE) as u64;
        wait_for_viewers(addr, "churn", expected, Duration::from_secs(10)).await;
    }

    // Everyone on 127.0.3.x drops off the network at once.
    let start = Instant::now();
    netns::drop_packets(&["ip", "saddr", "127.0.3.0/24"]);
    netns::drop_packets(&["ip", "daddr", "127.0.3.0/24"]);
    let took = wait_for_viewers(addr, "churn", STEADY, Duration::from_secs(30)).await;
    eprintln!(
        "{} connects in 4 modes over {ROUNDS} rounds; {} vanished viewers left in {took:?}; count back to exactly {STEADY}",
        ROUNDS * PER_MODE * 4,
        vanishing.len()
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(common::viewers(addr, "churn").await, STEADY, "the count drifted after settling");
    assert!(start.elapsed() < Duration::from_secs(10));

    // Memory: no leak per connect. Settled readings wander by up to about
    // 3 MiB from run to run (allocator state after a crowd), so what is
    // asserted is at most 2 KiB left per connect (4 MiB over the rounds):
    // a viewer's whole state is about 10 KiB, so losing one per connect
    // fails by far. (jemalloc returns freed pages over a few seconds.)
    let connects = (ROUNDS * PER_MODE * 4) as u64;
    let allowance = 2048 * connects;
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let (rss, _) = process_usage(server.pid()).unwrap();
        if rss <= baseline + allowance || Instant::now() > deadline {
            break rss;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "server RSS: baseline {:.1} MiB, peak {:.1} MiB, after churn {:.1} MiB",
        mib(baseline),
        mib(peak),
        mib(settled)
    );
    assert!(
        settled <= baseline + allowance,
        "RSS {:.1} MiB is more than {:.1} MiB above the baseline {:.1} MiB after {connects} connects (peak {:.1} MiB)",
        mib(settled),
        mib(allowance),
        mib(baseline),
        mib(peak)
    );
    drop(vanishing);
    drop(steady);
}
