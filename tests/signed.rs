//! Signed, expiring URLs through the running binary and the real `framecast
//! sign` command: a private camera refuses unsigned, tampered, expired and
//! wrongly keyed URLs with a `403` and a reason; accepts what `sign`
//! printed, with narrowing parameters added after `sig`; accepts a URL
//! signed by an older key still listed (rotation); a signature serves the
//! form it was made for (`--format any`: every form of the camera); and a
//! stream ends cleanly when its URL expires. Every route form of every kind
//! of private resource is `tests/private_routes.rs`.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Viewer, get};

const NEW: &str = "signing-key-new-0123456789";
const OLD: &str = "signing-key-old-0123456789";

fn config(keys: &[&str]) -> String {
    serde_json::json!({
        "url_signing_keys": keys,
        "cameras": { "door": { "source": { "kind": "pattern", "width": 160, "height": 90, "fps": 10 },
                               "require_signature": true } },
        "rooms": { "staff": { "require_signature": true } }
    })
    .to_string()
}

/// `framecast sign PATH --ttl TTL ARGS` with a config holding `keys`.
fn sign(keys: &[&str], path: &str, ttl: u64, args: &[&str]) -> String {
    common::sign::sign(&config(keys), path, ttl, args)
}

async fn refused(server: &Server, path: &str, reason: &str) {
    let (status, _, body) = get(server.addr, path).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{path}: {body}");
    assert!(body.contains(reason), "{path}: {body:?} should say {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_cameras_need_a_valid_signature() {
    let server = Server::start(&config(&[NEW, OLD]));

    refused(&server, "/camera/door.mjpg", "must be signed").await;
    refused(&server, "/camera/door.jpg", "must be signed").await;
    refused(&server, "/stream", "must be signed").await;
    refused(&server, "/online/staff.png", "must be signed").await;
    // Rooms and cameras without require_signature are as open as before.
    assert_eq!(get(server.addr, "/online/lobby.png?once").await.0, 200);

    // What `framecast sign` prints works as printed, for stream and snapshot.
    let signed = sign(&[NEW], "/camera/door.mjpg", 60, &[]);
    assert!(signed.starts_with("/camera/door.mjpg?formats=mjpg&exp=") && signed.contains("&sig="), "{signed}");
    let mut viewer = Viewer::connect(server.addr, &signed, "test").await;
    assert!(viewer.read_parts(2, Duration::from_secs(10)).await);
    drop(viewer);
    let query = signed.split_once('?').unwrap().1;
    refused(&server, &format!("/camera/door.jpg?{query}"), "signed for .mjpg only, not .jpg").await;
    let any = sign(&[NEW], "/camera/door.mjpg", 60, &["--format", "any"]);
    let any = any.split_once('?').unwrap().1;
    assert_eq!(get(server.addr, &format!("/camera/door.jpg?{any}")).await.0, 200, "one signature per camera");
    assert_eq!(get(server.addr, &format!("/camera/door.html?{any}")).await.0, 200);
    assert_eq!(get(server.addr, &format!("/snapshot?{any}")).await.0, 200, "the default camera's drop-in URL");
    // Narrowing parameters may be added after sig.
    assert_eq!(get(server.addr, &format!("{signed}&max_fps=2&once")).await.0, 200);

    // Tampered, widened, moved, wrongly keyed.
    let tampered = format!("{}{}", &signed[..signed.len() - 2], if signed.ends_with("AA") { "BB" } else { "AA" });
    refused(&server, &tampered, "does not match").await;
    refused(&server, &format!("{signed}&style=big"), "style may not follow sig").await;
    refused(&server, &format!("/camera/door.mjpg?style=big&{query}"), "does not match").await;
    refused(&server, &format!("/online/staff.png?{any}"), "does not match").await;
    refused(&server, &sign(&["another-key-0123456789abc"], "/camera/door.mjpg", 60, &[]), "does not match").await;
    refused(&server, "/camera/door.mjpg?formats=mjpg&exp=soon&sig=x", "exp is not").await;
    refused(&server, "/camera/door.mjpg?exp=1796068800&sig=x", "must be signed").await;
    // Rotation: a URL signed with the older key, still listed, is accepted.
    assert_eq!(get(server.addr, &format!("{}&once", sign(&[OLD], "/camera/door.mjpg", 60, &[]))).await.0, 200);
    // A signed room.
    assert_eq!(get(server.addr, &format!("{}&once", sign(&[NEW], "/online/staff.png", 60, &[]))).await.0, 200);

    // Expired: refused once `exp` has passed.
    let short = sign(&[NEW], "/camera/door.jpg", 1, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = get(server.addr, &short).await;
        if status == 403 {
            assert!(String::from_utf8_lossy(&body).contains("expired"));
            break;
        }
        assert_eq!(status, 200);
        assert!(Instant::now() < deadline, "the URL never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_cleanly_when_its_url_expires() {
    let server = Server::start(&config(&[NEW]));
    let started = Instant::now();
    let mut viewer = Viewer::connect(server.addr, &sign(&[NEW], "/camera/door.mjpg", 2, &[]), "test").await;
    assert!(viewer.read_until_ended(Duration::from_secs(10)).await, "the stream ended with HTTP's last chunk");
    let took = started.elapsed();
    // `exp` is whole seconds: 2 s from signing, so at least 1 s of stream.
    assert!(took >= Duration::from_secs(1), "ended after {took:?}");
    assert!(viewer.received.len() >= 5, "frames until then: {}", viewer.received.len());
}
