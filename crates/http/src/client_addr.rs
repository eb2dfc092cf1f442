//! The client address: the socket peer, or — only when the peer is a proxy the operator
//! listed — the nearest untrusted address in `X-Forwarded-For` (RFC 9700 §4.13).

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tessera_domain::access::canonical_addr;

pub fn client_addr(parts: &Parts, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical_addr(c.0.ip()))
        // Without connection info (never in `serve`), fail closed to an address no access
        // list contains by accident.
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let trusted = |a: &IpAddr| trusted_proxies.iter().any(|n| n.contains(a));
    if !trusted(&peer) {
        return peer;
    }
    let Some(xff) = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .reduce(|a, b| format!("{a},{b}"))
    else {
        return peer;
    };
    // Walk from the right: the last hop we do not trust is the client.
    let mut client = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(addr) => {
                client = canonical_addr(addr);
                if !trusted(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}
