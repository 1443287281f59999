//! One bounded GET for a polled source: only to `allowed_fetch_hosts`
//! (redirects too), over http or https (rustls, public roots), with a total
//! timeout and a response size cap. A fresh connection per poll: polls are
//! seconds apart, and nothing is kept between them.
//!
//! Redirects are followed as browsers and curl do: a `Location` is joined to
//! the URL it came from (the `url` crate), configured headers (tokens) stop
//! once a redirect leaves the configured origin (scheme, host or port), and
//! https is never followed down to http.

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
    #[error("a redirect from https to http ({0}) is refused")]
    Downgrade(String),
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
        // Once a redirect leaves the configured origin the headers stay off,
        // even if a later one comes back (as the Fetch standard does).
        let mut headers = bounds.headers;
        for _ in 0..=MAX_REDIRECTS {
            if !host_allowed(&self.allowed, &url) {
                return Err(FetchError::NotAllowed(url.host_port()));
            }
            let response = self.once(&url, headers).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("");
                let next = redirect_target(&url, location)?;
                if !same_origin(&url, &next) {
                    headers = &[];
                }
                url = next;
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

    async fn once(
        &self,
        url: &FetchUrl,
        headers: &[(String, Secret)],
    ) -> Result<Response<hyper::body::Incoming>, FetchError> {
        let tcp = TcpStream::connect((url.host(), url.port()))
            .await
            .map_err(|e| FetchError::Failed(format!("connecting to {}: {e}", url.host_port())))?;
        let mut req = Request::get(url.path_and_query())
            .header(HOST, url.authority())
            .header(USER_AGENT, concat!("framecast/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
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

/// A redirect's target: `location` joined to `base` (absolute, scheme-
/// relative, absolute-path or path-relative, as a browser would), never
/// from https down to http.
fn redirect_target(base: &FetchUrl, location: &str) -> Result<FetchUrl, FetchError> {
    let bad = |e: &dyn std::fmt::Display| FetchError::Failed(format!("redirect to {location:?}: {e}"));
    let mut joined = url::Url::parse(&base.to_string()).and_then(|b| b.join(location)).map_err(|e| bad(&e))?;
    // Never sent: a fragment is the client's own.
    joined.set_fragment(None);
    let next = FetchUrl::from_uri(joined.as_str().parse::<Uri>().map_err(|e| bad(&e))?).map_err(FetchError::Failed)?;
    if base.is_https() && !next.is_https() {
        return Err(FetchError::Downgrade(next.to_string()));
    }
    Ok(next)
}

/// Same scheme, host and port: where configured headers may go on.
fn same_origin(a: &FetchUrl, b: &FetchUrl) -> bool {
    a.is_https() == b.is_https() && a.host().eq_ignore_ascii_case(b.host()) && a.port() == b.port()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> FetchUrl {
        FetchUrl::try_from(s.to_string()).unwrap()
    }

    fn target(base: &str, location: &str) -> Result<String, FetchError> {
        redirect_target(&url(base), location).map(|u| u.to_string())
    }

    #[test]
    fn locations_are_joined_like_a_browser_joins_them() {
        assert_eq!(target("http://a.org/x/y?q=1", "next").unwrap(), "http://a.org/x/next");
        assert_eq!(target("http://a.org/x/y", "../z?k=v#frag").unwrap(), "http://a.org/z?k=v");
        assert_eq!(target("http://a.org:8080/x/y", "/top").unwrap(), "http://a.org:8080/top");
        assert_eq!(target("http://a.org/x", "//b.org:81/p").unwrap(), "http://b.org:81/p");
        assert_eq!(target("http://a.org/x", "https://b.org/p").unwrap(), "https://b.org/p");
        assert!(matches!(target("http://a.org/x", "ftp://b.org/p"), Err(FetchError::Failed(_))));
        assert!(matches!(target("http://a.org/x", "http://u:p@b.org/"), Err(FetchError::Failed(_))));
    }

    #[test]
    fn https_is_never_followed_down_to_http() {
        let err = target("https://a.org/x", "http://a.org/y").unwrap_err();
        assert!(matches!(err, FetchError::Downgrade(_)), "{err}");
        assert!(err.to_string().contains("https to http"), "{err}");
        // Scheme-relative keeps https.
        assert_eq!(target("https://a.org/x", "//b.org/y").unwrap(), "https://b.org/y");
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let same = |a: &str, b: &str| same_origin(&url(a), &url(b));
        assert!(same("http://a.org/x", "http://A.org:80/y"));
        assert!(!same("http://a.org/x", "http://a.org:81/x"));
        assert!(!same("http://a.org/x", "http://b.org/x"));
        assert!(!same("http://a.org/x", "https://a.org/x"));
    }
}
