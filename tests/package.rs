//! The Debian package, for real: `cargo deb` (cargo-deb, which the test
//! command installs) builds it from the binary under test; `dpkg-deb` lists
//! and describes it; `lintian` finds no error in it (its warnings are the
//! ones `docs/deployment.md` lists and justifies); `systemd-analyze verify`
//! accepts the packaged unit; and the packaged binary, extracted, serves
//! `/online.png` with the packaged config. Also the Prometheus rules:
//! `promtool check rules` and `promtool test rules` (each alert fires from
//! series in `deploy/prometheus/alerts.test.yml`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, decode_png, get, run};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the package into `dir` from the binary the tests built (no new
/// build: the dev profile's binary, stripped by cargo-deb).
fn build_deb(dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_framecast"));
    let target = binary.parent().and_then(Path::parent).expect("target/debug/framecast");
    run(Command::new(cargo)
        .args(["deb", "--no-build", "--profile", "dev", "--fast", "-o"])
        .arg(dir)
        .env("CARGO_TARGET_DIR", target)
        .current_dir(manifest_dir()));
    let deb =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "deb"));
    let deb = deb.expect("cargo deb wrote a .deb");
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("framecast_{}", env!("CARGO_PKG_VERSION"))) && name.ends_with("_amd64.deb"),
        "{name}"
    );
    deb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debian_package_installs_what_it_says_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());

    // What it holds.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/bin/framecast",
        "./etc/framecast/framecast.json",
        "./lib/systemd/system/framecast.service",
        "./usr/share/doc/framecast/copyright",
        "./usr/share/doc/framecast/changelog.Debian.gz",
        "./usr/share/doc/framecast/README.md",
        "./usr/share/doc/framecast/docs/deployment.md",
        "./usr/share/doc/framecast/examples/prometheus/alerts.yml",
        "./usr/share/doc/framecast/examples/grafana/framecast.json",
    ] {
        assert!(listing.lines().any(|l| l.ends_with(path)), "{path} is not in the package:\n{listing}");
    }
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for field in ["Package: framecast", "Architecture: amd64", "Section: net", "Depends:", "Maintainer:"] {
        assert!(info.contains(field), "{field} missing:\n{info}");
    }
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/framecast/framecast.json", "the config is a conffile");
    for script in ["postinst", "prerm", "postrm"] {
        assert!(control.join(script).exists(), "no {script}");
    }
    // A fresh install enables and does not start; an upgrade hands over.
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    let code: Vec<&str> = postinst.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    assert!(code.iter().any(|l| l.contains("deb-systemd-helper enable")), "{postinst}");
    assert!(!code.iter().any(|l| l.contains("systemctl start") || l.contains("invoke start")), "{postinst}");
    assert!(code.iter().any(|l| l.contains("kill -USR2")), "{postinst}");
    assert!(code.iter().any(|l| l.contains("deb-systemd-helper unmask")), "a reinstall after a removal unmasks");

    // lintian: no errors; each warning is one docs/deployment.md justifies.
    let out = Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(&deb)
        .output()
        .expect("lintian (Debian's; the test command installs it)");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "lintian found errors:\n{said}{}", String::from_utf8_lossy(&out.stderr));
    let justified = std::fs::read_to_string(manifest_dir().join("docs/deployment.md")).unwrap();
    for line in said.lines().filter(|l| l.starts_with("W: ")) {
        let tag = line.split_whitespace().nth(2).unwrap_or_default();
        assert!(
            justified.contains(&format!("`{tag}`")),
            "lintian warning {tag} is not justified in docs/deployment.md"
        );
    }

    // The packaged unit verifies, pointed at the packaged binary.
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let binary = root.join("usr/bin/framecast");
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/framecast.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/framecast serve --config /etc/framecast/framecast.json"));
    let unit_path = dir.path().join("framecast.service");
    std::fs::write(&unit_path, unit.replace("/usr/bin/framecast", &binary.to_string_lossy())).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit_path).output().expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");

    // The packaged binary with the packaged config: it checks, and serves.
    let config_path = root.join("etc/framecast/framecast.json");
    run(Command::new(&binary).arg("check-config").arg(&config_path));
    let config = std::fs::read_to_string(&config_path).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut command = Command::new(&binary);
    // Its state where the unit keeps it: the working directory.
    command.current_dir(state.path());
    let server = Server::start_with(command, &config);
    let (status, head, body) = get(server.addr, "/online.png?once").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: image/png"), "{head}");
    let (w, h, _) = decode_png(&body);
    assert!(w > 0 && h == 20, "{w}x{h}");
    assert!(state.path().join("framecast.db").exists(), "the database lands in the working directory");
}

#[test]
fn the_alerts_check_and_each_one_fires_in_its_unit_test() {
    let rules = manifest_dir().join("deploy/prometheus");
    let out = run(Command::new("promtool").arg("check").arg("rules").arg(rules.join("alerts.yml")));
    assert!(out.contains("SUCCESS: 8 rules found"), "{out}");
    let out = run(Command::new("promtool").arg("test").arg("rules").arg(rules.join("alerts.test.yml")));
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert has a test that expects it to fire.
    let alerts = std::fs::read_to_string(rules.join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(rules.join("alerts.test.yml")).unwrap();
    for alert in alerts.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(tests.contains(&format!("alertname: {alert}")), "{alert} has no unit test");
    }
    // And a broken expectation does fail: the tests are checked, not just run.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(rules.join("alerts.yml"), dir.path().join("alerts.yml")).unwrap();
    let broken = tests.replacen("severity: critical, job: framecast", "severity: warning, job: framecast", 1);
    std::fs::write(dir.path().join("alerts.test.yml"), broken).unwrap();
    let out =
        Command::new("promtool").arg("test").arg("rules").arg(dir.path().join("alerts.test.yml")).output().unwrap();
    assert!(!out.status.success(), "a wrong expectation passed");
}
