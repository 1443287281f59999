//! The client's address: the TCP peer, or, when the peer is one of
//! `trusted_proxies`, the nearest untrusted address named in the one header
//! `client_address_header` picks (`X-Forwarded-For` or `Forwarded`), walked
//! from the right: a client cannot choose its own address by sending either
//! header itself, since only the proxy's own hop is believed and the other
//! header (which a proxy may pass through untouched) is never read.
//! Unique viewer counting and per-address counts read it.

use std::net::IpAddr;

use hyper::HeaderMap;

use crate::config::rooms::{Cidr, ClientAddressHeader};

/// The TCP peer of a request, put in its extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub IpAddr);

/// The address a request is counted under.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr], header: ClientAddressHeader) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Hops in order, client first; `None`: a hop that names no address
    // (`unknown`, an obfuscated `for=_x`, garbage).
    // Split as bytes: a client's non-ASCII hop must not void the hops the
    // proxy appended after it (it would count the client as the proxy).
    let lines = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(|hop| std::str::from_utf8(hop).unwrap_or(""))
            .collect::<Vec<_>>()
    };
    let hops: Vec<Option<IpAddr>> = match header {
        ClientAddressHeader::Forwarded => lines("forwarded")
            .into_iter()
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| parse_node(v.trim()))?
                })
            })
            .collect(),
        ClientAddressHeader::XForwardedFor => {
            lines("x-forwarded-for").into_iter().map(|hop| parse_node(hop.trim())).collect()
        }
    };
    // From the right: past the trusted proxies to the first address they
    // did not add themselves. A hop without an address ends the walk at the
    // last trusted one: anything left of it is the client's own say.
    let mut counted = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => counted = ip,
            Some(ip) => return ip,
            None => return counted,
        }
    }
    counted
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_clients_non_ascii_hop_does_not_void_the_proxys() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let mut h = HeaderMap::new();
        let value = hyper::header::HeaderValue::from_bytes(b"\xc3\xa9, 203.0.113.7").unwrap();
        h.append("x-forwarded-for", value);
        let seen = client_ip(proxy, &h, &trusted, ClientAddressHeader::XForwardedFor);
        assert_eq!(seen, "203.0.113.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn only_trusted_peers_forward() {
        use ClientAddressHeader::{Forwarded, XForwardedFor};
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let proxy = ip("10.0.0.5");
        let stranger = ip("203.0.113.9");
        let xff = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.3")]);
        assert_eq!(client_ip(proxy, &xff, &trusted, XForwardedFor), ip("203.0.113.7"));
        assert_eq!(
            client_ip(stranger, &xff, &trusted, XForwardedFor),
            stranger,
            "an untrusted peer's header is ignored"
        );
        let fwd = headers(&[("forwarded", r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711""#)]);
        assert_eq!(client_ip(proxy, &fwd, &trusted, Forwarded), ip("2001:db8::1"));
        assert_eq!(client_ip(proxy, &headers(&[]), &trusted, XForwardedFor), proxy);
        let garbage = headers(&[("x-forwarded-for", "unknown, nonsense")]);
        assert_eq!(client_ip(proxy, &garbage, &trusted, XForwardedFor), proxy);
        // An address-less hop ends the walk: what is left of it is not believed.
        let hidden = headers(&[("x-forwarded-for", "198.51.100.1, unknown, 10.0.0.3")]);
        assert_eq!(client_ip(proxy, &hidden, &trusted, XForwardedFor), ip("10.0.0.3"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        use ClientAddressHeader::{Forwarded, XForwardedFor};
        let trusted = [Cidr::parse("127.0.0.1").unwrap()];
        let proxy = ip("127.0.0.1");
        // The proxy set X-Forwarded-For; the client sent its own Forwarded.
        let both = headers(&[("forwarded", "for=198.51.100.66"), ("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(proxy, &both, &trusted, XForwardedFor), ip("203.0.113.7"));
        assert_eq!(client_ip(proxy, &both, &trusted, Forwarded), ip("198.51.100.66"));
        let only_forwarded = headers(&[("forwarded", "for=198.51.100.66")]);
        assert_eq!(client_ip(proxy, &only_forwarded, &trusted, XForwardedFor), proxy);
        let only_xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(proxy, &only_xff, &trusted, Forwarded), proxy);
    }
}
