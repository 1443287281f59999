//! The real `framecast` binary for benchmarks: started on a free loopback
//! port with a JSON config, killed when dropped.
#![allow(dead_code)] // each bench uses its own subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTPS listener, when the config has `tls`.
    pub https: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    pub fn start(config_json: &str) -> ServerProcess {
        Self::start_with(config_json, |_| {})
    }

    /// As `start`, with `setup` applied to the command first (CPU pinning).
    pub fn start_with(config_json: &str, setup: impl FnOnce(&mut Command)) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // Unless the bench names one, the database lives in this temp dir.
        let mut json: serde_json::Value = serde_json::from_str(config_json).expect("bench config is JSON");
        if let Some(map) = json.as_object_mut() {
            map.entry("database").or_insert_with(|| dir.path().join("framecast.db").to_string_lossy().into());
        }
        std::fs::write(&path, json.to_string()).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_framecast"));
        command.args(["--listen", "127.0.0.1:0", "--config"]).arg(&path).stdout(Stdio::piped());
        die_with_parent(&mut command, libc::SIGKILL);
        setup(&mut command);
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr = line.trim().rsplit("//").next().unwrap().parse().unwrap();
        let mut https = None;
        if json.get("tls").is_some_and(|tls| !tls.is_null()) {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            https = Some(line.trim().rsplit("//").next().unwrap().parse().unwrap());
        }
        ServerProcess { child, addr, https, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The child gets `signal` when this bench ends, however it ends (a
/// panic, a timeout, SIGKILL): Drop alone does not run then.
pub fn die_with_parent(command: &mut Command, signal: libc::c_int) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
}

/// Runs the child (and every thread it starts) on `cpus` only.
pub fn pin_to(command: &mut Command, cpus: Vec<usize>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: sched_setaffinity is a plain system call on a stack value.
    unsafe {
        command.pre_exec(move || pin_self(&cpus));
    }
}

/// Pins the calling thread (and the threads it starts later) to `cpus`.
pub fn pin_self(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// `GET path` on its own connection, the body parsed as JSON (null if it is not).
pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let body = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(&out[..], |i| &out[i + 4..]);
    serde_json::from_slice(body).unwrap_or_default()
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This bench binary again, as a ceiling process (run with `env` set): it
/// prints its listening address first; the child is killed by the caller.
pub fn spawn_ceiling(env: &str) -> (Child, SocketAddr) {
    let mut child =
        Command::new(std::env::current_exe().unwrap()).env(env, "1").stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().parse().unwrap())
}
