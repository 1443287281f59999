//! Per-client limits on one stream, as the old webcam servers had them: a
//! longest duration, a byte budget, and a least interval between frames
//! (an fps cap; the client then gets the latest frame at that pace).

use std::time::Duration;

use crate::config::bounds::Fps;
use crate::config::limits::LimitsConfig;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub max_duration: Option<Duration>,
    pub max_bytes: Option<u64>,
    pub min_interval: Option<Duration>,
    /// Send the latest frame again after this long without a part, for
    /// this viewer alone: browsers that let a left page's stream go only
    /// when data arrives (Firefox) leave the count sooner. Set by the
    /// server from the User-Agent, never by a URL.
    pub resend_every: Option<Duration>,
}

impl Limits {
    pub fn from_config(c: &LimitsConfig) -> Limits {
        Limits {
            max_duration: c.max_duration(),
            max_bytes: (c.max_bytes > 0).then_some(c.max_bytes),
            min_interval: c.max_fps().map(Fps::interval),
            resend_every: None,
        }
    }

    /// Each limit at the stricter of the two: a URL can tighten the
    /// server's limits, never loosen them.
    pub fn tighten(self, other: Limits) -> Limits {
        fn stricter<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Limits {
            max_duration: stricter(self.max_duration, other.max_duration),
            max_bytes: stricter(self.max_bytes, other.max_bytes),
            // A longer interval is the stricter one.
            min_interval: match (self.min_interval, other.min_interval) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            resend_every: self.resend_every.or(other.resend_every),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tightening_never_loosens() {
        let server = Limits {
            max_duration: Some(Duration::from_secs(60)),
            max_bytes: None,
            min_interval: Some(Duration::from_millis(100)),
            resend_every: None,
        };
        let url = Limits {
            max_duration: Some(Duration::from_secs(600)),
            max_bytes: Some(1000),
            min_interval: Some(Duration::from_millis(20)),
            resend_every: None,
        };
        let t = server.tighten(url);
        assert_eq!(t.max_duration, Some(Duration::from_secs(60)));
        assert_eq!(t.max_bytes, Some(1000));
        assert_eq!(t.min_interval, Some(Duration::from_millis(100)));
        assert_eq!(Limits::default().tighten(Limits::default()), Limits::default());
    }
}
