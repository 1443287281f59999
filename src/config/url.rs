//! URLs the config names, parsed once at load into checked types: an
//! upstream camera's `http://` URL, and the origins allowed to embed images.
//! Nothing downstream parses them again.

use std::fmt;

use hyper::Uri;
use serde::Deserialize;

/// An `http://host[:port]/path` URL with no credentials in it (URLs end up
/// in logs: credentials go in the config's `username`/`password`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(FetchUrl);

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(url: String) -> Result<HttpUrl, String> {
        // Inside a tagged enum serde cannot name the field: the message does.
        let uri: Uri = url.parse().map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("url {url:?}: only http:// upstreams are supported"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("url: credentials in the URL are refused: use username and password".into());
        }
        FetchUrl::from_uri(uri).map(HttpUrl)
    }
}

impl std::ops::Deref for HttpUrl {
    type Target = FetchUrl;

    fn deref(&self) -> &FetchUrl {
        &self.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `scheme://host[:port]` of an `http` or `https` URL, lower-cased, the
/// default port dropped: what Referer policies compare.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Origin(String);

impl Origin {
    /// The origin of any absolute URL (a config entry, a request's Referer).
    pub fn of(url: &str) -> Option<Origin> {
        let uri: Uri = url.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        Some(Origin(match uri.port_u16() {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Origin {
    type Error = String;

    fn try_from(url: String) -> Result<Origin, String> {
        Origin::of(&url)
            .ok_or_else(|| format!("{url:?} is invalid: expected an origin like \"https://forum.example.org\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let url = HttpUrl::try_from("http://[::1]:8080/x?y=1".to_string()).unwrap();
        assert_eq!(
            (url.host(), url.port(), url.authority(), url.path_and_query()),
            ("::1", 8080, "[::1]:8080", "/x?y=1")
        );
        assert!(HttpUrl::try_from("http://10.0.0.5:8080/video.mjpg".to_string()).is_ok());
        assert!(HttpUrl::try_from("https://cam/x".to_string()).unwrap_err().contains("only http://"));
        assert!(HttpUrl::try_from("http://admin:secret@cam/x".to_string()).unwrap_err().contains("credentials"));
        assert!(HttpUrl::try_from("not a url".to_string()).is_err());
    }

    #[test]
    fn origins_normalize() {
        let o = |s: &str| Origin::of(s).map(|o| o.as_str().to_string());
        assert_eq!(o("https://Forum.Example.org/t/42?x=1").as_deref(), Some("https://forum.example.org"));
        assert_eq!(o("https://a.org:443/").as_deref(), Some("https://a.org"));
        assert_eq!(o("http://a.org:8080").as_deref(), Some("http://a.org:8080"));
        assert_eq!(o("forum.example.org"), None);
        assert_eq!(o("ftp://a.org"), None);
    }
}

/// An `http://` or `https://` URL framecast fetches a value from, with no
/// credentials in it (URLs end up in logs: tokens go in `headers`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FetchUrl(Uri);

impl TryFrom<String> for FetchUrl {
    type Error = String;

    fn try_from(url: String) -> Result<FetchUrl, String> {
        let uri: Uri = url.parse().map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
        FetchUrl::from_uri(uri)
    }
}

impl FetchUrl {
    /// Checks a URL met on the way (a redirect's `Location`).
    pub fn from_uri(uri: Uri) -> Result<FetchUrl, String> {
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) {
            return Err(format!("url {uri}: only http:// and https:// are fetched"));
        }
        let authority = uri.authority().ok_or_else(|| format!("url {uri} has no host"))?;
        if authority.as_str().contains('@') {
            return Err("url: credentials in the URL are refused: put a token in headers".into());
        }
        Ok(FetchUrl(uri))
    }

    pub fn uri(&self) -> &Uri {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme_str() == Some("https")
    }

    /// The host to connect to: an IPv6 literal without its brackets.
    pub fn host(&self) -> &str {
        let host = self.0.host().expect("checked when parsed");
        host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
    }

    pub fn port(&self) -> u16 {
        self.0.port_u16().unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// `host:port`, as `allowed_fetch_hosts` lists it.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host(), self.port())
    }

    /// `host[:port]` as written, for the `Host` header.
    pub fn authority(&self) -> &str {
        self.0.authority().expect("checked when parsed").as_str()
    }

    pub fn path_and_query(&self) -> &str {
        self.0.path_and_query().map_or("/", |p| p.as_str())
    }
}

impl fmt::Display for FetchUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
