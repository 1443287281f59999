//! `deploy/framecast.service` is a valid unit: `systemd-analyze verify`
//! (Debian's systemd) accepts it without a single warning, with ExecStart
//! pointed at the binary under test, whose command line it must accept.

use std::process::Command;

#[test]
fn the_service_unit_verifies_without_warnings() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/framecast.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/framecast serve --config /etc/framecast/framecast.json"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("framecast.service");
    std::fs::write(&path, unit.replace("/usr/bin/framecast", env!("CARGO_BIN_EXE_framecast"))).unwrap();
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

/// The unit is `Type=notify`: framecast speaks systemd's notify protocol
/// on `$NOTIFY_SOCKET` (a Unix datagram socket, as systemd gives it):
/// `READY=1` with `MAINPID=` once it serves, `RELOADING=1` then `READY=1`
/// around each reload (`ExecReload` sends SIGHUP). The listening end here
/// is the test, in systemd's place.
#[test]
fn it_tells_the_manager_when_it_serves_and_reloads() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixDatagram;
    use std::process::Stdio;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&socket_path).unwrap();
    manager.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"database": null, "state_file": null}"#).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed however the test ends.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _child = Kill(child);
    assert!(line.starts_with("framecast listening on http://"), "{line}");
    let mut buf = [0u8; 512];
    let mut next = || {
        let n = manager.recv(&mut buf).expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let ready = next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.lines().any(|l| l == format!("MAINPID={pid}")), "{ready:?}");
    Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
    assert_eq!(next().trim(), "RELOADING=1");
    assert_eq!(next().trim(), "READY=1");

    // An upgrade: the manager learns the new main process, which says it
    // is ready itself.
    Command::new("kill").args(["-USR2", &pid.to_string()]).status().unwrap();
    // The new process says it is ready and the main one; the old one names
    // it too. In either order.
    let mut said = Vec::new();
    let new_pid = loop {
        assert!(said.len() < 6, "no new main process named: {said:?}");
        said.push(next());
        let lines: Vec<&str> = said.iter().flat_map(|m| m.lines()).collect();
        let named = lines.iter().find_map(|l| l.strip_prefix("MAINPID=")).filter(|p| *p != pid.to_string());
        if let Some(new_pid) = named
            && lines.contains(&"READY=1")
        {
            break new_pid.to_string();
        }
    };
    // The new process is no child of the test: killed by id, however the test ends.
    struct KillPid(String);
    impl Drop for KillPid {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", &self.0]).status();
        }
    }
    let _new = KillPid(new_pid);
}
