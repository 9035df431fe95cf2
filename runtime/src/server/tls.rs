//! HTTPS for `autoflow server`: the certificate and key from PEM files (`--tls-cert`,
//! `--tls-key`), read again on SIGHUP, and the rustls acceptor the HTTP server hands each
//! connection to.
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Options of HTTPS on `autoflow server`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM: the server's certificate first, then any
    /// intermediates). Needs `--tls-key`; both files are read again on SIGHUP. Plain HTTP on
    /// the same port is then answered with a redirect (GET, HEAD) or refused.
    #[arg(long, env = "AUTOFLOW_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "AUTOFLOW_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The files a server's certificate is read from, and the certificate in force.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl TlsArgs {
    /// The certificate these options name, read and checked, or `None` without `--tls-cert`.
    pub fn load(&self) -> anyhow::Result<Option<Arc<Certificate>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read(cert, key, &provider)?;
        Ok(Some(Arc::new(Certificate {
            cert: cert.clone(),
            key: key.clone(),
            provider,
            current: RwLock::new(current),
        })))
    }
}

impl Certificate {
    /// Reads the files again; the new certificate serves the connections that start from now
    /// on. On an error the one in force stays, and the error says which file is wrong.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = read(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// A TLS acceptor that presents the certificate in force (HTTP/1.1 only, as the server
    /// speaks).
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Reloads the certificate on each SIGHUP, logging the outcome, for as long as the
    /// process runs.
    #[cfg(unix)]
    pub fn reload_on_sighup(self: &Arc<Self>) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
        let this = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match this.reload() {
                    Ok(()) => tracing::info!(
                        "SIGHUP: TLS certificate read again from {}",
                        this.cert.display()
                    ),
                    Err(e) => tracing::error!("SIGHUP: {e:#}; the certificate in force stays"),
                }
            }
        });
        Ok(())
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Reads a certificate chain and its key, and checks that they belong together.
fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!(
            "--tls-cert {}: no certificate in the file (a PEM \"BEGIN CERTIFICATE\" block)",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow::anyhow!(
            "--tls-key {}: {e} (a PEM private key: PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let certified = CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        anyhow::anyhow!(
            "--tls-key {} does not go with --tls-cert {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}
