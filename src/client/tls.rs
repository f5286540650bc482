//! Which TLS servers the clients (`entry enter` and the API commands) trust: the web PKI's
//! roots, plus the CA certificates of the PEM file named by `--ca` / `ENTRY_CA`, for a
//! gateway whose certificate an internal CA signed or that is self-signed.
//!
//! Guarantees: certificate verification is never switched off; a CA file that cannot be read
//! or holds no certificate is a clear error naming the file, never silently ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why the CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read the CA file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the CA file {0} holds no PEM certificate")]
    Empty(PathBuf),
    #[error("the CA file {path} holds a certificate rustls refuses: {reason}")]
    Refused { path: PathBuf, reason: String },
}

/// The certificates of a PEM file.
pub fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let unreadable = |error: rustls::pki_types::pem::Error| {
        let reason = match error {
            rustls::pki_types::pem::Error::Io(error) => error.to_string(),
            other => other.to_string(),
        };
        CaError::Read { path: path.to_owned(), reason }
    };
    let certs =
        CertificateDer::pem_file_iter(path).map_err(unreadable)?.collect::<Result<Vec<_>, _>>().map_err(unreadable)?;
    if certs.is_empty() {
        return Err(CaError::Empty(path.to_owned()));
    }
    Ok(certs)
}

/// A rustls client configuration (ring) trusting the web PKI and the CAs in `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, CaError> {
    let refused = |error: rustls::Error| CaError::Refused { path: ca.to_owned(), reason: error.to_string() };
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for cert in ca_certificates(ca)? {
        roots.add(cert).map_err(refused)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(refused)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_ca_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(client_config(&missing), Err(CaError::Read { .. })));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let error = client_config(&empty).unwrap_err();
        assert!(matches!(error, CaError::Empty(_)) && error.to_string().contains("empty.pem"), "{error}");
    }
}
