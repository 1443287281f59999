//! The real `framecast` binary for benchmarks: started on a free loopback
//! port with a JSON config, killed when dropped.
#![allow(dead_code)] // each bench uses its own subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    pub fn start(config_json: &str) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, config_json).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().rsplit("//").next().unwrap().parse().unwrap();
        ServerProcess { child, addr, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
