//! Every route form of a private resource, through the running binary and
//! the real `framecast sign`: a private default camera, badge, board and
//! rooms refuse each form unsigned (`403`, GET and HEAD) and serve it
//! signed (`200`); a signature binds its form and its narrowing parameters
//! (a widened `width`, a raised `max_duration`, a dropped `once`, another
//! form are refused), and the `%0A`-folded variant of a signed query is
//! refused. That every route in the table states its resource is the
//! route table's unit test (`every_route_states_what_it_serves`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Server;
use common::sign::{sign, try_sign};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const KEY: &str = "private-routes-key-0123456789";

fn config() -> String {
    let pattern = serde_json::json!({ "kind": "pattern", "width": 160, "height": 90, "fps": 10 });
    serde_json::json!({
        "url_signing_keys": [KEY],
        // `lobby` sorts first: the default camera is `door` because the
        // config says so, and the signer must follow that too.
        "default_camera": "door",
        "cameras": {
            "door": { "source": pattern, "require_signature": true, "sizes": [80] },
            "lobby": { "source": pattern }
        },
        "badges": { "secret": { "label": "secret", "require_signature": true } },
        "boards": { "ops": { "tiles": [{ "text": "ops" }], "require_signature": true } },
        "rooms": { "staff": { "require_signature": true }, "default": { "require_signature": true } }
    })
    .to_string()
}

/// Every form a private resource is served in: the default camera's
/// drop-in URLs, each extension, `@2x`, `?width=`, `?once`.
const FORMS: &[&str] = &[
    "/?action=stream",
    "/?action=snapshot",
    "/index.html?action=stream",
    "/index.html?action=snapshot",
    "/stream",
    "/snapshot",
    "/stream?width=80",
    "/camera/door.mjpg",
    "/camera/door.mjpg?once",
    "/camera/door.mjpg?width=80",
    "/camera/door.jpg",
    "/camera/door.jpg?width=80",
    "/camera/door.html",
    "/badge/secret.png",
    "/badge/secret.png?once",
    "/badge/secret@2x.png",
    "/badge/secret@2x.png?once",
    "/badge/secret.svg",
    "/board/ops.png",
    "/board/ops.png?once",
    "/board/ops@2x.png",
    "/online/staff.png",
    "/online/staff.png?once",
    "/online/staff.png?style=sparkline",
    "/online/staff.svg",
    "/online.png",
    "/online.svg",
];

/// The status of `method path`, read from the response head alone (a
/// stream's body never ends); the connection is closed after it.
async fn status(addr: SocketAddr, method: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let head = tokio::time::timeout(Duration::from_secs(10), framecast_load::read_head(&mut stream))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no response head within 10 s"))
        .unwrap_or_else(|| panic!("{method} {path}: closed before a response head"));
    let head = String::from_utf8_lossy(&head);
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{method} {path}: {head}"))
}

/// The body of a `GET` that is a plain (non-stream) answer.
async fn body(server: &Server, path: &str) -> (u16, String) {
    let (status, _, body) = common::get(server.addr, path).await;
    (status, String::from_utf8_lossy(&body).trim_end().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_form_of_a_private_resource_needs_its_signature() {
    let config = config();
    let server = Server::start(&config);
    let addr = server.addr;
    // Controls: what is not private stays open.
    assert_eq!(status(addr, "GET", "/camera/lobby.jpg").await, 200);
    assert_eq!(status(addr, "GET", "/online/lobby.png?once").await, 200);
    assert_eq!(status(addr, "GET", "/").await, 200, "the demo page");

    for form in FORMS {
        let signed = sign(&config, form, 600, &[]);
        for method in ["GET", "HEAD"] {
            assert_eq!(status(addr, method, form).await, 403, "{method} {form} unsigned");
            assert_eq!(status(addr, method, &signed).await, 200, "{method} {signed}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_binds_its_form_and_its_narrowing_parameters() {
    let config = config();
    let server = Server::start(&config);
    let addr = server.addr;

    // The form: a snapshot's signature is no stream's.
    let snapshot = sign(&config, "/camera/door.jpg", 600, &[]);
    let query = snapshot.split_once('?').unwrap().1;
    let (code, reason) = body(&server, &format!("/camera/door.html?{query}")).await;
    assert_eq!((code, reason.as_str()), (403, "this URL is signed for .jpg only, not .html"));
    for other in ["/camera/door.mjpg?", "/stream?"] {
        assert_eq!(status(addr, "GET", &format!("{other}{query}")).await, 403, "{other}");
    }
    assert_eq!(status(addr, "GET", &format!("/snapshot?{query}")).await, 200, "the same form at its drop-in URL");
    // `--format any` serves every form of the camera, and no other resource.
    let any = sign(&config, "/camera/door.mjpg", 600, &["--format", "any"]);
    let query = any.split_once('?').unwrap().1;
    for path in ["/camera/door.jpg", "/camera/door.html", "/snapshot", "/stream"] {
        assert_eq!(status(addr, "GET", &format!("{path}?{query}")).await, 200, "{path}");
    }
    assert_eq!(status(addr, "GET", &format!("/badge/secret.png?{query}&once")).await, 403);
    let wrong = try_sign(&config, "/camera/door.mjpg", &["--ttl", "60", "--format", "png"]).unwrap_err();
    assert!(wrong.contains("mjpg, jpg, html"), "{wrong}");

    // Narrowing parameters in the signed URL are bound: narrower is fine,
    // wider is refused, and dropping a signed one breaks the signature.
    let small = sign(&config, "/camera/door.jpg?width=80&max_delay=100", 600, &[]);
    assert_eq!(status(addr, "GET", &format!("{small}&width=40&max_delay=50")).await, 200);
    let (code, reason) = body(&server, &format!("{small}&width=160")).await;
    assert_eq!(code, 403, "a widened width: {reason}");
    assert!(reason.contains("widens the signed width=\"80\""), "{reason}");
    let raised = small.replace("width=80", "width=160");
    assert_eq!(body(&server, &raised).await, (403, "the signature does not match this URL".into()));
    let short = sign(&config, "/camera/door.mjpg?max_duration=60", 600, &[]);
    assert_eq!(status(addr, "GET", &format!("{short}&max_duration=30")).await, 200);
    assert_eq!(status(addr, "GET", &format!("{short}&max_duration=600")).await, 403, "a raised max_duration");
    let once = sign(&config, "/badge/secret.png?once", 600, &[]);
    assert_eq!(status(addr, "GET", &once).await, 200);
    assert_eq!(status(addr, "GET", &once.replace("?once&", "?")).await, 403, "a dropped once");
    // Only narrowing parameters may follow sig.
    let (code, reason) = body(&server, &format!("{once}&style=social")).await;
    assert_eq!(code, 403);
    assert!(reason.starts_with("style may not follow sig"), "{reason}");

    // The canonical text is unambiguous: `a=b&c=d` folded into one value
    // (`a=b%0Ac%3Dd`) is another text, so the signature does not carry over.
    let plain = sign(&config, "/camera/door.jpg?a=b&c=d", 600, &[]);
    assert_eq!(status(addr, "GET", &plain).await, 200);
    let folded = plain.replace("a=b&c=d", "a=b%0Ac%3Dd");
    assert_eq!(body(&server, &folded).await, (403, "the signature does not match this URL".into()));
}
