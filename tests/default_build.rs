//! The default build: what `cargo run --release` makes, without
//! `--all-features`. `tests/run.sh` runs this file with the default
//! features before the all-features suite (under `--all-features` its tests
//! are compiled out). It serves the embedded config with its demo page,
//! badge and camera, says it has no optional features, and refuses a
//! local camera (`"kind": "device"`) with how to build one that has them.

#![cfg(not(feature = "device"))]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, Viewer, get};

#[test]
fn the_version_names_no_features() {
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("(features: none)"), "{text}");
}

#[test]
fn a_local_camera_is_refused_with_how_to_build_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cam.json");
    std::fs::write(&file, r#"{"cameras": {"desk": {"source": {"kind": "device", "index": 0}}}}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cameras.desk.source") && err.contains("--features device"), "{err}");
}

#[tokio::test]
async fn the_embedded_config_serves_the_demo() {
    let server = Server::start("{}");
    let (status, head, page) = get(server.addr, "/").await;
    assert_eq!(status, 200, "{head}");
    assert!(String::from_utf8_lossy(&page).contains("/online.png"));
    let mut badge = Viewer::connect(server.addr, "/online.png", "t").await;
    assert!(badge.read_parts(1, Duration::from_secs(5)).await, "the live badge");
    let mut camera = Viewer::connect(server.addr, "/camera/demo.mjpg", "t").await;
    assert!(camera.read_parts(2, Duration::from_secs(10)).await, "the demo camera");
}
