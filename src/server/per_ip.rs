//! Open connections per client address, so one address cannot take every
//! slot. A slot is held by a guard and released when it drops.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::rooms::client_key;

#[derive(Clone)]
pub struct PerIp {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in its address's count.
pub struct IpSlot {
    ip: IpAddr,
    open: Option<Arc<Mutex<HashMap<IpAddr, usize>>>>,
}

impl PerIp {
    /// `limit` 0: no per-address limit.
    pub fn new(limit: usize) -> PerIp {
        PerIp { limit, open: Arc::default() }
    }

    /// A slot for a connection from `ip`, or `None` if it has `limit` open.
    /// IPv6 clients are counted by /64: one host usually holds a whole /64,
    /// so counting single addresses would not cap it at all.
    pub fn admit(&self, ip: IpAddr) -> Option<IpSlot> {
        let ip = client_key(ip);
        if self.limit == 0 {
            return Some(IpSlot { ip, open: None });
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpSlot { ip, open: Some(self.open.clone()) })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some(open) = &self.open else { return };
        let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Forget idle addresses: the map holds only live ones.
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_one_address_and_releases_on_drop() {
        let p = PerIp::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let (s1, s2) = (p.admit(a).unwrap(), p.admit(a).unwrap());
        assert!(p.admit(a).is_none());
        assert!(p.admit(b).is_some(), "other addresses still get in");
        drop(s1);
        let s3 = p.admit(a).unwrap();
        drop((s2, s3));
        assert!(p.open.lock().unwrap().is_empty());
        assert!(PerIp::new(0).admit(a).is_some());
        // Two addresses of one IPv6 /64 share a count; another /64 does not.
        let p = PerIp::new(1);
        let _x = p.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(p.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(p.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _m = p.admit("::ffff:10.1.2.3".parse().unwrap()).unwrap();
        assert!(p.admit("10.1.2.3".parse().unwrap()).is_none());
    }
}
