//! The whole request surface without a network: arbitrary method, path,
//! query, headers and body through routing and every handler, up to the
//! response head. No input may panic (a caught panic still counts as a
//! failure here), hang, or answer outside 1xx-5xx.
//!
//! Shared by the fuzz target (`cargo fuzz run request`) and by
//! `tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use framecast::app::App;
use framecast::config::Config;
use framecast::http::routes::respond;
use framecast::metrics::metrics;
use http_body_util::{BodyExt, Full};

const CONFIG: &str = r#"{
    "state_file": null, "database": null, "api_tokens": ["fuzz-token-0123456789"], "badges": {"b": {}},
    "camera_start_wait_ms": 0, "snapshot_max_delay_ms": 20, "render_queue_ms": 0
}"#;

fn app() -> &'static (tokio::runtime::Runtime, Arc<App>) {
    static APP: OnceLock<(tokio::runtime::Runtime, Arc<App>)> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let app = runtime.block_on(async { App::new(Config::parse(CONFIG).unwrap()).unwrap() });
        (runtime, app)
    })
}

pub fn check(data: &[u8]) {
    // Lines: method, target, then headers (name: value), a blank line, the body.
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let method = lines.next().unwrap_or("GET");
    let target = lines.next().unwrap_or("/");
    let mut builder = hyper::Request::builder().method(method).uri(target);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    let body = Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed();
    // What hyper would refuse to parse never reaches a handler.
    let Ok(request) = builder.body(body) else { return };
    let (runtime, app) = app();
    let before = metrics().panics_in("handler");
    let response = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), respond(app, request)).await })
        .expect("a handler answered within 5 s");
    assert_eq!(metrics().panics_in("handler"), before, "a handler panicked");
    assert!((100..600).contains(&response.status().as_u16()));
}
