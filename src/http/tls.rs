//! TLS termination in the gateway (`[gateway.tls]`): loads the certificate chain and key
//! (PEM) into a rustls server configuration (ring). The accept loop (`listener.rs`) runs
//! the handshakes and serves only connections whose handshake completed.
//!
//! Guarantees: a missing or unreadable file, a file without a certificate or key, or a key
//! that does not match the certificate is a clear error naming the file, before the gateway
//! listens; handshakes run concurrently, each bounded by `gateway.header_timeout` and at most
//! [`MAX_HANDSHAKES`] at once, so a slow or silent client never holds up the others; a client
//! that speaks plain HTTP to the TLS port gets its connection closed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Most handshakes in progress at once; further connections wait for one to end (within
/// their own `gateway.header_timeout`).
pub const MAX_HANDSHAKES: usize = 1024;

/// Why the TLS configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("the TLS certificate file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("cannot read the TLS private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the TLS certificate {cert} and key {key} cannot be used together: {reason}")]
    Rejected { cert: PathBuf, key: PathBuf, reason: String },
}

impl From<TlsError> for std::io::Error {
    fn from(error: TlsError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, error)
    }
}

/// The rustls server configuration of `tls` (HTTP/1.1 only: WebSockets upgrade over it).
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = certificates(&tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|error| {
        let reason = match error {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in it".to_owned(),
            rustls::pki_types::pem::Error::Io(error) => error.to_string(),
            other => other.to_string(),
        };
        TlsError::Key { path: tls.key.clone(), reason }
    })?;
    let rejected = |error: rustls::Error| TlsError::Rejected {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        reason: error.to_string(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rejected)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unreadable = |reason: String| TlsError::Certificate { path: path.to_owned(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(pem_reason(error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(pem_reason(error)))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

fn pem_reason(error: rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(error) => error.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_paths_and_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsConfig { cert: dir.path().join("nope.pem"), key: dir.path().join("nope.key") };
        let error = server_config(&missing).unwrap_err().to_string();
        assert!(error.contains("nope.pem") && error.contains("certificate"), "{error}");

        let text = dir.path().join("text.pem");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let error = server_config(&TlsConfig { cert: text.clone(), key: text }).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate(_)), "{error}");
    }
}
