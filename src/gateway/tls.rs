//! TLS termination in the gateway (`[gateway.tls]`): loads the certificate chain and key
//! (PEM) into a rustls server configuration (ring), and a listener that hands axum only
//! connections whose TLS handshake completed.
//!
//! Guarantees: a missing or unreadable file, a file without a certificate or key, or a key
//! that does not match the certificate is a clear error naming the file, before the gateway
//! listens; handshakes run concurrently, each bounded by [`HANDSHAKE_TIMEOUT`] and at most
//! [`MAX_HANDSHAKES`] at once, so a slow or silent client never holds up the others; a client
//! that speaks plain HTTP to the TLS port gets its connection closed.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsConfig;

/// Longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait in the kernel's backlog.
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

type Handshake = Pin<Box<dyn Future<Output = (Result<std::io::Result<TlsStream<TcpStream>>, ()>, SocketAddr)> + Send>>;

/// A TCP listener that yields TLS streams: axum's [`axum::serve::Listener`].
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: FuturesUnordered<Handshake>,
    /// After an accept error that is not the client's (e.g. out of file descriptors), new
    /// connections wait until then; handshakes under way go on meanwhile.
    paused_until: Option<Instant>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        Self { tcp, acceptor: TlsAcceptor::from(config), handshakes: FuturesUnordered::new(), paused_until: None }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        // Interactive terminals send many small frames: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let accept = self.acceptor.accept(stream);
        self.handshakes.push(Box::pin(async move {
            (tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await.map_err(|_| ()), peer)
        }));
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if self.paused_until.is_some_and(|until| until <= Instant::now()) {
                self.paused_until = None;
            }
            let accepting = self.paused_until.is_none() && self.handshakes.len() < MAX_HANDSHAKES;
            let resume = self.paused_until.unwrap_or_else(Instant::now);
            let Self { tcp, handshakes, .. } = self;
            tokio::select! {
                accepted = TcpListener::accept(tcp), if accepting => match accepted {
                    Ok((stream, peer)) => self.start_handshake(stream, peer),
                    Err(error) if is_connection_error(&error) => {}
                    Err(error) => {
                        tracing::error!(%error, "accepting a connection failed; pausing for a second");
                        self.paused_until = Some(Instant::now() + Duration::from_secs(1));
                    }
                },
                Some((outcome, peer)) = handshakes.next(), if !handshakes.is_empty() => match outcome {
                    Ok(Ok(stream)) => return (stream, peer),
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(()) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
                _ = tokio::time::sleep_until(resume), if self.paused_until.is_some() => {}
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Errors that concern one connection only (as axum's own listener treats them).
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(error.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
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
