//! `deploy/framecast.service` is a valid unit: `systemd-analyze verify`
//! (Debian's systemd) accepts it without a single warning, with ExecStart
//! pointed at the binary under test, whose command line it must accept.

use std::process::Command;

#[test]
fn the_service_unit_verifies_without_warnings() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/framecast.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/framecast serve --config /etc/framecast/config.json"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("framecast.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/framecast", env!("CARGO_BIN_EXE_framecast"))).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd; the test command installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");

    // The same check does fail on a mistake, so the pass above means something.
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("ProtectSystem=", "ProtectSystme=")).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown key"));

    // A config checks out with the binary the unit starts.
    let config = dir.path().join("config.json");
    std::fs::write(&config, "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast")).arg("check-config").arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
