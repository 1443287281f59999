//! Users-online rooms: how a room counts (`rooms.NAME.count`), when its
//! statistics day starts (`day_starts_at`), which peers may tell the
//! client's address (`trusted_proxies`) and in which one header
//! (`client_address_header`), and the address a client is counted under
//! (IPv6 by /64), shared by the connection caps and the room figures.

use std::net::{IpAddr, Ipv6Addr};

use serde::Deserialize;

/// What a room's live badge counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CountMode {
    /// Every open image stream (a person with five tabs is five).
    #[default]
    Streams,
    /// Distinct client addresses with a stream open (five tabs are one).
    Addresses,
    /// Members and guests, as forums say it: distinct signed members
    /// (`?member=`) and distinct addresses of streams that name none.
    People,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    #[serde(default)]
    pub count: CountMode,
    /// Only signed URLs (`exp`, `sig`) may show it.
    #[serde(default)]
    pub require_signature: bool,
    /// The template it is drawn with (built in, e.g. `people-footer`, or
    /// from `template_dir`); default `online`, or `people` for people rooms.
    #[serde(default)]
    pub template: Option<String>,
}

/// The one header a trusted proxy names the client in; the other is never
/// read, so a client cannot add its own where the proxy only appends to
/// (or passes through) the header it does not set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For` (what nginx's `$proxy_add_x_forwarded_for` sets).
    #[default]
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=…` (RFC 7239).
    #[serde(rename = "forwarded")]
    Forwarded,
}

/// The address a client is counted under: IPv4 as it is (also when mapped
/// into IPv6), IPv6 by its /64 prefix. One host usually holds a whole /64,
/// so counting single IPv6 addresses would let it count as millions.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// `day_starts_at` ("HH:MM", UTC) as seconds after midnight UTC.
pub fn day_start_seconds(text: &str) -> Result<i64, String> {
    let bad = || format!("day_starts_at: {text:?} is invalid: use HH:MM in UTC, e.g. \"00:00\" or \"06:30\"");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) || text.len() != 5 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

/// A trusted proxy: one address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = |why: &str| format!("trusted_proxies: {text:?} is invalid: {why}");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad("the prefix is not a number"))?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("use an address (10.0.0.1) or a block (10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad("the prefix is longer than the address"));
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)) << 96, u128::from(u32::from(b)) << 96, self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), self.prefix),
            _ => return false,
        };
        let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
        a & mask == b & mask
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(d)?;
        Cidr::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_days() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.2.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.9.9".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy").is_err());
        assert_eq!(day_start_seconds("06:30"), Ok(6 * 3600 + 1800));
        assert!(day_start_seconds("24:00").is_err());
        assert!(day_start_seconds("6:30").is_err());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.1.2.3"), key("10.1.2.3"));
        assert_ne!(key("10.1.2.3"), key("10.1.2.4"));
    }
}
