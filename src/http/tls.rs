//! HTTPS and WSS on the one listener: a certificate chain and key from PEM files, served by
//! rustls, and read again on SIGHUP. A reload that fails keeps the certificate in use and says
//! why; connections already open keep theirs.

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the certificate could not be loaded, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {file}: {reason}")]
    Certificate { file: String, reason: rustls_pki_types::pem::Error },
    #[error("the certificate chain {file} holds no PEM certificate")]
    NoCertificate { file: String },
    #[error("cannot read the private key {file}: {reason}")]
    Key { file: String, reason: rustls_pki_types::pem::Error },
    #[error("the certificate and key of {cert} and {key} cannot be used together: {reason}")]
    Mismatch { cert: String, key: String, reason: rustls::Error },
}

pub struct TlsCertificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsCertificate {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Self { cert: cert.to_owned(), key: key.to_owned(), current: RwLock::new(Arc::new(config)) })
    }

    /// The configuration new connections are served with.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key)?;
        *self.current.write() = Arc::new(config);
        Ok(())
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    crate::auth::install_crypto_provider();
    let cert_error = |reason| TlsError::Certificate { file: cert.display().to_string(), reason };
    let chain = CertificateDer::pem_file_iter(cert).map_err(cert_error)?.collect::<Result<Vec<_>, _>>().map_err(cert_error)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { file: cert.display().to_string() });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|reason| TlsError::Key { file: key.display().to_string(), reason })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, private_key))
        .map_err(|e| TlsError::Mismatch { cert: cert.display().to_string(), key: key.display().to_string(), reason: e })?;
    // HTTP/1.1 only: WebSockets upgrade over it in every browser.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
