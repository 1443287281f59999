//! One bounded GET for a polled source: only to `allowed_fetch_hosts`
//! (redirects too), over http or https (rustls, public roots), with a total
//! timeout and a response size cap. A fresh connection per poll: polls are
//! seconds apart, and nothing is kept between them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{HOST, LOCATION, USER_AGENT};
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::polled::{Secret, host_allowed};
use crate::config::url::FetchUrl;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not in allowed_fetch_hosts")]
    NotAllowed(String),
    #[error("answered {0}")]
    Status(u16),
    #[error("the response is larger than {0} bytes")]
    TooLarge(u64),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("more than {MAX_REDIRECTS} redirects")]
    Redirects,
    #[error("{0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Fetcher {
    allowed: Arc<Vec<String>>,
    tls: tokio_rustls::TlsConnector,
}

/// What one fetch may take.
pub struct Bounds<'a> {
    pub headers: &'a [(String, Secret)],
    pub timeout: Duration,
    pub max_bytes: u64,
}

impl Fetcher {
    pub fn new(allowed: Vec<String>) -> Fetcher {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Fetcher { allowed: Arc::new(allowed), tls: tokio_rustls::TlsConnector::from(Arc::new(config)) }
    }

    /// The body of `url`, following allowed redirects.
    pub async fn get(&self, url: &FetchUrl, bounds: &Bounds<'_>) -> Result<Bytes, FetchError> {
        tokio::time::timeout(bounds.timeout, self.follow(url.clone(), bounds))
            .await
            .map_err(|_| FetchError::Timeout(bounds.timeout))?
    }

    async fn follow(&self, mut url: FetchUrl, bounds: &Bounds<'_>) -> Result<Bytes, FetchError> {
        for _ in 0..=MAX_REDIRECTS {
            if !host_allowed(&self.allowed, &url) {
                return Err(FetchError::NotAllowed(url.host_port()));
            }
            let response = self.once(&url, bounds).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("");
                url = resolve(&url, location).map_err(FetchError::Failed)?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            let declared = response.headers().get(hyper::header::CONTENT_LENGTH);
            if declared.and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).is_some_and(|n| n > bounds.max_bytes) {
                return Err(FetchError::TooLarge(bounds.max_bytes));
            }
            let limit = usize::try_from(bounds.max_bytes).unwrap_or(usize::MAX);
            return match Limited::new(response.into_body(), limit).collect().await {
                Ok(body) => Ok(body.to_bytes()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge(bounds.max_bytes)),
                Err(e) => Err(FetchError::Failed(format!("reading the response: {e}"))),
            };
        }
        Err(FetchError::Redirects)
    }

    async fn once(&self, url: &FetchUrl, bounds: &Bounds<'_>) -> Result<Response<hyper::body::Incoming>, FetchError> {
        let tcp = TcpStream::connect((url.host(), url.port()))
            .await
            .map_err(|e| FetchError::Failed(format!("connecting to {}: {e}", url.host_port())))?;
        let mut req = Request::get(url.path_and_query())
            .header(HOST, url.authority())
            .header(USER_AGENT, concat!("framecast/", env!("CARGO_PKG_VERSION")));
        for (name, value) in bounds.headers {
            req = req.header(name.as_str(), value.0.as_str());
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| FetchError::Failed(e.to_string()))?;
        if url.is_https() {
            let name = ServerName::try_from(url.host().to_string())
                .map_err(|e| FetchError::Failed(format!("{}: {e}", url.host())))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| FetchError::Failed(format!("TLS: {e}")))?;
            send(tls, req).await
        } else {
            send(tcp, req).await
        }
    }
}

async fn send<IO>(io: IO, req: Request<Empty<Bytes>>) -> Result<Response<hyper::body::Incoming>, FetchError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| FetchError::Failed(e.to_string()))?;
    // Ends with the response body (or this poll, on timeout).
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| FetchError::Failed(e.to_string()))
}

/// A redirect's target: absolute, or relative to `base`.
fn resolve(base: &FetchUrl, location: &str) -> Result<FetchUrl, String> {
    let uri: Uri = location.parse().map_err(|e| format!("redirect to {location:?}: {e}"))?;
    if uri.scheme().is_some() {
        return FetchUrl::from_uri(uri);
    }
    let path = if location.starts_with('/') { location.to_string() } else { format!("/{location}") };
    let absolute = format!("{}://{}{path}", base.uri().scheme_str().unwrap_or("http"), base.authority());
    FetchUrl::from_uri(absolute.parse().map_err(|e| format!("redirect to {location:?}: {e}"))?)
}
