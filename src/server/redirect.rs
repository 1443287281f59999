//! The optional plain listener (`tls.http_redirect_listen`, usually port
//! 80) that sends every request to the same path over HTTPS with a 308.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HOST, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::app::App;

pub async fn serve<IO>(io: IO, app: Arc<App>, https_port: u16)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| async move {
        Ok::<_, Infallible>(
            match location(&req, https_port) {
                Some(location) => Response::builder()
                    .status(StatusCode::PERMANENT_REDIRECT)
                    .header(LOCATION, location)
                    .body(Full::new(Bytes::new())),
                None => Response::builder().status(StatusCode::BAD_REQUEST).body(Full::new(Bytes::from("no Host\n"))),
            }
            .expect("valid response"),
        )
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(app.config().header_read_timeout_ms))
        .serve_connection(TokioIo::new(io), service);
    let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
}

/// `https://host[:port]/path?query`: the request's host without its port,
/// the HTTPS port unless it is 443.
fn location(req: &Request<Incoming>, https_port: u16) -> Option<String> {
    let host = req.headers().get(HOST)?.to_str().ok()?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/' || b == b'@') {
        return None;
    }
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    Some(match https_port {
        443 => format!("https://{host}{path}"),
        port => format!("https://{host}:{port}{path}"),
    })
}
