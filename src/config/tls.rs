//! The `tls` section: HTTPS on its own listener, from certificate files or
//! from an ACME CA (Let's Encrypt by default), with an optional plain
//! listener that only redirects to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::bounds;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN).
    #[serde(default = "default_tls_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain (leaf first); with `key_file`. Reloaded on
    /// SIGHUP and when the files change.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Certificates from an ACME CA instead of files.
    #[serde(default)]
    pub acme: Option<AcmeConfig>,
    /// A plain listener (usually port 80) that redirects every request to
    /// the HTTPS listener.
    #[serde(default)]
    pub http_redirect_listen: Option<SocketAddr>,
    /// A TLS handshake not done by then closes the connection (the header
    /// read timeout only starts after it).
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// How often certificate files are checked for changes.
    #[serde(default = "default_reload_check_ms")]
    pub reload_check_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// Names the certificate is for; each must resolve to this server and
    /// reach the HTTPS listener on port 443 (TLS-ALPN-01).
    pub domains: Vec<String>,
    /// `mailto:` addresses the CA may write to about expiry.
    #[serde(default)]
    pub contact: Vec<String>,
    /// Where the account key and certificates are kept across restarts.
    pub cache_dir: PathBuf,
    /// The CA's ACME directory; default Let's Encrypt production.
    #[serde(default = "default_directory")]
    pub directory: String,
    /// PEM roots to trust for the directory's own HTTPS besides the public
    /// ones (a private CA such as step-ca, or a test CA).
    #[serde(default)]
    pub directory_ca_file: Option<PathBuf>,
}

pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

fn default_directory() -> String {
    LETS_ENCRYPT.into()
}

fn default_tls_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8443))
}

fn default_handshake_timeout_ms() -> u64 {
    10_000
}

fn default_reload_check_ms() -> u64 {
    2_000
}

impl TlsConfig {
    pub fn validate(&self) -> Result<(), String> {
        bounds::within("tls.handshake_timeout_ms", self.handshake_timeout_ms, (100, 600_000))?;
        bounds::within("tls.reload_check_ms", self.reload_check_ms, (100, 3_600_000))?;
        match (&self.cert_file, &self.key_file, &self.acme) {
            (Some(_), Some(_), None) => {}
            (None, None, Some(acme)) => {
                if acme.domains.is_empty() {
                    return Err("tls.acme.domains: name at least one domain".into());
                }
                if let Some(bad) = acme.domains.iter().find(|d| !valid_domain(d)) {
                    return Err(format!("tls.acme.domains: {bad:?} is not a domain name"));
                }
                if let Some(bad) = acme.contact.iter().find(|c| !c.starts_with("mailto:")) {
                    return Err(format!("tls.acme.contact: {bad:?} is invalid: use mailto:address"));
                }
                if !acme.directory.starts_with("https://") {
                    return Err(format!("tls.acme.directory: {:?} is invalid: use an https:// URL", acme.directory));
                }
            }
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err("tls: cert_file and key_file go together".into());
            }
            (Some(_), Some(_), Some(_)) => return Err("tls: use either cert_file/key_file or acme, not both".into()),
            (None, None, None) => return Err("tls: name cert_file and key_file, or acme".into()),
        }
        Ok(())
    }
}

fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<(), String> {
        serde_json::from_str::<TlsConfig>(json).map_err(|e| e.to_string())?.validate()
    }

    #[test]
    fn files_or_acme_but_one_of_them() {
        assert!(parse(r#"{"cert_file": "c.pem", "key_file": "k.pem"}"#).is_ok());
        assert!(parse(r#"{"cert_file": "c.pem"}"#).unwrap_err().contains("go together"));
        assert!(parse(r#"{}"#).unwrap_err().contains("name cert_file"));
        let acme = r#"{"acme": {"domains": ["img.example.org"], "cache_dir": "/var/lib/framecast/acme"}}"#;
        assert!(parse(acme).is_ok());
        let bad = r#"{"acme": {"domains": ["a b"], "cache_dir": "x"}}"#;
        assert!(parse(bad).unwrap_err().contains("not a domain"));
        let bad = r#"{"acme": {"domains": ["a.org"], "cache_dir": "x", "contact": ["me@a.org"]}}"#;
        assert!(parse(bad).unwrap_err().contains("mailto"));
        let bad = r#"{"cert_file": "c", "key_file": "k", "handshake_timeout_ms": 0}"#;
        assert!(parse(bad).unwrap_err().contains("tls.handshake_timeout_ms"));
    }
}
