//! The gateway's accept loop: every TCP connection, plain or TLS, is served here with hyper's
//! HTTP/1.1 connection builder, so that slow and idle clients cannot hold descriptors.
//!
//! Guarantees:
//! - every accepted socket gets `TCP_NODELAY` and TCP keepalive ([`KEEPALIVE_IDLE`]);
//! - at most `gateway.max_connections` connections are open at once, and at most
//!   `gateway.max_connections_per_address` from one source address; a connection over either
//!   cap is closed as soon as it is accepted, and counted in `/metrics`. A WebSocket session
//!   keeps its connection's place until its socket closes;
//! - a connection must send a whole request header within `gateway.header_timeout` (the TLS
//!   handshake included, and the wait for the next request on a keep-alive connection), or
//!   it is closed: a client that trickles bytes or sends nothing is dropped;
//! - a WebSocket upgrade answered with `101` must be handed over within the same timeout;
//!   once upgraded, the session's own ping and idle timeouts apply, not this one;
//! - handlers see the peer as axum's `ConnectInfo<SocketAddr>`;
//! - on shutdown the accept loop stops, idle connections close at once, requests under way
//!   finish (each connection waited for at most `SHUTDOWN_GRACE`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{SHUTDOWN_GRACE, metrics, tls};

/// Idle time before the kernel probes a silent peer; a dead peer is found within about
/// `KEEPALIVE_IDLE + 4 × KEEPALIVE_INTERVAL`, and its session ended.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// How the accept loop treats connections (from `[gateway]`).
#[derive(Clone, Copy, Debug)]
pub struct ListenerSettings {
    pub header_timeout: Duration,
    /// 0: no limit.
    pub max_connections: usize,
    /// 0: no limit.
    pub max_connections_per_address: usize,
}

/// Why a connection was refused as soon as it was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `gateway.max_connections` were open.
    Total,
    /// `gateway.max_connections_per_address` were open from its address.
    PerAddress,
}

/// Open connections, overall and per source address.
#[derive(Debug)]
pub struct ConnectionLimits {
    settings: ListenerSettings,
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A connection's place in [`ConnectionLimits`], given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl ConnectionLimits {
    pub fn new(settings: ListenerSettings) -> Arc<Self> {
        Arc::new(Self { settings, open: Mutex::new(Counts::default()) })
    }

    /// Takes a place for a connection from `peer`, or says which cap refuses it.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refused> {
        let address = peer.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let max = self.settings.max_connections;
        if max > 0 && open.total >= max {
            return Err(Refused::Total);
        }
        let per_address = self.settings.max_connections_per_address;
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if per_address > 0 && from_address >= per_address {
            return Err(Refused::PerAddress);
        }
        open.total += 1;
        open.by_address.insert(address, from_address + 1);
        Ok(ConnectionSlot { limits: Arc::clone(self), address })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Serves `app` on `listener` (TLS when `tls` is set) until `shutdown` is cancelled.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    settings: ListenerSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = ConnectionLimits::new(settings);
    let acceptor = tls.map(TlsAcceptor::from);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(tls::MAX_HANDSHAKES));
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of descriptors or memory: new connections wait; those open go on.
                    tracing::error!(%error, "accepting a connection failed; pausing for a second");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                metrics::connection_refused(refused);
                tracing::debug!(%peer, ?refused, "connection refused: too many open");
                drop(stream);
                continue;
            }
        };
        tune(&stream);
        let (app, shutdown, acceptor, handshakes) =
            (app.clone(), shutdown.clone(), acceptor.clone(), Arc::clone(&handshakes));
        connections.spawn(async move {
            let Some(acceptor) = acceptor else {
                return connection(app, Counted { io: stream, _slot: slot }, peer, settings, shutdown).await;
            };
            // The wait for a handshake slot counts against the same deadline.
            let handshake = async {
                let _permit = handshakes.acquire_owned().await.ok()?;
                Some(acceptor.accept(stream).await)
            };
            let stream = match tokio::time::timeout(settings.header_timeout, handshake).await {
                Ok(Some(Ok(stream))) => stream,
                Ok(Some(Err(error))) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
                Ok(None) => return,
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            connection(app, Counted { io: stream, _slot: slot }, peer, settings, shutdown).await;
        });
    }
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await.is_err() {
        tracing::warn!(connections = limits.open(), "connections still open after the shutdown grace period");
    }
    Ok(())
}

/// `TCP_NODELAY` (terminals send many small frames: Nagle must not hold them back) and TCP
/// keepalive, so a peer that vanished without a FIN is found.
fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE).with_interval(KEEPALIVE_INTERVAL);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

/// Serves one connection's HTTP/1.1 requests, and its upgrade to a WebSocket.
async fn connection<I>(app: Router, io: I, peer: SocketAddr, settings: ListenerSettings, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let upgrading = Arc::new(Notify::new());
    let answered = Arc::clone(&upgrading);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        let answered = Arc::clone(&answered);
        async move {
            let response = tower_service::Service::call(&mut app, request).await;
            if let Ok(response) = &response
                && response.status() == StatusCode::SWITCHING_PROTOCOLS
            {
                answered.notify_one();
            }
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    let mut upgrade_deadline: Option<Instant> = None;
    let mut stopping = false;
    loop {
        tokio::select! {
            outcome = conn.as_mut() => {
                if let Err(error) = outcome {
                    tracing::debug!(%peer, %error, "connection ended");
                }
                return;
            }
            () = upgrading.notified(), if upgrade_deadline.is_none() => {
                upgrade_deadline = Some(Instant::now() + settings.header_timeout);
            }
            () = sleep_until(upgrade_deadline) => {
                tracing::debug!(%peer, "WebSocket upgrade not completed in time");
                return;
            }
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Errors that concern one connection only (as axum's own listener treats them).
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(error.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// A connection's stream holding its [`ConnectionSlot`]: the place is given back when the
/// socket closes, after the WebSocket session if the connection was upgraded.
struct Counted<I> {
    io: I,
    _slot: ConnectionSlot,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(ListenerSettings {
            header_timeout: Duration::from_secs(1),
            max_connections: total,
            max_connections_per_address: per_address,
        })
    }

    #[test]
    fn caps_count_overall_and_per_address_and_give_places_back() {
        let limits = limits(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), Refused::PerAddress);
        // The same address written as IPv4-mapped IPv6 is the same source.
        assert_eq!(limits.admit("::ffff:10.0.0.1".parse().unwrap()).unwrap_err(), Refused::PerAddress);
        let _third = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).unwrap_err(), Refused::Total);
        drop(first);
        assert_eq!(limits.open(), 2);
        let _again = limits.admit(a).unwrap();
        assert_eq!(limits.open(), 3);
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = limits(0, 0);
        let slots: Vec<_> = (0..1000).map(|_| limits.admit("127.0.0.1".parse().unwrap()).unwrap()).collect();
        assert_eq!(limits.open(), slots.len());
    }
}
