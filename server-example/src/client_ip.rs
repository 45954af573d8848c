//! The client's address: the peer's, or behind a trusted proxy the one the proxy reports.
//!
//! With `--trusted-proxy CIDR` (repeatable; `LICENTIA_TRUSTED_PROXIES`, comma-separated) a
//! request whose peer is inside one of the ranges takes its client address from
//! `X-Forwarded-For`: the rightmost address that is not itself a trusted proxy (entries
//! further left are whatever the client wrote). Without trusted proxies the header is
//! ignored, since anyone can send it. The address found is what rate limits, tokens'
//! `allowed_cidrs` and the events' `ip_address` see.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The resolved client address, a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Middleware: resolves the client address and stores it as a [`ClientIp`] extension.
pub async fn resolve(trusted: Arc<[IpNet]>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()));
    if let Some(peer) = peer {
        if trusted.is_empty() {
            // The common case costs no header scan.
            req.extensions_mut().insert(ClientIp(peer));
            return next.run(req).await;
        }
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>();
        let ip = client_of(peer, &forwarded, &trusted);
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of a request from `peer` with `X-Forwarded-For` values `forwarded`.
pub fn client_of(peer: IpAddr, forwarded: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(ip) = parse_entry(entry) else {
            // A hop we cannot read: trust nothing further left.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port or in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = e.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    e.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_of(ip("203.0.113.9"), &["1.2.3.4"], &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_of(ip("10.0.0.2"), &["1.2.3.4"], &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_of(ip("10.0.0.2"), &["6.6.6.6, 1.2.3.4, 10.0.0.9"], &trusted),
            ip("1.2.3.4"),
            "the rightmost untrusted hop; what the client wrote further left is ignored"
        );
        assert_eq!(
            client_of(ip("10.0.0.2"), &["1.2.3.4:5678"], &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_of(ip("10.0.0.2"), &["[2001:db8::1]"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_of(ip("10.0.0.2"), &["garbage"], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(client_of(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
        assert_eq!(client_of(ip("10.0.0.2"), &["1.2.3.4"], &[]), ip("10.0.0.2"));
    }
}
