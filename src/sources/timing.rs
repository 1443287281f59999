//! When a channel's producer renders and resends: the pacing every kind of
//! live image shares (rooms, badges), so a burst of changes is drawn a
//! handful of times and a quiet channel still shows a change at once.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::Config;

#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Timing {
    pub min_frame_interval: Duration,
    pub resend_interval: Duration,
    pub fanout_parts_per_second: u64,
    /// Where a room's burst backoff stops (see `burst_backoff`).
    pub max_frame_interval: Duration,
}

/// The pacing as the config says now, shared by every producer of a kind:
/// they read it at each step, so a reload re-paces channels already live.
#[derive(Clone)]
pub struct Timings(Arc<ArcSwap<Timing>>);

impl Timings {
    pub fn new(timing: Timing) -> Timings {
        Timings(Arc::new(ArcSwap::from_pointee(timing)))
    }

    pub fn get(&self) -> Timing {
        **self.0.load()
    }

    pub fn set(&self, timing: Timing) {
        self.0.store(Arc::new(timing));
    }
}

impl Timing {
    /// The config's pacing keys.
    pub fn from_config(config: &Config) -> Timing {
        Timing {
            min_frame_interval: config.min_frame_interval(),
            resend_interval: config.resend_interval(),
            fanout_parts_per_second: config.fanout_parts_per_second,
            max_frame_interval: Duration::from_millis(config.max_frame_interval_ms),
        }
    }

    /// The least time between two renders of a channel with `viewers`:
    /// `min_frame_interval`, stretched so one channel sends at most
    /// `fanout_parts_per_second` parts. A change after a quiet spell still
    /// renders at once; only bursts of changes wait.
    pub fn coalesce_interval(&self, viewers: u64) -> Duration {
        let budget = Duration::from_secs_f64(viewers as f64 / self.fanout_parts_per_second.max(1) as f64);
        self.min_frame_interval.max(budget)
    }

    /// The wait before a room's next render, given the wait before this
    /// one and how long after the previous render this one came. While the
    /// count keeps changing (renders come as soon as allowed), each render
    /// doubles the wait, up to `max_frame_interval`: a surge of arrivals is
    /// drawn a few times instead of once per 50 ms for everyone present.
    /// One quiet spell resets it, so a lone change still shows at once.
    pub fn burst_backoff(&self, wait: Duration, since_previous: Duration) -> Duration {
        if since_previous <= wait * 2 {
            (wait * 2).min(self.max_frame_interval).max(self.min_frame_interval)
        } else {
            self.min_frame_interval
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_grows_with_the_audience() {
        let t = Timing {
            min_frame_interval: Duration::from_millis(50),
            resend_interval: Duration::from_secs(10),
            fanout_parts_per_second: 50_000,
            max_frame_interval: Duration::from_millis(1000),
        };
        assert_eq!(t.coalesce_interval(1), Duration::from_millis(50));
        assert_eq!(t.coalesce_interval(2_500), Duration::from_millis(50));
        assert_eq!(t.coalesce_interval(10_000), Duration::from_millis(200));
        assert_eq!(t.coalesce_interval(19_000), Duration::from_millis(380));
    }

    #[test]
    fn bursts_back_off_and_a_quiet_spell_resets() {
        let ms = Duration::from_millis;
        let t = Timing {
            min_frame_interval: ms(50),
            resend_interval: Duration::from_secs(10),
            fanout_parts_per_second: 50_000,
            max_frame_interval: ms(1000),
        };
        // Renders as soon as allowed: the wait doubles, up to the cap.
        assert_eq!(t.burst_backoff(ms(50), ms(50)), ms(100));
        assert_eq!(t.burst_backoff(ms(400), ms(401)), ms(800));
        assert_eq!(t.burst_backoff(ms(800), ms(800)), ms(1000));
        // A change after a quiet spell: back to the minimum.
        assert_eq!(t.burst_backoff(ms(1000), Duration::from_secs(5)), ms(50));
    }
}
