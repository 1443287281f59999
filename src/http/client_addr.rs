//! The client's address: the TCP peer, or, when the peer is one of
//! `trusted_proxies`, the nearest untrusted address its `Forwarded` or
//! `X-Forwarded-For` header names (walked from the right, so a client
//! cannot choose its own address by sending the header itself). Unique
//! viewer counting and per-address counts read it.

use std::net::IpAddr;

use hyper::HeaderMap;

use crate::config::rooms::Cidr;

/// The TCP peer of a request, put in its extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub IpAddr);

/// The address a request is counted under.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Hops in order, client first; `Forwarded` (RFC 7239) wins over the
    // older header when both are present.
    let hops: Vec<IpAddr> = if headers.contains_key("forwarded") {
        headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| parse_node(v.trim()))?
                })
            })
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| parse_node(hop.trim()))
            .collect()
    };
    hops.into_iter().rev().find(|ip| !is_trusted(*ip)).unwrap_or(peer)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `[2001:db8::1]`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim_matches('"');
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.parse().ok().or_else(|| text.rsplit_once(':')?.0.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_trusted_peers_forward() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.3")]);
        assert_eq!(client_ip(proxy, &xff, &trusted), "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(stranger, &xff, &trusted), stranger, "an untrusted peer's header is ignored");
        let fwd = headers(&[("forwarded", r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711""#)]);
        assert_eq!(client_ip(proxy, &fwd, &trusted), "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(proxy, &headers(&[]), &trusted), proxy);
        let garbage = headers(&[("x-forwarded-for", "unknown, nonsense")]);
        assert_eq!(client_ip(proxy, &garbage, &trusted), proxy);
    }
}
