//! Users-online rooms: how a room counts (`rooms.NAME.count`), when its
//! statistics day starts (`day_starts_at`), and which peers may tell the
//! client's address in `Forwarded` / `X-Forwarded-For` (`trusted_proxies`).

use std::net::IpAddr;

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
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    #[serde(default)]
    pub count: CountMode,
    /// Only signed URLs (`exp`, `sig`) may show it.
    #[serde(default)]
    pub require_signature: bool,
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
}
