//! HTTPS: the rustls server configuration (ring as the one crypto provider,
//! ALPN `h2` then `http/1.1`), certificates from PEM files that reload on
//! SIGHUP and when the files change, and the handshake with its own
//! timeout. ACME certificates come from `acme.rs` through the same
//! resolver seam.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::app::App;
use crate::config::tls::TlsConfig;
use crate::metrics::{Reason, metrics};

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the HTTPS listener accepts with.
pub struct Tls {
    config: Arc<ServerConfig>,
    /// ACME's TLS-ALPN-01 answers, when certificates come from ACME.
    challenge: Option<Arc<ServerConfig>>,
    handshake_timeout: Duration,
}

impl Tls {
    /// Sets up certificates (from files, or ACME with its renewal task) and
    /// the reload watcher; an unreadable or mismatched pair is an error.
    pub fn start(app: &Arc<App>, config: &TlsConfig) -> Result<Tls, String> {
        let (resolver, challenge): (Arc<dyn ResolvesServerCert>, _) = match &config.acme {
            Some(acme) => {
                let (resolver, challenge) = super::acme::start(app, acme)?;
                (resolver, Some(challenge))
            }
            None => {
                let cert = config.cert_file.clone().expect("validated: files or acme");
                let key = config.key_file.clone().expect("validated: files or acme");
                let files = Arc::new(CertFiles::load(cert, key)?);
                watch(app, files.clone(), Duration::from_millis(config.reload_check_ms));
                (files, None)
            }
        };
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Stateless tickets (keys in memory, rotated every 6 h): any
        // viewer that reconnects resumes without the certificate and its
        // signature, not only the last few hundred the default session
        // cache would remember, and the server keeps nothing per ticket.
        server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| format!("tls: session tickets: {e}"))?;
        Ok(Tls {
            config: Arc::new(server),
            challenge,
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
        })
    }

    /// The handshake, bounded in time. `None`: it failed, timed out, or was
    /// an ACME validation (answered and done).
    pub async fn accept<IO: AsyncRead + AsyncWrite + Unpin>(&self, io: IO) -> Option<Box<TlsStream<IO>>> {
        let handshake = async {
            let start = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
            if let Some(challenge) = &self.challenge
                && rustls_acme::is_tls_alpn_challenge(&start.client_hello())
            {
                tracing::info!("answering an ACME TLS-ALPN-01 validation");
                let _ = start.into_stream(challenge.clone()).await;
                return Ok(None);
            }
            // Boxed here: the caller's future then holds a pointer, not
            // rustls' state (1.2 KiB) in a slot that outlives the move.
            start.into_stream(self.config.clone()).await.map(|stream| Some(Box::new(stream)))
        };
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                metrics().tls_handshake_failures.get_or_create(&Reason { reason: "failed" }).inc();
                None
            }
            Err(_) => {
                metrics().tls_handshake_failures.get_or_create(&Reason { reason: "timeout" }).inc();
                None
            }
        }
    }
}

/// A certificate and key from PEM files, swapped whole when they change.
/// Sessions under way keep the key they started with.
#[derive(Debug)]
struct CertFiles {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertFiles {
    fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<CertFiles, String> {
        let current = RwLock::new(Arc::new(read_pair(&cert_path, &key_path)?));
        Ok(CertFiles { cert_path, key_path, current })
    }

    /// Reads the files again; a bad new pair is refused (logged) and the old
    /// one keeps serving.
    fn reload(&self) {
        match read_pair(&self.cert_path, &self.key_path) {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
                tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                metrics().tls_reloads.get_or_create(&Reason { reason: "ok" }).inc();
            }
            Err(error) => {
                tracing::error!(%error, "TLS certificate not reloaded: the previous one keeps serving");
                metrics().tls_reloads.get_or_create(&Reason { reason: "refused" }).inc();
            }
        }
    }

    fn stamp(&self) -> Option<(SystemTime, u64, SystemTime, u64)> {
        let meta = |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        let (cert, key) = (meta(&self.cert_path)?, meta(&self.key_path)?);
        Some((cert.0, cert.1, key.0, key.1))
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn read_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("tls.cert_file {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("tls.cert_file {}: no certificate in it", cert_path.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| format!("tls.key_file {}: {e}", key_path.display()))?;
    let key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("tls.key_file {}: {e}", key_path.display()))?;
    let leaf = certs[0].clone();
    let pair = CertifiedKey::new(certs, key);
    pair.keys_match().map_err(|e| {
        format!("tls: the key in {} does not belong to {}: {e}", key_path.display(), cert_path.display())
    })?;
    record_expiry("files", &leaf);
    Ok(pair)
}

/// `framecast_tls_certificate_expiry_timestamp_seconds{source}`: when the
/// leaf certificate now served stops being valid (alerts warn 14 days ahead).
pub(super) fn record_expiry(source: &'static str, leaf: &CertificateDer<'_>) {
    use x509_parser::prelude::FromDer;
    if let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(leaf.as_ref()) {
        let label = crate::metrics::CertSource { source };
        metrics().tls_certificate_expiry.get_or_create(&label).set(cert.validity().not_after.timestamp());
    }
}

/// Reloads on SIGHUP, and when either file's time or size changes.
fn watch(app: &Arc<App>, files: Arc<CertFiles>, every: Duration) {
    let shutdown = app.shutdown.clone();
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    app.tracker.spawn(async move {
        let mut hangups = match hangups {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "no SIGHUP handler: certificates reload on file changes only");
                None
            }
        };
        let mut seen = files.stamp();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match &mut hangups {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = hangup => files.reload(),
                _ = tick.tick() => {
                    let now = files.stamp();
                    if now.is_some() && now != seen {
                        files.reload();
                    }
                    seen = now;
                    continue;
                }
            }
            seen = files.stamp();
        }
    });
}
