//! The crate as `cargo package` would publish it holds every file the
//! binary embeds (`include_bytes!`/`include_str!` in `src/`: the fonts,
//! templates, logos, demo pages and default config), so a build from the
//! published crate is the same server. The list of embedded files is read
//! from the source, not written down here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file `src/` embeds, relative to the crate root.
fn embedded() -> BTreeSet<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeSet::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            for macro_name in ["include_bytes!(\"", "include_str!(\""] {
                for piece in text.split(macro_name).skip(1) {
                    let relative = piece.split('"').next().unwrap();
                    let file = path.parent().unwrap().join(relative);
                    let file = normalize(&file);
                    out.insert(file.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    out
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_packaged_crate_holds_every_embedded_file() {
    let files = embedded();
    for expected in ["fonts/DejaVuSans.ttf", "templates/badges/flat.json", "templates/logos/simple-icons.tsv.gz"] {
        assert!(files.contains(expected), "{expected} was not found embedded: {files:?}");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["package", "--list", "--allow-dirty", "-p", "framecast"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo package --list: {}", String::from_utf8_lossy(&out.stderr));
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let missing: Vec<&String> = files.iter().filter(|f| !listed.contains(*f)).collect();
    assert!(missing.is_empty(), "embedded but not packaged: {missing:?}");
    // The minimum Rust version is stated.
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    assert!(manifest.contains("rust-version = \""), "Cargo.toml states no rust-version");
}
