//! The real `framecast sign` command, run with a config file holding the
//! test's keys.

use std::process::Command;

/// `framecast sign PATH ARGS... --config FILE` where FILE holds `config`:
/// the printed URL, or the error it printed.
pub fn try_sign(config: &str, path: &str, args: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_framecast"))
        .args(["sign", path])
        .args(args)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(String::from_utf8(out.stdout).unwrap().trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).to_string()),
    }
}

/// `try_sign` that must succeed, valid for `ttl` seconds.
pub fn sign(config: &str, path: &str, ttl: u64, args: &[&str]) -> String {
    let ttl = ttl.to_string();
    let args: Vec<&str> = ["--ttl", &ttl].into_iter().chain(args.iter().copied()).collect();
    try_sign(config, path, &args).unwrap_or_else(|e| panic!("framecast sign {path}: {e}"))
}
