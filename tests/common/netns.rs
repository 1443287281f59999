//! Running part of a test inside a private network namespace (`unshare
//! --net`, as root): packets can be dropped there with nftables without ever
//! touching the host's network.

use std::process::Command;

const INSIDE: &str = "FRAMECAST_TEST_IN_NETNS";

/// Re-runs this test binary's ignored test `inner` inside a new network
/// namespace; panics if it fails.
pub fn run_inside(inner: &str) {
    rerun_under_unshare(&["--net"], INSIDE, inner);
}

/// Runs this test binary's ignored test `inner` under `unshare ARGS`, with
/// `marker` set so the inner test knows where it runs.
fn rerun_under_unshare(args: &[&str], marker: &str, inner: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(args)
        .arg("--")
        .arg(exe)
        .args(["--exact", inner, "--ignored", "--nocapture", "--test-threads", "1"])
        .env(marker, "1")
        .output()
        .expect("unshare (util-linux) runs; the test command installs it");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the part under unshare {args:?} failed (it needs root)");
    // libtest exits 0 when `--exact NAME` matches nothing: a renamed inner
    // test would pass while running nothing. Exactly one must have run.
    assert_eq!(ran(&stdout), Some(1), "under unshare, {inner:?} must be exactly one test that ran");
}

/// How many tests libtest's summary line (`test result: ok. N passed; ...`) says passed.
fn ran(stdout: &str) -> Option<u32> {
    let summary = stdout.lines().rev().find_map(|l| l.strip_prefix("test result: "))?;
    summary.split(';').find_map(|part| part.trim().trim_start_matches("ok. ").strip_suffix(" passed")?.parse().ok())
}

/// In the inner test: checks it runs inside the namespace, brings loopback up.
pub fn enter() {
    assert_eq!(std::env::var(INSIDE).as_deref(), Ok("1"), "run through its outer test");
    run("ip", &["link", "set", "lo", "up"]);
    run("nft", &["add", "table", "inet", "framecast_test"]);
    run("nft", &["add", "chain", "inet", "framecast_test", "out", "{ type filter hook output priority 0 ; }"]);
}

/// Drops every packet matching `selector` (e.g. `tcp sport 4242`,
/// `ip saddr 127.0.3.0/24`) in both directions on loopback.
pub fn drop_packets(selector: &[&str]) {
    let mut rule = vec!["add", "rule", "inet", "framecast_test", "out"];
    rule.extend_from_slice(selector);
    rule.push("drop");
    run("nft", &rule);
}

pub fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}; the test command installs iproute2 and nftables"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const INSIDE_MOUNT: &str = "FRAMECAST_TEST_IN_MOUNTNS";

/// Re-runs this test binary's ignored test `inner` inside a new mount
/// namespace (`unshare --mount`, as root), where it may mount filesystems
/// that nothing outside sees; panics if it fails.
pub fn run_in_mount_namespace(inner: &str) {
    rerun_under_unshare(&["--mount", "--propagation", "private"], INSIDE_MOUNT, inner);
}

/// In the inner test: mounts a tmpfs of `size` (e.g. `2m`) on `dir`.
pub fn mount_tmpfs(dir: &std::path::Path, size: &str) {
    assert_eq!(std::env::var(INSIDE_MOUNT).as_deref(), Ok("1"), "run through its outer test");
    let dir = dir.to_str().unwrap();
    run("mount", &["-t", "tmpfs", "-o", &format!("size={size}"), "framecast-test", dir]);
}

/// Removes every drop rule added with `drop_packets` (the network heals).
pub fn heal() {
    run("nft", &["flush", "chain", "inet", "framecast_test", "out"]);
}
