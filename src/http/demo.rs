//! `GET /`: the demo page from `templates/index.html`.

use hyper::Request;
use hyper::body::Incoming;
use hyper::header::HOST;

use super::response::{self, HttpResponse};

static INDEX: &str = include_str!("../../templates/index.html");

pub fn index(req: &Request<Incoming>) -> HttpResponse {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost:8080");
    let scheme = match req.headers().get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    };
    // Host is the client's to choose: escape it before it reaches HTML.
    response::html(INDEX.replace("{{origin}}", &escape_html(&format!("{scheme}://{host}"))))
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape_html("a\"><script>"), "a&quot;&gt;&lt;script&gt;");
    }
}
