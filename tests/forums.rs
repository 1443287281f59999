//! `docs/forums.md`'s signing recipes, run for real: PHP, Python, Node,
//! Ruby and Go (installed by `tests/run.sh`) each print a member URL from
//! the doc's own code block, and the running server counts each as that
//! member, with the display name it signed (spaces, accents and the
//! characters JavaScript's encoder keeps, all encoded alike).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::watched::poll_until;
use common::{Server, Viewer, api_with_token, connect_from};

const KEY: &str = "forum-recipes-signing-key-0123456789";
const TOKEN: &str = "forum-recipes-api-token-0123456789";

/// The doc's code blocks fenced as ```LANG.
fn block(doc: &str, lang: &str) -> String {
    let fence = format!("```{lang}\n");
    let start = doc.find(&fence).unwrap_or_else(|| panic!("docs/forums.md has no {lang} block")) + fence.len();
    let end = start + doc[start..].find("\n```").expect("a closed block");
    doc[start..end].to_string()
}

/// Runs `program args... FILE` on the block written to FILE; what it printed.
fn run(dir: &Path, file: &str, code: &str, program: &str, args: &[&str], id: &str, name: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, code).unwrap();
    let go_cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache");
    let out = Command::new(program)
        .args(args)
        .arg(&path)
        .current_dir(dir)
        .env("FRAMECAST_ROOM", "forum")
        .env("FRAMECAST_KEY", KEY)
        .env("MEMBER_ID", id)
        .env("MEMBER_NAME", name)
        .env("GOCACHE", &go_cache)
        .env("GOPATH", go_cache.join("path"))
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed (tests/run.sh installs it): {e}"));
    assert!(out.status.success(), "{program} {file}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipe_signs_a_member_the_server_counts() {
    let _serial = common::serial();
    let config = serde_json::json!({
        "url_signing_keys": [KEY],
        "api_tokens": [TOKEN],
        "rooms": { "forum": { "count": "people" } }
    });
    let server = Server::start(&config.to_string());
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/forums.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let recipes = [
        ("php", "recipe.php", "php", vec![]),
        ("python", "recipe.py", "python3", vec![]),
        ("js", "recipe.js", "node", vec![]),
        ("ruby", "recipe.rb", "ruby", vec![]),
        ("go", "recipe.go", "go", vec!["run"]),
    ];
    let mut viewers = Vec::new();
    let mut names = Vec::new();
    for (lang, file, program, args) in &recipes {
        // Accents, a space and the characters encodeURIComponent keeps.
        let (id, name) = (format!("{lang}-42"), format!("Zoë O'Brien ({lang})!*"));
        let url = run(dir.path(), file, &block(&doc, lang), program, args, &id, &name);
        assert!(url.starts_with("/online/forum.png?") && url.contains("member="), "{lang} printed {url:?}");
        // A refused URL would fail here: `start` wants a 200.
        viewers.push(Viewer::start(connect_from("127.0.0.1", server.addr).await, &url, "Mozilla/5.0 (forum)").await);
        names.push(name);
    }
    let what = format!("members {names:?}");
    poll_until(&what, Duration::from_secs(10), || async {
        let json = api_with_token(server.addr, "/api/v1/channels/online/forum", TOKEN).await;
        let shown: Vec<String> =
            json["member_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
        if json["members"] == 5 && shown == names { Ok(()) } else { Err(json.to_string()) }
    })
    .await;
}
