//! The caps every listener shares: places in all (`max_connections`) and
//! per client address (`max_connections_per_ip`). A connection takes one
//! place; each HTTP/2 stream takes one more, since one HTTP/2 connection
//! can carry hundreds of viewers. A place is held by a guard and given back
//! when it drops, also when its task panics.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::per_ip::{IpSlot, PerIp};

#[derive(Clone)]
pub struct Gate {
    places: Arc<Semaphore>,
    per_ip: PerIp,
    capacity: usize,
}

/// A held place: released on drop.
pub struct Place {
    _all: OwnedSemaphorePermit,
    _ip: IpSlot,
}

/// Why no place was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    PerIp,
    All,
}

impl Full {
    pub fn reason(self) -> &'static str {
        match self {
            Full::PerIp => "per_ip_cap",
            Full::All => "connection_cap",
        }
    }
}

impl Gate {
    pub fn new(capacity: usize, per_ip: usize) -> Gate {
        Gate { places: Arc::new(Semaphore::new(capacity)), per_ip: PerIp::new(per_ip), capacity }
    }

    /// The caps `config` sets (`max_connections`, `max_connections_per_ip`).
    pub fn for_config(config: &crate::config::Config) -> Gate {
        Gate::new(config.max_connections, config.max_connections_per_ip)
    }

    pub fn admit(&self, ip: IpAddr) -> Result<Place, Full> {
        let ip_slot = self.per_ip.admit(ip).ok_or(Full::PerIp)?;
        let all = self.places.clone().try_acquire_owned().map_err(|_| Full::All)?;
        Ok(Place { _all: all, _ip: ip_slot })
    }

    /// Places held now.
    pub fn held(&self) -> usize {
        self.capacity - self.places.available_permits()
    }

    /// Waits until every place is given back (at shutdown).
    pub async fn drained(&self) {
        let all = u32::try_from(self.capacity).unwrap_or(u32::MAX);
        let _ = self.places.acquire_many(all).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_in_all_and_per_address() {
        let gate = Gate::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let (p1, _p2) = (gate.admit(a).unwrap(), gate.admit(a).unwrap());
        assert_eq!(gate.admit(a).err(), Some(Full::PerIp));
        let _p3 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).err(), Some(Full::All));
        assert_eq!(gate.held(), 3);
        drop(p1);
        assert!(gate.admit(b).is_ok(), "a dropped place is given back");
    }
}
