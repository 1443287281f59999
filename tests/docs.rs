//! The docs work as written, checked against the binary so they cannot
//! drift: every JSON config in `README.md` and `docs/*.md` passes
//! `framecast check-config` (a template file shown in the docs parses as a
//! template; a block fenced `jsonc` is a deliberate fragment and skipped);
//! the README's commands run against the README's own config; every
//! numeric config key's range, as the code enforces it, is in
//! `docs/limits.md`, and every key is in `docs/configuration.md`; the storage
//! doc names every table and column a new database has.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use framecast::config::Config;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// `README.md` and every `docs/*.md`, by path relative to the checkout.
fn documents() -> Vec<String> {
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| format!("docs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    docs.sort();
    docs.insert(0, "README.md".into());
    docs
}

/// Fenced code blocks of `text`: (info string, first line number, body).
fn blocks(text: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), n + 2, String::new())),
            (Some(_), Some("")) => out.push(open.take().unwrap()),
            (Some((_, _, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn framecast(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_framecast")).args(args).current_dir(dir).output().unwrap()
}

#[test]
fn every_json_config_in_the_docs_passes_check_config() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for doc in documents() {
        for (info, line, body) in blocks(&read(&doc)) {
            if info != "json" {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{doc}:{line}: not JSON ({e}): fence a fragment as jsonc"));
            checked += 1;
            // A template file (docs/badges.md shows one) parses as a template.
            if value.get("kind").is_some() {
                if let Err(e) = framecast::render::template::Template::parse(&body) {
                    failures.push(format!("{doc}:{line}: template: {e}"));
                }
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("framecast.json"), &body).unwrap();
            let out = framecast(dir.path(), &["check-config", "framecast.json"]);
            if !out.status.success() {
                failures.push(format!("{doc}:{line}: {}", String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
    }
    assert!(checked >= 15, "only {checked} JSON blocks found");
    assert!(failures.is_empty(), "JSON configs in the docs that do not check:\n{}", failures.join("\n"));
}

/// The README's "Configure" section: its config, saved as the README says,
/// and every command in its shell blocks, run as written (`cargo run
/// --release --` is the binary). A command that serves is started on a
/// free port, must say it is listening, and must serve what the README's
/// `sign` commands signed (and refuse it unsigned).
#[test]
fn the_readme_commands_run_against_its_config() {
    let readme = read("README.md");
    let configure = &readme[readme.find("## Configure").expect("a Configure section")..];
    let configure = &configure[..configure[3..].find("\n## ").map_or(configure.len(), |i| i + 3)];
    let config = blocks(configure).into_iter().find(|(info, _, _)| info == "json").expect("its config").2;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("framecast.json"), config).unwrap();

    let mut commands = Vec::new();
    for (_, _, body) in blocks(&readme).iter().filter(|(info, _, _)| info == "sh") {
        for line in body.lines() {
            let command = line.split(" #").next().unwrap().trim();
            if let Some(args) = command.strip_prefix("cargo run --release") {
                let args: Vec<String> =
                    args.trim().strip_prefix("--").unwrap_or("").split_whitespace().map(str::to_string).collect();
                commands.push((command.to_string(), args));
            }
        }
    }
    assert!(commands.len() >= 4, "only {} README commands found", commands.len());
    let (one_off, serving): (Vec<_>, Vec<_>) = commands
        .into_iter()
        .partition(|(_, args)| args.first().is_some_and(|a| ["check-config", "sign", "render"].contains(&a.as_str())));
    let mut signed = Vec::new();
    for (command, args) in &one_off {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = framecast(dir.path(), &args);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
        if args[0] == "sign" {
            assert!(text.starts_with(args[1]) && text.contains("&sig="), "{command}: {text}");
            signed.push((args[1].to_string(), text));
        }
    }
    assert!(!signed.is_empty(), "the README signs a URL");
    for (command, args) in &serving {
        // On a free port instead of the config's.
        let mut child = Command::new(env!("CARGO_BIN_EXE_framecast"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let addr = first.trim().strip_prefix("framecast listening on http://").map(str::to_string);
        let statuses: Vec<(String, u16, u16)> = match (&addr, args.is_empty()) {
            // The embedded config has no private camera: only the config serves the signed URL.
            (Some(addr), false) => {
                signed.iter().map(|(path, url)| (path.clone(), status(addr, path), status(addr, url))).collect()
            }
            _ => Vec::new(),
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(addr.is_some(), "{command}: {first:?}");
        for (path, unsigned, signed) in statuses {
            assert_eq!((unsigned, signed), (403, 200), "{command}: {path} unsigned, then signed");
        }
    }
}

/// The status of `GET path` (only the status line is read: it may be a live stream).
fn status(addr: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

/// How a number may be written in the docs: `3600000`, `3,600,000`, `64 MiB`.
fn spellings(n: u64) -> Vec<String> {
    let plain = n.to_string();
    let mut grouped = String::new();
    for (i, c) in plain.chars().enumerate() {
        if i > 0 && (plain.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let mut out = vec![plain, grouped];
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        out.push(format!("{} MiB", n >> 20));
    }
    out
}

/// The code's own ranges (what `Config` enforces at load) are the docs'.
#[test]
fn every_config_range_the_code_enforces_is_documented() {
    let limits = read("docs/limits.md");
    let reference = read("docs/configuration.md");
    let config = Config::embedded();
    let mut missing = Vec::new();
    for (key, _, (min, max)) in config.ranges() {
        let stated = limits.lines().chain(reference.lines()).any(|line| {
            line.contains(&format!("`{key}`"))
                && spellings(min).iter().any(|s| line.contains(s.as_str()))
                && spellings(max).iter().any(|s| line.contains(s.as_str()))
        });
        if !stated {
            missing.push(format!("{key}: {min} to {max}"));
        }
    }
    assert!(missing.is_empty(), "ranges the code enforces but docs/limits.md does not state:\n{}", missing.join("\n"));

    // Every key of the embedded defaults has a row in the reference.
    let defaults: serde_json::Value =
        serde_json::from_str(&read("src/config/default-config.json")).expect("the embedded defaults");
    let undocumented: Vec<&String> = defaults
        .as_object()
        .unwrap()
        .keys()
        .filter(|key| !reference.lines().any(|l| l.starts_with('|') && l.contains(&format!("`{key}`"))))
        .collect();
    assert!(undocumented.is_empty(), "keys without a row in docs/configuration.md: {undocumented:?}");
}

/// docs/storage.md names every table and column of a new database, read
/// with the `sqlite3` tool.
#[test]
fn the_storage_doc_names_every_table_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("framecast.db");
    drop(framecast::store::sqlite::Sqlite::open(&db, 10).unwrap());
    let sql = |query: &str| {
        let out = Command::new("sqlite3").arg(&db).arg(query).output().expect("sqlite3 (the test command installs it)");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect::<Vec<_>>()
    };
    let storage = read("docs/storage.md");
    let mut missing = Vec::new();
    for table in sql("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") {
        let row = storage.lines().find(|l| l.starts_with(&format!("| `{table}`")));
        let Some(row) = row else {
            missing.push(table);
            continue;
        };
        for column in sql(&format!("SELECT name FROM pragma_table_info('{table}')")) {
            if !row.contains(&format!("`{column}`")) {
                missing.push(format!("{table}.{column}"));
            }
        }
    }
    assert!(missing.is_empty(), "in the database but not in docs/storage.md: {missing:?}");
}
