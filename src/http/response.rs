//! Response builders with the headers each kind of answer needs.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::push::body::PushBody;
use crate::push::part::stream_content_type;

pub type ResponseBody = Either<Full<Bytes>, PushBody>;
pub type HttpResponse = Response<ResponseBody>;

/// Headers every live or single live image carries: never cached, never
/// buffered by nginx, never sniffed.
fn live_image_headers(builder: hyper::http::response::Builder) -> hyper::http::response::Builder {
    builder
        .header(header::CACHE_CONTROL, "no-store, no-cache, must-revalidate, max-age=0")
        .header(header::PRAGMA, "no-cache")
        .header(header::EXPIRES, "0")
        .header("X-Accel-Buffering", "no")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
}

/// The endless multipart response; `body` is `None` for HEAD.
pub fn stream(body: Option<PushBody>) -> HttpResponse {
    let builder = live_image_headers(Response::builder()).header(header::CONTENT_TYPE, stream_content_type());
    let body = match body {
        Some(push) => Either::Right(push),
        None => Either::Left(Full::new(Bytes::new())),
    };
    builder.body(body).expect("static headers are valid")
}

/// One live image, uncacheable.
pub fn single_image(image: Bytes, content_type: &'static str, head: bool) -> HttpResponse {
    let len = image.len();
    let body = if head { Bytes::new() } else { image };
    live_image_headers(Response::builder())
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len)
        .body(Either::Left(Full::new(body)))
        .expect("static headers are valid")
}

/// One SVG of a badge as it is now: never cached, so a page reloaded (or
/// an image proxy asking again) gets the current value.
pub fn svg_now(svg: String, head: bool) -> HttpResponse {
    single_image(Bytes::from(svg), "image/svg+xml; charset=utf-8", head)
}

/// A short-lived cacheable image (static badges).
pub fn cacheable_image(image: Vec<u8>, content_type: &'static str, max_age_s: u32, head: bool) -> HttpResponse {
    let len = image.len();
    let body = if head { Bytes::new() } else { Bytes::from(image) };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len)
        .header(header::CACHE_CONTROL, format!("public, max-age={max_age_s}"))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // Like every image: any page may draw it (all it shows is its URL).
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(Either::Left(Full::new(body)))
        .expect("static headers are valid")
}

pub fn text(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    let mut body = message.into();
    body.push('\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Either::Left(Full::new(Bytes::from(body))))
        .expect("static headers are valid")
}

pub fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, format!("method not allowed; use {allow}"));
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A JSON answer; its CORS headers are the API's (`cors`), added by the router.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> HttpResponse {
    let mut body = serde_json::to_vec_pretty(value).expect("API values serialize");
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Either::Left(Full::new(Bytes::from(body))))
        .expect("static headers are valid")
}

/// The Prometheus text exposition format.
pub fn prometheus(text: String) -> HttpResponse {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Either::Left(Full::new(Bytes::from(text))))
        .expect("static headers are valid")
}

pub fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    json(status, &serde_json::json!({ "error": message }))
}

/// A page holding live images. `no-store` keeps it out of the browser's
/// back/forward cache, which would otherwise keep its streams open (counted)
/// for up to 60 s after the visitor navigated away.
pub fn html(page: String) -> HttpResponse {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Either::Left(Full::new(Bytes::from(page))))
        .expect("static headers are valid")
}
