//! The house keeps its shape: imports between the rooms of `src/` go one
//! way (no cycle, directly or through others), each room imports exactly
//! what its `May import:` line declares, `config/` is a leaf, and the layout
//! table in `docs/layout.md` lists every source file and nothing that is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Room name → (files, declared imports).
fn rooms() -> BTreeMap<String, (Vec<PathBuf>, Option<BTreeSet<String>>)> {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut rooms: BTreeMap<String, (Vec<PathBuf>, Option<BTreeSet<String>>)> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix("src").unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let room = first.trim_end_matches(".rs").to_string();
        if room == "main" || room == "lib" {
            continue; // the binary and the crate root see everything
        }
        let entry = rooms.entry(room).or_default();
        let is_head = rel.components().count() == 1 || rel.ends_with("mod.rs") && rel.components().count() == 2;
        if is_head {
            let text = std::fs::read_to_string(&file).unwrap();
            let line = text.lines().find_map(|l| l.strip_prefix("//! May import: "));
            let line = line.unwrap_or_else(|| panic!("{} has no `//! May import:` line", file.display()));
            let declared = line.trim_end_matches('.');
            entry.1 = Some(if declared == "nothing" {
                BTreeSet::new()
            } else {
                declared.split(", ").map(str::to_string).collect()
            });
        }
        entry.0.push(file);
    }
    rooms
}

/// The rooms each room's files name as `crate::ROOM`.
fn actual_imports(
    rooms: &BTreeMap<String, (Vec<PathBuf>, Option<BTreeSet<String>>)>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (room, (files, _)) in rooms {
        let mut used = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if name != *room && rooms.contains_key(&name) {
                    used.insert(name);
                }
            }
        }
        out.insert(room.clone(), used);
    }
    out
}

#[test]
fn rooms_import_what_they_declare_and_config_is_a_leaf() {
    let rooms = rooms();
    let actual = actual_imports(&rooms);
    for (room, (_, declared)) in &rooms {
        let declared = declared.as_ref().unwrap_or_else(|| panic!("room {room} has no head file"));
        assert_eq!(&actual[room], declared, "room {room}: imports (left) differ from its `May import:` line (right)");
    }
    let leaf: BTreeSet<String> = ["names".to_string()].into();
    assert!(actual["config"].is_subset(&leaf), "config imports {:?}", actual["config"]);
    assert!(actual["store"].is_empty(), "store imports {:?}", actual["store"]);
}

#[test]
fn no_two_rooms_import_each_other_even_through_others() {
    let actual = actual_imports(&rooms());
    // Kahn's algorithm: a cycle leaves rooms that never reach zero imports.
    let mut remaining = actual.clone();
    loop {
        let free: Vec<String> = remaining.iter().filter(|(_, deps)| deps.is_empty()).map(|(r, _)| r.clone()).collect();
        if free.is_empty() {
            break;
        }
        for room in &free {
            remaining.remove(room);
        }
        for deps in remaining.values_mut() {
            for room in &free {
                deps.remove(room);
            }
        }
    }
    assert!(remaining.is_empty(), "import cycle among {:?}", remaining.keys().collect::<Vec<_>>());
}

#[test]
fn the_layout_table_matches_the_tree() {
    let table = std::fs::read_to_string("docs/layout.md").unwrap();
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    for file in &files {
        let name = format!("`{}`", file.display());
        assert!(table.contains(&name), "docs/layout.md does not list {name}");
    }
    for (i, _) in table.match_indices("`src/") {
        let path: String = table[i + 1..].chars().take_while(|c| *c != '`').collect();
        assert!(Path::new(&path).exists(), "docs/layout.md lists {path}, which does not exist");
    }
}
