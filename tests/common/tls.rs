//! Certificates for TLS tests: self-signed pairs for `localhost` written
//! to PEM files, and a TLS client (tokio-rustls) that trusts one of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pair {
    /// Writes a new pair as `NAME.pem` and `NAME.key` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Pair {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let pair = Pair { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) };
        std::fs::write(&pair.cert, made.cert.pem()).unwrap();
        std::fs::write(&pair.key, made.signing_key.serialize_pem()).unwrap();
        pair
    }

    /// Writes this pair's files over `to`'s (atomically, by rename, as
    /// certificate tools do).
    pub fn install_as(&self, to: &Pair) {
        for (from, to) in [(&self.cert, &to.cert), (&self.key, &to.key)] {
            let tmp = to.with_extension("tmp");
            std::fs::copy(from, &tmp).unwrap();
            std::fs::rename(&tmp, to).unwrap();
        }
    }

    /// The certificate's DER, to tell pairs apart.
    pub fn der(&self) -> Vec<u8> {
        CertificateDer::from_pem_file(&self.cert).unwrap().to_vec()
    }
}

/// A TLS connection to `addr` as `localhost` that trusts only `trusted`'s
/// certificate, offering `alpn`.
pub async fn connect(addr: SocketAddr, trusted: &Path, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector(trusted, alpn, false).connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// A TLS client that trusts only `trusted`'s certificate, offering `alpn`.
/// Unless `resume`, every connection is a full handshake, as from a new
/// browser; with it, the client keeps its tickets, as a returning one.
pub fn connector(trusted: &Path, alpn: &[&[u8]], resume: bool) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(trusted).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    TlsConnector::from(Arc::new(config))
}

/// The certificate the server at `addr` presents now (DER), trusting anything.
pub async fn served_cert(addr: SocketAddr, any_of: &[&Pair]) -> Option<Vec<u8>> {
    for pair in any_of {
        if let Ok(stream) = connect(addr, &pair.cert, &[b"http/1.1"]).await {
            let (_, session) = stream.get_ref();
            return session.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        }
    }
    None
}
