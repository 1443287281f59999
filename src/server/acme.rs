//! Certificates from an ACME CA (Let's Encrypt by default) through
//! rustls-acme: TLS-ALPN-01 validation on the HTTPS listener itself, a
//! cache directory that keeps the account and certificate across restarts,
//! renewal once two thirds of a certificate's lifetime have passed.

use std::sync::Arc;

use rustls::server::ResolvesServerCert;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_acme::caches::DirCache;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_stream::StreamExt;

use crate::app::App;
use crate::config::tls::AcmeConfig;

/// Starts the task that obtains and renews the certificate; returns the
/// resolver for the HTTPS listener and the configuration that answers
/// validation handshakes. Until the first certificate arrives, handshakes
/// fail (browsers show a certificate error) and the log says why.
pub fn start(app: &Arc<App>, acme: &AcmeConfig) -> Result<(Arc<dyn ResolvesServerCert>, Arc<ServerConfig>), String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &acme.directory_ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("tls.acme.directory_ca_file {}: {e}", path.display()))?;
        for cert in certs {
            roots.add(cert).map_err(|e| format!("tls.acme.directory_ca_file {}: {e}", path.display()))?;
        }
    }
    std::fs::create_dir_all(&acme.cache_dir)
        .map_err(|e| format!("tls.acme.cache_dir {}: cannot create: {e}", acme.cache_dir.display()))?;
    let client = ClientConfig::builder_with_provider(super::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls.acme: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut state = rustls_acme::AcmeConfig::new_with_client_config(&acme.domains, Arc::new(client))
        .contact(&acme.contact)
        .cache(DirCache::new(acme.cache_dir.clone()))
        .directory(&acme.directory)
        .state();
    let resolver = state.resolver();
    let challenge = state.challenge_rustls_config_with_provider(super::tls::provider());
    let shutdown = app.shutdown.clone();
    let domains = acme.domains.join(", ");
    let cache_dir = acme.cache_dir.clone();
    app.tracker.spawn(async move {
        // The state machine does the work as it is polled: loading the
        // cache, ordering, answering, renewing; it retries errors itself.
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = state.next() => event,
            };
            match event {
                Some(Ok(event)) => {
                    tracing::info!(domains, ?event, "ACME");
                    record_cached_expiry(&cache_dir);
                }
                Some(Err(error)) => {
                    tracing::error!(domains, %error, "ACME: no certificate yet or renewal failed (retrying)")
                }
                None => return,
            }
        }
    });
    Ok((resolver, challenge))
}

/// The certificate rustls-acme deployed is the one it stored in its cache
/// (`cached_cert_*`, key and chain in PEM): the latest-expiring leaf there
/// is the one served, for the expiry metric.
fn record_cached_expiry(cache_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else { return };
    let leaves = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cached_cert_"))
        .filter_map(|e| CertificateDer::pem_file_iter(e.path()).ok()?.next()?.ok());
    let expiry = |leaf: &CertificateDer<'_>| {
        use x509_parser::prelude::FromDer;
        x509_parser::certificate::X509Certificate::from_der(leaf.as_ref()).ok().map(|(_, c)| c.validity().not_after)
    };
    if let Some(leaf) = leaves.max_by_key(|leaf| expiry(leaf).map(|t| t.timestamp())) {
        super::tls::record_expiry("acme", &leaf);
    }
}
