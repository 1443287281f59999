//! `GET /`: the demo page from `templates/index.html`, with every
//! configured camera shown live.

use super::RequestBody;
use hyper::Request;
use hyper::header::HOST;

use super::response::{self, HttpResponse};
use crate::app::App;
use crate::render::svg::escape;

static INDEX: &str = include_str!("../../templates/index.html");

pub fn index(app: &App, req: &Request<RequestBody>) -> HttpResponse {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost:8080");
    let scheme = match req.headers().get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    };
    // Host is the client's to choose: escape it before it reaches HTML.
    let page = INDEX.replace("{{cameras}}", &cameras(app));
    response::html(page.replace("{{origin}}", &escape(&format!("{scheme}://{host}"))))
}

/// One live `<img>` per camera, with its snapshot and pull-page links.
/// Camera names are validated to `[A-Za-z0-9_-]`: safe in HTML as they are.
fn cameras(app: &App) -> String {
    let mut html = String::new();
    // A private camera's name is not shown to the anonymous page either.
    let public =
        app.cameras.list().into_iter().filter(|c| !app.config().requires_signature(&format!("camera/{}", c.name())));
    for camera in public {
        let name = camera.name();
        html.push_str(&format!(
            "<figure><img src=\"/camera/{name}.mjpg\" alt=\"camera {name}\" width=\"480\">\n\
             <figcaption><code>/camera/{name}.mjpg</code> · <a href=\"/camera/{name}.jpg\">snapshot</a> · \
             <a href=\"/camera/{name}.html\">image-pull page</a></figcaption></figure>\n"
        ));
    }
    if html.is_empty() {
        html.push_str("<p><small>No cameras are configured.</small></p>\n");
    }
    html
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape("a\"><script>"), "a&quot;&gt;&lt;script&gt;");
    }
}
