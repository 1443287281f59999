//! A real `redis-server` for cluster tests: on a free loopback port (or the
//! addresses given) with a temp dir, killed when dropped, even when the
//! test fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub child: Child,
    pub port: u16,
    pub _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Redis::start_on(port, tempfile::tempdir().unwrap())
    }

    pub fn start_on(port: u16, dir: tempfile::TempDir) -> Redis {
        Redis::start_bound("127.0.0.1", port, dir)
    }

    /// With the append-only file fsynced before every answer, as the docs
    /// recommend for the Redis holding badge values.
    pub fn start_durable(port: u16, dir: tempfile::TempDir) -> Redis {
        Redis::start_with("127.0.0.1", port, dir, &["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// On `bind` (one or more addresses, space-separated), killed when dropped.
    pub fn start_bound(bind: &str, port: u16, dir: tempfile::TempDir) -> Redis {
        Redis::start_with(bind, port, dir, &["--appendonly", "no"])
    }

    pub fn start_with(bind: &str, port: u16, dir: tempfile::TempDir, persistence: &[&str]) -> Redis {
        let child = Command::new("redis-server")
            .args(["--bind", bind, "--port", &port.to_string(), "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's package; the test command installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        let first = bind.split(' ').next().unwrap();
        while std::net::TcpStream::connect((first, port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Redis { child, port, _dir: dir }
    }

    pub fn config(&self, lease_ms: u64) -> String {
        format!(
            r#"{{"state_file": null, "database": null, "max_connections_per_ip": 0, "min_frame_interval_ms": 10,
                "cluster": {{"redis_url": "redis://127.0.0.1:{}", "lease_ms": {lease_ms}, "heartbeat_ms": 200}}}}"#,
            self.port
        )
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
