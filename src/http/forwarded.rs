//! The client's address behind a trusted reverse proxy (`auth.trusted_proxies`).
//!
//! Guarantees: `X-Forwarded-For` is read only when the TCP peer is a trusted proxy, and then
//! the source is the rightmost address in it that is not itself a trusted proxy (what the
//! nearest untrusted hop told the proxies), so a client cannot choose its own address by
//! sending the header. Every handler after this layer (the failure throttle, audit entries,
//! session rows) sees that address as its `ConnectInfo`; the connection caps of the listener
//! still count the proxy's own connections.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use super::Gateway;
use crate::config::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Replaces the request's peer with the client behind a trusted proxy, if any.
pub(super) async fn client_address(State(gateway): State<Arc<Gateway>>, mut request: Request, next: Next) -> Response {
    let trusted = &gateway.config().auth.trusted_proxies;
    if !trusted.is_empty() {
        if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
            if let Some(client) = client_of(peer.ip(), request.headers(), trusted) {
                // The client's port is not known: 0.
                request.extensions_mut().insert(ConnectInfo(SocketAddr::new(client, 0)));
            }
        }
    }
    next.run(request).await
}

/// The client behind `peer`, when `peer` is a trusted proxy that forwarded one.
fn client_of(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return None;
    }
    // Every X-Forwarded-For header, in order, is one list.
    let hops: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut nearest = None;
    for hop in hops.iter().rev() {
        // A hop that is not an address ends the walk: nothing left of it can be believed.
        let ip = parse_hop(hop)?;
        if !is_trusted(ip) {
            return Some(ip);
        }
        nearest = Some(ip);
    }
    // Only proxies in the chain: the farthest of them is the source.
    nearest
}

/// `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| IpNet::try_from((*net).to_owned()).unwrap()).collect()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1"]);
        let headers = forwarded(&["198.51.100.66, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(client_of(ip("127.0.0.1"), &headers, &trusted), Some(ip("203.0.113.9")));
        // An untrusted peer's header is ignored.
        assert_eq!(client_of(ip("192.0.2.1"), &headers, &trusted), None);
        // Ports and brackets are accepted; IPv4-mapped peers match IPv4 blocks.
        let headers = forwarded(&["[2001:db8::1]:443"]);
        assert_eq!(client_of(ip("::ffff:10.0.0.1"), &headers, &trusted), Some(ip("2001:db8::1")));
        // Only proxies: the farthest one; garbage to the right of the client: no answer.
        assert_eq!(client_of(ip("10.0.0.1"), &forwarded(&["10.0.0.7, 10.0.0.8"]), &trusted), Some(ip("10.0.0.7")));
        assert_eq!(client_of(ip("10.0.0.1"), &forwarded(&["203.0.113.9, nonsense"]), &trusted), None);
        assert_eq!(client_of(ip("10.0.0.1"), &HeaderMap::new(), &trusted), None);
    }

    #[test]
    fn blocks_parse_and_match() {
        let v4 = IpNet::try_from("192.0.2.0/24".to_owned()).unwrap();
        assert!(v4.contains(ip("192.0.2.200")) && !v4.contains(ip("192.0.3.1")));
        assert!(IpNet::try_from("0.0.0.0/0".to_owned()).unwrap().contains(ip("8.8.8.8")));
        let v6 = IpNet::try_from("2001:db8::/32".to_owned()).unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")) && !v6.contains(ip("192.0.2.1")));
        for bad in ["192.0.2.0/33", "example.com", "10.0.0.0/x", ""] {
            assert!(IpNet::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        assert_eq!(String::from(v4), "192.0.2.0/24");
    }
}
